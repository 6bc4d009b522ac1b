"""Aligning a record set's labels to its frames with a trained CTC model, for temporal CutMix.

:func:`align_records` runs the model of a workdir over every clip of a split, as it was trained
to read them, takes the most probable CTC path of each clip's label (:mod:`aslx.decoding.viterbi`)
and writes the alignments file (:mod:`aslx.records.alignments`); ``python -m aslx.align`` is its
command, and its docstring says what the file holds.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from tqdm import tqdm

from aslx import ctc_frames, files
from aslx.decoding import viterbi as align_lib
from aslx.input import fit
from aslx.input.batch import device_batch
from aslx.model import inference
from aslx.records import alignments as alignments_lib
from aslx.records.metadata import RecordSet
from aslx.run import reader
from aslx.run import source as source_lib

DEFAULT_BATCH = 32
MAX_LISTED = 5


def _ctc_model(workdir, records: RecordSet, data) -> reader.InferenceModel:
    """The CTC model of ``workdir``, checked to read ``records``' vocabulary; a model of
    another task is refused before its weights are read."""
    task = source_lib.read_card(workdir).task
    if task != "ctc":
        raise ValueError(
            f"{workdir}: a {task} model; alignment needs a CTC model (a finetuning run "
            "with config.task='ctc')"
        )
    model = reader.load_for_inference(workdir)
    if model.vocab != records.vocab:
        raise ValueError(
            f"{workdir}: the model's vocabulary differs from the records' ({data}); align with "
            "a model trained on this vocabulary"
        )
    return model


@dataclasses.dataclass
class _Aligned:
    """The alignments made so far: ``{clip_id: positions [record frames]}``, the clips whose
    label was aligned only in part (``{clip_id: (labels aligned, labels)}``), and counts of the
    clips longer than ``max_frames`` and of those without a label."""

    alignments: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    partial: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    fitted: int = 0
    unlabelled: int = 0


def _align_batch(
    model, viterbi, batch: dict, blank_id: int, done: _Aligned, workdir, data, split: str
) -> None:
    """Aligns one evaluation batch's clips of ``split`` of ``data`` into ``done``."""
    log_probs = model.forward(model.params, device_batch(batch))["log_probs"]
    # Labels past what CTC can emit in the fitted frames get no frames (training drops them
    # too); the rest is aligned exactly.
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
    inputs = model.inputs
    for i in np.flatnonzero(batch["example_mask"]):
        clip = batch["clip_id"][i].decode()
        if not ok[i]:
            raise ValueError(
                f"clip {clip!r}: every CTC path of its label has probability 0 under the "
                f"model of {workdir} (non-finite log-probabilities?)"
            )
        if clip in done.alignments:
            raise ValueError(f"{data}: clip id {clip!r} appears twice in split {split!r}")
        n, stored = int(batch["num_frames"][i]), int(batch["record_frames"][i])
        done.alignments[clip] = align_lib.to_record_frames(
            fitted[i, :n], stored, inputs.max_frames, inputs.long_clips
        )
        labels = int(batch["label_mask"][i].sum())
        done.fitted += stored > inputs.max_frames
        done.unlabelled += labels == 0
        if kept[i] < labels:
            done.partial[clip] = (int(kept[i]), labels)


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
      A summary: ``clips``, ``fitted`` (clips longer than ``max_frames``), ``partial``
      (``{clip_id: (labels aligned, labels)}``), ``unlabelled``, ``max_frames``,
      ``long_clips`` (how the fitted ones were read, the model's), ``out``.

    Raises:
      FileNotFoundError: no model or no record set there.
      ValueError: the model is not a CTC model, does not read these records, or cannot score a
        clip.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    records = RecordSet(data)
    records.require_split(split, "pass --split")
    model = _ctc_model(workdir, records, data)
    inputs = model.inputs
    _, blank_id = inference.ctc_layout(model.vocab)
    viterbi = jax.jit(align_lib.viterbi_align_batch, static_argnames="blank_id")
    done = _Aligned()
    bar = tqdm(
        total=records.splits[split], desc=f"align {split}", unit=" clips", disable=not progress
    )
    # Each clip as the model was trained to read it: its preset, max_frames and long_clips.
    batches = model.eval_batches(records, split, batch_size, process_index=0, process_count=1)
    for batch in batches:
        _align_batch(model, viterbi, batch, blank_id, done, workdir, data, split)
        bar.update(int(batch["example_mask"].sum()))
    bar.close()
    meta = {
        "split": split,
        "records": os.fspath(files.absolute(data)),
        "records_sha256": alignments_lib.records_fingerprint(data),
        "workdir": os.fspath(files.absolute(workdir)),
        "weights": model.trained.weights,
        "step": model.trained.step,
        "preset": inputs.preset.name,
        "max_frames": inputs.max_frames,
        "long_clips": inputs.long_clips,
        "frame_axis": "record",
        "clips": len(done.alignments),
        "partial": {clip: list(counts) for clip, counts in done.partial.items()},
    }
    alignments_lib.write_file(out, done.alignments, meta)
    return {
        "clips": len(done.alignments),
        "fitted": done.fitted,
        "partial": done.partial,
        "unlabelled": done.unlabelled,
        "max_frames": inputs.max_frames,
        "long_clips": inputs.long_clips,
        "out": str(out),
    }


def summary_text(summary: dict, split: str) -> str:
    """What :func:`align_records` did, for people."""
    max_frames = summary["max_frames"]
    read_as = {
        fit.RESAMPLE: f"read at {max_frames} evenly spaced frames",
        fit.TRUNCATE: f"read as their first {max_frames} frames",
    }[summary["long_clips"]]
    lines = [
        f"aligned {summary['clips']} clips of split {split!r} "
        f"({summary['fitted']} longer than {max_frames} frames, {read_as})"
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
