"""Clips from one path of any supported kind, the format told by the path itself.

Ingest reads whole data sets with an index (``train.csv``); inference and calibration read
whatever a user points at:

=====================  ===========================================================================
path                   read as
=====================  ===========================================================================
``*.parquet``          Kaggle asl-fingerspelling wide layout (one clip per ``sequence_id``), or
                       Kaggle asl-signs long layout (one clip), told apart by the columns
``*.pose``             a pose-format file (:mod:`aslx.formats.pose_file`)
``*.npz``              a packed archive of clips (:mod:`aslx.formats.npz`)
folder of ``.pose``    every pose file under it (in subfolders too)
other folder           MediaPipe tutorial ``MP_Data/<label>/<clip>/<frame>.npy``
                       (:mod:`aslx.formats.mp_data`)
=====================  ===========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from etils import epath

from aslx import files
from aslx.formats import kaggle_fingerspelling, kaggle_signs, mp_data, npz, pose_file
from aslx.formats.clip import Clip, FormatError, Skipped, checked


def _parquet(path: epath.Path) -> Iterator[Clip]:
    with path.open("rb") as f:
        parquet = pq.ParquetFile(f, page_checksum_verification=True)
        names = set(parquet.schema_arrow.names)
        long = parquet.read() if set(kaggle_signs.LONG_COLUMNS) <= names else None
    if long is not None:
        yield Clip(
            clip_id=path.stem,
            landmarks=kaggle_signs.long_to_canonical(long),
            label=None,
            source=str(path),
        )
        return
    if "x_face_0" not in names and "x_right_hand_0" not in names:
        raise FormatError(
            f"{path}: neither the Kaggle asl-signs long layout "
            f"({', '.join(kaggle_signs.LONG_COLUMNS)}) nor the asl-fingerspelling wide layout "
            "(sequence_id, frame, x_face_0 …)"
        )
    sequence_ids, frames, landmarks = kaggle_fingerspelling.read_file(path)
    order = np.lexsort((frames, sequence_ids))
    sequence_ids, landmarks = sequence_ids[order], landmarks[order]
    for sequence_id in np.unique(sequence_ids):
        rows = sequence_ids == sequence_id
        yield Clip(
            clip_id=f"{path.stem}/{sequence_id}",
            landmarks=landmarks[rows],
            label=None,
            source=str(path),
        )


def read_path(path: str | os.PathLike) -> Iterator[Clip | Skipped]:
    """Yields the clips of ``path`` (see the module docstring for what is accepted); a clip
    with damaged coordinates comes as :class:`Skipped` (:func:`aslx.formats.clip.checked`).

    Raises :class:`FormatError` when the path is missing or of no supported kind.
    """
    return checked(_read_path(files.path(path)))


def _read_path(path: epath.Path) -> Iterator[Clip | Skipped]:
    if not path.exists():
        raise FormatError(f"{path}: not found")
    if path.is_dir():
        reader = pose_file if pose_file.holds_pose_files(path) else mp_data
        yield from reader.read(path)
    elif path.suffix == ".parquet":
        try:
            yield from _parquet(path)
        except (pa.ArrowException, OSError) as e:
            raise FormatError(f"{path}: not a readable parquet file ({e})") from None
    elif path.suffix == ".pose":
        yield from pose_file.read(path)
    elif path.suffix == ".npz":
        yield from npz.read(path)
    else:
        raise FormatError(
            f"{path}: unknown kind of input; give a .parquet, .pose or .npz file, a folder of "
            ".pose files or an MP_Data folder"
        )
