"""The shifted test clips of the robustness benchmark (``benchmarks/robustness_shifts.py``):
geometry of each shift, and zeros-as-missing kept through all of them. NumPy only."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from aslx.landmarks import layouts
from benchmarks import robustness_shifts as shifts

L = layouts.NUM_LANDMARKS
LEFT_HAND = layouts.group_slice("left_hand")
RIGHT_HAND = layouts.group_slice("right_hand")
HANDS = (LEFT_HAND, RIGHT_HAND)
LEFT_SHOULDER = layouts.canonical_index("pose", 11)
RIGHT_SHOULDER = layouts.canonical_index("pose", 12)


def make_clips(seed: int = 0, clips: int = 3, frames: int = 7) -> np.ndarray:
    """Random ``[clips, frames, 543, 3]`` clips in image units with missing points: single
    landmarks here and there, and whole hands in some frames."""
    rng = np.random.default_rng(seed)
    X = np.empty((clips, frames, L, 3), dtype=np.float32)
    X[..., :2] = rng.uniform(0.05, 0.95, size=(clips, frames, L, 2))
    X[..., 2] = rng.uniform(-0.1, 0.1, size=(clips, frames, L))
    X[rng.random((clips, frames, L)) < 0.1] = 0.0
    for hand in HANDS:
        X[rng.random((clips, frames)) < 0.4, hand] = 0.0
    return X


def full_hand_donors() -> np.ndarray:
    """Donor clips in which both hands are fully detected in every frame."""
    donors = make_clips(seed=9, clips=2, frames=3)
    rng = np.random.default_rng(9)
    for hand in HANDS:
        donors[:, :, hand] = rng.uniform(0.2, 0.8, size=(2, 3, 21, 3))
    return donors


def pairwise_xy(points: np.ndarray) -> np.ndarray:
    """Distances between every pair of ``points [n, >=2]`` in the x, y plane."""
    i, j = np.triu_indices(len(points), k=1)
    return np.linalg.norm(points[i, :2] - points[j, :2], axis=-1)


# --- zeros stay missing, inputs stay as they were ---------------------------------------------


def doubled_detection(det: np.ndarray) -> np.ndarray:
    out = np.empty((det.shape[0], 2 * det.shape[1] - 1, L), dtype=bool)
    out[:, ::2] = det
    out[:, 1::2] = det[:, :-1] | det[:, 1:]
    return out


def rested_detection(det: np.ndarray, slots: np.ndarray) -> np.ndarray:
    det = det.copy()
    for clip, slot in enumerate(slots):
        det[clip, :, HANDS[slot]] = True
    return det


# name: (shift, the detection mask its output must have given the input's)
SHIFTS = {
    "reproject_wider": (lambda X: shifts.reproject(X, 4 / 3, 16 / 9), lambda det, out: det),
    "reproject_taller": (lambda X: shifts.reproject(X, 16 / 9, 9 / 16), lambda det, out: det),
    "zoom": (lambda X: shifts.zoom(X, 0.6, offset=(0.1, -0.05)), lambda det, out: det),
    "mirror": (shifts.mirror, lambda det, out: det[:, :, layouts.mirror_partners()]),
    "still_frame": (shifts.still_frame, None),  # checked against the chosen frame below
    "half_rate": (lambda X: shifts.frame_rate(X, 0.5), lambda det, out: det[:, ::2]),
    "double_rate": (lambda X: shifts.frame_rate(X, 2), lambda det, out: doubled_detection(det)),
    "resting_hand": (
        lambda X: shifts.resting_hand(X, full_hand_donors(), np.random.default_rng(0)),
        lambda det, out: rested_detection(det, out[1]),
    ),
}


@pytest.mark.parametrize("name", list(SHIFTS))
def test_missing_stays_missing_and_present_stays_present(name):
    X = make_clips()
    before = X.copy()
    shift, expected = SHIFTS[name]
    out = shift(X)
    np.testing.assert_array_equal(X, before)  # the input is not modified
    det = shifts.detected(X)
    if name == "still_frame":
        # Every output frame is one input frame, and keeps that frame's detections exactly.
        frames = [
            next(t for t in range(X.shape[1]) if np.array_equal(out[c, 0], X[c, t]))
            for c in range(X.shape[0])
        ]
        want = det[np.arange(X.shape[0]), frames][:, None]
    else:
        want = expected(det, out)
    got = shifts.detected(out[0] if isinstance(out, tuple) else out)
    np.testing.assert_array_equal(got, want)
    assert (out[0] if isinstance(out, tuple) else out).dtype == np.float32


@pytest.mark.parametrize(
    "shift, point",
    [
        # Each transform would put this present point exactly on (0, 0, 0).
        (lambda X: shifts.reproject(X, 1.0, 2.0), (-0.5, 0.0, 0.0)),
        (lambda X: shifts.zoom(X, 1.0, offset=(-0.5, 0.0)), (0.5, 0.0, 0.0)),
        (shifts.mirror, (1.0, 0.0, 0.0)),
    ],
)
def test_present_point_landing_on_zero_is_not_lost(shift, point):
    X = make_clips(clips=1, frames=2)
    X[0, 0, 100] = point  # a face point off the lips: mirror keeps its slot
    out = shift(X)
    assert shifts.detected(out)[0, 0, 100]
    np.testing.assert_allclose(out[0, 0, 100], 0.0, atol=1e-5)


def test_average_landing_on_zero_is_not_lost():
    X = make_clips(clips=1, frames=2)
    X[0, 0, 5], X[0, 1, 5] = (0.25, 0.5, 0.125), (-0.25, -0.5, -0.125)
    out = shifts.frame_rate(X, 2)
    assert shifts.detected(out)[0, 1, 5]


def test_detected():
    X = np.zeros((1, 2, L, 3), dtype=np.float32)
    X[0, 0, 3] = (0.0, 0.0, 0.1)  # a single non-zero coordinate is enough
    X[0, 1, 4] = (0.2, 0.3, 0.0)
    det = shifts.detected(X)
    assert det.shape == (1, 2, L)
    assert det.sum() == 2 and det[0, 0, 3] and det[0, 1, 4]


def test_rejects_other_layouts():
    with pytest.raises(ValueError):
        shifts.mirror(np.zeros((2, 5, 75, 3), dtype=np.float32))


# --- reproject --------------------------------------------------------------------------------


@pytest.mark.parametrize("source, target", [(4 / 3, 16 / 9), (16 / 9, 4 / 3), (1.0, 9 / 16)])
def test_reproject_is_a_similarity_in_pixels(source, target):
    X = make_clips(clips=1, frames=1)
    out = shifts.reproject(X, source, target)
    present = shifts.detected(X)[0, 0]
    height = 1000.0
    source_wh = (source * height, height)
    if target > source:  # wider: the same height
        target_wh = (target * height, height)
    else:  # taller: the same width
        target_wh = (source * height, source * height / target)
    pix_in = X[0, 0, present, :2].astype(np.float64) * source_wh
    pix_out = out[0, 0, present, :2].astype(np.float64) * target_wh
    ratios = pairwise_xy(pix_out) / pairwise_xy(pix_in)
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-4)
    np.testing.assert_allclose(ratios, 1.0, rtol=1e-4)  # the same pixels, only re-framed


def test_reproject_wider_formulas():
    X = make_clips(clips=1, frames=2)
    out = shifts.reproject(X, 1.0, 2.0)
    p = shifts.detected(X)
    np.testing.assert_allclose(out[p][:, 0], 0.5 + (X[p][:, 0] - 0.5) / 2, rtol=1e-6)
    np.testing.assert_array_equal(out[p][:, 1], X[p][:, 1])
    np.testing.assert_allclose(out[p][:, 2], X[p][:, 2] / 2, rtol=1e-6)


def test_reproject_taller_formulas():
    X = make_clips(clips=1, frames=2)
    out = shifts.reproject(X, 2.0, 1.0)
    p = shifts.detected(X)
    np.testing.assert_array_equal(out[p][:, [0, 2]], X[p][:, [0, 2]])
    np.testing.assert_allclose(out[p][:, 1], 0.5 + (X[p][:, 1] - 0.5) / 2, rtol=1e-6)


def test_reproject_to_the_same_aspect_is_the_identity():
    X = make_clips()
    out = shifts.reproject(X, 16 / 9, 16 / 9)
    np.testing.assert_array_equal(out, X)
    assert not np.shares_memory(out, X)


# --- zoom -------------------------------------------------------------------------------------


def test_zoom_scales_distances_and_depth():
    X = make_clips(clips=1, frames=1)
    out = shifts.zoom(X, 0.5, offset=(0.2, -0.1))
    p = shifts.detected(X)[0, 0]
    np.testing.assert_allclose(
        pairwise_xy(out[0, 0, p]), 0.5 * pairwise_xy(X[0, 0, p]), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(out[0, 0, p, 2], 0.5 * X[0, 0, p, 2], rtol=1e-6)
    # The image centre is the fixed point before the move.
    centre = np.zeros((1, 1, L, 3), dtype=np.float32)
    centre[..., :2] = 0.5
    np.testing.assert_allclose(shifts.zoom(centre, 0.5, offset=(0.2, -0.1))[0, 0, 0], (0.7, 0.4, 0))


# --- mirror -----------------------------------------------------------------------------------


def test_mirror_twice_is_the_identity():
    X = make_clips()
    np.testing.assert_allclose(shifts.mirror(shifts.mirror(X)), X, atol=1e-7)


def test_mirror_moves_a_left_hand_point_to_the_right_slot():
    X = np.zeros((1, 1, L, 3), dtype=np.float32)
    X[0, 0, LEFT_HAND.start + 8] = (0.3, 0.4, -0.05)  # left index finger tip
    out = shifts.mirror(X)
    np.testing.assert_allclose(out[0, 0, RIGHT_HAND.start + 8], (0.7, 0.4, -0.05), rtol=1e-6)
    assert shifts.detected(out).sum() == 1  # the left slot is empty now
    # Pose shoulders swap too.
    X[0, 0, LEFT_SHOULDER] = (0.7, 0.6, -0.2)
    np.testing.assert_allclose(shifts.mirror(X)[0, 0, RIGHT_SHOULDER], (0.3, 0.6, -0.2), rtol=1e-6)


# --- still frame ------------------------------------------------------------------------------


def test_still_frame_picks_the_frame_where_the_hand_is_held():
    X = make_clips(clips=4, frames=9)
    X[..., LEFT_HAND, :] = 0.0
    X[..., RIGHT_HAND, :] = 0.0
    hand = np.random.default_rng(3).uniform(0.3, 0.4, (21, 3)).astype(np.float32)
    # clip 0: the hand rises into view (frames 1-4), then is held (5-8) with a tremor
    # smallest around frame 6
    for t, lift in enumerate((0, 0.4, 0.3, 0.2, 0.1, 0.003, 0.0, 0.001, 0.004)):
        if t:
            X[0, t, RIGHT_HAND] = hand + [0, lift, 0]
    # clip 1: the held part is the earlier one; a tie between frames 2 and 3 takes 2
    for t, lift in enumerate((0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8)):
        X[1, t, LEFT_HAND] = hand + [lift, 0, 0]
    X[1, 0, LEFT_HAND] = hand + [0.05, 0, 0]
    # clip 2: a hand in two frames only (never three running): the later of the two middles
    X[2, [2, 6], RIGHT_HAND] = 0.5
    # clip 3: no hand at all -> the middle frame
    out = shifts.still_frame(X)
    assert out.shape == (4, 1, L, 3)
    for clip, frame in enumerate((6, 2, 6, 4)):
        np.testing.assert_array_equal(out[clip, 0], X[clip, frame])


def test_held_frames_are_the_stiller_half_of_each_clip_as_photos():
    X = make_clips(clips=3, frames=7)
    X[..., LEFT_HAND, :] = 0.0
    X[..., RIGHT_HAND, :] = 0.0
    hand = np.random.default_rng(4).uniform(0.3, 0.4, (21, 3)).astype(np.float32)
    # clip 0: x at 0, .1, .2, .2, .2, .5, .8 -> motion (the move from frame t - 1 to t + 1) of
    # the inner frames .2, .1, 0, .3, .6: median .2, so frames 1, 2, 3 are held
    for t, x in enumerate((0.0, 0.1, 0.2, 0.2, 0.2, 0.5, 0.8)):
        X[0, t, RIGHT_HAND] = hand + [x, 0, 0]
    # clip 1: no hand three frames running: nothing held
    X[1, [0, 2, 4, 6], LEFT_HAND] = 0.5
    # clip 2: held still throughout: every inner frame
    X[2, :, RIGHT_HAND] = hand
    photos, clip = shifts.held_frames(X)
    np.testing.assert_array_equal(clip, [0, 0, 0, 2, 2, 2, 2, 2])
    assert photos.shape == (8, 1, L, 3) and photos.dtype == np.float32
    for photo, (c, t) in zip(photos, [(0, 1), (0, 2), (0, 3)] + [(2, t) for t in range(1, 6)]):
        np.testing.assert_array_equal(photo[0], X[c, t])


def test_hand_motion_is_inf_without_three_frames_running():
    X = make_clips(clips=1, frames=5)
    X[..., LEFT_HAND, :] = 0.0
    X[..., RIGHT_HAND, :] = 0.0
    X[0, [0, 1, 3, 4], RIGHT_HAND] = 0.5
    assert np.isinf(shifts.hand_motion(X)).all()
    X[0, 2, RIGHT_HAND] = 0.5
    np.testing.assert_array_equal(shifts.hand_motion(X)[0], [np.inf, 0, 0, 0, np.inf])


# --- frame rate -------------------------------------------------------------------------------


def test_double_then_half_rate_gives_back_the_original():
    X = make_clips(frames=8)
    doubled = shifts.frame_rate(X, 2)
    assert doubled.shape == (3, 15, L, 3)
    np.testing.assert_array_equal(shifts.frame_rate(doubled, 0.5), X)
    np.testing.assert_array_equal(shifts.frame_rate(X, 0.5), X[:, ::2])


def test_double_rate_interpolates_present_points():
    X = make_clips(frames=5)
    doubled = shifts.frame_rate(X, 2)
    det = shifts.detected(X)
    for k in range(X.shape[1] - 1):
        a, b, mid = X[:, k], X[:, k + 1], doubled[:, 2 * k + 1]
        both = det[:, k] & det[:, k + 1]
        only_a, only_b = det[:, k] & ~det[:, k + 1], ~det[:, k] & det[:, k + 1]
        assert both.any() and only_a.any() and only_b.any()
        np.testing.assert_allclose(mid[both], (a[both] + b[both]) / 2, rtol=1e-6)
        np.testing.assert_array_equal(mid[only_a], a[only_a])
        np.testing.assert_array_equal(mid[only_b], b[only_b])
        np.testing.assert_array_equal(mid[~(det[:, k] | det[:, k + 1])], 0.0)


@pytest.mark.parametrize("factor", [1, 3, 0.25, 1.5])
def test_other_frame_rates_are_refused(factor):
    with pytest.raises(ValueError):
        shifts.frame_rate(make_clips(), factor)


# --- resting hand -----------------------------------------------------------------------------


def put_shoulders(X: np.ndarray, clip: int, left_x: float, right_x: float, y: float, rng):
    """Shoulders that wobble a little from frame to frame, so that means matter."""
    frames = X.shape[1]
    X[clip, :, LEFT_SHOULDER] = np.c_[
        left_x + rng.uniform(-0.01, 0.01, frames), np.full(frames, y), np.full(frames, -0.3)
    ]
    X[clip, :, RIGHT_SHOULDER] = np.c_[
        right_x + rng.uniform(-0.01, 0.01, frames),
        y + rng.uniform(-0.01, 0.01, frames),
        np.full(frames, -0.3),
    ]


def shoulder_width(clip: np.ndarray) -> float:
    both = shifts.detected(clip)[:, [LEFT_SHOULDER, RIGHT_SHOULDER]].all(-1)
    d = clip[both, LEFT_SHOULDER, :2].astype(np.float64) - clip[both, RIGHT_SHOULDER, :2]
    return float(np.linalg.norm(d, axis=-1).mean())


def resting_case():
    """Three target clips (left slot weaker; right slot weaker; a tie and no shoulders) and two
    donor clips whose only fully detected hands are one left and one right."""
    rng = np.random.default_rng(1)
    X = make_clips(seed=2, clips=3, frames=6)
    for hand in HANDS:
        X[:, :, hand] = 0.0
    X[0, :2, LEFT_HAND] = 0.4
    X[0, :5, RIGHT_HAND] = 0.6
    X[1, :5, LEFT_HAND] = 0.4
    X[1, :2, RIGHT_HAND] = 0.6
    X[2, :3, LEFT_HAND] = 0.4
    X[2, 3:, RIGHT_HAND] = 0.6
    put_shoulders(X, 0, 0.7, 0.3, 0.6, rng)
    put_shoulders(X, 1, 0.6, 0.45, 0.5, rng)
    X[1, 2, RIGHT_SHOULDER] = 0.0  # a frame without one shoulder: left out of the width
    X[2, :, [LEFT_SHOULDER, RIGHT_SHOULDER]] = 0.0

    donors = make_clips(seed=3, clips=2, frames=4)
    for hand in HANDS:
        donors[:, :, hand, :] = 0.0
    donors[:, :, LEFT_HAND.start : LEFT_HAND.start + 10] = 0.5  # partial hands do not count
    donors[:, :, RIGHT_HAND.start + 11 : RIGHT_HAND.stop] = 0.5
    left = rng.uniform(0.2, 0.4, size=(21, 3)).astype(np.float32)
    right = rng.uniform(0.6, 0.8, size=(21, 3)).astype(np.float32)
    right[0, 2] = 0.0  # MediaPipe's wrist z is exactly 0
    donors[1, 2, LEFT_HAND], donors[0, 1, RIGHT_HAND] = left, right
    put_shoulders(donors, 0, 0.65, 0.35, 0.55, rng)
    put_shoulders(donors, 1, 0.8, 0.2, 0.55, rng)
    return X, donors, {0: (1, left), 1: (0, right)}  # slot -> (donor clip, donor hand)


def test_resting_hand_replaces_the_weaker_hand_with_a_still_scaled_one():
    X, donors, donor_hands = resting_case()
    before = X.copy()
    out, slots = shifts.resting_hand(X, donors, np.random.default_rng(0))
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(slots, [0, 1, 0])
    assert slots.shape == (3,) and np.issubdtype(slots.dtype, np.integer)
    for clip, slot in enumerate(slots):
        hand = out[clip, :, HANDS[slot]]
        assert (hand == hand[0]).all()  # the same 21 points in every frame
        assert shifts.detected(hand).all()
        assert hand[0, :, 1].max() == np.float32(shifts.REST_Y)

        donor_clip, donor = donor_hands[slot]
        if clip == 2:  # no shoulders: the donor's size, and the fallback place
            scale, rest_x = 1.0, (0.75, 0.25)[slot]
        else:
            scale = shoulder_width(X[clip]) / shoulder_width(donors[donor_clip])
            shoulder = (LEFT_SHOULDER, RIGHT_SHOULDER)[slot]
            rest_x = X[clip, :, shoulder, 0][shifts.detected(X[clip])[:, shoulder]].mean()
        if clip != 2:
            assert abs(scale - 1.0) > 0.1  # so that a missing scale would show
        np.testing.assert_allclose(pairwise_xy(hand[0]), scale * pairwise_xy(donor), rtol=1e-4)
        np.testing.assert_allclose(hand[0, :, 0].mean(), rest_x, rtol=1e-5)
        np.testing.assert_array_equal(hand[0, :, 2], donor[:, 2])  # z as the donor had it

        # Every other landmark is untouched.
        others = np.ones(L, dtype=bool)
        others[HANDS[slot]] = False
        np.testing.assert_array_equal(out[clip][:, others], X[clip][:, others])


def test_resting_hand_draws_from_every_full_hand_reproducibly():
    X, donors, _ = resting_case()
    donors[0, 3, LEFT_HAND] = donors[1, 2, LEFT_HAND] + 0.05  # a second full left hand
    a, slots_a = shifts.resting_hand(X, donors, np.random.default_rng(7))
    b, slots_b = shifts.resting_hand(X, donors, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(slots_a, slots_b)
    # Over many draws both left donors are used.
    zs = {
        float(shifts.resting_hand(X[:1], donors, np.random.default_rng(s))[0][0, 0, 468, 2])
        for s in range(20)
    }
    assert len(zs) == 2


def test_resting_hand_needs_a_donor_hand():
    X, donors, _ = resting_case()
    donors[:, :, LEFT_HAND] = 0.0
    with pytest.raises(ValueError, match="left"):
        shifts.resting_hand(X, donors, np.random.default_rng(0))


# --- on real clips ----------------------------------------------------------------------------


def load_first_clips(path: Path, clips: int) -> np.ndarray:
    """The first ``clips`` clips of the archive's ``X``, read by streaming the start of the
    compressed member instead of inflating all of it."""
    with zipfile.ZipFile(path) as archive, archive.open("X.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }[version]
        shape, fortran_order, dtype = read_header(f)
        assert not fortran_order
        count = clips * int(np.prod(shape[1:]))
        data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    return data.reshape(clips, *shape[1:]).astype(np.float32)


def test_shifts_on_real_clips(shared_data):
    path = shared_data / "mp_holistic_35signs" / "landmarks_f16.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    X = load_first_clips(path, 8)  # eight "a" clips, right hands in some frames
    det = shifts.detected(X)
    # The camera faces the signer: the signer's left shoulder is on the image's right.
    left_x = X[:, :, LEFT_SHOULDER, 0][det[:, :, LEFT_SHOULDER]].mean()
    right_x = X[:, :, RIGHT_SHOULDER, 0][det[:, :, RIGHT_SHOULDER]].mean()
    assert left_x > 0.5 > right_x

    for name, (shift, expected) in SHIFTS.items():
        out = shift(X)
        clips = out[0] if isinstance(out, tuple) else out
        if expected is not None:
            np.testing.assert_array_equal(shifts.detected(clips), expected(det, out), err_msg=name)
        assert np.isfinite(clips).all(), name

    out, slots = shifts.resting_hand(X, X, np.random.default_rng(0))
    for clip, slot in enumerate(slots):
        hand = out[clip, 0, HANDS[slot]]
        assert hand[:, 1].max() == np.float32(shifts.REST_Y)
        # The hand sits under the shoulder on its own side of the image.
        assert (hand[:, 0].mean() > 0.5) == (slot == 0)


def test_the_benchmark_makes_every_shifted_set_from_the_test_clips():
    from benchmarks import robustness

    rng = np.random.default_rng(0)
    X = np.zeros((4, 6, 543, 3), np.float32)
    X[:, :, 468:489] = rng.random((4, 6, 21, 3)) + 0.1  # left hands
    X[:2, :3, 522:543] = rng.random((2, 3, 21, 3)) + 0.1  # a few right hands: donors
    X[:, :, 489:522] = rng.random((4, 6, 33, 3)) + 0.1  # pose
    classes = np.array(["a", "j", "hello"])
    y = np.array([0, 1, 2, 0])
    sets = robustness.shifted_sets(X, y, classes)
    assert set(sets) == {
        "clean", "resting_hand", "camera_16x9", "camera_4x3", "zoomed_out", "mirrored",
        "half_frame_rate", "double_frame_rate", "clean_static", "still_static",
        "still_held_static",
    }  # fmt: skip
    static_x, static_y, _ = sets["still_static"]
    assert static_x.shape[1] == 1 and list(static_y) == [0, 0]  # letters held still: not j
    held_x, held_y, _ = sets["still_held_static"]
    # Each static clip's held frames, labelled with its clip's class.
    _, held_clip = shifts.held_frames(X[[0, 3]])
    assert held_x.shape[1] == 1 and len(held_y) == len(held_clip) > 2 and set(held_y) == {0}
    assert sets["camera_16x9"][2] == pytest.approx(16 / 9)
    assert sets["double_frame_rate"][0].shape[1] == 11
