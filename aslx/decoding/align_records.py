"""Aligning a record set's labels to its frames with a trained CTC model, for temporal CutMix.

:func:`align_records` runs the model of a workdir over every clip of a split, as it was trained
to read them, takes the most probable CTC path of each clip's label (:mod:`aslx.decoding.align`)
and writes the alignments file (:mod:`aslx.run.alignments`); ``python -m aslx.align`` is its
command, and its docstring says what the file holds.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from tqdm import tqdm

from aslx import ctc_frames, files
from aslx.decoding import align as align_lib
from aslx.decoding.evaluate import device_batch
from aslx.input import pipeline
from aslx.landmarks import presets
from aslx.model import inference
from aslx.records.metadata import RecordSet
from aslx.run import alignments as alignments_lib
from aslx.run import source as source_lib

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

    need_ctc(source_lib.read_card(workdir))  # refuse a wrong model before reading its weights
    trained = source_lib.load_trained(workdir)
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
    forward = inference.make_forward(trained.graphdef, preset, "ctc", trained.card.normalization)
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
        "records": os.fspath(files.absolute(data)),
        "records_sha256": alignments_lib.records_fingerprint(data),
        "workdir": os.fspath(files.absolute(workdir)),
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
