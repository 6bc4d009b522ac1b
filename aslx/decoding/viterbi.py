"""Viterbi forced alignment of a label to a CTC model's outputs, and the alignments file.

CTC (Graves, Fernández, Gomez and Schmidhuber 2006, "Connectionist Temporal Classification:
Labelling Unsegmented Sequence Data with Recurrent Neural Networks", ICML) scores a label
``l = l_1 … l_m`` by summing over every frame path that collapses to it. The paths are walks
over the blank-interleaved label ``l' = _ l_1 _ l_2 … _ l_m _`` (``S' = 2m + 1`` states; state
``2k + 1`` emits ``l_{k+1}``, even states emit the blank ``_``). From state ``s`` a frame may

* stay at ``s`` (a repeat of its symbol),
* advance to ``s + 1``,
* skip to ``s + 2`` from a label state over the blank to the next label, when the two labels
  differ (between equal labels the blank is what separates them, so it cannot be skipped).

A path starts in state 0 or 1 and ends in state ``S' − 1`` or ``S' − 2``. Forced alignment
replaces the forward algorithm's sum by a max (Viterbi): with ``y_t(c)`` the log-probability of
symbol ``c`` at frame ``t``,

    δ_0(s)  = y_0(l'_s)                                        for s ∈ {0, 1}, else −∞
    δ_t(s)  = y_t(l'_s) + max(δ_{t−1}(s), δ_{t−1}(s − 1), [skip(s)] δ_{t−1}(s − 2))
    best    = max(δ_{T−1}(S' − 1), δ_{T−1}(S' − 2))

and back-pointers recover the arg-max path. The result is returned as **per-frame label
positions**: ``k`` (0-based index into the label) for a frame in state ``2k + 1`` (the label's
first frame and its repeats), ``-1`` for a frame on a blank. Over the labelled frames the
positions are non-decreasing and every position ``0 … m − 1`` appears; that is what temporal
CutMix (:mod:`aslx.augment.cutmix`) needs. A label fits in ``T`` frames only when
``T ≥ m + (equal neighbours)``: each label takes a frame, and equal neighbours a blank between.

Ties are broken the same way in both implementations: stay before advance before skip, and
ending on the final blank before ending on the last label. :func:`viterbi_align` runs on the
host in float64 (the reference); :func:`viterbi_align_batch` is the same recursion in JAX over
padded ``[B, T, V]`` batches (``lax.scan``, usable inside ``jit`` and ``vmap``), in the
log-probs' dtype.

The alignments *file* that ``python -m aslx.align`` writes from these is
:mod:`aslx.records.alignments`.
"""

from __future__ import annotations

import numpy as np

from aslx.ctc_frames import min_frames
from aslx.input import fit
from aslx.records.alignments import NO_LABEL


def _check_labels(labels: np.ndarray, vocab_size: int, blank_id: int) -> None:
    bad = (labels < 0) | (labels >= vocab_size) | (labels == blank_id)
    if bad.any():
        raise ValueError(
            f"label ids must be in [0, {vocab_size}) and not the blank ({blank_id}); "
            f"got {labels[bad].tolist()}"
        )


