"""Per-group normalisation and aspect correction of landmark clips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aslx.landmarks import normalize

EPS = 1e-6

# XLA compiles once per shape, which costs far more than the arithmetic: property tests draw
# from a few shapes and run through one jitted function (jit == eager is tested on its own).
FRAME_CHOICES = (1, 2, 5)
GROUP_SIZE_CHOICES = ((1,), (6,), (2, 4), (4, 1, 3), (3, 3, 3))
_jitted_normalize = jax.jit(normalize.normalize_groups, static_argnums=2)


def _normalize(points: np.ndarray, mask: np.ndarray, group_sizes) -> np.ndarray:
    """normalize_groups through the shared jitted function, back as a NumPy array."""
    return np.asarray(_jitted_normalize(jnp.asarray(points), jnp.asarray(mask), tuple(group_sizes)))


def _reference(points: np.ndarray, mask: np.ndarray, group_sizes, eps: float = EPS) -> np.ndarray:
    """Slow float64 normalisation, point by point, straight from the docstring.

    Per group: mean over the valid points of the whole clip, subtract it, divide by the largest
    |x| or |y| of the centred valid points (at least ``eps``); 0 where the mask is 0.
    """
    frames, landmarks, _ = points.shape
    out = np.zeros((frames, landmarks, 3), np.float64)
    start = 0
    for size in group_sizes:
        valid = [(f, i) for f in range(frames) for i in range(start, start + size) if mask[f, i]]
        if valid:
            mean = sum(points[f, i].astype(np.float64) for f, i in valid) / len(valid)
            centred = {(f, i): points[f, i].astype(np.float64) - mean for f, i in valid}
            scale = max(max(abs(c[0]), abs(c[1])) for c in centred.values())
            scale = max(scale, eps)
            for key, c in centred.items():
                out[key] = c / scale
        start += size
    return out


def _random_clip(seed: int, frames: int, group_sizes, density: float, nan_fill: bool = True):
    """Random points (each group with its own centre and spread) and a random validity mask.

    Points under mask 0 are NaN when ``nan_fill`` so any leak would show.
    """
    rng = np.random.default_rng(seed)
    landmarks = sum(group_sizes)
    points = np.empty((frames, landmarks, 3), np.float32)
    start = 0
    for size in group_sizes:
        centre = rng.uniform(0.0, 1.0, size=3)
        spread = rng.uniform(0.05, 0.5)
        points[:, start : start + size] = centre + spread * rng.uniform(-1, 1, (frames, size, 3))
        start += size
    mask = rng.random((frames, landmarks)) < density
    if nan_fill:
        points[~mask] = np.nan
    return points, mask


def _group_bounds(group_sizes):
    starts = np.cumsum([0, *group_sizes])
    return list(zip(starts[:-1], starts[1:], strict=True))


def _has_xy_spread(points: np.ndarray, mask: np.ndarray, start: int, stop: int, least: float):
    """True when the group's valid points differ by more than ``least`` in x or y."""
    valid_xy = points[:, start:stop][mask[:, start:stop]][:, :2]
    return len(valid_xy) >= 2 and np.ptp(valid_xy, axis=0).max() > least


clip_params = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "frames": st.sampled_from(FRAME_CHOICES),
        "group_sizes": st.sampled_from(GROUP_SIZE_CHOICES),
        "density": st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
    }
)


