"""The rules several stages share, each tested once where it is defined: CTC's frame count
(:mod:`aslx.ctc_frames`), fitting a clip into ``max_frames`` and the length buckets it runs at
(:mod:`aslx.input.fit`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx import ctc_frames
from aslx.input import fit
from aslx.tf_cpu import tensorflow

# --- CTC's frame count ----------------------------------------------------------------------


def slow_frames_needed(labels: list[int]) -> int:
    """One frame per label, one more before a label equal to the previous one."""
    frames = 0
    for k, label in enumerate(labels):
        frames += 1 + (k > 0 and labels[k - 1] == label)
    return frames


def test_min_frames_counts_a_blank_between_equal_neighbours():
    assert ctc_frames.min_frames([1, 2, 3]) == 3
    assert ctc_frames.min_frames([1, 1, 1]) == 5
    assert ctc_frames.min_frames([1, 1, 2, 2, 2]) == 8
    assert ctc_frames.min_frames([]) == 0
    assert ctc_frames.fitting_prefix([1, 1, 2, 2], 4) == 3


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    real=st.integers(0, 12),
    frames=st.integers(0, 30),
)
def test_numpy_and_jax_agree_with_the_slow_count(labels, real, frames):
    real = min(real, len(labels))
    mask = np.arange(len(labels)) < real
    want_prefix = max(
        (k for k in range(real + 1) if slow_frames_needed(labels[:k]) <= frames), default=0
    )
    assert ctc_frames.min_frames(np.asarray(labels), mask) == slow_frames_needed(labels[:real])
    assert ctc_frames.fitting_prefix(np.asarray(labels), frames, mask) == want_prefix
    jitted = jax.jit(
        lambda lab, m, n: (ctc_frames.min_frames(lab, m), ctc_frames.fitting_prefix(lab, n, m))
    )
    total, prefix = jitted(jnp.asarray(labels), jnp.asarray(mask), frames)
    assert int(total) == slow_frames_needed(labels[:real]) and int(prefix) == want_prefix


# --- fitting a clip into max_frames ----------------------------------------------------------


@given(st.integers(0, 400), st.integers(0, 160))
def test_fit_indices_keep_evenly_spaced_frames(n, limit):
    kept = fit.fit_indices(n, limit)
    if limit == 0 or n <= limit:
        np.testing.assert_array_equal(kept, np.arange(n))
    else:
        assert len(kept) == limit and kept[0] == 0 and np.all(np.diff(kept) > 0)
        np.testing.assert_array_equal(kept, np.floor(np.arange(limit) * n / limit).astype(int))


def test_tensorflow_fits_as_numpy_does():
    tf = tensorflow()
    fitted = tf.function(lambda n, limit: fit.fit_indices(n, limit, tf), reduce_retracing=True)
    for n in (0, 1, 17, 64, 65, 383, 384, 385, 1000):
        for limit in (0, 64, 384):
            got = fitted(tf.constant(n), limit).numpy()
            np.testing.assert_array_equal(got, fit.fit_indices(n, limit))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 100))
def test_stored_to_fitted_inverts_the_fit(stored, max_frames):
    """Kept frames map to their own fitted index, every other frame to the nearest kept one
    (ties: the earlier), and the map never goes down."""
    source = fit.stored_to_fitted(stored, max_frames)
    assert source.shape == (stored,)
    if stored <= max_frames:
        np.testing.assert_array_equal(source, np.arange(stored))
        return
    kept = fit.fit_indices(stored, max_frames)
    np.testing.assert_array_equal(source[kept], np.arange(max_frames))
    assert (np.diff(source) >= 0).all()
    for f in range(stored):
        distance = np.abs(kept - f)
        assert source[f] == np.flatnonzero(distance == distance.min())[0]


@given(st.integers(0, 400), st.integers(0, 160))
def test_truncate_keeps_the_first_frames(n, limit):
    kept = fit.fit_indices(n, limit, long_clips="truncate")
    np.testing.assert_array_equal(kept, np.arange(min(n, limit) if limit else n))


def test_tensorflow_truncates_as_numpy_does():
    tf = tensorflow()
    fitted = tf.function(
        lambda n, limit: fit.fit_indices(n, limit, tf, "truncate"), reduce_retracing=True
    )
    for n in (0, 1, 64, 65, 1000):
        for limit in (0, 64):
            got = fitted(tf.constant(n), limit).numpy()
            np.testing.assert_array_equal(got, fit.fit_indices(n, limit, long_clips="truncate"))


def test_stored_to_fitted_after_truncation_holds_the_last_kept_frame():
    np.testing.assert_array_equal(fit.stored_to_fitted(7, 4, "truncate"), [0, 1, 2, 3, 3, 3, 3])
    np.testing.assert_array_equal(fit.stored_to_fitted(3, 4, "truncate"), [0, 1, 2])
    for policy in ("crop", "Resample"):
        with pytest.raises(ValueError, match="long_clips"):
            fit.fit_indices(7, 4, long_clips=policy)


# --- length buckets: one vocabulary ------------------------------------------------------------


def test_parse_buckets_reads_one_vocabulary():
    auto = (96, 144, 208, 384)
    assert fit.parse_buckets("auto", 384, auto) == auto
    assert fit.parse_buckets(" AUTO ", 256, auto) == (96, 144, 208, 256)  # cut to max_frames
    assert fit.parse_buckets("auto", 384, None) == (384,)  # a card from before buckets
    assert fit.parse_buckets("none", 384, auto) == (384,)
    assert fit.parse_buckets("64,128", 384) == fit.parse_buckets((64, 128), 384) == (64, 128, 384)
    # No frame limit: any counts, nothing added; 'none' leaves every clip at its own length.
    assert fit.parse_buckets("64,500", 0) == (64, 500)
    assert fit.parse_buckets("none", 0) == ()
    for bad, limit in (("64,x", 0), ("0,64", 0), ("128,64", 384), ("64,64", 384), ("", 384),
                       ("64,500", 384), ((16, 64), 40)):  # fmt: skip
        with pytest.raises(ValueError, match="buckets"):
            fit.parse_buckets(bad, limit)
    assert fit.is_none(" None") and not fit.is_none("auto") and not fit.is_none((64,))


def test_a_clip_runs_at_the_smallest_bucket_that_holds_it():
    assert [fit.run_length(n, (64, 128)) for n in (1, 64, 65, 128)] == [64, 64, 128, 128]
    assert fit.run_length(129, (64, 128)) is None and fit.run_length(5, ()) is None