def viterbi_align(log_probs, labels, blank_id: int) -> np.ndarray:
    """The most probable CTC path of ``labels`` through ``log_probs``, as label positions.

    Args:
      log_probs: ``[frames, V]`` per-frame log-probabilities (real frames only).
      labels: ``[S]`` label ids (no blank).
      blank_id: the CTC blank's id.

    Returns:
      ``[frames]`` int32: the label position (0-based index into ``labels``) each frame emits,
      ``-1`` on blanks.

    Raises:
      ValueError: the label needs more frames than there are, an id is out of range, the
        log-probabilities hold NaN, or every path has probability 0.
    """
    log_probs = np.asarray(log_probs, np.float64)
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be [frames, V], got shape {log_probs.shape}")
    labels = np.asarray(labels, np.int64).reshape(-1)
    frames, vocab_size = log_probs.shape
    _check_labels(labels, vocab_size, blank_id)
    need = min_frames(labels)
    if need > frames:
        raise ValueError(
            f"a label of {labels.size} ids needs at least {need} frames (one per label plus a "
            f"blank between equal neighbours), there are {frames}"
        )
    if np.isnan(log_probs).any():
        raise ValueError("log_probs holds NaN")
    m = labels.size
    if m == 0:
        return np.full(frames, NO_LABEL, np.int32)
    states = 2 * m + 1
    extended = np.full(states, blank_id, np.int64)
    extended[1::2] = labels
    skip = np.zeros(states, bool)
    skip[3::2] = labels[1:] != labels[:-1]  # label state 2k+1 may come from 2k-1 over a blank
    emit = log_probs[:, extended]  # [frames, S']
    delta = np.full(states, -np.inf)
    delta[:2] = emit[0, :2]
    back = np.zeros((frames, states), np.int8)  # how many states the step into s advanced
    never = np.full(2, -np.inf)
    for t in range(1, frames):
        candidates = np.stack(
            [
                delta,
                np.concatenate([never[:1], delta[:-1]]),
                np.where(skip, np.concatenate([never, delta[:-2]]), -np.inf),
            ]
        )
        choice = candidates.argmax(0)  # the first maximum: stay, then advance, then skip
        back[t] = choice
        delta = candidates[choice, np.arange(states)] + emit[t]
    state = states - 1 if delta[-1] >= delta[-2] else states - 2
    if delta[state] == -np.inf:
        raise ValueError("every CTC path of the label has probability 0 (log_probs are -inf)")
    path = np.empty(frames, np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= back[t, state]
    return np.where(path % 2 == 1, (path - 1) // 2, NO_LABEL).astype(np.int32)


def symbols(alignment, labels, blank_id: int) -> np.ndarray:
    """``[frames]`` the symbol each frame emits under ``alignment`` (labels or the blank)."""
    alignment = np.asarray(alignment)
    labels = np.asarray(labels).reshape(-1)
    safe = np.clip(alignment, 0, max(labels.size - 1, 0))
    picked = labels[safe] if labels.size else np.zeros_like(alignment)
    return np.where(alignment >= 0, picked, blank_id)


def score(log_probs, alignment, labels, blank_id: int) -> float:
    """Log-probability (float64) of the path that ``alignment`` describes."""
    log_probs = np.asarray(log_probs, np.float64)
    path = symbols(alignment, labels, blank_id)
    return float(log_probs[np.arange(len(path)), path].sum())


def _viterbi_one(log_probs, frame_mask, labels, label_mask, blank_id):
    """One padded example of :func:`viterbi_align_batch` (JAX)."""
    import jax
    import jax.numpy as jnp

    frames, _ = log_probs.shape
    size = labels.shape[0]
    states = 2 * size + 1
    n = frame_mask.sum()
    m = label_mask.sum()
    neg = jnp.asarray(-jnp.inf, log_probs.dtype)
    labels = jnp.where(label_mask, labels, blank_id)  # padding ids would gather out of range
    extended = jnp.full(states, blank_id, labels.dtype).at[1::2].set(labels)
    state_ids = jnp.arange(states)
    real_state = state_ids < 2 * m + 1
    differ = jnp.concatenate([jnp.zeros(1, bool), labels[1:] != labels[:-1]])
    skip = jnp.zeros(states, bool).at[1::2].set(differ & label_mask)
    emit = jnp.where(real_state, jnp.take(log_probs, extended, axis=1), neg)  # [T, S']
    first = jnp.where(state_ids < 2, emit[0], neg)

    def forward(delta, frame):
        e, real = frame
        advance = jnp.concatenate([neg[None], delta[:-1]])
        jump = jnp.where(skip, jnp.concatenate([jnp.stack([neg, neg]), delta[:-2]]), neg)
        candidates = jnp.stack([delta, advance, jump])
        choice = jnp.argmax(candidates, 0)  # the first maximum: stay, advance, skip
        best = jnp.take_along_axis(candidates, choice[None], 0)[0] + e
        # Padding frames leave the walk where it is, so the last real frame decides the end.
        return jnp.where(real, best, delta), jnp.where(real, choice, 0).astype(jnp.int8)

    delta, back = jax.lax.scan(forward, first, (emit[1:], frame_mask[1:]))  # back: [T-1, S']
    last = 2 * m
    final = jnp.where((m > 0) & (delta[jnp.maximum(last - 1, 0)] > delta[last]), last - 1, last)
    best = delta[final]

    def backward(state, pointers):
        return state - pointers[state], state

    start, later = jax.lax.scan(backward, final, back, reverse=True)
    path = jnp.concatenate([start[None], later])  # later[t - 1] is the state at frame t
    need = m + (~differ[1:] & label_mask[1:]).sum()
    ok = (n >= need) & (jnp.isfinite(best) | (n == 0))
    positions = jnp.where(path % 2 == 1, (path - 1) // 2, NO_LABEL)
    alignment = jnp.where(frame_mask & ok, positions, NO_LABEL).astype(jnp.int32)
    return alignment, jnp.where(n > 0, best, 0.0).astype(log_probs.dtype), ok


def viterbi_align_batch(log_probs, frame_mask, labels, label_mask, blank_id: int):
    """:func:`viterbi_align` over a padded batch, in JAX (jit it with ``blank_id`` static).

    Args:
      log_probs: ``[B, T, V]`` per-frame log-probabilities.
      frame_mask: ``[B, T]`` bool, real frames (a prefix of each row).
      labels: ``[B, S]`` int label ids; anything past the label.
      label_mask: ``[B, S]`` bool, real label positions (a prefix of each row).
      blank_id: the CTC blank's id (a Python int).

    Returns:
      ``(alignment [B, T] int32, score [B], ok [B] bool)``: label positions per frame (``-1`` on
      blanks and padding), the best path's log-probability, and whether an alignment exists
      (the label fits the real frames and some path has non-zero probability); rows that are
      not ``ok`` are all ``-1``.
    """
    import jax

    return jax.vmap(lambda *row: _viterbi_one(*row, blank_id))(
        log_probs, frame_mask, labels, label_mask
    )


def to_record_frames(
    fitted: np.ndarray, record_frames: int, max_frames: int, long_clips: str = fit.RESAMPLE
) -> np.ndarray:
    """``[record_frames]`` int32: an alignment of the fitted frames (``[min(n, T)]``, a longer
    clip fitted by ``long_clips``) carried to every stored frame of the record (see
    :func:`aslx.input.fit.stored_to_fitted`)."""
    fitted = np.asarray(fitted, np.int32)
    if len(fitted) != min(record_frames, max_frames):
        raise ValueError(
            f"{len(fitted)} fitted frames do not come from {record_frames} stored frames "
            f"fitted into {max_frames}"
        )
    return fitted[fit.stored_to_fitted(record_frames, max_frames, long_clips)]
