"""Spelled sequences built from real letter clips: continuous fingerspelling for CTC.

No public fingerspelling phrase data is at hand, so continuous (CTC) recognition is trained and
measured on sequences made here. A *word* is a random string of the letters ``a``–``z`` (uniform,
its length uniform in ``[min_letters, max_letters]``, repeated letters allowed so CTC meets
them); it is spelled by joining, in order, one randomly chosen clip of each of its letters from
a packed archive of isolated signs (:mod:`aslx.formats.npz`, e.g. ``mp_holistic_35signs``).

Every letter clip comes from the word's own split (the archive's fixed split by ``seq_id``), so
test words are made of test clips only and never see a training recording. The hand shapes are
real; the transitions between letters are not (one clip simply ends where the next begins).

With ``signs='all'`` a sequence is drawn from every class of the archive instead (letters and
words alike, e.g. ``'hello my a name'``, its signs joined by spaces): longer unlabelled
material with transitions between any signs, for pretraining an encoder that must serve both
spelling and isolated signs.

Labels are the words themselves, in the Kaggle character vocabulary
(:meth:`aslx.vocab.CharVocab.kaggle`), so the records suit fingerspelling models. A fixed seed
makes the output the same on every run; each split draws from its own random stream, so changing
how many val words are made leaves the train words as they were.

The archive's ``X`` is read as a stream, one clip at a time, and only the letter clips the words
use are kept, in the archive's float16; each word is converted to float32 on its own.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from aslx import files
from aslx.formats.clip import Clip, FormatError, Skipped
from aslx.formats.npz import SPLIT_BOUNDARIES, open_archive, split_of
from aslx.landmarks import layouts
from aslx.vocab import CharVocab

#: The letters words are made of; each must be a class of the archive.
LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: Splits in the order they are generated and yielded.
SPLITS = ("train", "val", "test")
#: Words made per split by default.
DEFAULT_WORDS: Mapping[str, int] = MappingProxyType({"train": 2000, "val": 200, "test": 400})
#: What sequences are made of: ``letters`` (a–z, joined into a word) or ``all`` (every class of
#: the archive, joined by spaces).
SIGNS = ("letters", "all")
#: Arrays the archive must hold (``X`` is streamed from its ``X.npy`` member).
REQUIRED_KEYS = ("X", "y", "classes", "seq_id")


@dataclasses.dataclass(frozen=True)
class Word:
    """One planned sequence: its split, number within the split, text, and the archive clip
    index used for each of its letters (in order)."""

    split: str
    number: int
    text: str
    clips: tuple[int, ...]

    @property
    def clip_id(self) -> str:
        return f"{self.split}/{self.number:05d}-{self.text}"


def vocabulary(src: str | os.PathLike, **kwargs) -> CharVocab:
    """The Kaggle character vocabulary (``kwargs`` go to :class:`~aslx.vocab.CharVocab`)."""
    return CharVocab.kaggle(**kwargs)


def _open_index(src: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Returns (y, seq_id, classes) of the archive without touching ``X``."""
    why = "spelled sequences need seq_id: it gives the fixed split"
    with open_archive(src, REQUIRED_KEYS, why) as archive:
        y = archive["y"].astype(np.int64)
        seq_id = archive["seq_id"].astype(np.int64)
        classes = [str(c) for c in archive["classes"]]
    if y.shape != seq_id.shape:
        raise FormatError(f"{src}: y has {len(y)} entries but seq_id has {len(seq_id)}")
    return y, seq_id, classes


