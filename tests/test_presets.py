"""Selection presets: sizes, indices, the dominant-hand rule and mirroring of left-handed clips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.landmarks import layouts, presets

LEFT_HAND = np.arange(468, 489)
RIGHT_HAND = np.arange(522, 543)
POSE = 489


def _clip(
    seed: int, frames: int, left_missing=(), right_missing=(), signing: str | None = None
) -> np.ndarray:
    """A random ``[frames, 543, 3]`` clip with the given frames of each hand all NaN. The
    ``signing`` hand (default: the one missing in fewer frames, ties the right) jumps about;
    the other holds one shape, barely moving."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.05, 0.95, size=(frames, 543, 3)).astype(np.float32)
    if signing is None:
        signing = "left" if len(left_missing) < len(right_missing) else "right"
    quiet = RIGHT_HAND if signing == "left" else LEFT_HAND
    points[:, quiet] = points[:1, quiet] + rng.normal(0, 1e-4, (frames, 21, 3))
    points[list(left_missing), 468:489] = np.nan
    points[list(right_missing), 522:543] = np.nan
    return points


def _mirror_clip(points: np.ndarray) -> np.ndarray:
    """The clip MediaPipe would give on the mirrored video, built point by point.

    x -> 1 - x everywhere, the left and right hands trade places, and every pose and lip point
    trades places with its mirror partner (points without a partner stay put).
    """
    mirrored = points.copy()
    mirrored[..., 0] = 1.0 - points[..., 0]
    swapped = mirrored.copy()
    for j in range(21):
        swapped[:, 468 + j] = mirrored[:, 522 + j]
        swapped[:, 522 + j] = mirrored[:, 468 + j]
    for a, b in layouts.POSE_MIRROR_PAIRS:
        swapped[:, POSE + a] = mirrored[:, POSE + b]
        swapped[:, POSE + b] = mirrored[:, POSE + a]
    for a, b in layouts.LIPS_MIRROR_PAIRS:
        swapped[:, a] = mirrored[:, b]
        swapped[:, b] = mirrored[:, a]
    return swapped


def _select_right_dominant_kaggle75(points: np.ndarray) -> np.ndarray:
    """kaggle75 points of a right-dominant clip, picked one by one: right hand, pose 11-24, lips."""
    picks = [522 + j for j in range(21)]
    picks += [POSE + j for j in range(11, 25)]
    picks += list(layouts.LIPS)
    return np.stack([points[:, i] for i in picks], axis=1)


# --- preset contents ---------------------------------------------------------------------


def test_kaggle75_has_hand_pose_lips_groups_of_21_14_40():
    """kaggle75 is right hand 21 + pose 11-24 + the 40 lip points, 75 in all."""
    preset = presets.get("kaggle75")
    assert preset is presets.KAGGLE75
    assert preset.num_landmarks == 75
    assert preset.group_names == ("hand", "pose", "lips")
    assert preset.group_sizes == (21, 14, 40)
    assert preset.picks_dominant_hand
    expected = list(range(522, 543)) + list(range(489 + 11, 489 + 25)) + list(layouts.LIPS)
    np.testing.assert_array_equal(preset.indices, expected)


def test_hands_pose_has_both_hands_and_nine_upper_body_points():
    """hands_pose is left hand 21 + right hand 21 + nose, shoulders, elbows, wrists, hips."""
    preset = presets.get("hands_pose")
    assert preset.num_landmarks == 51
    assert preset.group_names == ("left_hand", "right_hand", "pose")
    assert preset.group_sizes == (21, 21, 9)
    assert not preset.picks_dominant_hand
    pose_names = preset.landmark_names()[42:]
    assert pose_names == [
        "pose_NOSE", "pose_LEFT_SHOULDER", "pose_RIGHT_SHOULDER", "pose_LEFT_ELBOW",
        "pose_RIGHT_ELBOW", "pose_LEFT_WRIST", "pose_RIGHT_WRIST", "pose_LEFT_HIP",
        "pose_RIGHT_HIP",
    ]  # fmt: skip
    np.testing.assert_array_equal(preset.indices[:42], np.r_[LEFT_HAND, RIGHT_HAND])


