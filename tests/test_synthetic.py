"""Synthetic fingerspelling data: hand geometry, letters, clips, determinism and the written set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx import synthetic
from aslx.formats import kaggle_fingerspelling
from aslx.formats.clip import Clip
from aslx.landmarks import layouts
from aslx.synthetic import __main__ as synthetic_cli
from aslx.vocab import KAGGLE_CHARACTERS

LETTERS = "abcdefghijklmnopqrstuvwxyz"
LEFT_HAND = layouts.group_slice("left_hand")
RIGHT_HAND = layouts.group_slice("right_hand")
POSE = layouts.group_slice("pose")
LIPS = np.array(layouts.LIPS)
NON_LIP_FACE = np.setdiff1d(np.arange(468), LIPS)
LEGS = np.arange(25, 33)  # knees, ankles, heels, foot indices


def _bone_lengths(points: np.ndarray) -> np.ndarray:
    parents, children = np.array(layouts.HAND_BONES).T
    return np.linalg.norm(points[..., children, :] - points[..., parents, :], axis=-1)


def _mean_distance(a: str, b: str) -> float:
    """Mean point distance (metres) between two letters' canonical hands."""
    return float(
        np.linalg.norm(synthetic.letter_shape(a) - synthetic.letter_shape(b), axis=-1).mean()
    )


def _clips(count: int, *, left_handed: bool | None = None, seed: int = 0):
    """``count`` (phrase, signer, clip) triples from a few signers."""
    rng = np.random.default_rng(seed)
    signers = [synthetic.make_signer(rng, left_handed=left_handed) for _ in range(4)]
    out = []
    for i in range(count):
        phrase = synthetic.random_phrase(rng)
        signer = signers[i % len(signers)]
        out.append((phrase, signer, synthetic.make_clip(rng, phrase, signer)))
    return out


def _needed_frames(phrase: str) -> int:
    """Frames CTC needs: one per character plus a blank between each repeated pair."""
    return len(phrase) + sum(a == b for a, b in zip(phrase, phrase[1:]))


def _detected(hand: np.ndarray) -> np.ndarray:
    """``[frames]`` bool: the hand's points are present in that frame."""
    return ~np.isnan(hand).any(axis=(1, 2))


# --- the hand ----------------------------------------------------------------------------------


def test_letter_shapes_are_hands_with_rigid_plausible_bones():
    lengths = np.stack([_bone_lengths(synthetic.letter_shape(c, oriented=False)) for c in LETTERS])
    # One skeleton: every letter has the same bones (forward kinematics, not free points), and
    # orientation only rotates it.
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-9)
    oriented = np.stack([_bone_lengths(synthetic.letter_shape(c)) for c in LETTERS])
    np.testing.assert_allclose(oriented, lengths, atol=1e-9)

    bones = dict(zip(layouts.HAND_BONES, lengths[0]))
    assert all(0.012 <= length <= 0.09 for length in bones.values()), bones
    flat = synthetic.letter_shape("b", oriented=False)
    assert 0.08 <= np.linalg.norm(flat[9] - flat[0]) <= 0.09  # wrist → middle MCP
    assert 0.17 <= np.linalg.norm(flat[12] - flat[0]) <= 0.21  # wrist → middle tip, flat hand
    for mcp in (5, 9, 13, 17):  # phalanges shorten toward the tip
        proximal, middle, distal = (bones[(mcp + k, mcp + k + 1)] for k in range(3))
        assert proximal > middle >= distal * 0.95
    assert bones[(9, 10)] > bones[(17, 18)]  # middle finger longer than the pinky
    thumb = [bones[(1, 2)], bones[(2, 3)], bones[(3, 4)]]
    assert thumb == sorted(thumb, reverse=True) and 0.02 <= min(thumb) <= max(thumb) <= 0.045


def test_letter_shape_is_a_right_hand_held_up_palm_to_the_camera():
    b = synthetic.letter_shape("b")  # body frame: x image right, y down, z away from camera
    assert b[12, 1] < b[9, 1] < b[0, 1]  # fingers point up the image
    assert b[5, 0] > b[17, 0]  # right hand, palm to the camera: thumb side on the image right
    curled = synthetic.letter_shape("s")
    assert curled[12, 2] < curled[9, 2]  # curled fingers come toward the camera
    l_hand = synthetic.letter_shape("l")
    assert l_hand[4, 0] - l_hand[0, 0] > 0.07  # l: the thumb sticks out sideways
    with pytest.raises(KeyError):
        synthetic.letter_shape("A")