# --- normalize_groups --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(params=clip_params)
def test_normalize_groups_matches_slow_reference(params):
    """normalize_groups equals the point-by-point float64 reference on random clips and masks."""
    points, mask = _random_clip(**params)
    sizes = params["group_sizes"]
    # float32 rounding is divided by the group's scale: keep clearly spread groups only
    assume(
        all(
            mask[:, start:stop].sum() < 2 or _has_xy_spread(points, mask, start, stop, least=0.02)
            for start, stop in _group_bounds(sizes)
        )
    )
    out = _normalize(points, mask, sizes)
    assert out.shape == points.shape
    assert out.dtype == np.float32
    # Relative too: z divided by a small x/y extent reaches several units, where float32
    # rounding alone is above 1e-5.
    np.testing.assert_allclose(out, _reference(points, mask, sizes), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_dtype", [bool, np.float32, np.int32])
def test_mask_may_be_bool_or_zero_one_numbers(mask_dtype):
    """A 0/1 float or int mask gives the same result as the bool mask, matching the reference."""
    points, mask = _random_clip(7, 5, (3, 3, 3), density=0.6)
    out = np.asarray(
        normalize.normalize_groups(
            jnp.asarray(points), jnp.asarray(mask.astype(mask_dtype)), (3, 3, 3)
        )
    )
    np.testing.assert_allclose(out, _reference(points, mask, (3, 3, 3)), atol=1e-5)
    assert np.all(out[~mask] == 0.0)


@settings(max_examples=50, deadline=None)
@given(params=clip_params)
def test_masked_points_are_exactly_zero_and_nan_never_leaks(params):
    """Where the mask is 0 the output is exactly 0, and NaN under the mask leaves no trace."""
    points, mask = _random_clip(**params, nan_fill=True)
    out = _normalize(points, mask, params["group_sizes"])
    assert np.all(np.isfinite(out))
    assert np.all(out[~mask] == 0.0)


@settings(max_examples=50, deadline=None)
@given(params=clip_params)
def test_each_group_with_spread_spans_unit_max_abs_xy(params):
    """A group with two or more distinct valid points has max |x|, |y| equal to 1, mean 0."""
    points, mask = _random_clip(**params)
    sizes = params["group_sizes"]
    out = _normalize(points, mask, sizes)
    for start, stop in _group_bounds(sizes):
        if _has_xy_spread(points, mask, start, stop, least=1e-3):
            assert np.abs(out[:, start:stop, :2]).max() == pytest.approx(1.0, abs=1e-6)
        if _has_xy_spread(points, mask, start, stop, least=0.05):
            centred_mean = out[:, start:stop][mask[:, start:stop]].mean(axis=0)
            np.testing.assert_allclose(centred_mean, 0.0, atol=1e-5)


@settings(max_examples=50, deadline=None)
@given(
    params=clip_params,
    scale=st.floats(0.5, 3.0),
    shift=st.tuples(*[st.floats(-1.0, 1.0)] * 3),
    which_group=st.integers(0, 2),
)
def test_translating_and_scaling_a_group_leaves_output_unchanged(params, scale, shift, which_group):
    """Moving a group's valid points by any shift and positive scale gives the same output."""
    points, mask = _random_clip(**params)
    sizes = params["group_sizes"]
    start, stop = _group_bounds(sizes)[which_group % len(sizes)]
    valid_count = mask[:, start:stop].sum()
    assume(valid_count < 2 or _has_xy_spread(points, mask, start, stop, least=0.3))
    moved = points.copy()
    moved[:, start:stop] = (points[:, start:stop] * scale + np.asarray(shift)).astype(np.float32)
    np.testing.assert_allclose(
        _normalize(moved, mask, sizes), _normalize(points, mask, sizes), atol=1e-5
    )


def test_all_missing_group_stays_all_zero():
    """A group never detected is all 0, and its neighbours are normalised as usual."""
    points, mask = _random_clip(0, 5, (3, 3, 3), density=1.0)
    mask[:, 3:6] = False
    points[:, 3:6] = np.nan
    out = _normalize(points, mask, (3, 3, 3))
    assert np.all(out[:, 3:6] == 0.0)
    assert np.abs(out[:, :3, :2]).max() == pytest.approx(1.0)
    assert np.abs(out[:, 6:, :2]).max() == pytest.approx(1.0)


def test_single_valid_point_group_becomes_zero_not_nan():
    """A group detected as one point centres to 0 and the eps floor keeps it finite."""
    points, mask = _random_clip(1, 5, (6,), density=0.0)
    mask[1, 2] = True
    points[1, 2] = (0.3, 0.7, -0.1)
    out = _normalize(points, mask, (6,))
    assert np.all(np.isfinite(out))
    assert np.all(out == 0.0)


def test_padding_frames_are_zero_and_do_not_change_real_frames():
    """Appending fully masked padding frames leaves the real frames' output unchanged."""
    points, mask = _random_clip(2, 2, (2, 4), density=0.8)
    padded_points = np.concatenate([points, np.full((3, 6, 3), np.nan, np.float32)])
    padded_mask = np.concatenate([mask, np.zeros((3, 6), bool)])
    out = _normalize(points, mask, (2, 4))
    padded_out = _normalize(padded_points, padded_mask, (2, 4))
    np.testing.assert_allclose(padded_out[:2], out, atol=1e-6)
    assert np.all(padded_out[2:] == 0.0)


def test_groups_are_normalised_independently():
    """Changing one group's points never changes another group's output."""
    points, mask = _random_clip(3, 5, (2, 4), density=0.7)
    changed = points.copy()
    noise = np.random.default_rng(0).normal(size=(5, 4, 3))
    changed[:, 2:] = (changed[:, 2:] * 5.0 + 3.0 + noise).astype(np.float32)
    out = _normalize(points, mask, (2, 4))
    out_changed = _normalize(changed, mask, (2, 4))
    np.testing.assert_array_equal(out_changed[:, :2], out[:, :2])
    assert not np.allclose(out_changed[:, 2:], out[:, 2:])


def test_normalize_groups_is_unchanged_under_jit_and_vmap():
    """jit (with static group sizes) and vmap over clips give the eager result."""
    sizes = (3, 3, 3)
    clips = [_random_clip(seed, 5, sizes, density=0.6) for seed in range(3)]
    points = jnp.asarray(np.stack([p for p, _ in clips]))
    mask = jnp.asarray(np.stack([m for _, m in clips]))
    eager = np.stack(
        [np.asarray(normalize.normalize_groups(points[k], mask[k], sizes)) for k in range(3)]
    )
    assert np.all(np.isfinite(eager))
    for k in range(3):
        np.testing.assert_allclose(
            np.asarray(_jitted_normalize(points[k], mask[k], sizes)), eager[k], atol=1e-6
        )
    vmapped = jax.vmap(lambda p, m: normalize.normalize_groups(p, m, sizes))(points, mask)
    np.testing.assert_allclose(np.asarray(vmapped), eager, atol=1e-6)


@pytest.mark.parametrize("group_sizes", [(3, 3), (4, 5), (10,), ()])
def test_group_sizes_that_do_not_add_up_raise(group_sizes):
    """Group sizes whose sum differs from the number of landmarks raise ValueError."""
    points = jnp.zeros((2, 8, 3))
    with pytest.raises(ValueError, match="add up"):
        normalize.normalize_groups(points, jnp.ones((2, 8), bool), group_sizes)


def test_normalize_groups_returns_float32_for_half_precision_input():
    """float16 input comes back as float32, matching the reference on the float16 values."""
    points, mask = _random_clip(4, 5, (3, 3, 3), density=1.0)
    out16 = normalize.normalize_groups(
        jnp.asarray(points, jnp.float16), jnp.asarray(mask), (3, 3, 3)
    )
    assert out16.dtype == jnp.float32
    expected = _reference(points.astype(np.float16).astype(np.float32), mask, (3, 3, 3))
    np.testing.assert_allclose(np.asarray(out16), expected, atol=1e-5)


# --- correct_aspect ----------------------------------------------------------------------


def test_aspect_constant_undoes_the_portrait_aspect_ratio():
    """ASPECT_Y is 1 / 0.5268970670149133 = 1.8979039030629028."""
    assert normalize.ASPECT_Y == 1.8979039030629028
    assert normalize.ASPECT_Y == pytest.approx(1 / 0.5268970670149133, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), leading=st.sampled_from([(), (4,), (2, 5), (3, 75)]))
def test_correct_aspect_scales_only_y(seed, leading):
    """correct_aspect multiplies y by ASPECT_Y and leaves x and z exactly as they were."""
    points = np.random.default_rng(seed).normal(size=(*leading, 3)).astype(np.float32)
    out = np.asarray(normalize.correct_aspect(jnp.asarray(points)))
    assert out.shape == points.shape
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], points[..., 0])
    np.testing.assert_array_equal(out[..., 2], points[..., 2])
    np.testing.assert_allclose(out[..., 1], points[..., 1] * 1.8979039030629028, rtol=1e-6)


def test_correct_aspect_accepts_a_custom_scale_and_keeps_nan():
    """A given y_scale is used instead of ASPECT_Y, and NaN points stay NaN."""
    points = jnp.asarray([[0.5, 0.25, -1.0], [np.nan, np.nan, np.nan]], jnp.float32)
    out = np.asarray(normalize.correct_aspect(points, y_scale=2.0))
    np.testing.assert_array_equal(out[0], [0.5, 0.5, -1.0])
    assert np.all(np.isnan(out[1]))
