"""On-device augmentation: every transform against the NumPy reference, the recipe's
invariants, keys, probabilities, label consistency and CutMix."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.augment import cutmix as cutmix_lib
from aslx.augment import recipe, transforms
from aslx.landmarks import preprocess, presets
from aslx.vocab import LABEL_PAD
from tests import augment_reference as ref

PRESET = presets.KAGGLE75
FRAMES, LABELS = 24, 8
L = PRESET.num_landmarks
PROPERTY = settings(max_examples=25, deadline=None)


def make_sample(
    seed: int,
    frames: int | None = None,
    labels: int | None = None,
    missing: float = 0.2,
    alignment: bool = True,
) -> dict:
    """A NumPy sample: ``frames`` real frames of ``FRAMES``, ``missing`` share of points
    missing, up to ``labels`` label ids (the prefix CTC can emit), a monotone alignment."""
    rng = np.random.default_rng(seed)
    n = frames if frames is not None else int(rng.integers(1, FRAMES + 1))
    m = labels if labels is not None else int(rng.integers(1, min(n, LABELS) + 1))
    frame_mask = np.arange(FRAMES) < n
    landmark_mask = (rng.random((FRAMES, L)) >= missing) & frame_mask[:, None]
    points = rng.uniform(0.1, 0.9, (FRAMES, L, 3)).astype(np.float32)
    label_ids = rng.integers(0, 5, LABELS)  # a small alphabet: repeats happen
    label_mask = np.arange(LABELS) < m
    sample = {
        "landmarks": np.where(landmark_mask[..., None], points, 0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
        "labels": np.where(label_mask, label_ids, LABEL_PAD).astype(np.int32),
        "label_mask": label_mask,
    }
    if alignment:
        # Label k spans a contiguous run of frames; some frames show no label (-1).
        cuts = (
            np.sort(rng.choice(np.arange(1, n), size=min(m - 1, n - 1), replace=False))
            if m > 1
            else np.array([], int)
        )
        align = np.searchsorted(cuts, np.arange(FRAMES), side="right").astype(np.int32)
        align[rng.random(FRAMES) < 0.2] = -1
        sample["alignment"] = np.where(frame_mask, align, -1).astype(np.int32)
    return ref.align_ctc_label(sample)  # as ingest guarantees: CTC can emit the label


def as_jax(sample):
    return {k: jnp.asarray(v) for k, v in sample.items()}


def assert_samples_close(got, want, atol=1e-5):
    assert got.keys() == want.keys()
    for key in want:
        g, w = np.asarray(got[key]), np.asarray(want[key])
        if w.dtype.kind in "bi":
            np.testing.assert_array_equal(g, w, err_msg=key)
        else:
            np.testing.assert_allclose(g, w, atol=atol, err_msg=key)


def draw_params(seed: int):
    params = recipe.draw(jax.random.key(seed), recipe.AugmentConfig(), PRESET, FRAMES)
    return {k: np.asarray(v) for k, v in params.items()}


# --- each transform against the NumPy reference -----------------------------------------------

SEEDS = st.integers(0, 10_000)


@PROPERTY
@given(seed=SEEDS, missing=st.floats(0, 1))
def test_normalize_matches_reference(seed, missing):
    sample = make_sample(seed, missing=missing)
    got = jax.jit(preprocess.normalize, static_argnums=1)(as_jax(sample), PRESET)
    assert_samples_close(got, ref.normalize(dict(sample), PRESET.group_sizes), atol=1e-4)


@PROPERTY
@given(seed=SEEDS, flip=st.booleans())
def test_time_flip_matches_reference(seed, flip):
    sample = make_sample(seed)
    got = jax.jit(transforms.time_flip)(as_jax(sample), flip)
    assert_samples_close(got, ref.time_flip(dict(sample), flip))


@PROPERTY
@given(seed=SEEDS, scale=st.floats(0.3, 2.5), flip=st.booleans(), missing=st.floats(0, 0.8))
def test_resample_matches_np_interp(seed, scale, flip, missing):
    """Coordinates and the missing-mask interpolate like np.interp; the result still fits T."""
    sample = make_sample(seed, missing=missing)
    got = jax.jit(transforms.resample)(as_jax(sample), jnp.float32(scale), flip)
    want = ref.resample(dict(sample), np.float32(scale), flip)
    assert_samples_close(got, want, atol=1e-5)
    n = sample["frame_mask"].sum()
    assert got["frame_mask"].sum() == min(
        max(round(float(np.float32(n) * np.float32(scale))), 1), FRAMES
    )


def test_resample_of_a_full_clip_equals_np_interp_per_coordinate():
    sample = make_sample(3, frames=10, missing=0.0)
    got = transforms.resample(as_jax(sample), jnp.float32(1.7))
    source = np.arange(17) * 9 / 16
    for landmark in (0, 30, 74):
        for axis in range(3):
            want = np.interp(source, np.arange(10), sample["landmarks"][:10, landmark, axis])
            np.testing.assert_allclose(got["landmarks"][:17, landmark, axis], want, atol=1e-6)


@PROPERTY
@given(seed=SEEDS, length=st.integers(1, FRAMES))
def test_truncate_and_align_match_reference(seed, length):
    sample = make_sample(seed)
    got = jax.jit(transforms.truncate, static_argnums=1)(as_jax(sample), length)
    want = ref.truncate(dict(sample), length)
    assert_samples_close(got, want)
    assert_samples_close(jax.jit(transforms.align_ctc_label)(got), ref.align_ctc_label(want))


def test_align_keeps_the_longest_emittable_prefix():
    sample = make_sample(0, frames=5, labels=6)
    sample["labels"][:6] = [1, 1, 2, 3, 3, 4]  # 1 1 needs 3 frames, 1 1 2 3 needs 5
    out = transforms.align_ctc_label(as_jax(sample))
    assert list(np.asarray(out["labels"])[:5]) == [1, 1, 2, 3, LABEL_PAD]
    assert int(out["label_mask"].sum()) == 4


@PROPERTY
@given(seed=SEEDS, block=st.integers(1, 5))
def test_block_cover_matches_reference(seed, block):
    starts = np.random.default_rng(seed).random(FRAMES) < 0.2
    np.testing.assert_array_equal(
        transforms.block_cover(jnp.asarray(starts), block), ref.block_cover(starts, block)
    )


@PROPERTY
@given(seed=SEEDS)
def test_masks_and_noise_match_reference(seed):
    sample, params = make_sample(seed), draw_params(seed)
    params["hidden"] = np.random.default_rng(seed).random((FRAMES, L)) < 0.3
    got = jax.jit(transforms.frame_block_mask)(as_jax(sample), params["hidden"])
    assert_samples_close(got, ref.frame_block_mask(dict(sample), params["hidden"]))
    frames = np.random.default_rng(seed + 1).random(FRAMES) < 0.5
    got = jax.jit(transforms.frame_noise, static_argnums=3)(
        as_jax(sample), frames, params["noise"], 0.3
    )
    assert_samples_close(got, ref.frame_noise(dict(sample), frames, params["noise"], 0.3))
    dropped = np.random.default_rng(seed + 2).random(L) < 0.3
    got = jax.jit(transforms.feature_mask)(as_jax(sample), dropped)
    assert_samples_close(got, ref.feature_mask(dict(sample), dropped))


@pytest.mark.parametrize("preset", list(presets.PRESETS.values()), ids=list(presets.PRESETS))
def test_permute_equals_fancy_indexing(preset):
    x = np.random.default_rng(0).random((3, preset.num_landmarks, 2)).astype(np.float32)
    permutation = preset.mirror_permutation()
    np.testing.assert_array_equal(
        preprocess.permute(jnp.asarray(x), permutation, 1), x[:, permutation]
    )


@PROPERTY
@given(seed=SEEDS, flips=st.lists(st.booleans(), min_size=3, max_size=3))
def test_horizontal_flip_matches_reference(seed, flips):
    sample = make_sample(seed)
    flip = np.array(flips)
    got = _flip(as_jax(sample), flip)
    want = ref.horizontal_flip(dict(sample), flip, PRESET.mirror_permutation(), PRESET.group_ids)
    assert_samples_close(got, want)


_flip = jax.jit(
    functools.partial(
        transforms.horizontal_flip,
        permutation=PRESET.mirror_permutation(),
        group_ids=PRESET.group_ids,
    )
)


def test_flipping_twice_is_the_identity():
    sample = as_jax(make_sample(4))
    flip = jnp.ones(3, bool)
    once = transforms.horizontal_flip(sample, flip, PRESET.mirror_permutation(), PRESET.group_ids)
    twice = transforms.horizontal_flip(once, flip, PRESET.mirror_permutation(), PRESET.group_ids)
    assert_samples_close(twice, sample, atol=0)


@PROPERTY
@given(seed=SEEDS)
def test_rotation_matches_explicit_rotation_matrices(seed):
    """The interpolated rotation equals, frame by frame, ``Rz Ry Rx (p − c) + c`` built from
    explicit elementary matrices."""
    sample, params = make_sample(seed), draw_params(seed)
    rotate = np.array([True, False, True])
    got = jax.jit(transforms.interpolated_rotation, static_argnums=1)(
        as_jax(sample), PRESET.group_sizes, rotate, params["angles"], params["centres"]
    )
    g = len(PRESET.group_sizes)
    want = ref.spatial(
        dict(sample),
        PRESET.group_sizes,
        rotate,
        params["angles"],
        params["centres"],
        np.zeros((g, 2)),
        np.ones((g, 1)),
        np.zeros((g, 3)),
    )
    assert_samples_close(got, want, atol=1e-5)


@PROPERTY
@given(seed=SEEDS)
def test_shear_scale_shift_match_reference(seed):
    sample, params = make_sample(seed), draw_params(seed)
    got = jax.jit(transforms.affine, static_argnums=1)(
        as_jax(sample), PRESET.group_sizes, params["shear"], params["scale"], params["shift"]
    )
    g = len(PRESET.group_sizes)
    off = np.zeros((g, 2, 3))
    want = ref.spatial(
        dict(sample),
        PRESET.group_sizes,
        np.zeros(g, bool),
        off,
        off,
        params["shear"],
        params["scale"],
        params["shift"],
    )
    assert_samples_close(got, want, atol=1e-5)


def test_rotation_matrices_are_rotations():
    angles = jax.random.uniform(jax.random.key(0), (50, 3), minval=-3, maxval=3)
    r = np.asarray(transforms.rotation_matrices(angles), np.float64)
    np.testing.assert_allclose(
        r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-5)
    expected = ref.rotation_matrix(*np.asarray(angles[7], np.float64))
    np.testing.assert_allclose(r[7], expected, atol=1e-5)


@PROPERTY
@given(seed=SEEDS)
def test_whole_recipe_matches_reference(seed):
    """The full default recipe with the same drawn parameters equals the NumPy recipe."""
    sample, params = make_sample(seed), draw_params(seed)
    got = _apply_default(as_jax(sample), params)
    want = ref.apply(sample, params, recipe.AugmentConfig(), PRESET)
    assert_samples_close(got, want, atol=5e-5)


@jax.jit
def _apply_default(sample, params):
    return recipe.apply(sample, params, recipe.AugmentConfig(), PRESET)


# --- the recipe: invariants, keys, probabilities ----------------------------------------------


def make_batch(seed: int, size: int = 6, alignment: bool = True) -> dict:
    samples = [make_sample(seed * 100 + i, alignment=alignment) for i in range(size)]
    return {k: jnp.asarray(np.stack([s[k] for s in samples])) for k in samples[0]}


@functools.partial(jax.jit, static_argnums=(2,))
def _augment(key, batch, config):
    return recipe.augment_batch(key, batch, config, PRESET)


@PROPERTY
@given(seed=SEEDS)
def test_invariants_hold_after_the_recipe(seed):
    """Shapes and dtypes never change; masked points are exactly 0; padding frames hold no
    points; labels are a prefix with LABEL_PAD after it; CTC can emit every label."""
    batch = make_batch(seed)
    out = _augment(jax.random.key(seed), batch, recipe.AugmentConfig())
    for key in batch:
        assert out[key].shape == batch[key].shape and out[key].dtype == batch[key].dtype
    mask = np.asarray(out["landmark_mask"])
    assert np.all(np.asarray(out["landmarks"])[~mask] == 0)
    assert not mask[~np.asarray(out["frame_mask"])].any()
    for i in range(len(mask)):
        frames, labels = np.asarray(out["frame_mask"][i]), np.asarray(out["label_mask"][i])
        assert frames[: frames.sum()].all() and labels[: labels.sum()].all()
        assert (np.asarray(out["labels"][i])[~labels] == LABEL_PAD).all()
        ids = np.asarray(out["labels"][i])[labels]
        assert len(ids) + np.sum(ids[1:] == ids[:-1]) <= frames.sum()


@PROPERTY
@given(seed=SEEDS)
def test_missing_stays_missing_without_moving_transforms(seed):
    """With frames and landmarks kept in place (no flips, no resampling), a missing point is
    never made valid by any other transform."""
    config = dataclasses.replace(
        recipe.AugmentConfig(), time_flip_p=0.0, resample_p=0.0, flip_p=0.0, cutmix_p=0.0
    )
    batch = make_batch(seed)
    out = _augment(jax.random.key(seed), batch, config)
    assert not np.any(np.asarray(out["landmark_mask"]) & ~np.asarray(batch["landmark_mask"]))


def test_same_key_same_output_other_key_other_output():
    batch = make_batch(1)
    a = _augment(jax.random.key(5), batch, recipe.AugmentConfig())
    b = _augment(jax.random.key(5), batch, recipe.AugmentConfig())
    c = _augment(jax.random.key(6), batch, recipe.AugmentConfig())
    assert_samples_close(a, b, atol=0)
    assert not np.allclose(np.asarray(a["landmarks"]), np.asarray(c["landmarks"]))


def test_examples_get_their_own_keys():
    batch = make_batch(2)
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x[:1], x.shape), batch)  # six equal samples
    out = _augment(jax.random.key(0), batch, recipe.AugmentConfig())
    assert not np.allclose(np.asarray(out["landmarks"][0]), np.asarray(out["landmarks"][1]))


OFF = recipe.BlockMask(0.5, 3, 0.0)
ON = recipe.BlockMask(0.5, 3, 1.0)
#: (name, the transform's ranges with probability 0, the same with probability 1).
PROBABILITY_CASES = [
    ("time_flip", {"time_flip_p": 0.0}, {"time_flip_p": 1.0}),
    (
        "resample",
        {"resample_p": 0.0, "resample_limit": 0.5},
        {"resample_p": 1.0, "resample_limit": 0.5},
    ),
    (
        "block_mask",
        {"hand_block_mask": OFF, "other_block_mask": OFF},
        {"hand_block_mask": ON, "other_block_mask": ON},
    ),
    ("frame_noise", {"frame_noise_p": 0.0}, {"frame_noise_p": 1.0, "frame_noise_ratio": 0.5}),
    ("feature_mask", {"feature_mask_p": 0.0}, {"feature_mask_p": 1.0, "feature_mask_ratio": 0.5}),
    ("flip", {"flip_p": 0.0}, {"flip_p": 1.0}),
    (
        "rotation",
        {"rotation_p": 0.0, "rotation_angle": 1.0},
        {"rotation_p": 1.0, "rotation_angle": 1.0},
    ),
    ("cutmix", {"cutmix_p": 0.0}, {"cutmix_p": 1.0}),
]


@pytest.mark.parametrize(
    ("name", "off", "on"), PROBABILITY_CASES, ids=[c[0] for c in PROBABILITY_CASES]
)
def test_probability_zero_is_the_identity(name, off, on):
    batch = make_batch(3)
    unchanged = _augment(jax.random.key(1), batch, recipe.AugmentConfig.identity(**off))
    assert_samples_close(unchanged, batch, atol=0)
    changed = _augment(jax.random.key(1), batch, recipe.AugmentConfig.identity(**on))
    assert any(not np.array_equal(np.asarray(changed[k]), np.asarray(batch[k])) for k in batch)


def test_identity_config_is_the_identity():
    batch = make_batch(4)
    out = _augment(jax.random.key(0), batch, recipe.AugmentConfig.identity())
    assert_samples_close(out, batch, atol=0)


def test_default_recipe_matches_the_design_brief():
    c = recipe.AugmentConfig()
    assert (c.time_flip_p, c.resample_p, c.resample_limit) == (0.5, 0.5, 0.5)
    assert c.hand_block_mask == recipe.BlockMask(0.8, 3, 0.1)
    assert c.other_block_mask == recipe.BlockMask(0.1, 3, 0.25)
    assert (c.frame_noise_ratio, c.frame_noise_stdev, c.frame_noise_p) == (0.1, 0.3, 0.25)
    assert (c.feature_mask_ratio, c.feature_mask_p, c.flip_p) == (0.1, 0.1, 0.5)
    assert (c.rotation_p, c.rotation_centre_stdev, c.rotation_angle) == (0.5, 0.2, np.pi / 4)
    assert (c.shear_limit, c.scale_limit, c.shift_stdev) == (0.2, 0.2, 0.1)


def test_block_start_probability_covers_the_ratio():
    """Blocks started with start_probability() cover about `ratio` of the frames."""
    for block in (recipe.BlockMask(0.8, 3, 1.0), recipe.BlockMask(0.1, 3, 1.0)):
        starts = jax.random.bernoulli(jax.random.key(0), block.start_probability(), (20_000,))
        assert (
            abs(float(transforms.block_cover(starts, block.block_size).mean()) - block.ratio) < 0.02
        )


# --- labels stay consistent with frames ------------------------------------------------------


def encode_labels_in_frames(sample: dict) -> dict:
    """Writes each frame's aligned label id into landmark 0's x (-1 for frames with none), so
    a test can read which label a frame shows after frames move."""
    s = dict(sample)
    shown = np.where(s["alignment"] >= 0, s["labels"][np.maximum(s["alignment"], 0)], -1)
    s["landmarks"] = s["landmarks"].copy()
    s["landmarks"][:, 0, 0] = np.where(s["frame_mask"], shown, 0)
    s["landmark_mask"] = s["landmark_mask"].copy()
    s["landmark_mask"][:, 0] = s["frame_mask"]
    return s


def assert_frames_show_their_labels(sample: dict):
    align = np.asarray(sample["alignment"])
    labels = np.asarray(sample["labels"])
    shown = np.asarray(sample["landmarks"])[:, 0, 0]
    for t in np.flatnonzero(np.asarray(sample["frame_mask"]) & (align >= 0)):
        assert sample["label_mask"][align[t]]
        assert labels[align[t]] == shown[t], (t, align[t])


@PROPERTY
@given(seed=SEEDS)
def test_time_flip_keeps_labels_consistent_with_frames(seed):
    sample = encode_labels_in_frames(make_sample(seed, missing=0.0))
    out = jax.jit(transforms.time_flip)(as_jax(sample), True)
    assert_frames_show_their_labels(out)
    m = sample["label_mask"].sum()
    np.testing.assert_array_equal(np.asarray(out["labels"])[:m], sample["labels"][:m][::-1])


def cutmix_batch_of_eight(seed: int) -> tuple[list[dict], dict]:
    """Eight label-encoded samples and CutMix (p = 1) of their batch."""
    samples = [encode_labels_in_frames(make_sample(seed * 10 + i, missing=0.0)) for i in range(8)]
    batch = {k: jnp.asarray(np.stack([s[k] for s in samples])) for k in samples[0]}
    return samples, jax.jit(cutmix_lib.cutmix, static_argnums=2)(jax.random.key(seed), batch, 1.0)


@PROPERTY
@given(seed=SEEDS)
def test_cutmix_keeps_labels_consistent_and_within_limits(seed):
    """Every spliced frame shows the label it is aligned to; no label is empty, longer than
    S, or more than CTC can emit in the frames; examples whose splice is impossible are
    unchanged."""
    _, out = cutmix_batch_of_eight(seed)
    for i in range(8):
        sample = {k: np.asarray(v[i]) for k, v in out.items()}
        assert_frames_show_their_labels(sample)
        n, m = sample["frame_mask"].sum(), sample["label_mask"].sum()
        ids = sample["labels"][sample["label_mask"]]
        assert 1 <= m <= LABELS and n <= FRAMES
        assert m + np.sum(ids[1:] == ids[:-1]) <= n
        assert sample["frame_mask"][:n].all() and sample["label_mask"][:m].all()


def test_cutmix_splices_examples():
    """CutMix really splices: over four fixed batches of eight (one draw alone can hold no
    possible splice: the random test samples often have labels too long for another's span),
    several examples change (9 of 32 when written)."""
    changed = 0
    for seed in range(4):
        samples, out = cutmix_batch_of_eight(seed)
        for i in range(8):
            changed += not np.array_equal(np.asarray(out["landmarks"][i]), samples[i]["landmarks"])
    assert changed >= 4


def test_boundaries_are_the_first_frames_at_or_after_each_label():
    alignment = jnp.asarray([0, 0, 1, 1, -1, 2, 2, 2, -1, -1])
    b = cutmix_lib.boundaries(alignment, jnp.arange(10) < 8, 3)
    assert list(np.asarray(b)) == [0, 2, 5, 8]


def test_cutmix_splices_frames_and_labels_together():
    """A hand-checked splice: label 1 of this clip replaced by label 0 of the other."""

    def clip(labels, alignment, t=10, s=4):
        n, m = len(alignment), len(labels)
        return {
            "landmarks": jnp.broadcast_to(
                jnp.asarray(np.arange(t) + 100 * labels[0], jnp.float32)[:, None, None], (t, 2, 3)
            ),
            "landmark_mask": jnp.broadcast_to((jnp.arange(t) < n)[:, None], (t, 2)),
            "frame_mask": jnp.arange(t) < n,
            "labels": jnp.asarray(labels + [LABEL_PAD] * (s - m), jnp.int32),
            "label_mask": jnp.arange(s) < m,
            "alignment": jnp.asarray(alignment + [-1] * (t - n), jnp.int32),
        }

    this = clip([10, 11, 12], [0, 0, 1, 1, -1, 2, 2, 2])
    other = clip([20, 21], [0, 0, 0, 1, 1, -1])
    # u picks k1 = 1, k2 = 2 in this clip and j1 = 0, j2 = 1 in the other.
    out = cutmix_lib._splice_one(jnp.asarray([0.3, 0.4, 0.0, 0.5]), jnp.bool_(True), this, other)
    assert list(np.asarray(out["labels"])) == [10, 20, 12, LABEL_PAD]
    assert list(np.asarray(out["alignment"])) == [0, 0, 1, 1, 1, 2, 2, 2, -1, -1]
    frames = np.asarray(out["landmarks"])[:, 0, 0]
    assert list(frames[:8]) == [1000, 1001, 2000, 2001, 2002, 1005, 1006, 1007]
    assert int(out["frame_mask"].sum()) == 8 and not np.asarray(out["landmarks"])[8:].any()


def test_cutmix_skipped_without_alignments():
    batch = make_batch(5, alignment=False)
    out = _augment(jax.random.key(0), batch, recipe.AugmentConfig.identity(cutmix_p=1.0))
    assert_samples_close(out, batch, atol=0)
