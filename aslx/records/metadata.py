"""``metadata.json``: what a record set holds, written last by ingest and read by every consumer.

Top-level fields:

=================  ===========================================================================
num_examples       clips written, all splits together
num_classes        distinct labels present (phrases for spelling, classes for signs)
splits             {split: clips}
unlabelled         {split: clips without a label} (sets written before it: unknown)
skipped            [{file, reason, clips}] for every input that was not written
num_skipped        clips lost in ``skipped``
shards             {split: [{file, num_examples}]}, in reading order
layout             {preset, num_landmarks, groups: [{name, size}], landmarks: [names]}
vocabulary         {kind: characters, characters, blank_id, replacements} or
                   {kind: classes, classes}
frames             {min, max, mean, p95}: clip lengths in frames
camera_aspect      the camera's width / height, what normalisation divides y by
                   (:mod:`aslx.landmarks.normalize`); sets written before it read as
                   Kaggle's portrait default
camera_aspect_from ``reader`` (the format records it), ``--camera-aspect`` or ``default``
max_label_length   longest encoded label (characters for spelling, 1 for classes)
source             {format, path}
storage_dtype      dtype of the stored coordinates
format_version     version of this layout
=================  ===========================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from aslx import files
from aslx import vocab as vocab_lib
from aslx.landmarks import presets
from aslx.landmarks.normalize import DEFAULT_CAMERA_ASPECT
from aslx.records import example

FILE = "metadata.json"
FORMAT_VERSION = 1


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def build(
    *,
    fmt: str,
    src: str,
    preset: presets.Preset,
    vocab: vocab_lib.Vocab,
    shards: dict[str, list[dict]],
    frame_counts: Sequence[int],
    label_lengths: Sequence[int],
    num_classes: int,
    skipped: list[dict],
    camera_aspect: float = DEFAULT_CAMERA_ASPECT,
    camera_aspect_from: str = "default",
    unlabelled: Mapping[str, int] | None = None,
) -> dict:
    frames = np.asarray(frame_counts, np.int64)
    splits = {split: sum(s["num_examples"] for s in files) for split, files in shards.items()}
    return {
        "format_version": FORMAT_VERSION,
        "num_examples": int(frames.size),
        "num_classes": num_classes,
        "splits": dict(sorted(splits.items())),
        "unlabelled": {split: int((unlabelled or {}).get(split, 0)) for split in sorted(splits)},
        "skipped": skipped,
        "num_skipped": sum(s["clips"] for s in skipped),
        "shards": dict(sorted(shards.items())),
        "layout": preset.to_json(),
        "vocabulary": vocab.to_json(),
        "frames": {
            "min": int(frames.min()) if frames.size else 0,
            "max": int(frames.max()) if frames.size else 0,
            "mean": round(float(frames.mean()), 2) if frames.size else 0.0,
            "p95": int(np.percentile(frames, 95)) if frames.size else 0,
        },
        "max_label_length": max(label_lengths, default=0),
        "camera_aspect": float(camera_aspect),
        "camera_aspect_from": camera_aspect_from,
        "source": {"format": fmt, "path": src},
        "storage_dtype": example.STORAGE_DTYPE.name,
    }


class NoSuchSplit(KeyError):
    """A record set lacks the split asked for; the message names the set, the split, the
    splits it has and, where the caller knows it, the setting to change."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RecordSet:
    """A record folder as consumers see it: checked metadata and shard paths."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = files.path(folder)
        path = self.folder / FILE
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: {self.folder} is not a finished record set "
                "(make one with python -m aslx.ingest)"
            )
        self.meta = json.loads(path.read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format_version {self.meta.get('format_version')}, this aslx reads "
                f"{FORMAT_VERSION}; re-ingest the source"
            )
        for split, listed in self.meta["shards"].items():
            for s in listed:
                if not (self.folder / s["file"]).exists():
                    raise FileNotFoundError(
                        f"{path} lists {s['file']} ({split}) but the file is missing; re-ingest"
                    )

    def unlabelled(self, split: str) -> int | None:
        """Clips of ``split`` without a label (``None`` for a set written before it was
        counted)."""
        counted = self.meta.get("unlabelled")
        return None if counted is None else int(counted.get(split, 0))

    def identity(self) -> str:
        """The record set's identity: SHA-256 (hex) of its ``metadata.json`` and each shard's
        name and size in bytes, so that a re-ingest or another set under the same path is
        told apart without reading a record."""
        digest = hashlib.sha256((self.folder / FILE).read_bytes())
        for split, listed in sorted(self.meta["shards"].items()):
            for shard in listed:
                size = (self.folder / shard["file"]).stat().length
                digest.update(f"\n{split}/{shard['file']}:{size}".encode())
        return digest.hexdigest()

    @property
    def preset(self) -> presets.Preset:
        return presets.get(self.meta["layout"]["preset"])

    @property
    def camera_aspect(self) -> float:
        """The camera's width / height (Kaggle's portrait default for sets written before the
        field)."""
        value = self.meta.get("camera_aspect", DEFAULT_CAMERA_ASPECT)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(
                f"{self.folder / FILE}: camera_aspect {value!r} is not a positive width / "
                "height; re-ingest (python -m aslx.ingest --camera-aspect W:H)"
            )
        return float(value)

    def frame_summary(self) -> dict:
        """``{min, mean}`` clip frames of the set (what a model card keeps)."""
        frames = self.meta.get("frames", {})
        return {"min": int(frames.get("min", 0)), "mean": float(frames.get("mean", 0.0))}

    @property
    def vocab(self) -> vocab_lib.Vocab:
        return vocab_lib.from_json(self.meta["vocabulary"])

    @property
    def splits(self) -> dict[str, int]:
        return dict(self.meta["splits"])

    def require_split(self, split: str, fix: str = "") -> int:
        """The clip count of ``split``; :class:`NoSuchSplit` when the set has no such split
        (``fix``, when given, ends the message: what to change)."""
        if split not in self.meta["shards"]:
            raise NoSuchSplit(
                f"{self.folder}: no split {split!r} (it has {sorted(self.meta['shards'])})"
                + (f"; {fix}" if fix else "")
            )
        return int(self.splits.get(split, 0))

    def shards(self, split: str) -> list[tuple[str, int]]:
        """``(path, num_examples)`` of each shard of ``split``, in reading order."""
        self.require_split(split)
        return [
            (str(self.folder / s["file"]), s["num_examples"]) for s in self.meta["shards"][split]
        ]