def test_every_letter_has_its_own_shape():
    symbols = LETTERS + " "
    for i, a in enumerate(symbols):
        for b in symbols[i + 1 :]:
            largest = np.linalg.norm(synthetic.letter_shape(a) - synthetic.letter_shape(b), axis=-1)
            assert largest.max() > 0.015, f"{a!r} and {b!r} are not told apart"


@pytest.mark.parametrize(
    "close, far",
    [
        (("m", "n"), ("m", "l")),
        (("m", "n"), ("m", "b")),
        (("u", "r"), ("u", "y")),
        (("u", "v"), ("u", "c")),
        (("s", "t"), ("s", "w")),
        (("a", "s"), ("a", "b")),
        (("e", "s"), ("e", "l")),
        (("g", "h"), ("g", "p")),
        (("k", "v"), ("k", "o")),
    ],
)
def test_similar_letters_are_closer_than_different_ones(close, far):
    assert _mean_distance(*close) < _mean_distance(*far)


def test_confusable_letters_are_among_the_closest_pairs():
    symbols = LETTERS
    all_pairs = [_mean_distance(a, b) for i, a in enumerate(symbols) for b in symbols[i + 1 :]]
    bottom_quarter = np.quantile(all_pairs, 0.25)
    for pair in ("mn", "ur", "uv", "st", "as", "at", "ns", "em"):
        assert _mean_distance(*pair) < bottom_quarter, pair


# --- clips -------------------------------------------------------------------------------------


def test_make_clip_shape_dtype_and_frame_range():
    for phrase, _, clip in _clips(12):
        assert clip.dtype == np.float32
        assert clip.ndim == 3 and clip.shape[1:] == (543, 3)
        assert synthetic.MIN_FRAMES <= len(clip) <= synthetic.MAX_FRAMES
        assert len(clip) >= _needed_frames(phrase)


def test_same_seed_same_clip_other_seed_other_clip():
    def clip(signer_seed, clip_seed, phrase="hello world"):
        signer = synthetic.make_signer(np.random.default_rng(signer_seed))
        return synthetic.make_clip(np.random.default_rng(clip_seed), phrase, signer)

    reference = clip(1, 2)
    np.testing.assert_array_equal(clip(1, 2), reference)  # NaNs in the same places too
    for other in (clip(1, 3), clip(4, 2)):  # another clip seed, another signer
        same_shape = other.shape == reference.shape
        assert not (same_shape and np.array_equal(other, reference, equal_nan=True))


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=30), st.integers(0, 99))
def test_frames_always_fit_ctc(phrase, seed):
    rng = np.random.default_rng(seed)
    clip = synthetic.make_clip(rng, phrase, synthetic.make_signer(rng))
    assert synthetic.MIN_FRAMES <= len(clip) <= synthetic.MAX_FRAMES
    assert len(clip) >= _needed_frames(phrase)


@pytest.mark.parametrize("phrase", ["z" * 30, "j" * 30, "zj" * 15, "ll", "a"])
def test_extreme_phrases_fit(phrase):
    rng = np.random.default_rng(0)
    signer = dataclasses.replace(synthetic.make_signer(rng), speed=0.5)  # very slow signer
    clip = synthetic.make_clip(rng, phrase, signer)
    assert max(synthetic.MIN_FRAMES, _needed_frames(phrase)) <= len(clip) <= synthetic.MAX_FRAMES


@pytest.mark.parametrize("phrase", ["", "Hello", "3 main st", "a-b"])
def test_make_clip_rejects_other_characters(phrase):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthetic.make_clip(rng, phrase, synthetic.make_signer(rng))


