"""CTC decoding: greedy (best path) and prefix beam search.

A CTC output is a distribution over ``V`` symbols (labels plus the blank) per frame. A path
(one symbol per frame) *collapses* to a label sequence by merging repeated symbols, then
dropping blanks: ``a a _ a b b _`` → ``a a b``.

* :func:`greedy` takes the most probable symbol per frame and collapses it (best path).
* :func:`prefix_beam_search` (Hannun et al. 2014, arXiv:1408.2873) keeps the ``beam`` most
  probable label *prefixes*, each with the probability of the paths that end in a blank and of
  those that end in its last label, so it sums over the many paths of one labelling instead of
  trusting a single path. With a wide enough beam it finds the most probable labelling.
* :func:`batched_beam_search` is the same search in JAX: a static beam of ``K`` slots per
  sequence, vectorised over the batch, one ``lax.scan`` over the frames, inside ``jit``. What
  evaluation and predict use; the NumPy :func:`prefix_beam_search` is its reference.

**The batched search, frame by frame.** Each slot holds a prefix as ``p_blank`` and
``p_label`` (log-probabilities of its paths ending in a blank / in its last label), its last
label and two 32-bit hashes (of the prefix, and of the prefix without its last label). With
``total = logaddexp(p_blank, p_label)`` and the frame's log-probabilities ``y``:

* *stay*: ``p_blank' = total + y[blank]``, ``p_label' = p_label + y[last]`` (a repeat merges);
* *extend by c ≠ blank*: ``p_label' = (p_blank if c == last else total) + y[c]``;
* an extension of slot ``i`` that spells slot ``j``'s prefix (``i`` is ``j``'s parent: the
  hashes say so in O(1)) is added into ``j``'s stay instead of competing with it, which is the
  prefix merging of the reference;
* the ``K`` best of the ``K`` stays and ``K·V`` extensions become the new slots, with back
  pointers (source slot, appended label); the best final slot's labels are read back through
  them. Padding frames change nothing. Unused slots hold ``-inf``.

Greedy decoding and :func:`prefix_beam_search` run on the host in NumPy.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def collapse(path, blank_id: int) -> list[int]:
    """Merges repeats, then drops blanks."""
    out, previous = [], None
    for symbol in path:
        symbol = int(symbol)
        if symbol != previous and symbol != blank_id:
            out.append(symbol)
        previous = symbol
    return out


def greedy(logits: np.ndarray, frame_mask: np.ndarray, blank_id: int) -> list[list[int]]:
    """Best-path decoding of ``[B, T, V]`` logits (or log-probabilities) over real frames."""
    best = np.asarray(logits).argmax(-1)
    return [
        collapse(path[np.asarray(mask, bool)], blank_id) for path, mask in zip(best, frame_mask)
    ]


def _log_add(a: float, b: float) -> float:
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    high = max(a, b)
    return high + np.log1p(np.exp(-abs(a - b)))


def _add(candidates: dict, prefix: tuple, blank_part: float, label_part: float) -> None:
    entry = candidates.setdefault(prefix, [-np.inf, -np.inf])
    entry[0] = _log_add(entry[0], blank_part)
    entry[1] = _log_add(entry[1], label_part)


def prefix_beam_search(log_probs: np.ndarray, blank_id: int, beam: int = 8) -> list[int]:
    """The most probable labelling of one sequence of ``[T, V]`` log-probabilities (real frames
    only), keeping ``beam`` prefixes."""
    log_probs = np.asarray(log_probs, np.float64)
    # prefix -> (log P(paths ending in blank), log P(paths ending in the prefix's last label))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    for frame in log_probs:
        candidates: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_label) in beams.items():
            total = _log_add(p_blank, p_label)
            _add(candidates, prefix, total + frame[blank_id], -np.inf)  # stays, by a blank
            for symbol in range(len(frame)):
                if symbol == blank_id:
                    continue
                p = frame[symbol]
                if prefix and prefix[-1] == symbol:
                    _add(candidates, prefix, -np.inf, p_label + p)  # a repeat merges
                    _add(candidates, prefix + (symbol,), -np.inf, p_blank + p)  # blank between
                else:
                    _add(candidates, prefix + (symbol,), -np.inf, total + p)
        ranked = sorted(candidates.items(), key=lambda kv: -_log_add(*kv[1]))
        beams = {prefix: (b, label) for prefix, (b, label) in ranked[:beam]}
    best = max(beams.items(), key=lambda kv: _log_add(*kv[1]))
    return list(best[0])


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def beam_search(
    log_probs: np.ndarray, frame_mask: np.ndarray, blank_id: int, beam: int = 8
) -> list[list[int]]:
    """The most probable labelling of each sequence of ``[B, T, V]`` log-probabilities (frames
    where ``frame_mask`` ``[B, T]`` is True), by :func:`batched_beam_search`; label id lists."""
    labels, lengths = jax.device_get(
        batched_beam_search(
            jnp.asarray(log_probs, jnp.float32),
            jnp.asarray(frame_mask, bool),
            blank_id=int(blank_id),
            beam=int(beam),
        )
    )
    return [row[:n].tolist() for row, n in zip(labels, lengths)]


# --- the batched search (see the module docstring) -------------------------------------------

# Two independent 32-bit multiplicative hashes, 64 bits together: two distinct prefixes of one
# beam share both with a probability of about 2^-64.
_HASH_MULTIPLIERS = (0x9E3779B1, 0x85EBCA77)


def _extend_hash(hashes: jax.Array, label: jax.Array) -> jax.Array:
    """``[..., 2]`` prefix hashes → the hashes of the prefixes with ``label`` appended."""
    multipliers = jnp.asarray(_HASH_MULTIPLIERS, jnp.uint32)
    return hashes * multipliers + (label.astype(jnp.uint32) + jnp.uint32(1))[..., None]


def _beam_step(state: dict, frame: jax.Array, valid: jax.Array, blank_id: int, beam: int):
    """One frame ``[V]`` of one sequence: ``(new state, (source slot [K], appended label [K]))``,
    label -1 where the slot's prefix is its source's unchanged."""
    slots = jnp.arange(beam)
    p_blank, p_label, last = state["p_blank"], state["p_label"], state["last"]
    total = jnp.logaddexp(p_blank, p_label)
    alive = total > -jnp.inf
    symbols = frame.shape[-1]
    last_or_0 = jnp.maximum(last, 0)

    repeat = jnp.arange(symbols)[None, :] == last[:, None]  # [K, V]
    extend = jnp.where(repeat, p_blank[:, None], total[:, None]) + frame[None, :]
    extend = extend.at[:, blank_id].set(-jnp.inf)
    stay_blank = total + frame[blank_id]
    stay_label = jnp.where(last >= 0, p_label + frame[last_or_0], -jnp.inf)

    # parent_of[i, j]: slot j's prefix is slot i's plus j's last label. Beams hold distinct
    # prefixes, so a slot has at most one parent and each extension merges at most once.
    parent_of = (
        jnp.all(state["parent"][None, :, :] == state["hash"][:, None, :], axis=-1)
        & (last[None, :] >= 0)
        & alive[:, None]
        & alive[None, :]
    )
    merging = jnp.where(parent_of, extend[:, last_or_0], -jnp.inf)  # [i, j]
    stay_label = jnp.logaddexp(stay_label, jax.nn.logsumexp(merging, axis=0))
    merged = jnp.zeros((beam, symbols), jnp.int32)
    merged = merged.at[slots[:, None], last_or_0[None, :]].max(parent_of.astype(jnp.int32))
    extend = jnp.where(merged > 0, -jnp.inf, extend).reshape(-1)

    scores = jnp.concatenate([jnp.logaddexp(stay_blank, stay_label), extend])
    _, chosen = jax.lax.top_k(scores, beam)
    is_stay = chosen < beam
    flat = jnp.maximum(chosen - beam, 0)
    source = jnp.where(is_stay, chosen, flat // symbols)
    label = jnp.where(is_stay, -1, flat % symbols)
    source_hash = state["hash"][source]
    new = {
        "p_blank": jnp.where(is_stay, stay_blank[source], -jnp.inf),
        "p_label": jnp.where(is_stay, stay_label[source], extend[flat]),
        "last": jnp.where(is_stay, last[source], label),
        "hash": jnp.where(is_stay[:, None], source_hash, _extend_hash(source_hash, label)),
        "parent": jnp.where(is_stay[:, None], state["parent"][source], source_hash),
    }
    new = jax.tree.map(lambda n, o: jnp.where(valid, n, o), new, state)
    return new, (jnp.where(valid, source, slots), jnp.where(valid, label, -1))


@functools.partial(jax.jit, static_argnames=("blank_id", "beam"))
def batched_beam_search(
    log_probs: jax.Array, frame_mask: jax.Array, *, blank_id: int, beam: int = 8
) -> tuple[jax.Array, jax.Array]:
    """Prefix beam search of ``[B, T, V]`` log-probabilities over the frames where
    ``frame_mask`` ``[B, T]`` is True, on device.

    Returns:
      ``(labels [B, T] int32, padded with -1; lengths [B] int32)``.
    """
    frames = log_probs.shape[1]

    def one(lp, mask):
        dead = jnp.full(beam, -jnp.inf, jnp.float32)
        start = {
            "p_blank": dead.at[0].set(0.0),  # slot 0: the empty prefix
            "p_label": dead,
            "last": jnp.full(beam, -1, jnp.int32),
            "hash": jnp.zeros((beam, 2), jnp.uint32),
            "parent": jnp.zeros((beam, 2), jnp.uint32),
        }
        state, pointers = jax.lax.scan(
            lambda s, x: _beam_step(s, x[0], x[1], blank_id, beam), start, (lp, mask)
        )
        best = jnp.argmax(jnp.logaddexp(state["p_blank"], state["p_label"]))

        def back(slot, step_pointers):
            source, label = step_pointers
            return source[slot], label[slot]

        _, emitted = jax.lax.scan(back, best, pointers, reverse=True)  # [T], -1: none
        keep = emitted >= 0
        position = jnp.where(keep, jnp.cumsum(keep) - 1, frames)
        labels = jnp.full(frames, -1, jnp.int32).at[position].set(emitted, mode="drop")
        return labels, keep.sum().astype(jnp.int32)

    return jax.vmap(one)(log_probs.astype(jnp.float32), frame_mask.astype(bool))
