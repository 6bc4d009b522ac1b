"""MediaPipe tutorial folders: ``<label>/<clip>/<frame>.npy``, one 1662-float vector per frame.

This is the layout many MediaPipe sign-language tutorials record (``MP_Data``). Each vector is
pose 33 × (x, y, z, visibility) | face 468 × 3 | left hand 21 × 3 | right hand 21 × 3, with
zeros for undetected parts (:func:`aslx.landmarks.layouts.mp_vector_to_canonical`). Labels are
the folder names; clips and frames are ordered by their numeric names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from etils import epath

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import ClassVocab


def _numeric_key(path: epath.Path) -> tuple[int, int | str]:
    """Orders '2' before '10'; non-numeric names after the numeric ones, by name."""
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def _labels(src: epath.Path) -> list[epath.Path]:
    if not src.is_dir():
        raise FormatError(f"{src}: not a folder; expected MP_Data/<label>/<clip>/<frame>.npy")
    labels = sorted(p for p in src.iterdir() if p.is_dir())
    if not labels:
        raise FormatError(f"{src}: no label folders; expected MP_Data/<label>/<clip>/<frame>.npy")
    return labels


def _load_npy(path: epath.Path) -> np.ndarray:
    with path.open("rb") as f:
        return np.load(f, allow_pickle=False)


def vocabulary(src: str | os.PathLike) -> ClassVocab:
    return ClassVocab(tuple(p.name for p in _labels(files.path(src))))


def read(src: str | os.PathLike) -> Iterator[Clip | Skipped]:
    src = files.path(src)
    for label in _labels(src):
        for clip in sorted((p for p in label.iterdir() if p.is_dir()), key=_numeric_key):
            name = f"{label.name}/{clip.name}"
            frames = sorted(clip.glob("*.npy"), key=_numeric_key)
            try:
                vectors = []
                for f in frames:
                    try:
                        vectors.append(_load_npy(f))
                    except Exception as e:  # noqa: BLE001  name the frame file
                        raise FormatError(f"frame {f.name} is not a readable .npy ({e})") from None
                bad = [
                    f.name for f, v in zip(frames, vectors) if v.shape != (layouts.MP_VECTOR_SIZE,)
                ]
                if bad:
                    raise FormatError(
                        f"frame {bad[0]} is not a {layouts.MP_VECTOR_SIZE}-float vector "
                        "(pose 33x4, face 468x3, hands 2x21x3)"
                    )
                vectors = np.stack(vectors) if vectors else np.zeros((0, layouts.MP_VECTOR_SIZE))
            except Exception as e:  # noqa: BLE001  a damaged .npy raises anything; skip its clip
                reason = str(e) if isinstance(e, FormatError) else f"unreadable frame ({e})"
                yield Skipped(name, reason)
                continue
            yield Clip(
                clip_id=name,
                landmarks=layouts.mp_vector_to_canonical(vectors),
                label=label.name,
                source=name,
            )