def test_missing_points_are_whole_hands_and_never_body_or_lips():
    dropped = []
    for _, signer, clip in _clips(30):
        for hand in (clip[:, LEFT_HAND], clip[:, RIGHT_HAND]):
            missing = np.isnan(hand)
            assert np.all(missing.all(axis=(1, 2)) | ~missing.any(axis=(1, 2))), "partial hand"
        assert np.isfinite(clip[:, POSE]).all()
        assert np.isfinite(clip[:, LIPS]).all()
        assert np.isnan(clip[:, NON_LIP_FACE]).all()
        signing = clip[:, LEFT_HAND if signer.left_handed else RIGHT_HAND]
        dropped.append(1 - _detected(signing).mean())
    # The signing hand is missed in some frames: about 5–15 % of them.
    assert 0.04 <= np.mean(dropped) <= 0.16
    assert min(dropped) > 0


def test_dropped_frames_come_in_short_runs():
    for _, signer, clip in _clips(20):
        signing = clip[:, LEFT_HAND if signer.left_handed else RIGHT_HAND]
        missing = np.concatenate([[0], (~_detected(signing)).astype(int), [0]])
        starts, ends = np.flatnonzero(np.diff(missing) == 1), np.flatnonzero(np.diff(missing) == -1)
        # Runs are 1–4 frames; two runs may touch, so allow a little more.
        assert np.all(ends - starts <= 8)


def test_resting_hand_is_occasional_low_and_mostly_missing():
    shown = 0
    for _, signer, clip in _clips(40):
        resting = clip[:, RIGHT_HAND if signer.left_handed else LEFT_HAND]
        seen = _detected(resting)
        if seen.any():
            shown += 1
            assert seen.mean() <= 0.5
            assert np.all(resting[seen, 0, 1] > 0.7)  # its wrist is low in the image
    assert 3 <= shown <= 25


def test_pose_follows_the_signing_hand_and_legs_are_below_the_image():
    for _, signer, clip in _clips(12):
        pose = clip[:, POSE]
        assert np.all(pose[:, LEGS, 1] > 1.0)
        side, hand = ("LEFT", LEFT_HAND) if signer.left_handed else ("RIGHT", RIGHT_HAND)
        wrist = pose[:, layouts.POSE_POINTS.index(f"{side}_WRIST")]
        hand_wrist = clip[:, hand][:, 0]
        seen = ~np.isnan(hand_wrist[:, 0])
        offset = np.abs(wrist[seen, :2] - hand_wrist[seen, :2]).max()
        assert offset < 0.05
        nose, shoulders = pose[:, 0], pose[:, [11, 12]]
        assert np.all(nose[:, 1] < shoulders[:, :, 1].min(axis=1))  # head above shoulders
        lips_y = clip[:, LIPS, 1]
        assert np.all(np.abs(lips_y.mean(axis=1) - nose[:, 1]) < 0.1)  # lips on the face


def _chirality(hand: np.ndarray) -> float:
    """> 0 for a right hand, < 0 for a left hand: which side of the palm the curled fingers
    are on (image coordinates made isotropic again)."""
    hand = hand * np.array([1.0, 1.0 / synthetic.IMAGE_ASPECT, 1.0])
    normal = np.cross(hand[:, 5] - hand[:, 0], hand[:, 17] - hand[:, 0])
    curl = hand[:, 12] - hand[:, 9]
    signs = np.sign(np.einsum("fi,fi->f", normal, curl))
    return float(np.nanmean(signs))


@pytest.mark.parametrize("left_handed", [False, True])
def test_left_handed_signers_sign_with_a_mirrored_left_hand(left_handed):
    rng = np.random.default_rng(7)
    signer = synthetic.make_signer(rng, left_handed=left_handed)
    clip = synthetic.make_clip(rng, "sassa mass", signer)
    signing, resting = (LEFT_HAND, RIGHT_HAND) if left_handed else (RIGHT_HAND, LEFT_HAND)
    assert _detected(clip[:, signing]).mean() > 0.8
    assert _detected(clip[:, resting]).mean() < 0.5
    hand = clip[:, signing]
    if left_handed:  # the signer's left side is on the image right
        assert np.nanmean(hand[:, 0, 0]) > np.nanmean(clip[:, POSE][:, 0, 0])
        assert _chirality(hand) < -0.8
    else:
        assert np.nanmean(hand[:, 0, 0]) < np.nanmean(clip[:, POSE][:, 0, 0])
        assert _chirality(hand) > 0.8


