"""Packed NumPy archives: ``X [clips, frames, 543, 3]`` in canonical order, with or without
labels.

Keys: ``X`` (any float dtype; all-zero points are missing), ``y`` (class index per clip) and
``classes`` (class names), both or neither (an unlabelled archive, for pretraining), and
optionally:

* ``seq_id`` (clip number within its class): the archive's fixed split applies, clips 0–41
  train, 42–47 val, 48–59 test, the split of ``mp_holistic_35signs`` (the same clip numbers for
  every class, so no signer session crosses splits). Archives with another numbering pass their
  own boundaries.
* ``n_frames`` (each clip's true length): a shorter clip than X holds keeps its first
  ``n_frames`` frames, the rest being padding; a longer one was subsampled to X's frames and
  keeps them all (``xsigner``'s clips: zero-padded, or evenly subsampled, to 30 frames).
* ``source`` (who recorded each clip: ``xsigner``'s repository, one signer): the clip's
  signer (:attr:`Clip.group`), so ingest's ``val_fraction`` moves whole signers and a
  benchmark can score each signer.

Without ``seq_id`` the split is ingest's: the one its ``--src SPLIT=PATH`` gives the file (the
``xsigner`` files are split by signer already), else ``train``.
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
#: What every archive holds; ``y`` and ``classes`` come together or not at all.
CLIP_KEYS = ("X",)
OPTIONAL_KEYS = ("seq_id", "n_frames", "source")
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


def vocabulary(src: str | os.PathLike) -> ClassVocab | None:
    """The archive's classes, ``None`` for an unlabelled archive (no ``y`` and no
    ``classes``)."""
    archive = open_archive(src, CLIP_KEYS)
    labelled = _labelled(src, archive)
    return ClassVocab(tuple(str(c) for c in archive["classes"])) if labelled else None


def _labelled(src, archive) -> bool:
    """Whether the archive holds labels; :class:`FormatError` when it has only one of ``y``
    and ``classes``."""
    present = [k for k in ("y", "classes") if k in archive.files]
    if len(present) == 1:
        missing = "classes" if present == ["y"] else "y"
        raise FormatError(
            f"{src}: has {present[0]!r} but no {missing!r}; a labelled archive needs both, an "
            "unlabelled one neither"
        )
    return bool(present)


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


def _clip_length(i: int, frames: int, n_frames) -> int | str:
    """Clip ``i``'s real frames, or why it has none: its first ``n_frames[i]`` when the clip was
    shorter than the ``frames`` X holds (zero-padded after them), all of them when it was as
    long or longer (subsampled to fit), every frame without ``n_frames``."""
    if n_frames is None:
        return frames
    if i >= len(n_frames):
        return f"n_frames has {len(n_frames)} entries for the clips of X"
    n = int(n_frames[i])
    if n < 1:
        return f"n_frames {n}: a clip needs at least one frame"
    return min(n, frames)


def read(src: str | os.PathLike, boundaries=SPLIT_BOUNDARIES) -> Iterator[Clip | Skipped]:
    archive = open_archive(src, CLIP_KEYS)
    labelled = _labelled(src, archive)
    keys = CLIP_KEYS + (("y", "classes") if labelled else ())
    keys += tuple(k for k in OPTIONAL_KEYS if k in archive.files)
    arrays = dict(zip(keys, _arrays(src, archive, keys)))
    X = arrays["X"]
    if X.ndim != 4 or X.shape[2:] != (layouts.NUM_LANDMARKS, 3):
        raise FormatError(f"{src}: X has shape {X.shape}, expected [clips, frames, 543, 3]")
    classes = [str(c) for c in arrays["classes"]] if labelled else None
    y, seq_ids, signers = arrays.get("y"), arrays.get("seq_id"), arrays.get("source")
    for i in range(len(X)):
        name = f"{os.path.basename(src)}[{i}]"
        short = next(
            (
                k
                for k, v in (("y", y), ("seq_id", seq_ids), ("source", signers))
                if v is not None and i >= len(v)
            ),
            None,
        )
        if short is not None:
            yield Skipped(
                name, f"{short} has {len(arrays[short])} entries for the {len(X)} clips of X"
            )
            continue
        length = _clip_length(i, X.shape[1], arrays.get("n_frames"))
        if isinstance(length, str):
            yield Skipped(name, length)
            continue
        number = int(seq_ids[i]) if seq_ids is not None else i
        label = None
        if labelled:
            index = int(y[i])
            if not 0 <= index < len(classes):
                yield Skipped(name, f"class index {index} outside the {len(classes)} classes")
                continue
            label = classes[index]
        yield Clip(
            clip_id=f"{label if label is not None else 'clip'}/{number}",
            landmarks=layouts.zeros_to_nan(X[i, :length]),
            label=label,
            source=name,
            split=split_of(number, boundaries) if seq_ids is not None else None,
            group=str(signers[i]) if signers is not None else None,
        )