def sign_pools(
    y: np.ndarray,
    seq_id: np.ndarray,
    classes: list[str],
    boundaries=SPLIT_BOUNDARIES,
    signs: tuple[str, ...] = tuple(LETTERS),
) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {sign: sorted clip indices}}`` for every sign of ``signs`` (classes of the
    archive; by default the letters a–z).

    Raises :class:`FormatError` when a sign is not a class.
    """
    absent = [c for c in signs if c not in classes]
    if absent:
        raise FormatError(f"signs {absent} are not classes of the archive")
    splits = np.array([split_of(int(s), boundaries) for s in seq_id])
    pools: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        pools[split] = {}
        for sign in signs:
            indices = np.flatnonzero((y == classes.index(sign)) & (splits == split))
            pools[split][sign] = indices
    return pools


def plan(
    pools: Mapping[str, Mapping[str, np.ndarray]],
    words: Mapping[str, int] = DEFAULT_WORDS,
    *,
    min_letters: int = 3,
    max_letters: int = 7,
    seed: int = 0,
    separator: str = "",
) -> list[Word]:
    """Draws the words of every split (in :data:`SPLITS` order) and the clip of each sign.

    A word is ``min_letters``–``max_letters`` signs drawn uniformly from the pools' signs,
    joined by ``separator``. Each split has its own random stream derived from ``seed``, so one
    split's words do not depend on how many words another split gets.
    """
    unknown = sorted(set(words) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown splits {unknown}; choose from {list(SPLITS)}")
    if any(n < 0 for n in words.values()):
        raise ValueError("word counts must not be negative")
    if not 1 <= min_letters <= max_letters:
        raise ValueError(
            f"need 1 <= min_letters <= max_letters, got min_letters={min_letters}, "
            f"max_letters={max_letters}"
        )
    streams = np.random.SeedSequence(seed).spawn(len(SPLITS))
    planned = []
    for split, stream in zip(SPLITS, streams):
        count = words.get(split, 0)
        if count == 0:
            continue
        signs = list(pools[split])
        empty = [c for c in signs if len(pools[split][c]) == 0]
        if empty:
            raise FormatError(f"no {split} clips of the signs {empty}")
        rng = np.random.default_rng(stream)
        for number in range(count):
            length = int(rng.integers(min_letters, max_letters + 1))
            chosen = [signs[i] for i in rng.integers(0, len(signs), size=length)]
            clips = tuple(int(pools[split][c][rng.integers(len(pools[split][c]))]) for c in chosen)
            planned.append(Word(split, number, separator.join(chosen), clips))
    return planned


def load_clips(src: str | os.PathLike, indices: set[int]) -> dict[int, np.ndarray]:
    """The clips ``X[i]`` for ``i`` in ``indices``, in the archive's dtype (float16 here).

    ``X.npy`` is decompressed as a stream, one clip at a time, up to the last index wanted, so
    the whole array is never in memory.
    """
    if not indices:
        return {}
    with files.path(src).open("rb") as handle:
        return _stream_clips(src, handle, indices)


def _stream_clips(src, handle, indices: set[int]) -> dict[int, np.ndarray]:
    try:
        archive = zipfile.ZipFile(handle)
    except zipfile.BadZipFile as e:
        raise FormatError(f"{src}: not a readable .npz archive ({e})") from None
    with archive, archive.open("X.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        if len(shape) != 4 or shape[2:] != (layouts.NUM_LANDMARKS, 3):
            raise FormatError(f"{src}: X has shape {shape}, expected [clips, frames, 543, 3]")
        if fortran_order or dtype.kind != "f":
            raise FormatError(f"{src}: X must be a C-ordered float array, got {dtype}")
        last = max(indices)
        if last >= shape[0]:
            raise FormatError(f"{src}: clip {last} asked for, X has {shape[0]} clips")
        clip_shape = shape[1:]
        clip_bytes = int(np.prod(clip_shape)) * dtype.itemsize
        out = {}
        for i in range(last + 1):
            data = f.read(clip_bytes)
            if len(data) != clip_bytes:
                raise FormatError(f"{src}: X.npy ends inside clip {i}")
            if i in indices:
                out[i] = np.frombuffer(data, dtype=dtype).reshape(clip_shape)
    return out


def read(
    src: str | os.PathLike,
    *,
    words: Mapping[str, int] = DEFAULT_WORDS,
    min_letters: int = 3,
    max_letters: int = 7,
    seed: int = 0,
    boundaries=SPLIT_BOUNDARIES,
    signs: str = "letters",
) -> Iterator[Clip | Skipped]:
    """Yields spelled words made from the letter clips of the archive ``src``.

    Args:
      src: a packed archive (:mod:`aslx.formats.npz`) with ``X``, ``y``, ``classes`` and
        ``seq_id``, whose classes include ``a``–``z``.
      words: how many words to make per split (``train``, ``val``, ``test``).
      min_letters, max_letters: the word length is uniform in ``[min_letters, max_letters]``.
      seed: the same seed gives the same words, clips and order.
      boundaries: the archive's split by ``seq_id`` (:data:`aslx.formats.npz.SPLIT_BOUNDARIES`).
      signs: ``letters`` (words of a–z) or ``all`` (sequences of every class, joined by
        spaces; ``min_letters``/``max_letters`` then count signs).

    Each :class:`Clip` has ``label`` = the word, ``split`` = its letters' split, ``clip_id``
    ``'<split>/<number>-<word>'``, ``source`` ``'<archive>[i,j,…]'`` naming the clips used, and
    ``[frames × letters, 543, 3]`` float32 landmarks, NaN where the archive has zeros.
    """
    if signs not in SIGNS:
        raise ValueError(f"signs must be one of {SIGNS}, not {signs!r}")
    y, seq_id, classes = _open_index(src)
    chosen = tuple(LETTERS) if signs == "letters" else tuple(classes)
    pools = sign_pools(y, seq_id, classes, boundaries, chosen)
    planned = plan(
        pools,
        words,
        min_letters=min_letters,
        max_letters=max_letters,
        seed=seed,
        separator="" if signs == "letters" else " ",
    )
    letters = load_clips(src, {i for word in planned for i in word.clips})
    for i, points in letters.items():
        # Mark missing points once per source clip, not once per use. A float16 archive stays
        # float16 (NaN is a float16 value and float16 -> float32 is exact), so each word is
        # only joined and cast.
        keep = np.float16 if points.dtype == np.float16 else np.float32
        letters[i] = layouts.zeros_to_nan(points).astype(keep)
    name = os.path.basename(src)
    for word in planned:
        yield Clip(
            clip_id=word.clip_id,
            landmarks=np.concatenate([letters[i] for i in word.clips], dtype=np.float32),
            label=word.text,
            source=f"{name}[{','.join(map(str, word.clips))}]",
            split=word.split,
        )
