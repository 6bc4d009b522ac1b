"""Spelled sequences (``npz-spelled``): words joined from real letter clips of one split."""

from __future__ import annotations

import collections
import json
import re
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from aslx import formats
from aslx.formats import FormatError, spelled
from aslx.formats.npz import split_of
from aslx.landmarks import layouts
from aslx.records import writer

ARCHIVE = "mp_holistic_35signs/landmarks_f16.npz"
#: Small counts keep the tests fast.
WORDS = {"train": 12, "val": 4, "test": 6}
SOURCE = re.compile(r"^[\w.-]+\.npz\[(\d+(?:,\d+)*)\]$")


def source_indices(clip) -> list[int]:
    match = SOURCE.match(clip.source)
    assert match, clip.source
    return [int(i) for i in match.group(1).split(",")]


@pytest.fixture(scope="module")
def archive(shared_data) -> dict[str, np.ndarray]:
    """The packed archive, read independently of the reader under test."""
    with np.load(shared_data / ARCHIVE) as data:
        return {k: data[k] for k in ("X", "y", "seq_id", "classes")}


@pytest.fixture(scope="module")
def words(shared_data) -> list:
    return list(spelled.read(shared_data / ARCHIVE, words=WORDS, seed=0))


def test_labels_lengths_and_frames(words):
    """Letters only, lengths in range, 30 frames per letter, float32, counts per split."""
    assert collections.Counter(c.split for c in words) == WORDS
    frames = 30
    for clip in words:
        assert re.fullmatch(r"[a-z]{3,7}", clip.label)
        assert clip.landmarks.dtype == np.float32
        assert clip.landmarks.shape == (frames * len(clip.label), layouts.NUM_LANDMARKS, 3)
        number, word = clip.clip_id.split("/")[1].split("-")
        assert clip.clip_id.startswith(f"{clip.split}/") and len(number) == 5 and word == clip.label
    assert len({c.clip_id for c in words}) == len(words)
    vocab = spelled.vocabulary("unused")
    assert vocab == type(vocab).kaggle()


def test_segments_are_source_clips(words, archive):
    """Each 30-frame segment is its source clip (zeros -> NaN), of the letter's class and of the
    word's split."""
    classes = [str(c) for c in archive["classes"]]
    for clip in words:
        indices = source_indices(clip)
        assert len(indices) == len(clip.label)
        for k, (letter, i) in enumerate(zip(clip.label, indices)):
            assert classes[archive["y"][i]] == letter
            assert split_of(int(archive["seq_id"][i])) == clip.split
            segment = clip.landmarks[30 * k : 30 * (k + 1)]
            np.testing.assert_array_equal(segment, layouts.zeros_to_nan(archive["X"][i]))


def test_splits_share_no_source_clip(words):
    used = collections.defaultdict(set)
    for clip in words:
        used[clip.split].update(source_indices(clip))
    assert set(used) == {"train", "val", "test"}
    assert not used["train"] & used["val"]
    assert not used["train"] & used["test"]
    assert not used["val"] & used["test"]


def test_seed_determines_the_words(shared_data, words):
    again = list(spelled.read(shared_data / ARCHIVE, words=WORDS, seed=0))
    assert [(c.clip_id, c.source) for c in again] == [(c.clip_id, c.source) for c in words]
    for a, b in zip(again, words):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
    other = list(spelled.read(shared_data / ARCHIVE, words=WORDS, seed=1))
    assert [c.source for c in other] != [c.source for c in words]
    assert [c.label for c in other] != [c.label for c in words]


def test_letter_range(shared_data):
    clips = list(
        spelled.read(shared_data / ARCHIVE, words={"test": 30}, min_letters=2, max_letters=2)
    )
    assert len(clips) == 30 and {len(c.label) for c in clips} == {2}
    assert {c.split for c in clips} == {"test"}


def test_ingest_counts(shared_data, tmp_path, monkeypatch):
    """``ingest('npz-spelled', …)`` writes each split's words (the reader with small counts)."""
    reader = types.SimpleNamespace(
        read=partial(spelled.read, words=WORDS, seed=0), vocabulary=spelled.vocabulary
    )
    monkeypatch.setitem(formats.READERS, "npz-spelled", reader)
    out = tmp_path / "spelled"
    meta = writer.ingest("npz-spelled", shared_data / ARCHIVE, out, num_shards=2, progress=False)
    written = json.loads((out / "metadata.json").read_text())
    assert written["splits"] == WORDS == meta["splits"]
    assert written["skipped"] == [] and written["vocabulary"]["kind"] == "characters"
    assert written["vocabulary"]["characters"].endswith("abcdefghijklmnopqrstuvwxyz~")
    assert 90 <= written["frames"]["min"] and written["frames"]["max"] <= 210


