"""Kaggle asl-signs: one long-format parquet file per clip.

Layout of a source folder::

    train.csv                          path, participant_id, sequence_id, sign
    sign_to_prediction_index_map.json  sign -> class index (optional; else sorted signs)
    train_landmark_files/<participant>/<sequence>.parquet
        one row per (frame, landmark): frame, row_id, type, landmark_index, x, y, z

``type`` is one of face, left_hand, pose, right_hand. Rows are not always in canonical order
(some exporters write pose first), so points are placed by (type, landmark_index), never by row
position. Missing points are NaN rows or absent rows; both become NaN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from etils import epath

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import ClassVocab

INDEX_FILE = "train.csv"
INDEX_COLUMNS = ("path", "participant_id", "sequence_id", "sign")
CLASS_MAP_FILE = "sign_to_prediction_index_map.json"
LONG_COLUMNS = ("frame", "type", "landmark_index", "x", "y", "z")


def read_index(src: epath.Path) -> pd.DataFrame:
    path = src / INDEX_FILE
    if not path.exists():
        raise FormatError(f"{path}: not found; a Kaggle asl-signs folder has {INDEX_FILE}")
    with path.open("r") as f:
        table = pd.read_csv(f, dtype={"sign": str}, keep_default_na=False)
    missing = [c for c in INDEX_COLUMNS if c not in table.columns]
    if missing:
        raise FormatError(f"{path}: missing columns {missing}; expected {list(INDEX_COLUMNS)}")
    return table


def vocabulary(src: str | os.PathLike) -> ClassVocab:
    """The class map of the folder, or the sorted signs of ``train.csv`` when it has none."""
    src = files.path(src)
    path = src / CLASS_MAP_FILE
    if path.exists():
        return ClassVocab.from_index_map(json.loads(path.read_text()))
    return ClassVocab(tuple(sorted(set(read_index(src)["sign"]))))


def long_to_canonical(table: pa.Table) -> np.ndarray:
    """Pivots one long-format clip into ``[frames, 543, 3]`` (frames in ascending order)."""
    missing = [c for c in LONG_COLUMNS if c not in table.column_names]
    if missing:
        raise FormatError(f"missing columns {missing}; expected {list(LONG_COLUMNS)}")
    types = table.column("type").to_numpy(zero_copy_only=False).astype(str)
    index = table.column("landmark_index").to_numpy().astype(np.int64)
    unknown = sorted(set(types) - set(layouts.OFFSETS))
    if unknown:
        raise FormatError(f"unknown landmark types {unknown}; expected {sorted(layouts.OFFSETS)}")
    offset = np.array([layouts.OFFSETS[t] for t in types]) if len(types) else np.zeros(0, int)
    size = np.array([layouts.GROUP_SIZES[t] for t in types]) if len(types) else np.zeros(0, int)
    if np.any((index < 0) | (index >= size)):
        raise FormatError("landmark_index out of range for its type")
    frame_values, frame = np.unique(table.column("frame").to_numpy(), return_inverse=True)
    slot = offset + index
    if len(np.unique(frame * layouts.NUM_LANDMARKS + slot)) != len(slot):
        raise FormatError("a (frame, type, landmark_index) appears twice")
    points = np.full((len(frame_values), layouts.NUM_LANDMARKS, 3), np.nan, np.float32)
    for axis, name in enumerate("xyz"):
        column = table.column(name).to_numpy(zero_copy_only=False)
        points[frame, slot, axis] = np.asarray(column, dtype=np.float32)
    return points


def read(src: str | os.PathLike) -> Iterator[Clip | Skipped]:
    """Yields one clip per row of ``train.csv``, in the index's order."""
    src = files.path(src)
    for row in read_index(src).itertuples():
        path = src / row.path
        if not path.exists():
            yield Skipped(row.path, "file not found")
            continue
        try:
            with path.open("rb") as f:
                points = long_to_canonical(pq.read_table(f, page_checksum_verification=True))
        except (FormatError, pa.ArrowException, OSError) as e:
            yield Skipped(row.path, str(e))
            continue
        yield Clip(
            clip_id=f"{row.participant_id}/{row.sequence_id}",
            landmarks=points,
            label=row.sign,
            source=row.path,
            group=str(row.participant_id),
        )
