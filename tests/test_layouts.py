"""Landmark layouts: canonical order, Kaggle wide columns, MediaPipe vectors, pose-format slots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.landmarks import layouts

# Written out by hand (from the Kaggle asl-signs layout), not derived from the library.
EXPECTED_OFFSETS = {"face": 0, "left_hand": 468, "pose": 489, "right_hand": 522}
EXPECTED_SIZES = {"face": 468, "left_hand": 21, "pose": 33, "right_hand": 21}
CANONICAL_ORDER = ("face", "left_hand", "pose", "right_hand")
LIP_MIDLINE = {0, 13, 14, 17}


def _mp_vector_reference(vector: np.ndarray) -> np.ndarray:
    """Slow per-slot conversion of one 1662 MediaPipe vector to ``[543, 3]`` (no NaN rule)."""
    out = np.full((543, 3), np.nan, np.float64)
    for j in range(33):
        for c in range(3):
            out[489 + j, c] = vector[j * 4 + c]
    base = 33 * 4
    for j in range(468):
        for c in range(3):
            out[j, c] = vector[base + j * 3 + c]
    base += 468 * 3
    for j in range(21):
        for c in range(3):
            out[468 + j, c] = vector[base + j * 3 + c]
    base += 21 * 3
    for j in range(21):
        for c in range(3):
            out[522 + j, c] = vector[base + j * 3 + c]
    return out


# --- canonical groups --------------------------------------------------------------------


def test_group_offsets_and_sizes_match_the_kaggle_long_layout():
    """Groups are face 0-467, left_hand 468-488, pose 489-521, right_hand 522-542."""
    assert tuple(name for name, _ in layouts.GROUPS) == CANONICAL_ORDER
    assert layouts.OFFSETS == EXPECTED_OFFSETS
    assert layouts.GROUP_SIZES == EXPECTED_SIZES
    assert layouts.NUM_LANDMARKS == 543 == sum(EXPECTED_SIZES.values())
    for group in CANONICAL_ORDER:
        start = EXPECTED_OFFSETS[group]
        assert layouts.group_slice(group) == slice(start, start + EXPECTED_SIZES[group])


def test_group_slices_tile_the_canonical_range_without_gaps():
    """The four group slices cover 0..542 exactly once, in order."""
    covered = []
    for group in CANONICAL_ORDER:
        covered.extend(range(543)[layouts.group_slice(group)])
    assert covered == list(range(543))


def test_group_slice_rejects_unknown_group():
    """An unknown group name raises KeyError naming the known groups."""
    with pytest.raises(KeyError, match="left_hand"):
        layouts.group_slice("hands")


def test_canonical_index_adds_the_group_offset_and_checks_bounds():
    """canonical_index is offset + index and rejects indices outside the group."""
    assert layouts.canonical_index("pose", 0) == 489
    assert layouts.canonical_index("right_hand", 20) == 542
    assert layouts.canonical_index("face", 467) == 467
    for group, size in EXPECTED_SIZES.items():
        with pytest.raises(IndexError):
            layouts.canonical_index(group, size)
        with pytest.raises(IndexError):
            layouts.canonical_index(group, -1)


def test_landmark_names_are_543_unique_names_in_canonical_order():
    """landmark_names has one distinct name per canonical point, face first, right hand last."""
    names = layouts.landmark_names()
    assert len(names) == 543
    assert len(set(names)) == 543
    assert names[0] == "face_0"
    assert names[467] == "face_467"
    assert names[468] == "left_hand_WRIST"
    assert names[488] == "left_hand_PINKY_TIP"
    assert names[489] == "pose_NOSE"
    assert names[489 + 11] == "pose_LEFT_SHOULDER"
    assert names[521] == "pose_RIGHT_FOOT_INDEX"
    assert names[522] == "right_hand_WRIST"
    assert names[542] == "right_hand_PINKY_TIP"


def test_hand_bones_connect_all_21_hand_points_to_the_wrist():
    """Every hand bone joins two valid hand points and every point is reachable from the wrist."""
    assert all(0 <= a < 21 and 0 <= b < 21 and a != b for a, b in layouts.HAND_BONES)
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for a, b in layouts.HAND_BONES:
            for here, there in ((a, b), (b, a)):
                if here == node and there not in reached:
                    reached.add(there)
                    frontier.append(there)
    assert reached == set(range(21))


# --- mirror tables -----------------------------------------------------------------------


def test_pose_mirror_pairs_pair_left_names_with_right_names():
    """Each pose mirror pair is LEFT_x with RIGHT_x (or MOUTH_LEFT with MOUTH_RIGHT)."""
    for a, b in layouts.POSE_MIRROR_PAIRS:
        left, right = layouts.POSE_POINTS[a], layouts.POSE_POINTS[b]
        if left.startswith("LEFT_"):
            assert right == "RIGHT_" + left[len("LEFT_") :]
        else:
            assert (left, right) == ("MOUTH_LEFT", "MOUTH_RIGHT")


def test_pose_mirror_pairs_are_disjoint_and_leave_only_the_nose():
    """No pose point is in two pairs, and every point but NOSE has a partner."""
    flat = [i for pair in layouts.POSE_MIRROR_PAIRS for i in pair]
    assert len(flat) == len(set(flat))
    assert set(range(33)) - set(flat) == {layouts.POSE_POINTS.index("NOSE")}


def test_lips_are_40_distinct_face_mesh_points():
    """LIPS lists 40 distinct face-mesh indices, including the 4 midline points."""
    assert len(layouts.LIPS) == 40
    assert len(set(layouts.LIPS)) == 40
    assert all(0 <= i < 468 for i in layouts.LIPS)
    assert LIP_MIDLINE <= set(layouts.LIPS)


def test_lips_mirror_pairs_cover_exactly_the_non_midline_lip_points():
    """The lip pairs are disjoint, lie within LIPS and cover all 36 lip points off the midline."""
    flat = [i for pair in layouts.LIPS_MIRROR_PAIRS for i in pair]
    assert len(flat) == 36
    assert len(set(flat)) == 36
    for a, b in layouts.LIPS_MIRROR_PAIRS:
        assert a in layouts.LIPS and b in layouts.LIPS
    assert set(flat) == set(layouts.LIPS) - LIP_MIDLINE


# --- Kaggle wide layout ------------------------------------------------------------------


def test_wide_columns_are_x_then_y_then_z_blocks_in_canonical_order():
    """wide_columns lists 1629 names: x block, y block, z block, each in canonical group order."""
    columns = layouts.wide_columns()
    expected = []
    for axis in "xyz":
        for group in CANONICAL_ORDER:
            expected.extend(f"{axis}_{group}_{i}" for i in range(EXPECTED_SIZES[group]))
    assert len(columns) == 1629
    assert columns[0] == "x_face_0"
    assert columns[543] == "y_face_0"
    assert columns[-1] == "z_right_hand_20"
    assert columns == expected
    assert len(set(columns)) == 1629


def test_wide_row_reshaped_and_transposed_gives_canonical_points():
    """reshape(frames, 3, 543).transpose(0, 2, 1) puts every wide column at its canonical slot."""
    columns = layouts.wide_columns()
    frames = 3
    wide = np.empty((frames, len(columns)), np.float64)
    for col, name in enumerate(columns):
        axis_name, rest = name.split("_", 1)
        group, index = rest.rsplit("_", 1)
        axis = "xyz".index(axis_name)
        canonical = EXPECTED_OFFSETS[group] + int(index)
        for f in range(frames):
            wide[f, col] = f * 100_000 + axis * 10_000 + canonical
    points = wide.reshape(frames, 3, 543).transpose(0, 2, 1)
    f, p, a = np.meshgrid(np.arange(frames), np.arange(543), np.arange(3), indexing="ij")
    np.testing.assert_array_equal(points, f * 100_000 + a * 10_000 + p)


# --- MediaPipe per-frame vector ----------------------------------------------------------


def test_mp_vector_size_is_1662():
    """The tutorial vector is pose 33x4 + face 468x3 + two hands 21x3 = 1662 floats."""
    assert layouts.MP_VECTOR_SIZE == 1662


def test_mp_vector_to_canonical_places_every_slot():
    """Each pose, face and hand coordinate of the vector lands at its canonical point."""
    vector = np.arange(1, 1663, dtype=np.float64)
    out = layouts.mp_vector_to_canonical(vector[None])
    assert out.shape == (1, 543, 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], _mp_vector_reference(vector))


def test_mp_vector_to_canonical_drops_pose_visibility():
    """Pose visibility values never appear in the canonical points."""
    vector = np.arange(1, 1663, dtype=np.float64)
    visibility = np.arange(33) * 4 + 3
    vector[visibility] = -7.0
    out = layouts.mp_vector_to_canonical(vector[None])
    assert not np.any(out == -7.0)
    np.testing.assert_array_equal(out[0], _mp_vector_reference(vector))


def test_mp_vector_to_canonical_turns_all_zero_parts_into_nan():
    """A part the recorder wrote as zeros becomes NaN; the other parts are kept."""
    vectors = np.tile(np.arange(1, 1663, dtype=np.float64), (3, 1))
    left_start = 33 * 4 + 468 * 3
    right_start = left_start + 63
    vectors[0, left_start:right_start] = 0.0  # left hand not detected
    vectors[1, right_start:] = 0.0  # right hand not detected
    pose_xyz = (np.arange(33)[:, None] * 4 + np.arange(3)).ravel()
    vectors[2, pose_xyz] = 0.0  # pose not detected, visibility left nonzero
    out = layouts.mp_vector_to_canonical(vectors)

    assert np.all(np.isnan(out[0, 468:489]))
    assert not np.any(np.isnan(np.delete(out[0], np.s_[468:489], axis=0)))
    assert np.all(np.isnan(out[1, 522:543]))
    assert not np.any(np.isnan(out[1, :522]))
    assert np.all(np.isnan(out[2, 489:522]))
    assert not np.any(np.isnan(np.delete(out[2], np.s_[489:522], axis=0)))
    np.testing.assert_array_equal(out[2, :468], _mp_vector_reference(vectors[2])[:468])


@pytest.mark.parametrize("shape", [(1662,), (2, 1661), (2, 1663), (1, 543, 3), (0, 1629)])
def test_mp_vector_to_canonical_rejects_wrong_shapes(shape):
    """Anything but a [frames, 1662] array raises ValueError."""
    with pytest.raises(ValueError, match="1662"):
        layouts.mp_vector_to_canonical(np.ones(shape, np.float32))


# --- zeros_to_nan ------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.sampled_from([0.0, -0.0, 0.5, -1.25, 1e-7])] * 3),
        min_size=1,
        max_size=30,
    )
)
def test_zeros_to_nan_marks_only_points_with_all_three_coords_zero(point_list):
    """A point becomes NaN exactly when x, y and z are all zero; others are copied unchanged."""
    points = np.array(point_list, np.float32)
    original = points.copy()
    out = layouts.zeros_to_nan(points)
    assert out.dtype == np.float32
    for k, (x, y, z) in enumerate(point_list):
        if x == 0 and y == 0 and z == 0:
            assert np.all(np.isnan(out[k]))
        else:
            np.testing.assert_array_equal(out[k], original[k])
    np.testing.assert_array_equal(points, original)  # input untouched


def test_zeros_to_nan_works_on_frames_by_points():
    """On a [frames, points, 3] array only the all-zero points turn NaN."""
    points = np.array([[[0, 0, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 0]]], np.float32)
    out = layouts.zeros_to_nan(points)
    np.testing.assert_array_equal(np.isnan(out).all(-1), [[True, False], [False, True]])
    assert not np.isnan(out[0, 1]).any() and not np.isnan(out[1, 0]).any()


# --- pose-format Holistic components -----------------------------------------------------


def test_holistic_face_points_map_by_mesh_index_and_drop_iris():
    """Face points named '13' go to canonical 13; iris points 468-477 map to None."""
    names = ["0", "13", "291", "467", "468", "473", "477"]
    slots = layouts.holistic_component_slots("FACE_LANDMARKS", names)
    assert slots == [0, 13, 291, 467, None, None, None]


def test_holistic_hand_and_pose_points_map_by_name():
    """Hand and pose points map by name into their canonical group."""
    left = layouts.holistic_component_slots("LEFT_HAND_LANDMARKS", list(layouts.HAND_POINTS))
    right = layouts.holistic_component_slots("RIGHT_HAND_LANDMARKS", list(layouts.HAND_POINTS))
    pose = layouts.holistic_component_slots("POSE_LANDMARKS", list(layouts.POSE_POINTS))
    assert left == list(range(468, 489))
    assert right == list(range(522, 543))
    assert pose == list(range(489, 522))
    shuffled = ["PINKY_TIP", "WRIST", "THUMB_TIP"]
    assert layouts.holistic_component_slots("RIGHT_HAND_LANDMARKS", shuffled) == [542, 522, 526]
    assert layouts.holistic_component_slots("POSE_LANDMARKS", ["RIGHT_HIP", "NOSE"]) == [
        489 + 24,
        489,
    ]


@pytest.mark.parametrize(
    "component, name",
    [
        ("LEFT_HAND_LANDMARKS", "NOSE"),
        ("RIGHT_HAND_LANDMARKS", "wrist"),
        ("POSE_LANDMARKS", "WRIST"),
        ("POSE_LANDMARKS", "LEFT_TOE"),
    ],
)
def test_holistic_component_slots_rejects_unknown_point_names(component, name):
    """A hand or pose point name outside the component's names raises ValueError naming it."""
    known = "WRIST" if "HAND" in component else "NOSE"
    with pytest.raises(ValueError, match=name):
        layouts.holistic_component_slots(component, [known, name])


def test_holistic_component_slots_rejects_unknown_component():
    """An unknown component name raises KeyError."""
    with pytest.raises(KeyError):
        layouts.holistic_component_slots("LEFT_FOOT_LANDMARKS", ["WRIST"])
