"""Readers on the real files in ../shared/data and on fixtures built to each format's schema."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.formats import (
    Clip,
    FormatError,
    Skipped,
    kaggle_fingerspelling,
    kaggle_signs,
    mp_data,
    pose_file,
)
from aslx.formats import npz as npz_format
from aslx.landmarks import layouts


def split_items(items):
    clips = [i for i in items if isinstance(i, Clip)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    return clips, skipped


# --- Kaggle asl-signs (SILFA, all 558 files) -------------------------------------------------


def test_silfa_every_file_pivots_by_type_and_index(shared_data):
    """All 558 SILFA clips: one frame, 543 points, labels from train.csv, and every point in
    its canonical slot although the files list pose before face."""
    src = shared_data / "silfa_alphabet_parquet"
    index = pd.read_csv(src / "train.csv")
    clips, skipped = split_items(list(kaggle_signs.read(src)))
    assert not skipped and len(clips) == 558
    assert [c.label for c in clips] == list(index["sign"])
    assert len({c.label for c in clips}) == 24
    for clip, path in zip(clips, index["path"]):
        assert clip.landmarks.shape == (1, 543, 3)
        long = pd.read_parquet(src / path)
        assert list(long["type"].iloc[:1]) == ["pose"]  # not in canonical order on disk
        slots = long["type"].map(layouts.OFFSETS).to_numpy() + long["landmark_index"].to_numpy()
        np.testing.assert_array_equal(
            clip.landmarks[0, slots], long[["x", "y", "z"]].to_numpy(np.float32)
        )


def test_silfa_vocabulary_is_the_json_map(shared_data):
    """The class map lists 26 letters (J and Z have no samples); ids follow the JSON."""
    vocab = kaggle_signs.vocabulary(shared_data / "silfa_alphabet_parquet")
    assert vocab.size == 26 and vocab.encode("A") == [0] and vocab.encode("Z") == [25]


def test_kaggle_signs_rejects_bad_rows(tmp_path):
    """Unknown types, out-of-range indices and duplicates are errors, not silent misplacement;
    absent rows become NaN."""
    good = pd.DataFrame(
        {
            "frame": [5, 5, 9],
            "type": ["pose", "right_hand", "pose"],
            "landmark_index": [0, 20, 0],
            "x": [0.1, 0.2, 0.3],
            "y": [0.4, 0.5, 0.6],
            "z": [0.0, 0.0, 0.0],
        }
    )
    import pyarrow as pa

    points = kaggle_signs.long_to_canonical(pa.Table.from_pandas(good))
    assert points.shape == (2, 543, 3)
    np.testing.assert_allclose(points[0, 489], [0.1, 0.4, 0.0])
    np.testing.assert_allclose(points[0, 542], [0.2, 0.5, 0.0])
    np.testing.assert_allclose(points[1, 489], [0.3, 0.6, 0.0])
    assert np.isnan(points[1, 542]).all() and np.isnan(points[:, :468]).all()
    for bad, message in [
        (good.assign(type=["pose", "tail", "pose"]), "unknown landmark types"),
        (good.assign(landmark_index=[0, 21, 0]), "out of range"),
        (
            good.assign(
                frame=[5, 5, 5], landmark_index=[0, 20, 0], type=["pose", "right_hand", "pose"]
            ),
            "appears twice",
        ),
        (good.drop(columns=["z"]), "missing columns"),
    ]:
        with pytest.raises(FormatError, match=message):
            kaggle_signs.long_to_canonical(pa.Table.from_pandas(bad))


# --- MediaPipe per-frame .npy folders --------------------------------------------------------


def test_mp_data_reads_six_clips_matching_the_packed_archive(shared_data):
    """raw_sample/MP_Data: 6 clips of 30 frames, frames ordered numerically, equal to the
    packed archive's clips within its float16 error."""
    clips, skipped = split_items(
        list(mp_data.read(shared_data / "mp_holistic_35signs/raw_sample/MP_Data"))
    )
    assert not skipped
    assert [(c.clip_id, c.num_frames) for c in clips] == [
        (f"{label}/{n}", 30) for label in ("a", "hello", "thank you") for n in (0, 1)
    ]
    archive = dict(np.load(shared_data / "mp_holistic_35signs/landmarks_f16.npz"))
    classes = list(archive["classes"])
    for clip in clips:
        label, number = clip.clip_id.rsplit("/", 1)
        row = np.flatnonzero(
            (archive["y"] == classes.index(label)) & (archive["seq_id"] == int(number))
        )
        packed = layouts.zeros_to_nan(archive["X"][row[0]])
        np.testing.assert_array_equal(np.isnan(packed), np.isnan(clip.landmarks))
        np.testing.assert_allclose(np.nan_to_num(packed), np.nan_to_num(clip.landmarks), atol=1e-3)


