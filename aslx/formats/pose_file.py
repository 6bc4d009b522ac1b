"""pose-format ``.pose`` files (MediaPipe Holistic), read with the optional ``pose-format`` package.

Install it with ``pip install 'aslx[pose]'``. Each file is one clip. Holistic components
(``POSE_LANDMARKS``, ``FACE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS``, full
or reduced) are placed in the canonical layout by point name; ``POSE_WORLD_LANDMARKS`` and iris
points are dropped; points a file lacks are missing. pose-format stores x and y in pixels, so
they are divided by the header's width and height; z is kept as MediaPipe gave it.

Labels come from an ``index.csv`` anywhere under the source folder with ``path`` (relative to
the csv) and ``glosses`` columns, the lexicon layout of sign-language-processing tools; files
not listed there are unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import ClassVocab

IGNORED_COMPONENTS = {"POSE_WORLD_LANDMARKS"}


def _files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FormatError(f"{src}: not found")
    return sorted(src.rglob("*.pose"))


def _labels(src: Path) -> dict[Path, str]:
    labels = {}
    for index in sorted(src.rglob("index.csv")) if src.is_dir() else []:
        table = pd.read_csv(index, keep_default_na=False)
        if {"path", "glosses"} <= set(table.columns):
            for row in table.itertuples():
                labels[(index.parent / row.path).resolve()] = row.glosses
    return labels


def vocabulary(src: str | os.PathLike) -> ClassVocab:
    return ClassVocab(tuple(sorted(set(_labels(Path(src)).values()))))


def to_canonical(pose) -> np.ndarray:
    """A ``pose_format.Pose`` (MediaPipe Holistic) to ``[frames, 543, 3]``, NaN where missing."""
    header = pose.header
    names = [c.name for c in header.components]
    unknown = [
        n for n in names if n not in layouts.HOLISTIC_COMPONENTS and n not in IGNORED_COMPONENTS
    ]
    if unknown:
        raise FormatError(
            f"not a MediaPipe Holistic pose (components {names}); aslx reads Holistic only"
        )
    data = pose.body.data  # masked [frames, people, points, dims]
    if data.shape[-1] < 3:
        raise FormatError(f"points have {data.shape[-1]} dimensions; MediaPipe Holistic has 3")
    values = np.ma.filled(data[:, 0, :, :3].astype(np.float32), np.nan)
    missing = np.ma.getmaskarray(data[:, 0, :, :3]).any(-1) | (pose.body.confidence[:, 0] <= 0)
    values[missing] = np.nan
    values[..., 0] /= header.dimensions.width
    values[..., 1] /= header.dimensions.height
    out = np.full((values.shape[0], layouts.NUM_LANDMARKS, 3), np.nan, np.float32)
    start = 0
    for component in header.components:
        count = len(component.points)
        if component.name in layouts.HOLISTIC_COMPONENTS:
            slots = layouts.holistic_component_slots(component.name, list(component.points))
            keep = [i for i, s in enumerate(slots) if s is not None]
            out[:, [slots[i] for i in keep]] = values[:, [start + i for i in keep]]
        start += count
    return out


def read(src: str | os.PathLike) -> Iterator[Clip | Skipped]:
    try:
        from pose_format import Pose
    except ImportError:
        raise FormatError(
            "reading .pose files needs the pose-format package: pip install 'aslx[pose]'"
        ) from None
    src = Path(src)
    labels = _labels(src)
    for path in _files(src):
        name = str(path.relative_to(src)) if src.is_dir() else path.name
        try:
            with open(path, "rb") as f:
                points = to_canonical(Pose.read(f.read()))
        except (FormatError, ValueError, OSError) as e:
            yield Skipped(name, str(e))
            continue
        yield Clip(
            clip_id=name.removesuffix(".pose"),
            landmarks=points,
            label=labels.get(path.resolve()),
            source=name,
        )