def test_about_one_signer_in_five_is_left_handed():
    rng = np.random.default_rng(0)
    share = np.mean([synthetic.make_signer(rng).left_handed for _ in range(500)])
    assert 0.14 <= share <= 0.26


def test_signer_is_frozen():
    signer = synthetic.make_signer(np.random.default_rng(0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        signer.speed = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        signer.letter_style[0, 0] = 1.0


def test_phrases_are_short_words_of_letters():
    assert len(synthetic.WORDS) >= 200 and len(set(synthetic.WORDS)) == len(synthetic.WORDS)
    assert all(word.isalpha() and word.islower() for word in synthetic.WORDS)
    rng = np.random.default_rng(0)
    phrases = [synthetic.random_phrase(rng) for _ in range(300)]
    assert all(1 <= len(p) <= synthetic.MAX_PHRASE_LENGTH for p in phrases)
    assert all(set(p) <= synthetic.PHRASE_CHARACTERS for p in phrases)
    counts = {len(p.split(" ")) for p in phrases}
    assert counts == {1, 2, 3}
    assert all("  " not in p and p == p.strip() for p in phrases)


# --- the written data set ----------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def test_generate_is_byte_identical_for_a_seed(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        options = {"num_phrases": 12, "num_signers": 3, "phrases_per_file": 5}
        synthetic.generate(tmp_path / name, seed=seed, **options)
    first, again, other = (_files(tmp_path / name) for name in "abc")
    assert len(first) == 3 + 2  # 3 parquet files, train.csv, the vocabulary
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[k] != other[k] for k in first if k.endswith((".parquet", ".csv")))


def test_generate_writes_what_the_kaggle_reader_reads(tmp_path):
    synthetic.generate(tmp_path, num_phrases=23, num_signers=5, seed=1, phrases_per_file=10)
    index = pd.read_csv(tmp_path / "train.csv", keep_default_na=False)
    assert len(index) == 23 and index["sequence_id"].is_unique
    assert sorted(index["path"].unique()) == [
        f"train_landmarks/{i}.parquet" for i in sorted(index["file_id"].unique())
    ]
    assert set(index["participant_id"]) == set(range(5))
    with open(tmp_path / kaggle_fingerspelling.VOCABULARY_FILE) as f:
        assert json.load(f) == {c: i for i, c in enumerate(KAGGLE_CHARACTERS)}

    clips = list(kaggle_fingerspelling.read(tmp_path))
    assert all(isinstance(c, Clip) for c in clips) and len(clips) == 23
    by_id = {int(c.clip_id.split("/")[1]): c for c in clips}
    expected = synthetic.synthetic_phrases(num_phrases=23, num_signers=5, seed=1)
    for (sequence_id, participant, phrase, landmarks), row in zip(expected, index.itertuples()):
        assert (row.sequence_id, row.participant_id, row.phrase) == (
            sequence_id,
            participant,
            phrase,
        )
        clip = by_id[sequence_id]
        assert clip.label == phrase and clip.group == str(participant)
        assert clip.landmarks.shape == landmarks.shape
        np.testing.assert_array_equal(clip.landmarks, landmarks)


def test_left_handed_signer_in_every_five():
    rows = list(synthetic.synthetic_phrases(num_phrases=40, num_signers=8, seed=0))
    for _, participant, _, landmarks in rows:
        signing = LEFT_HAND if participant % 5 == 4 else RIGHT_HAND
        assert _detected(landmarks[:, signing]).mean() > 0.7


def test_cli_writes_and_summarises(tmp_path, capsys):
    assert synthetic_cli.main(["--out", str(tmp_path), "--phrases", "7", "--signers", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert "7 synthetic phrases" in line and "1 parquet file" in line
    index = pd.read_csv(tmp_path / "train.csv")
    frames = sum(c.num_frames for c in kaggle_fingerspelling.read(tmp_path))
    assert len(index) == 7 and f"{frames} frames" in line
    with pytest.raises(SystemExit):
        synthetic_cli.main(["--out", str(tmp_path), "--phrases", "0"])
