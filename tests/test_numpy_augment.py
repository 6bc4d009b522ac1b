"""The vectorised per-sample NumPy recipe (``benchmarks/numpy_augment.py``, the host-side
baseline of the augmentation benchmark) against the slow NumPy reference
(``tests/augment_reference.py``): the same draws from the same generator, and the same outputs
from the same parameters. NumPy only, no jit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aslx.augment.recipe import AugmentConfig, BlockMask
from aslx.landmarks import presets
from aslx.vocab import LABEL_PAD
from benchmarks import numpy_augment
from tests import augment_reference as reference

FRAMES, LABELS = 40, 12
DEFAULT = AugmentConfig()
# Every step fires on every sample, Truncate included.
ALL_ON = dataclasses.replace(
    DEFAULT,
    time_flip_p=1.0,
    resample_p=1.0,
    max_length=FRAMES - 8,
    hand_block_mask=BlockMask(ratio=0.8, block_size=3, p=1.0),
    other_block_mask=BlockMask(ratio=0.3, block_size=4, p=1.0),
    frame_noise_p=1.0,
    feature_mask_p=1.0,
    flip_p=1.0,
    rotation_p=1.0,
)


def make_sample(
    seed: int, preset: presets.Preset, length: int, missing: float, labels: int = 6
) -> dict:
    """``length`` real frames of ``FRAMES``, ``missing`` share of points missing, ``labels``
    label ids from a small alphabet (repeats happen), a monotone alignment with gaps."""
    rng = np.random.default_rng(seed)
    lm = preset.num_landmarks
    frame_mask = np.arange(FRAMES) < length
    landmark_mask = (rng.random((FRAMES, lm)) >= missing) & frame_mask[:, None]
    points = rng.uniform(0.1, 0.9, (FRAMES, lm, 3)).astype(np.float32)
    label_mask = np.arange(LABELS) < labels
    cuts = np.sort(rng.integers(0, max(length, 1), labels - 1)) if labels > 1 else []
    alignment = np.searchsorted(cuts, np.arange(FRAMES), side="right").astype(np.int32)
    alignment[rng.random(FRAMES) < 0.2] = -1
    return {
        "landmarks": np.where(landmark_mask[..., None], points, 0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
        "labels": np.where(label_mask, rng.integers(0, 4, LABELS), LABEL_PAD).astype(np.int32),
        "label_mask": label_mask,
        "alignment": np.where(frame_mask, np.minimum(alignment, labels - 1), -1).astype(np.int32),
    }


def assert_same(got: dict, want: dict, atol: float = 1e-5) -> None:
    assert list(got) == list(want)
    for key in want:
        g, w = got[key], want[key]
        assert g.shape == w.shape and g.dtype == w.dtype, key
        if w.dtype.kind in "bi":
            np.testing.assert_array_equal(g, w, err_msg=key)
        else:
            np.testing.assert_allclose(g, w, rtol=0, atol=atol, err_msg=key)


CASES = [  # seed, length, missing
    (0, FRAMES, 0.0),
    (1, FRAMES, 0.2),
    (2, 17, 0.5),
    (3, 5, 0.1),
    (4, 1, 0.0),
    (5, 29, 1.0),
    (6, 0, 0.3),
]


@pytest.mark.parametrize("config", [DEFAULT, ALL_ON], ids=["default", "all_on"])
@pytest.mark.parametrize("preset", [presets.KAGGLE75, presets.HANDS_POSE], ids=lambda p: p.name)
def test_draw_takes_the_reference_draws(config, preset):
    for seed in range(8):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        got = numpy_augment.draw(ours, config, preset, FRAMES)
        want = reference.draw(theirs, config, preset, FRAMES)
        assert list(got) == list(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert ours.random() == theirs.random()  # the same number of draws was taken


@pytest.mark.parametrize("config", [DEFAULT, ALL_ON], ids=["default", "all_on"])
@pytest.mark.parametrize("seed, length, missing", CASES)
def test_recipe_matches_reference(config, seed, length, missing):
    preset = presets.KAGGLE75
    for labels in (1, 6, LABELS):  # the longest cannot fit the short clips: labels get cut
        sample = make_sample(seed, preset, length, missing, labels)
        params = reference.draw(np.random.default_rng(seed + 100), config, preset, FRAMES)
        want = reference.apply(sample, params, config, preset)
        assert_same(numpy_augment.apply(sample, params, config, preset), want)


@pytest.mark.parametrize("scale", [0.01, 0.5, 1.0, 1.37, 3.0])
@pytest.mark.parametrize("time_flip", [False, True])
def test_resampling_extremes_match_reference(scale, time_flip):
    """One frame, the clip's own length, and more than ``FRAMES``; every frame noisy, so the
    noise rows run out before the frames do."""
    preset = presets.KAGGLE75
    sample = make_sample(7, preset, 30, 0.25)
    params = reference.draw(np.random.default_rng(7), ALL_ON, preset, FRAMES)
    params |= {
        "resample_scale": scale,
        "time_flip": time_flip,
        "noise_frames": np.ones(FRAMES, bool),
    }
    want = reference.apply(sample, params, ALL_ON, preset)
    assert_same(numpy_augment.apply(sample, params, ALL_ON, preset), want)


@pytest.mark.parametrize("preset", [presets.HANDS_POSE, presets.FULL543], ids=lambda p: p.name)
def test_other_presets_match_reference(preset):
    """Two hands that flip together; four groups of very different sizes."""
    for seed, length, missing in CASES[1:4]:
        sample = make_sample(seed, preset, length, missing)
        params = reference.draw(np.random.default_rng(seed), ALL_ON, preset, FRAMES)
        want = reference.apply(sample, params, ALL_ON, preset)
        assert_same(numpy_augment.apply(sample, params, ALL_ON, preset), want)


def test_missing_points_may_hold_nan_and_the_input_is_left_alone():
    preset = presets.KAGGLE75
    sample = make_sample(8, preset, 33, 0.3)
    with_nan = sample | {
        "landmarks": np.where(sample["landmark_mask"][..., None], sample["landmarks"], np.nan)
    }
    before = {k: v.copy() for k, v in with_nan.items()}
    params = reference.draw(np.random.default_rng(8), ALL_ON, preset, FRAMES)
    got = numpy_augment.apply(with_nan, params, ALL_ON, preset)
    assert_same(got, reference.apply(sample, params, ALL_ON, preset))
    assert_same(with_nan, before, atol=0)


def test_augment_draws_then_applies():
    preset = presets.KAGGLE75
    sample = make_sample(9, preset, 25, 0.1)
    got = numpy_augment.augment(np.random.default_rng(3), sample, DEFAULT, preset)
    params = reference.draw(np.random.default_rng(3), DEFAULT, preset, FRAMES)
    assert_same(got, reference.apply(sample, params, DEFAULT, preset))
