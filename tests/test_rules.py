"""The rules several stages share, each tested once where it is defined: CTC's frame count
(:mod:`aslx.ctc_frames`) and fitting a clip into ``max_frames`` (:mod:`aslx.input.fit`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
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