def test_full543_is_the_identity_selection():
    """full543 keeps all 543 points in canonical order, grouped like the canonical layout."""
    preset = presets.get("full543")
    assert preset.num_landmarks == 543
    np.testing.assert_array_equal(preset.indices, np.arange(543))
    assert preset.group_names == ("face", "left_hand", "pose", "right_hand")
    assert preset.group_sizes == (468, 21, 33, 21)
    points = _clip(0, 4, left_missing=[1])
    np.testing.assert_array_equal(presets.select(points, preset), points)


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_presets_have_no_duplicate_indices(name):
    """No canonical point is selected twice, in the plain or the mirrored indices."""
    preset = presets.get(name)
    assert len(set(preset.indices.tolist())) == preset.num_landmarks
    assert preset.indices.dtype == np.int32
    assert np.all((preset.indices >= 0) & (preset.indices < 543))
    if preset.picks_dominant_hand:
        assert len(set(preset.mirrored_indices.tolist())) == preset.num_landmarks


def test_kaggle75_mirrored_indices_swap_hand_and_permute_pose_and_lips():
    """Mirrored kaggle75 takes the left hand and a permutation of the same pose and lip points."""
    preset = presets.KAGGLE75
    plain, mirrored = preset.indices, preset.mirrored_indices
    assert mirrored.shape == plain.shape == (75,)
    np.testing.assert_array_equal(mirrored[:21], LEFT_HAND)
    assert sorted(mirrored[21:35]) == sorted(plain[21:35])
    assert sorted(mirrored[35:]) == sorted(plain[35:])
    assert not np.array_equal(mirrored[21:35], plain[21:35])


def test_kaggle75_mirrored_slots_hold_the_mirror_partner():
    """The LEFT_SHOULDER slot reads the right shoulder; lip 61 reads 291; midline lips stay."""
    names = layouts.landmark_names()
    plain, mirrored = presets.KAGGLE75.indices, presets.KAGGLE75.mirrored_indices
    pairs = {names[p]: names[m] for p, m in zip(plain, mirrored, strict=True)}
    assert pairs["pose_LEFT_SHOULDER"] == "pose_RIGHT_SHOULDER"
    assert pairs["pose_RIGHT_HIP"] == "pose_LEFT_HIP"
    assert pairs["face_61"] == "face_291"
    assert pairs["face_0"] == "face_0"
    assert pairs["right_hand_THUMB_TIP"] == "left_hand_THUMB_TIP"


def test_presets_without_a_dominant_hand_refuse_mirrored_indices():
    """Asking a both-hands preset for mirrored indices raises ValueError."""
    with pytest.raises(ValueError):
        _ = presets.HANDS_POSE.mirrored_indices


def test_preset_rejects_mirrored_groups_of_other_sizes():
    """A preset whose mirrored groups differ in size from its groups is refused."""
    with pytest.raises(ValueError, match="mirrored"):
        presets.Preset("bad", groups=(("hand", (1, 2, 3)),), mirrored_groups=(("hand", (4, 5)),))


def test_get_unknown_preset_raises_key_error_naming_the_choices():
    """get('nope') raises KeyError listing every known preset."""
    with pytest.raises(KeyError) as excinfo:
        presets.get("nope")
    message = str(excinfo.value)
    assert "nope" in message
    for name in ("full543", "hands_pose", "kaggle75"):
        assert name in message


def test_preset_to_json_lists_groups_and_landmark_names():
    """to_json records the preset name, size, group sizes and the selected point names."""
    data = presets.KAGGLE75.to_json()
    names = layouts.landmark_names()
    assert data["preset"] == "kaggle75"
    assert data["num_landmarks"] == 75
    assert data["groups"] == [
        {"name": "hand", "size": 21},
        {"name": "pose", "size": 14},
        {"name": "lips", "size": 40},
    ]
    assert data["landmarks"] == [names[i] for i in presets.KAGGLE75.indices]
    assert data["landmarks"][0] == "right_hand_WRIST"