def test_defaults():
    assert dict(spelled.DEFAULT_WORDS) == {"train": 2000, "val": 200, "test": 400}
    assert formats.READERS["npz-spelled"] is spelled


# --- a tiny archive, no shared data needed ---------------------------------------------------


def write_archive(path: Path, letters: str = spelled.LETTERS, seq_ids=(0, 1, 42, 48, 49)) -> None:
    """Letters ``a``–``z`` plus a word class, 2 frames per clip, some all-zero points."""
    rng = np.random.default_rng(0)
    classes = np.array([*letters, "hello"])
    y = np.repeat(np.arange(len(classes)), len(seq_ids)).astype(np.int16)
    seq_id = np.tile(np.array(seq_ids), len(classes)).astype(np.int16)
    X = rng.uniform(0.1, 0.9, size=(len(y), 2, layouts.NUM_LANDMARKS, 3)).astype(np.float16)
    X[:, :, layouts.group_slice("left_hand")] = 0
    np.savez(path, X=X, y=y, classes=classes, seq_id=seq_id)


def test_tiny_archive(tmp_path):
    path = tmp_path / "tiny.npz"
    write_archive(path)
    clips = list(spelled.read(path, words={"train": 5, "val": 3, "test": 3}, seed=3))
    assert collections.Counter(c.split for c in clips) == {"train": 5, "val": 3, "test": 3}
    for clip in clips:
        assert clip.landmarks.shape[0] == 2 * len(clip.label)
        assert np.isnan(clip.landmarks[:, layouts.group_slice("left_hand")]).all()
        assert not np.isnan(clip.landmarks[:, layouts.group_slice("right_hand")]).any()


def test_bad_archives_and_arguments(tmp_path):
    no_z = tmp_path / "no_z.npz"
    write_archive(no_z, letters=spelled.LETTERS[:-1])
    with pytest.raises(FormatError, match=r"\['z'\]"):
        list(spelled.read(no_z))
    no_val = tmp_path / "no_val.npz"
    write_archive(no_val, seq_ids=(0, 48))
    with pytest.raises(FormatError, match="no val clips"):
        list(spelled.read(no_val))
    assert len(list(spelled.read(no_val, words={"train": 2, "test": 2}))) == 4
    no_seq = tmp_path / "no_seq.npz"
    np.savez(no_seq, X=np.zeros((1, 2, 543, 3)), y=[0], classes=["a"])
    with pytest.raises(FormatError, match="seq_id"):
        list(spelled.read(no_seq))
    with pytest.raises(FormatError, match="not found"):
        list(spelled.read(tmp_path / "nowhere.npz"))
    good = tmp_path / "good.npz"
    write_archive(good)
    with pytest.raises(ValueError, match="min_letters"):
        list(spelled.read(good, min_letters=4, max_letters=3))
    with pytest.raises(ValueError, match="unknown splits"):
        list(spelled.read(good, words={"dev": 3}))


def test_sequences_of_all_signs(tmp_path):
    """``signs='all'`` draws from every class (letters and words), joined by spaces; each
    segment is a clip of its sign from the word's own split; ``letters`` never draws 'hello'."""
    path = tmp_path / "tiny.npz"
    write_archive(path)
    with np.load(path) as data:
        classes, y, seq_id = list(data["classes"]), data["y"], data["seq_id"]
    counts = {"train": 60, "test": 5}
    clips = list(spelled.read(path, words=counts, seed=1, signs="all", max_letters=4))
    assert collections.Counter(c.split for c in clips) == counts
    seen = set()
    for clip in clips:
        signs = clip.label.split(" ")
        assert 3 <= len(signs) <= 4 and clip.landmarks.shape[0] == 2 * len(signs)
        for sign, index in zip(signs, source_indices(clip)):
            assert classes[y[index]] == sign and split_of(int(seq_id[index])) == clip.split
        seen |= set(signs)
    assert "hello" in seen
    letters = list(spelled.read(path, words=counts, seed=1))
    assert all(re.fullmatch(r"[a-z]+", c.label) for c in letters)
    with pytest.raises(ValueError, match="signs"):
        list(spelled.read(path, signs="words"))