def test_mp_data_bad_frames_and_empty_clips(tmp_path):
    """A frame of the wrong size skips its clip with the frame named; an empty clip folder
    reads as a clip of 0 frames (ingest skips it)."""
    root = tmp_path / "MP_Data"
    (root / "hi/0").mkdir(parents=True)
    (root / "hi/1").mkdir(parents=True)
    (root / "hi/2").mkdir(parents=True)
    for frame in range(3):
        np.save(root / f"hi/0/{frame}.npy", np.full(1662, 0.5, np.float32))
    np.save(root / "hi/1/0.npy", np.zeros(1000))
    clips, skipped = split_items(list(mp_data.read(root)))
    assert [c.clip_id for c in clips] == ["hi/0", "hi/2"] and clips[1].num_frames == 0
    assert skipped[0].file == "hi/1" and "0.npy" in skipped[0].reason
    with pytest.raises(FormatError, match="not a folder"):
        list(mp_data.read(tmp_path / "nowhere"))


# --- packed .npz -----------------------------------------------------------------------------


def test_npz_fixed_split_and_missing_points(shared_data):
    """2,100 clips of 30 frames; the README's split by clip number (1,470 / 210 / 420);
    all-zero points are missing."""
    clips, skipped = split_items(
        list(npz_format.read(shared_data / "mp_holistic_35signs/landmarks_f16.npz"))
    )
    assert not skipped and len(clips) == 2100
    assert collections.Counter(c.split for c in clips) == {"train": 1470, "val": 210, "test": 420}
    assert len({c.label for c in clips}) == 35
    assert all(c.landmarks.shape == (30, 543, 3) for c in clips)
    assert {c.split for c in clips if int(c.clip_id.rsplit("/", 1)[1]) in range(42, 48)} == {"val"}
    assert not any(np.any(np.all(c.landmarks == 0, axis=-1)) for c in clips[:50])


def test_npz_missing_keys(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, y=np.zeros(1, int), classes=np.array(["a"]))
    with pytest.raises(FormatError, match="missing arrays"):
        list(npz_format.read(path))
    np.savez(path, X=np.zeros((1, 2, 543, 3)), y=np.zeros(1, int))
    with pytest.raises(FormatError, match="has 'y' but no 'classes'"):
        list(npz_format.read(path))


def xsigner_slice(shared_data, name: str, tmp_path, rows: slice) -> tuple:
    """``(path, arrays)``: a few clips of an ``xsigner`` file, every array of it kept, written
    as a small archive of the same layout."""
    with np.load(shared_data / "xsigner" / name) as archive:
        arrays = {k: archive[k] if k == "classes" else archive[k][rows] for k in archive.files}
    path = tmp_path / name
    np.savez(path, **arrays)
    return path, arrays


def test_npz_reads_other_signers_as_they_are(shared_data, tmp_path):
    """xsigner's labelled clips: each clip's repository is its signer, it keeps its true
    ``n_frames`` (the zero padding after them dropped), zeros read as missing, and with no
    ``seq_id`` the archive leaves the split to ingest."""
    with np.load(shared_data / "xsigner/labelled_train_f16.npz") as archive:
        short = np.flatnonzero(archive["n_frames"] < 30)[:3]
        rows = np.concatenate([np.arange(3), short])
    path, arrays = xsigner_slice(shared_data, "labelled_train_f16.npz", tmp_path, rows)
    clips, skipped = split_items(list(npz_format.read(path)))
    assert not skipped and len(clips) == len(rows)
    assert [c.group for c in clips] == [str(s) for s in arrays["source"]]
    assert [c.num_frames for c in clips] == [int(n) for n in arrays["n_frames"]]
    assert min(c.num_frames for c in clips) < 30  # the short clips lost their padding
    assert [c.label for c in clips] == [str(arrays["classes"][i]) for i in arrays["y"]]
    assert all(c.split is None for c in clips)
    for clip, points in zip(clips, arrays["X"]):
        real = points[: clip.num_frames].astype(np.float32)
        zero = np.all(real == 0, axis=-1)
        np.testing.assert_array_equal(np.isnan(clip.landmarks).all(-1), zero)
        np.testing.assert_array_equal(np.nan_to_num(clip.landmarks), real)
    assert npz_format.vocabulary(path).classes == tuple(str(c) for c in arrays["classes"])