# --- dominant hand -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    frames=st.integers(3, 12),
    side=st.sampled_from(["left", "right"]),
    seen=st.floats(0.2, 1.0),
)
def test_dominant_hand_is_the_one_that_moves_not_the_one_seen_more(seed, frames, side, seen):
    """The signing hand wins whenever it is seen in two frames or more, even when the still
    hand is detected in every frame and the signing one in few."""
    rng = np.random.default_rng(seed)
    kept = max(2, round(seen * frames))
    missing = sorted(rng.choice(frames, size=frames - kept, replace=False).tolist())
    points = _clip(
        seed,
        frames,
        left_missing=missing if side == "left" else (),
        right_missing=missing if side == "right" else (),
        signing=side,
    )
    assert presets.left_is_dominant(points) == (side == "left")
    selected = presets.select(points, presets.KAGGLE75)
    source = points[:, LEFT_HAND if side == "left" else RIGHT_HAND].copy()
    if side == "left":
        source[..., 0] = 1.0 - source[..., 0]
    np.testing.assert_array_equal(selected[:, :21], source)


def test_a_hand_never_detected_never_signs_and_no_hand_keeps_the_right():
    points = _clip(0, 5, right_missing=range(5), signing="right")
    assert presets.left_is_dominant(points)  # the right hand is never seen: the left signs
    points = _clip(0, 5, left_missing=range(5), right_missing=range(5))
    assert not presets.left_is_dominant(points)


def test_hands_that_move_alike_go_to_the_one_nearer_the_face():
    """Two still hands (a photo): the one nearer the lips signs."""
    points = _clip(1, 1)
    lips = list(layouts.LIPS)
    points[:, lips] = [0.5, 0.3, 0.0]
    points[:, LEFT_HAND] = np.random.default_rng(2).normal([0.6, 0.4, 0], 0.01, (1, 21, 3))
    points[:, RIGHT_HAND] = np.random.default_rng(3).normal([0.3, 0.9, 0], 0.01, (1, 21, 3))
    assert presets.left_is_dominant(points)
    points[:, RIGHT_HAND] -= [-0.2, 0.55, 0.0]  # now the right hand is by the lips
    assert not presets.left_is_dominant(points)


def test_tie_keeps_the_right_hand_unmirrored():
    """Hands that score alike (both never seen) keep the right hand as is."""
    points = _clip(1, 6, left_missing=range(6), right_missing=range(6))
    assert not presets.left_is_dominant(points)
    np.testing.assert_array_equal(
        presets.select(points, presets.KAGGLE75), _select_right_dominant_kaggle75(points)
    )


def test_right_dominant_clip_selects_points_as_they_are():
    """A right-dominant clip gives right hand, pose 11-24 and lips with x unchanged."""
    points = _clip(2, 8, left_missing=[0, 1, 2, 3], right_missing=[5])
    np.testing.assert_array_equal(
        presets.select(points, presets.KAGGLE75), _select_right_dominant_kaggle75(points)
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    frames=st.integers(2, 10),
    left_dominant=st.booleans(),
)
def test_selecting_a_clip_equals_selecting_its_mirror_image(seed, frames, left_dominant):
    """select(clip) == select(mirror(clip)) for any clip where one hand is clearly dominant.

    For a left-dominant clip the mirror is right-dominant and is selected as is, so this checks
    select's mirroring against the explicit point-by-point mirror; the right-dominant case
    checks the other direction.
    """
    rng = np.random.default_rng(seed)
    weak_missing = rng.choice(frames, size=rng.integers(1, frames + 1), replace=False)
    strong_missing = weak_missing[: len(weak_missing) - 1]  # strictly fewer missing frames
    if left_dominant:
        points = _clip(seed, frames, left_missing=strong_missing, right_missing=weak_missing)
    else:
        points = _clip(seed, frames, left_missing=weak_missing, right_missing=strong_missing)
    points[rng.random(points.shape[:2]) < 0.05] = np.nan  # scattered missing points
    assert presets.left_is_dominant(points) == left_dominant

    mirror = _mirror_clip(points)
    assert presets.left_is_dominant(mirror) == (not left_dominant)
    if left_dominant:
        expected = _select_right_dominant_kaggle75(mirror)
        np.testing.assert_array_equal(presets.select(mirror, presets.KAGGLE75), expected)
    else:
        expected = _select_right_dominant_kaggle75(points)
    actual = presets.select(points, presets.KAGGLE75)
    assert actual.shape == (frames, 75, 3)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    np.testing.assert_allclose(presets.select(mirror, presets.KAGGLE75), actual, atol=1e-6)


