"""Packed NumPy archives: ``X [clips, frames, 543, 3]`` in canonical order plus labels.

Keys: ``X`` (any float dtype; all-zero points are missing), ``y`` (class index per clip),
``classes`` (class names), and optionally ``seq_id`` (clip number within its class). With
``seq_id``, the archive's fixed split applies: clips 0–41 train, 42–47 val, 48–59 test, the
split of ``mp_holistic_35signs`` (the same clip numbers for every class, so no signer session
crosses splits). Archives with another numbering pass their own boundaries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import ClassVocab

REQUIRED_KEYS = ("X", "y", "classes")
#: seq_id < 42 -> train, < 48 -> val, else test.
SPLIT_BOUNDARIES = ((42, "train"), (48, "val"), (None, "test"))


def open_archive(
    src: str | os.PathLike, required: tuple[str, ...] = REQUIRED_KEYS, why: str = ""
) -> np.lib.npyio.NpzFile:
    """The archive (a context manager), checked to hold the ``required`` arrays;
    :class:`FormatError` naming the file when it is missing, unreadable (truncated, not an
    archive) or lacks one (``why``, when given, ends that message)."""
    try:
        archive = files.open_npz(src, f"an .npz archive with {list(required)}")
    except (FileNotFoundError, ValueError) as e:
        raise FormatError(str(e)) from None
    missing = [k for k in required if k not in archive.files]
    if missing:
        archive.close()
        raise FormatError(
            f"{src}: missing arrays {missing}; expected {list(required)}"
            + (f" ({why})" if why else "")
        )
    return archive


def vocabulary(src: str | os.PathLike) -> ClassVocab:
    return ClassVocab(tuple(str(c) for c in open_archive(src)["classes"]))


def split_of(seq_id: int, boundaries=SPLIT_BOUNDARIES) -> str:
    for end, name in boundaries:
        if end is None or seq_id < end:
            return name
    raise ValueError(f"no split for seq_id {seq_id}")


def _arrays(src, archive, keys: tuple[str, ...]) -> list[np.ndarray]:
    """The archive's ``keys`` read whole; :class:`FormatError` naming the file and the array
    when one cannot be (a truncated or damaged archive)."""
    out = []
    for key in keys:
        try:
            out.append(archive[key])
        except Exception as e:  # noqa: BLE001  zipfile, zlib and numpy each raise their own
            raise FormatError(
                f"{src}: array {key!r} cannot be read ({e}); the archive is damaged"
            ) from None
    return out


def read(src: str | os.PathLike, boundaries=SPLIT_BOUNDARIES) -> Iterator[Clip | Skipped]:
    archive = open_archive(src)
    keys = ("X", "y", "classes") + (("seq_id",) if "seq_id" in archive.files else ())
    X, y, classes, *rest = _arrays(src, archive, keys)
    classes = [str(c) for c in classes]
    if X.ndim != 4 or X.shape[2:] != (layouts.NUM_LANDMARKS, 3):
        raise FormatError(f"{src}: X has shape {X.shape}, expected [clips, frames, 543, 3]")
    seq_ids = rest[0] if rest else None
    for i in range(len(X)):
        name = f"{os.path.basename(src)}[{i}]"
        short = next(
            (k for k, v in (("y", y), ("seq_id", seq_ids)) if v is not None and i >= len(v)), None
        )
        if short is not None:
            count = len(y) if short == "y" else len(seq_ids)
            yield Skipped(name, f"{short} has {count} entries for the {len(X)} clips of X")
            continue
        label = int(y[i])
        number = int(seq_ids[i]) if seq_ids is not None else i
        if not 0 <= label < len(classes):
            yield Skipped(name, f"class index {label} outside the {len(classes)} classes")
            continue
        yield Clip(
            clip_id=f"{classes[label]}/{number}",
            landmarks=layouts.zeros_to_nan(X[i]),
            label=classes[label],
            source=name,
            split=split_of(number, boundaries) if seq_ids is not None else None,
        )