def test_npz_unlabelled_archive(shared_data, tmp_path):
    """xsigner's unlabelled clips read without labels (for pretraining), with their signers;
    a clip subsampled from more frames keeps them all; a bad ``n_frames`` skips its clip with
    the reason."""
    path, arrays = xsigner_slice(shared_data, "unlabelled_f16.npz", tmp_path, slice(0, 4))
    assert npz_format.vocabulary(path) is None
    clips, skipped = split_items(list(npz_format.read(path)))
    assert [c.label for c in clips] == [None] * 4 and not skipped
    assert [c.group for c in clips] == [str(s) for s in arrays["source"]]
    # 41 frames were subsampled to the 30 X holds: all 30 are real.
    np.savez(path, **(arrays | {"n_frames": np.array([30, 0, 41, 5])}))
    clips, skipped = split_items(list(npz_format.read(path)))
    assert [c.num_frames for c in clips] == [30, 30, 5]
    assert [s.reason for s in skipped] == ["n_frames 0: a clip needs at least one frame"]


# --- pose-format .pose files -----------------------------------------------------------------


def test_every_pose_file(shared_data):
    """All 16 .pose files: the 14 MediaPipe Holistic ones read (full, reduced, refined face,
    hand-only), the 2 OpenPose ones are skipped with the reason; lexicon labels attach."""
    pytest.importorskip("pose_format")
    src = shared_data / "pose_files"
    clips, skipped = split_items(list(pose_file.read(src)))
    assert len(clips) == 14 and len(skipped) == 2
    assert all("not a MediaPipe Holistic" in s.reason for s in skipped)
    frames = {c.clip_id.rsplit("/", 1)[-1]: c.num_frames for c in clips}
    assert frames["mediapipe"] == 170 and frames["mediapipe_long"] == 278 and frames["kinder"] == 45
    labels = {c.clip_id.rsplit("/", 1)[-1]: c.label for c in clips if c.label}
    assert labels == {"kleine": "Kleine", "kinder": "Kinder", "essen": "Essen", "pizza": "Pizza"}
    assert pose_file.vocabulary(src).classes == ("Essen", "Kinder", "Kleine", "Pizza")


def test_pose_points_land_in_their_canonical_slots(shared_data):
    """A reduced Holistic file: named face points go to their mesh index, pose points by name,
    pixels become image fractions, and points the file lacks are missing."""
    pose_format = pytest.importorskip("pose_format")
    path = (
        shared_data
        / "pose_files/spoken_to_signed_dummy_lexicon/assets/dummy_lexicon/sgg/kinder.pose"
    )
    pose = pose_format.Pose.read(path.read_bytes())
    points = pose_file.to_canonical(pose)
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    raw = np.ma.filled(pose.body.data[:, 0].astype(np.float32), np.nan)
    face = [c for c in pose.header.components if c.name == "FACE_LANDMARKS"][0]
    face_start = 8  # after the 8 reduced pose points
    seven = face_start + list(face.points).index("7")
    np.testing.assert_allclose(points[:, 7, 0], raw[:, seven, 0] / width, rtol=1e-6)
    np.testing.assert_allclose(points[:, 7, 1], raw[:, seven, 1] / height, rtol=1e-6)
    np.testing.assert_allclose(points[:, 7, 2], raw[:, seven, 2], rtol=1e-6)
    right_shoulder = layouts.canonical_index("pose", layouts.POSE_POINTS.index("RIGHT_SHOULDER"))
    np.testing.assert_allclose(points[:, right_shoulder, 0], raw[:, 1, 0] / width, rtol=1e-6)
    assert np.isnan(points[:, layouts.canonical_index("pose", 0)]).all()  # NOSE not in the file
    assert np.isnan(points[:, layouts.group_slice("left_hand")]).all()  # never detected there
    assert 0 < np.nanmax(points[..., :2]) < 1.5


def test_refined_face_drops_iris_points(shared_data):
    """A 586-point file (478-point face) reads into 543 slots; world landmarks are dropped."""
    pytest.importorskip("pose_format")
    src = shared_data / "pose_files/src/python/tests/data/hand_estimation"
    clips, _ = split_items(list(pose_file.read(src)))
    assert {c.num_frames for c in clips} == {5, 18, 47, 91, 121}
    assert all(not np.isnan(c.landmarks[:, :468]).all() for c in clips)


