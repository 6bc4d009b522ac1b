"""Kaggle asl-fingerspelling: wide parquet files holding many phrases each.

Layout of a source folder::

    train.csv                        path, file_id, sequence_id, participant_id, phrase
    supplemental_metadata.csv        (optional) the same columns
    character_to_prediction_index.json   character -> index (59 characters)
    train_landmarks/<file_id>.parquet    one row per frame; index ``sequence_id``; columns
                                          ``frame``, ``x_face_0`` … ``z_right_hand_20``
    supplemental_landmarks/<file_id>.parquet

Missing hands (or faces, poses) are NaN rows of their columns. :func:`read` yields one
:class:`~aslx.formats.clip.Clip` per phrase, :func:`write` writes the same layout (the synthetic
demo data goes through it, so the demo takes the real ingest path).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from etils import epath

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.landmarks import layouts
from aslx.vocab import CharVocab

INDEX_FILES = {"train.csv": "train", "supplemental_metadata.csv": "supplemental"}
INDEX_COLUMNS = ("path", "file_id", "sequence_id", "participant_id", "phrase")
VOCABULARY_FILE = "character_to_prediction_index.json"


def read_index(src: epath.Path) -> pd.DataFrame:
    """Reads ``train.csv`` (and ``supplemental_metadata.csv``) into one table with a ``split``."""
    tables = []
    for name, split in INDEX_FILES.items():
        path = src / name
        if not path.exists():
            continue
        with path.open("r") as f:
            table = pd.read_csv(f, dtype={"phrase": str}, keep_default_na=False)
        missing = [c for c in INDEX_COLUMNS if c not in table.columns]
        if missing:
            raise FormatError(
                f"{path}: missing columns {missing}; a Kaggle asl-fingerspelling index has "
                f"{list(INDEX_COLUMNS)}"
            )
        tables.append(table.assign(split=split))
    if not tables:
        raise FormatError(
            f"{src}: no train.csv or supplemental_metadata.csv; is this a Kaggle "
            "asl-fingerspelling folder?"
        )
    return pd.concat(tables, ignore_index=True)


def vocabulary(src: str | os.PathLike, **kwargs) -> CharVocab:
    """The folder's character map (blank after the characters), or Kaggle's when it has none.

    ``kwargs`` go to :class:`~aslx.vocab.CharVocab` (``replacements``, ``blank_id``).
    """
    path = files.path(src) / VOCABULARY_FILE
    if not path.exists():
        return CharVocab.kaggle(**kwargs)
    return CharVocab.from_index_map(json.loads(path.read_text()), **kwargs)


def read_file(path: files.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (sequence_id [rows], frame [rows], landmarks [rows, 543, 3]) of one parquet file."""
    with files.path(path).open("rb") as f:
        return _read_wide(pq.ParquetFile(f, page_checksum_verification=True))


def _read_wide(parquet: pq.ParquetFile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    columns = layouts.wide_columns()
    schema_names = set(parquet.schema_arrow.names)
    missing = [c for c in ["sequence_id", "frame", *columns] if c not in schema_names]
    if missing:
        shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        raise FormatError(
            f"missing {len(missing)} columns ({shown}); expected the Kaggle asl-fingerspelling "
            "wide layout (sequence_id, frame, x_face_0 … z_right_hand_20)"
        )
    table = parquet.read(columns=["sequence_id", "frame", *columns])
    sequence_ids = table.column("sequence_id").to_numpy()
    frames = table.column("frame").to_numpy()
    coords = np.stack(
        [table.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in columns],
        axis=1,
    )
    landmarks = coords.reshape(len(frames), 3, layouts.NUM_LANDMARKS).transpose(0, 2, 1)
    return sequence_ids, frames, landmarks


def read(src: str | os.PathLike) -> Iterator[Clip | Skipped]:
    """Yields every phrase of a Kaggle asl-fingerspelling folder, file by file."""
    src = files.path(src)
    index = read_index(src)
    for relpath, rows in index.groupby("path", sort=True):
        path = src / relpath
        if not path.exists():
            yield Skipped(str(relpath), f"file not found ({len(rows)} phrases listed)", len(rows))
            continue
        try:
            sequence_ids, frames, landmarks = read_file(path)
        except (FormatError, pa.ArrowException, OSError) as e:
            yield Skipped(str(relpath), str(e), len(rows))
            continue
        order = np.lexsort((frames, sequence_ids))
        sequence_ids, landmarks = sequence_ids[order], landmarks[order]
        starts = np.searchsorted(sequence_ids, rows["sequence_id"].to_numpy(), side="left")
        ends = np.searchsorted(sequence_ids, rows["sequence_id"].to_numpy(), side="right")
        for row, start, end in zip(rows.itertuples(), starts, ends):
            name = f"{relpath}#{row.sequence_id}"
            if start == end:
                yield Skipped(name, "sequence_id listed in the index but absent from the file")
                continue
            yield Clip(
                clip_id=f"{row.file_id}/{row.sequence_id}",
                landmarks=landmarks[start:end],
                label=row.phrase,
                source=name,
                split=row.split,
                group=str(row.participant_id),
            )


def write(
    out: str | os.PathLike,
    phrases: Iterable[tuple[int, int, str, np.ndarray]],
    *,
    vocabulary: dict[str, int],
    phrases_per_file: int = 200,
    index_file: str = "train.csv",
    landmarks_dir: str = "train_landmarks",
) -> None:
    """Writes phrases in the Kaggle asl-fingerspelling layout.

    Args:
      out: folder to write into (created).
      phrases: ``(sequence_id, participant_id, phrase, landmarks [frames, 543, 3])`` tuples,
        NaN for missing points.
      vocabulary: the character map written as ``character_to_prediction_index.json``.
      phrases_per_file: how many phrases share one parquet file.
      index_file, landmarks_dir: ``train.csv`` / ``train_landmarks`` or the supplemental names.
    """
    out = Path(out)
    (out / landmarks_dir).mkdir(parents=True, exist_ok=True)
    columns = layouts.wide_columns()
    index_rows, batch = [], []

    def flush():
        if not batch:
            return
        file_id = batch[0][0]
        blocks = []
        for sequence_id, _, _, landmarks in batch:
            frames = len(landmarks)
            wide = np.asarray(landmarks, np.float32).transpose(0, 2, 1).reshape(frames, -1)
            block = pd.DataFrame(wide, columns=columns)
            block.insert(0, "frame", np.arange(frames, dtype=np.int16))
            block.index = pd.Index(np.full(frames, sequence_id, np.int64), name="sequence_id")
            blocks.append(block)
        relpath = f"{landmarks_dir}/{file_id}.parquet"
        pd.concat(blocks).to_parquet(out / relpath)
        index_rows.extend(
            (relpath, file_id, sequence_id, participant, phrase)
            for sequence_id, participant, phrase, _ in batch
        )
        batch.clear()

    for item in phrases:
        batch.append(item)
        if len(batch) == phrases_per_file:
            flush()
    flush()
    pd.DataFrame(index_rows, columns=list(INDEX_COLUMNS)).to_csv(out / index_file, index=False)
    with open(out / VOCABULARY_FILE, "w") as f:
        json.dump(vocabulary, f, indent=1)
