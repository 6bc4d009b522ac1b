"""Losses against explicit references: CTC against a sum over every alignment."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.decoding.ctc import collapse
from aslx.objectives import losses


def brute_force_ctc(logits: np.ndarray, label: list[int], blank_id: int) -> float:
    """−log Σ over every path of ``T`` symbols that collapses to ``label`` of Π P(symbol)."""
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[-1]), repeat=len(logits)):
        if collapse(path, blank_id) == label:
            total += np.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
    return -np.log(total)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    frames=st.integers(1, 5),
    label=st.lists(st.integers(0, 1), min_size=1, max_size=3),
    blank_id=st.sampled_from([0, 2]),
)
def test_ctc_equals_the_sum_over_all_alignments(seed, frames, label, blank_id):
    """On a 3-symbol vocabulary, padded to T = 6 and S = 4, the per-example loss equals the
    explicit sum over every alignment (labels avoid the blank's id)."""
    symbols = [s for s in range(3) if s != blank_id]
    label = [symbols[i] for i in label]
    needed = len(label) + sum(a == b for a, b in zip(label, label[1:]))
    if needed > frames:
        return  # no path exists; CTC's loss is +inf there
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(6, 3)).astype(np.float32) * 2
    frame_mask = np.arange(6) < frames
    labels = np.array(label + [-1] * (4 - len(label)), np.int32)
    label_mask = np.arange(4) < len(label)
    _, nll = losses.ctc(
        jnp.asarray(logits[None]),
        jnp.asarray(frame_mask[None]),
        jnp.asarray(labels[None]),
        jnp.asarray(label_mask[None]),
        blank_id,
    )
    want = brute_force_ctc(logits[:frames].astype(np.float64), label, blank_id)
    np.testing.assert_allclose(float(nll[0]), want, rtol=1e-4, atol=1e-4)


def test_ctc_mean_is_per_label_and_ignores_padding_examples():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(3, 8, 4)), jnp.float32)
    frame_mask = jnp.ones((3, 8), bool)
    labels = jnp.asarray([[1, 2, -1], [1, 1, 2], [2, -1, -1]], jnp.int32)
    label_mask = labels >= 0
    mean, nll = losses.ctc(
        logits,
        frame_mask,
        labels,
        label_mask,
        blank_id=0,
        example_mask=jnp.asarray([True, True, False]),
    )
    np.testing.assert_allclose(mean, (nll[0] / 2 + nll[1] / 3) / 2, rtol=1e-6)


def test_distillation_learns_the_teachers_argmax_and_leaves_the_teacher_alone():
    rng = np.random.default_rng(1)
    student = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    teacher = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    mask = jnp.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    mean, per_example = losses.distillation(student, teacher, mask)
    log_p = jax.nn.log_softmax(student)
    target = teacher.argmax(-1)
    ce = -jnp.take_along_axis(log_p, target[..., None], -1)[..., 0]
    np.testing.assert_allclose(per_example[0], ce[0, :3].mean(), rtol=1e-6)
    np.testing.assert_allclose(per_example[1], ce[1].mean(), rtol=1e-6)
    grad = jax.grad(lambda t: losses.distillation(student, t, mask)[0])(teacher)
    assert float(jnp.abs(grad).max()) == 0.0


def test_distillation_averages_over_the_batchs_frames_or_per_clip():
    rng = np.random.default_rng(2)
    student = rng.normal(size=(3, 6, 5)).astype(np.float32)
    teacher = rng.normal(size=(3, 6, 5)).astype(np.float32)
    mask = np.asarray([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], bool)
    counts = np.asarray([True, True, False])  # the third clip is padding
    # by hand, in float64: every real frame of the counted clips, 2 + 6 of them
    log_p = student - np.log(np.exp(student.astype(np.float64)).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_p, teacher.argmax(-1)[..., None], -1)[..., 0]
    frames = (ce[0, :2].sum() + ce[1].sum()) / 8
    clips = (ce[0, :2].mean() + ce[1].mean()) / 2
    args = (jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(mask), jnp.asarray(counts))
    np.testing.assert_allclose(losses.distillation(*args)[0], frames, rtol=1e-5)
    np.testing.assert_allclose(losses.distillation(*args, average="frames")[0], frames, rtol=1e-5)
    np.testing.assert_allclose(losses.distillation(*args, average="examples")[0], clips, rtol=1e-5)
    assert abs(frames - clips) > 1e-3  # the two rules differ on clips of unequal length
    with pytest.raises(ValueError, match="average must be one of"):
        losses.distillation(*args, average="clips")


def test_classification_matches_log_softmax():
    logits = jnp.asarray([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    ids = jnp.asarray([0, 2, 1])
    mean, per_example = losses.classification(logits, ids, jnp.asarray([True, True, False]))
    want = -jax.nn.log_softmax(logits)[jnp.arange(3), ids]
    np.testing.assert_allclose(per_example, want, rtol=1e-6)
    np.testing.assert_allclose(mean, want[:2].mean(), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_moves_weight_off_the_class(smoothing):
    logits = jnp.asarray([[5.0, 0.0, 0.0]])
    plain = losses.classification(logits, jnp.asarray([0]))[0]
    smoothed = losses.classification(logits, jnp.asarray([0]), label_smoothing=smoothing)[0]
    assert float(smoothed) > float(plain)