def test_left_dominant_selection_mirrors_x_only():
    """For a left-dominant clip x becomes 1 - x while y and z are copied unchanged."""
    points = _clip(3, 5, right_missing=[0, 1])
    out = presets.select(points, presets.KAGGLE75)
    source = points[:, presets.KAGGLE75.mirrored_indices]
    np.testing.assert_array_equal(out[..., 0], 1.0 - source[..., 0])
    np.testing.assert_array_equal(out[..., 1:], source[..., 1:])
    assert not np.shares_memory(out, points)


def test_nan_points_stay_nan_through_selection():
    """Missing points are NaN after selection, mirrored or not, and only those are NaN."""
    for right_missing in ([], [0, 1, 2]):
        points = _clip(4, 6, left_missing=[4], right_missing=right_missing)
        points[:, 489 + 11, :] = np.nan  # LEFT_SHOULDER never detected
        points[2, 61, :] = np.nan  # a lip corner missing in one frame
        out = presets.select(points, presets.KAGGLE75)
        for preset_slot, canonical in enumerate(
            presets.KAGGLE75.mirrored_indices if right_missing else presets.KAGGLE75.indices
        ):
            np.testing.assert_array_equal(
                np.isnan(out[:, preset_slot]), np.isnan(points[:, canonical])
            )
        assert np.isnan(out).any()


@pytest.mark.parametrize("name", ["hands_pose", "full543"])
def test_presets_without_a_dominant_hand_never_mirror(name):
    """Both-hands presets select the same indices even for a left-dominant clip."""
    preset = presets.get(name)
    points = _clip(5, 4, right_missing=[0, 1, 2, 3])
    np.testing.assert_array_equal(presets.select(points, preset), points[:, preset.indices])


def test_mirror_permutation_is_an_involution_that_swaps_partners():
    """Mirroring twice is the identity; partners swap within a preset, and points whose partner
    the preset lacks (kaggle75's single hand) stay in place."""
    for preset in presets.PRESETS.values():
        permutation = preset.mirror_permutation()
        np.testing.assert_array_equal(permutation[permutation], np.arange(preset.num_landmarks))
    names = presets.KAGGLE75.landmark_names()
    permutation = presets.KAGGLE75.mirror_permutation()
    left_shoulder = names.index("pose_LEFT_SHOULDER")
    assert names[permutation[left_shoulder]] == "pose_RIGHT_SHOULDER"
    assert list(permutation[:21]) == list(range(21))
    names = presets.HANDS_POSE.landmark_names()
    assert names[presets.HANDS_POSE.mirror_permutation()[0]] == "right_hand_WRIST"


def test_flip_units_tie_partner_groups():
    assert list(presets.KAGGLE75.flip_units()) == [0, 1, 2]
    assert list(presets.HANDS_POSE.flip_units()) == [0, 0, 2]  # both hands flip together
    assert list(presets.FULL543.flip_units()) == [0, 1, 2, 1]
