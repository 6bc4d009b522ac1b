"""Rotary position embeddings (Su et al. 2021, "RoFormer", arXiv:2104.09864).

Channel pairs ``(x[2i], x[2i+1])`` of queries and keys at position ``p`` rotate by the angle
``p · base^(-2i / d)``. A dot product of a query at ``p`` and a key at ``q`` then depends on
``p − q`` only, so attention sees relative positions, and a model trained on short clips runs on
longer ones (no position table to outgrow). Positions are inputs: pretraining feeds the
original frame indices of the frames it keeps.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def rotate(x: jnp.ndarray, positions: jnp.ndarray, base: float = 10_000.0) -> jnp.ndarray:
    """Applies RoPE.

    Args:
      x: ``[batch, frames, heads, head_dim]`` queries or keys (``head_dim`` even).
      positions: ``[batch, frames]`` positions (frame indices; any real values).
      base: frequency base.

    Returns:
      ``x`` rotated, same shape and dtype; angles are computed in float32.
    """
    half = x.shape[-1] // 2
    inv_freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[..., None, None] * inv_freq  # [B, T, 1, half]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    pairs = x.astype(jnp.float32).reshape(*x.shape[:-1], half, 2)
    # Static slices rather than integer indexing: indexing lowers to a gather, which the
    # TFLite converter cannot take when the frame count is dynamic (aslx.export.tflite).
    even, odd = (lax.index_in_dim(pairs, i, axis=-1, keepdims=False) for i in (0, 1))
    rotated = jnp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
    return rotated.reshape(x.shape).astype(x.dtype)