# --- Kaggle asl-fingerspelling (fixture: no real file exists here) -------------------------


def test_fingerspelling_fixture_reads_back_exactly(fingerspelling_source):
    """Wide rows become canonical points (NaN hands kept), phrases and signers attach, and
    each unreadable input is reported with its file."""
    src, good, _ = fingerspelling_source
    clips, skipped = split_items(list(kaggle_fingerspelling.read(src)))
    by_sequence = {int(c.clip_id.split("/")[1]): c for c in clips}
    for sequence_id, (phrase, points) in good.items():
        clip = by_sequence[sequence_id]
        assert clip.label == phrase and clip.split == "train"
        np.testing.assert_array_equal(clip.landmarks, points)
    assert by_sequence[101].group == "7"
    reasons = {s.file: s.reason for s in skipped}
    assert "file not found" in reasons["train_landmarks/404.parquet"]
    assert "z_pose_3" in reasons["train_landmarks/3.parquet"]
    assert "absent from the file" in reasons["train_landmarks/1.parquet#108"]


def test_fingerspelling_frames_sorted_by_frame_column(tmp_path):
    """Rows stored out of frame order come back in frame order."""
    from tests.conftest import random_clip, write_wide_parquet

    points = random_clip(np.random.default_rng(1), 6)
    write_wide_parquet(tmp_path / "train_landmarks/1.parquet", {5: points})
    table = pd.read_parquet(tmp_path / "train_landmarks/1.parquet").iloc[::-1]
    table.to_parquet(tmp_path / "train_landmarks/1.parquet")
    pd.DataFrame(
        [("train_landmarks/1.parquet", 1, 5, 1, "abc")],
        columns=list(kaggle_fingerspelling.INDEX_COLUMNS),
    ).to_csv(tmp_path / "train.csv", index=False)
    (clip,) = list(kaggle_fingerspelling.read(tmp_path))
    np.testing.assert_array_equal(clip.landmarks, points)


def test_fingerspelling_writer_round_trip(tmp_path):
    """aslx's writer produces files its reader (and the schema) accept."""
    from aslx.vocab import KAGGLE_CHARACTERS
    from tests.conftest import random_clip

    rng = np.random.default_rng(2)
    phrases = [(10 + i, i % 2, "ab c", random_clip(rng, 8 + i)) for i in range(5)]
    kaggle_fingerspelling.write(
        tmp_path,
        phrases,
        vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)},
        phrases_per_file=2,
    )
    assert len(list((tmp_path / "train_landmarks").glob("*.parquet"))) == 3
    clips = list(kaggle_fingerspelling.read(tmp_path))
    for (sequence_id, participant, _, points), clip in zip(phrases, clips):
        assert clip.clip_id.endswith(f"/{sequence_id}") and clip.group == str(participant)
        np.testing.assert_array_equal(clip.landmarks, points)
    assert kaggle_fingerspelling.vocabulary(tmp_path).size == 60


def test_fingerspelling_missing_index(tmp_path):
    with pytest.raises(FormatError, match="train.csv"):
        list(kaggle_fingerspelling.read(tmp_path))


@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(1, 4),
    keep=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_long_format_pivot_property(frames, keep, seed):
    """Any subset of long-format rows, in any order, lands in its (frame, type, index) slot;
    every slot without a row is NaN."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    frame_ids = np.sort(rng.choice(1000, size=frames, replace=False))
    expected = rng.uniform(-1, 2, size=(frames, 543, 3)).astype(np.float32)
    rows = []
    for f, frame in enumerate(frame_ids):
        for group, size in layouts.GROUPS:
            for i in range(size):
                rows.append((frame, group, i, *expected[f, layouts.canonical_index(group, i)]))
    table = pd.DataFrame(rows, columns=["frame", "type", "landmark_index", "x", "y", "z"])
    kept = rng.random(len(table)) < keep
    kept[0] = True
    for frame in frame_ids:  # every frame keeps at least one row
        kept[np.flatnonzero(table["frame"].to_numpy() == frame)[0]] = True
    table = table[kept].sample(frac=1.0, random_state=seed % 2**32)
    points = kaggle_signs.long_to_canonical(pa.Table.from_pandas(table, preserve_index=False))
    expected[~kept.reshape(frames, 543)] = np.nan
    np.testing.assert_array_equal(points, expected)
