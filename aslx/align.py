"""Align every clip's label to its frames with a trained CTC model (Viterbi forced alignment),
for temporal CutMix.

    python -m aslx.align --workdir runs/finetune_small --data runs/records \\
        --out runs/records_train_alignments.npz
    python -m finetune.main --config configs/finetune_small.py --workdir runs/cutmix \\
        --config.data.dir=runs/records \\
        --config.data.alignments=runs/records_train_alignments.npz

The model (``--workdir``, a finetuning run with ``task='ctc'``; its chosen checkpoint and raw or
EMA weights) reads each clip of ``--split`` as it was trained to: its preset, its
``max_frames``, clips longer than that keeping evenly spaced frames (always ``resample``, so the
whole label stays in the clip). The most probable CTC path of the clip's label through the
model's log-probabilities (:mod:`aslx.decoding.align`) gives each frame the label position it
shows, or -1 on a blank.

The file (``--out``, written atomically) maps each ``clip_id`` to an int32 array over the
frames **stored in the record**, before any fitting: a stored frame takes the position of the
fitted frame it was kept as, or of the nearest kept one when the clip was longer than
``max_frames``. A training pipeline then fits these arrays with the same gather as the
landmarks, so it may use another ``max_frames`` or preset than the aligning model (with fewer
frames, a label held for one frame may lose its frame; CutMix copes). The file also records
which record set and split it belongs to; training refuses it for any other.

Every clip of the split gets an entry. A clip whose label is too long for its fitted frames
(one frame per label plus a blank between equal neighbours) is aligned on the longest label
prefix that fits, the labels training keeps too, and is listed in the summary; a clip without a
label is all -1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aslx import cli

DEFAULT_BATCH = 32
MAX_LISTED = 5


def align_records(
    workdir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str = "train",
    batch_size: int = DEFAULT_BATCH,
    progress: bool = True,
) -> dict:
    """Aligns every clip of ``split`` of record set ``data`` with the CTC model of ``workdir``
    and writes the alignments file ``out``.

    Returns:
      A summary: ``clips``, ``resampled`` (clips longer than ``max_frames``), ``partial``
      (``{clip_id: (labels aligned, labels)}``), ``unlabelled``, ``max_frames``, ``out``.

    Raises:
      FileNotFoundError: no model or no record set there.
      ValueError: the model is not a CTC model, does not read these records, or cannot score a
        clip.
    """
    import jax
    import numpy as np
    from tqdm import tqdm

    from aslx import ctc_frames
    from aslx.decoding import align as align_lib
    from aslx.decoding.evaluate import device_batch
    from aslx.input import pipeline
    from aslx.landmarks import presets
    from aslx.model import inference
    from aslx.records.metadata import RecordSet
    from aslx.run import alignments as alignments_lib
    from aslx.run import source as source_lib

    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    records = RecordSet(data)
    records.require_split(split, "pass --split")

    def need_ctc(card) -> None:
        task = card.task
        if task != "ctc":
            raise ValueError(
                f"{workdir}: a {task} model; alignment needs a CTC model (a finetuning run "
                "with config.task='ctc')"
            )

    if Path(workdir).is_dir():  # refuse a wrong model before reading its weights
        need_ctc(source_lib.read_card(workdir))
    trained = source_lib.load_trained(workdir)
    need_ctc(trained.card)
    vocab = trained.card.vocab
    if vocab != records.vocab:
        raise ValueError(
            f"{workdir}: the model's vocabulary differs from the records' ({data}); align with "
            "a model trained on this vocabulary"
        )
    _, blank_id = inference.ctc_layout(vocab)
    preset = presets.get(trained.card.preset)
    max_frames = trained.card.max_frames
    config = pipeline.InputConfig(
        batch_size=batch_size, max_frames=max_frames, preset=preset.name, long_clips="resample"
    )
    forward = inference.make_forward(trained.graphdef, preset, "ctc")
    viterbi = jax.jit(align_lib.viterbi_align_batch, static_argnames="blank_id")

    alignments: dict[str, np.ndarray] = {}
    partial: dict[str, tuple[int, int]] = {}
    resampled = unlabelled = 0
    bar = tqdm(
        total=records.splits[split], desc=f"align {split}", unit=" clips", disable=not progress
    )
    batches = pipeline.eval_batches(records, split, config, process_index=0, process_count=1)
    for batch in batches:
        log_probs = forward(trained.params, device_batch(batch))["log_probs"]
        # Labels past what CTC can emit in the fitted frames get no frames (training drops
        # them too); the rest is aligned exactly.
        kept = np.asarray(
            [
                ctc_frames.fitting_prefix(labels[mask], n)
                for labels, mask, n in zip(
                    batch["labels"], batch["label_mask"].astype(bool), batch["num_frames"]
                )
            ]
        )
        kept_mask = np.arange(batch["labels"].shape[1])[None, :] < kept[:, None]
        fitted, _, ok = jax.device_get(
            viterbi(log_probs, batch["frame_mask"], batch["labels"], kept_mask, blank_id=blank_id)
        )
        for i in np.flatnonzero(batch["example_mask"]):
            clip = batch["clip_id"][i].decode()
            if not ok[i]:
                raise ValueError(
                    f"clip {clip!r}: every CTC path of its label has probability 0 under the "
                    f"model of {workdir} (non-finite log-probabilities?)"
                )
            if clip in alignments:
                raise ValueError(f"{data}: clip id {clip!r} appears twice in split {split!r}")
            n, stored = int(batch["num_frames"][i]), int(batch["record_frames"][i])
            alignments[clip] = align_lib.to_record_frames(fitted[i, :n], stored, max_frames)
            labels = int(batch["label_mask"][i].sum())
            resampled += stored > max_frames
            unlabelled += labels == 0
            if kept[i] < labels:
                partial[clip] = (int(kept[i]), labels)
        bar.update(int(batch["example_mask"].sum()))
    bar.close()

    meta = {
        "split": split,
        "records": str(Path(data).resolve()),
        "records_sha256": alignments_lib.records_fingerprint(data),
        "workdir": str(Path(workdir).resolve()),
        "weights": trained.weights,
        "step": trained.step,
        "preset": preset.name,
        "max_frames": max_frames,
        "frame_axis": "record",
        "clips": len(alignments),
        "partial": {clip: list(counts) for clip, counts in partial.items()},
    }
    alignments_lib.write_file(out, alignments, meta)
    return {
        "clips": len(alignments),
        "resampled": resampled,
        "partial": partial,
        "unlabelled": unlabelled,
        "max_frames": max_frames,
        "out": str(out),
    }


def summary_text(summary: dict, split: str) -> str:
    """What :func:`align_records` did, for people."""
    lines = [
        f"aligned {summary['clips']} clips of split {split!r} "
        f"({summary['resampled']} longer than {summary['max_frames']} frames, read at "
        f"{summary['max_frames']} evenly spaced frames)"
    ]
    partial = summary["partial"]
    if partial:
        shown = ", ".join(
            f"{clip} ({kept} of {labels})"
            for clip, (kept, labels) in list(partial.items())[:MAX_LISTED]
        )
        more = f" and {len(partial) - MAX_LISTED} more" if len(partial) > MAX_LISTED else ""
        lines.append(
            f"{len(partial)} clips not fully aligned: their label needs more frames than they "
            f"have at {summary['max_frames']} frames, so only its longest prefix that fits is "
            f"aligned (labels aligned of labels): {shown}{more}"
        )
    if summary["unlabelled"]:
        lines.append(f"{summary['unlabelled']} clips have no label (every frame -1)")
    lines.append(f"alignments: {summary['out']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m aslx.align", __doc__)
    parser.add_argument(
        "--workdir", required=True, help="a finetuning workdir of a CTC model (task 'ctc')"
    )
    parser.add_argument(
        "--data", required=True, help="a record set written by python -m aslx.ingest"
    )
    parser.add_argument(
        "--out", required=True, help="the alignments file to write (.npz; replaced if it exists)"
    )
    parser.add_argument("--split", default="train", help="split to align (default train)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"clips per forward pass (default {DEFAULT_BATCH})",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from absl import logging

    # Orbax notes at WARNING that it opens the checkpoints read-only: true, and not news.
    logging.set_verbosity(logging.ERROR)
    summary = align_records(
        args.workdir,
        args.data,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(summary_text(summary, args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
