"""pose-format ``.pose`` files (MediaPipe Holistic), read with the optional ``pose-format`` package.

Install it with ``pip install 'aslx[pose]'``. Each file is one clip. Holistic components
(``POSE_LANDMARKS``, ``FACE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS``, full
or reduced) are placed in the canonical layout by point name; ``POSE_WORLD_LANDMARKS`` and iris
points are dropped; points a file lacks are missing. pose-format stores x and y in pixels, so
they are divided by the header's width and height (whose ratio becomes the clip's
``camera_aspect``); z is kept as MediaPipe gave it.

Labels come from an ``index.csv`` anywhere under the source folder with ``path`` (relative to
the csv) and ``glosses`` columns, the lexicon layout of sign-language-processing tools; files
not listed there are unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
from etils import epath

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import ClassVocab

IGNORED_COMPONENTS = {"POSE_WORLD_LANDMARKS"}


def _under(src: epath.Path, wanted) -> list[epath.Path]:
    """The files anywhere under ``src`` whose name is ``wanted``, sorted (``epath`` has no
    recursive glob: on a bucket it would be one request per folder anyway)."""
    return sorted(
        folder / name for folder, _, names in src.walk() for name in names if wanted(name)
    )


def _is_pose(name: str) -> bool:
    return name.endswith(".pose")


def _files(src: epath.Path) -> list[epath.Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FormatError(f"{src}: not found")
    return _under(src, _is_pose)


def holds_pose_files(src: epath.Path) -> bool:
    """Whether the folder ``src`` has a ``.pose`` file anywhere under it (stops at the first,
    where :func:`_under` would list them all)."""
    return any(_is_pose(name) for _, _, names in src.walk() for name in names)


def _labels(src: epath.Path) -> dict[epath.Path, str]:
    labels = {}
    for index in _under(src, lambda name: name == "index.csv") if src.is_dir() else []:
        with index.open("r") as f:
            table = pd.read_csv(f, keep_default_na=False)
        if {"path", "glosses"} <= set(table.columns):
            for row in table.itertuples():
                labels[_key(index.parent / row.path)] = row.glosses
    return labels


def _key(path: epath.Path) -> str:
    """One spelling per file: an index's relative ``path`` and the file found must match."""
    return os.path.normpath(os.fspath(files.absolute(path)))


def vocabulary(src: str | os.PathLike) -> ClassVocab:
    return ClassVocab(tuple(sorted(set(_labels(files.path(src)).values()))))


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


def length_problem(data: bytes) -> str | None:
    """Why a ``.pose`` file's body is not the length its header says, or ``None``.

    A version 0.1 body is ``frames × people × points × (dims + 1)`` float32 values (the
    coordinates of every frame, then the confidences), after a header that gives ``frames``
    (16 bits: a longer clip wraps, so the body must hold that count modulo 65,536) and
    ``people``. pose-format counts the frames from the bytes left instead, so a truncated file
    would read as a shorter clip whose confidences are coordinates: it is refused here.
    Other versions are left to pose-format."""
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader, ConstStructs

    reader = BufferReader(data)
    header = PoseHeader.read(reader)
    if round(header.version, 3) != 0.1:
        return None
    _, frames = reader.unpack(ConstStructs.double_ushort)
    people = reader.unpack(ConstStructs.ushort)
    points = sum(len(c.points) for c in header.components)
    per_frame = people * points * (header.num_dims() + 1) * 4
    left = reader.bytes_left()
    if per_frame and (left % per_frame or (left // per_frame) % 65536 != frames):
        return (
            f"its header says {frames} frames ({frames * per_frame:,} bytes) but its body holds "
            f"{left:,} bytes ({left // per_frame} frames and {left % per_frame} bytes): truncated "
            "or damaged"
        )
    return None


def read(src: str | os.PathLike) -> Iterator[Clip | Skipped]:
    try:
        from pose_format import Pose
    except ImportError:
        raise FormatError(
            "reading .pose files needs the pose-format package: pip install 'aslx[pose]'"
        ) from None
    src = files.path(src)
    labels = _labels(src)
    for path in _files(src):
        name = str(path.relative_to(src)) if src.is_dir() else path.name
        try:
            data = path.read_bytes()
            problem = length_problem(data)
            if problem:
                raise FormatError(problem)
            pose = Pose.read(data)
            points = to_canonical(pose)
        except Exception as e:  # noqa: BLE001  pose-format's parser raises anything on bad bytes
            reason = (
                str(e)
                if isinstance(e, FormatError)
                else f"not a readable .pose file ({type(e).__name__}: {e})"
            )
            yield Skipped(name, reason.splitlines()[0])
            continue
        size = pose.header.dimensions
        yield Clip(
            clip_id=name.removesuffix(".pose"),
            landmarks=points,
            label=labels.get(_key(path)),
            source=name,
            camera_aspect=size.width / size.height if size.width > 0 and size.height > 0 else None,
        )
