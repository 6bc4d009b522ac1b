"""Temporal CutMix with CTC alignments.

Each example ``i`` takes a partner ``j`` (a random permutation of the batch). A span of
``i``'s labels, positions ``[k1, k2)``, is replaced by a span of ``j``'s labels ``[j1, j2)``,
and the frames that show them are replaced alike: cuts fall on label boundaries, where
``boundary(k)`` is the first real frame aligned to label position ``k`` or later (``n`` for
``k = m``). So::

    frames = i[:b(k1)] + j[b(j1):b(j2)] + i[b(k2):n]
    labels = i[:k1]    + j[j1:j2]        + i[k2:m]

and every frame still shows the label it is aligned to. A splice that would leave no label,
more labels than ``S``, more frames than ``T``, or a label CTC cannot emit in the frames, is
not made (the example stays as it was). Alignments (per-frame label positions, -1 for frames
that show none) come from a Viterbi pass of a trained CTC model and must be non-decreasing
over the labelled frames.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from aslx import ctc_frames
from aslx.vocab import LABEL_PAD


def boundaries(alignment: jnp.ndarray, frame_mask: jnp.ndarray, size: int) -> jnp.ndarray:
    """``[size + 1]``: first real frame aligned to position ``k`` or later, for k = 0 … size."""
    n = frame_mask.sum()
    k = jnp.arange(size + 1)[:, None]
    at_or_after = (alignment[None, :] >= k) & frame_mask[None, :]
    first = jnp.where(at_or_after, jnp.arange(alignment.shape[0])[None, :], n).min(axis=1)
    return jnp.minimum(first, n)


def _splice_one(u: jnp.ndarray, apply: jnp.ndarray, this: dict, other: dict) -> dict:
    t, s = this["frame_mask"].shape[0], this["label_mask"].shape[0]
    n_i, m_i = this["frame_mask"].sum(), this["label_mask"].sum()
    m_j = other["label_mask"].sum()
    k1 = jnp.floor(u[0] * (m_i + 1)).astype(jnp.int32)
    k2 = k1 + jnp.floor(u[1] * (m_i - k1 + 1)).astype(jnp.int32)
    j1 = jnp.floor(u[2] * (m_j + 1)).astype(jnp.int32)
    j2 = j1 + jnp.floor(u[3] * (m_j - j1 + 1)).astype(jnp.int32)
    b_i = boundaries(this["alignment"], this["frame_mask"], s)
    b_j = boundaries(other["alignment"], other["frame_mask"], s)
    a, b, c, d = b_i[k1], b_i[k2], b_j[j1], b_j[j2]
    inserted_frames, inserted_labels = d - c, j2 - j1
    n_new = a + inserted_frames + (n_i - b)
    m_new = m_i - (k2 - k1) + inserted_labels

    i = jnp.arange(t)
    from_other = (i >= a) & (i < a + inserted_frames)
    frame_src = jnp.where(i < a, i, jnp.where(from_other, c + i - a, b + i - a - inserted_frames))
    frame_src = jnp.clip(frame_src, 0, t - 1)
    real = i < n_new
    take = lambda x, y, src: jnp.where(  # noqa: E731
        from_other.reshape(-1, *([1] * (x.ndim - 1))), y[src], x[src]
    )
    landmarks = take(this["landmarks"], other["landmarks"], frame_src)
    landmark_mask = take(this["landmark_mask"], other["landmark_mask"], frame_src) & real[:, None]
    align_this = this["alignment"][frame_src]
    align_this = jnp.where((align_this >= k2), align_this - k2 + k1 + inserted_labels, align_this)
    align_other = other["alignment"][frame_src]
    align_other = jnp.where(align_other >= 0, align_other - j1 + k1, -1)
    alignment = jnp.where(real, jnp.where(from_other, align_other, align_this), -1)

    k = jnp.arange(s)
    label_other = (k >= k1) & (k < k1 + inserted_labels)
    label_src = jnp.where(
        k < k1, k, jnp.where(label_other, j1 + k - k1, k2 + k - k1 - inserted_labels)
    )
    label_src = jnp.clip(label_src, 0, s - 1)
    label_mask = k < m_new
    labels = jnp.where(label_other, other["labels"][label_src], this["labels"][label_src])
    labels = jnp.where(label_mask, labels, LABEL_PAD)

    spliced = {
        "landmarks": jnp.where(landmark_mask[..., None], landmarks, 0.0),
        "landmark_mask": landmark_mask,
        "frame_mask": real,
        "labels": labels,
        "label_mask": label_mask,
        "alignment": alignment,
    }
    ok = (
        apply
        & (n_new <= t)
        & (m_new >= 1)
        & (m_new <= s)
        & (ctc_frames.min_frames(labels, label_mask) <= n_new)
    )
    return jax.tree.map(lambda new, old: jnp.where(ok, new, old), spliced, this)


def cutmix(key: jax.Array, batch: dict, p: float) -> dict:
    """Applies temporal CutMix to each example with probability ``p``; returns the six sample
    fields (``landmarks``, masks, ``labels``, ``alignment``) for the whole batch."""
    fields = ("landmarks", "landmark_mask", "frame_mask", "labels", "label_mask", "alignment")
    this = {k: batch[k] for k in fields}
    size = batch["frame_mask"].shape[0]
    perm_key, apply_key, cut_key = jax.random.split(key, 3)
    partner = jax.random.permutation(perm_key, size)
    other = jax.tree.map(lambda x: x[partner], this)
    apply = jax.random.bernoulli(apply_key, p, (size,)) & (partner != jnp.arange(size))
    if "example_mask" in batch:
        apply = apply & batch["example_mask"] & batch["example_mask"][partner]
    u = jax.random.uniform(cut_key, (size, 4))
    return jax.vmap(_splice_one)(u, apply, this, other)
