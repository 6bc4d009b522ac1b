"""The alignments file: per-frame label positions of a record set's clips, for temporal CutMix.

Written by ``python -m aslx.align`` (from a trained CTC model's Viterbi alignments,
:mod:`aslx.decoding.viterbi`), read by the input pipeline. A NumPy ``.npz`` archive: one
``int32`` array per clip, keyed by the record's ``clip_id``, holding the label position of every
frame *stored in the record* (before the pipeline fits the clip into ``max_frames``), ``-1``
where no label is shown; plus one entry :data:`META_KEY`, a JSON string describing where the
alignments came from (:func:`write_file`).
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from aslx import files

#: The alignments file's entry that is not a clip: JSON provenance (see :func:`write_file`).
META_KEY = "__aslx_alignments__"
FILE_VERSION = 1
#: A frame on a blank (or on padding) in an alignment.
NO_LABEL = -1
_WHAT = "an alignments file of python -m aslx.align"


def records_fingerprint(records_folder: str | os.PathLike) -> str:
    """sha256 of a record set's ``metadata.json``: an alignments file belongs to one record
    set (re-ingesting the same source gives the same file, so the same fingerprint)."""
    return hashlib.sha256((files.path(records_folder) / "metadata.json").read_bytes()).hexdigest()


def write_file(path: str | os.PathLike, alignments: dict[str, np.ndarray], meta: dict) -> None:
    """Writes the alignments file whole or not at all (:func:`aslx.files.atomic_path`).

    ``meta`` is stored as JSON under :data:`META_KEY`, with ``version`` added; the CLI puts
    there ``split``, ``records`` (folder), ``records_sha256`` (:func:`records_fingerprint`),
    ``workdir``, ``max_frames``, ``long_clips`` (how the model read a longer clip), ``clips``
    and ``partial`` (clips aligned on a label prefix).
    """
    if META_KEY in alignments:
        raise ValueError(f"{META_KEY!r} is reserved, it cannot be a clip id")
    arrays = {k: np.asarray(v, np.int32) for k, v in alignments.items()}
    arrays[META_KEY] = np.asarray(json.dumps({"version": FILE_VERSION} | meta, sort_keys=True))
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: np.savez adds no '.npz' to it


def read_meta(path: str | os.PathLike) -> dict:
    """The provenance JSON of an alignments file (reads only that entry)."""
    if not files.path(path).is_file():
        raise FileNotFoundError(
            f"{path}: no alignments file there (write one with python -m aslx.align)"
        )
    with files.open_npz(path, _WHAT) as archive:
        if META_KEY not in archive.files:
            raise ValueError(f"{path}: not {_WHAT}")
        return json.loads(str(archive[META_KEY]))


def read_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """``({clip_id: [record_frames] int32}, meta)`` of an alignments file."""
    meta = read_meta(path)
    with files.open_npz(path, _WHAT) as archive:
        alignments = {k: archive[k] for k in archive.files if k != META_KEY}
    return alignments, meta


def check_fits(meta: dict, records_folder: str | os.PathLike, split: str, path) -> None:
    """Raises ``ValueError`` unless the file with ``meta`` was made for this record set and
    split (then it holds every clip of the split)."""
    if meta.get("version") != FILE_VERSION:
        raise ValueError(
            f"{path}: alignments file version {meta.get('version')}, this aslx reads "
            f"{FILE_VERSION}; rerun python -m aslx.align"
        )
    if meta.get("split") != split:
        raise ValueError(
            f"{path} aligns split {meta.get('split')!r}, not {split!r}; rerun python -m "
            f"aslx.align --split {split}"
        )
    if meta.get("records_sha256") != records_fingerprint(records_folder):
        raise ValueError(
            f"{path} was made for the record set {meta.get('records')!r}, whose metadata.json "
            f"differs from {records_folder}'s; rerun python -m aslx.align --data {records_folder}"
        )
