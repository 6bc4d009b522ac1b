"""The encoder: conv stem → pre-LN transformer blocks with RoPE → final LayerNorm.

Shapes: ``B`` batch, ``T`` frames, ``D`` width, ``N`` heads, ``H = D / N``.

* **Stem.** One temporal convolution (kernel 3, 'same' padding) over the flattened selected
  points ``[B, T, L·3] → [B, T, D]``: the first layer already sees motion between neighbouring
  frames. Padding frames are zeroed first, so they look exactly like the convolution's own
  zero padding and never leak into valid frames.
* **Blocks.** ``x += drop(attn(LN(x)))``, ``x += drop(mlp(LN(x)))``; multi-head attention with
  rotary embeddings on q and k (:mod:`aslx.model.rope`), padded keys masked; GELU MLP of
  ``mlp_ratio · D``. LayerDrop (Fan et al. 2019, arXiv:1909.11556) skips whole blocks per
  example in training.
* **Numerics.** Parameters are float32; matrix products run in ``compute_dtype`` (bfloat16 on
  accelerators), attention logits, softmax, norms and the residual stream in float32.

Parameters carry logical axis names (metadata ``logical_axes``) that
:mod:`aslx.training.sharding` maps onto a device mesh.

Randomness (dropout, LayerDrop) comes only from the ``key`` argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from aslx.model import rope
from aslx.model.config import ModelConfig

NEG_INF = -1e9  # finite: a row with no valid key gets a uniform softmax, not NaN


def dense(in_dim: int, out_dim: int, axes: tuple, dtype, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` whose kernel and bias carry logical axis names."""
    return nnx.Linear(
        in_dim,
        out_dim,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=nnx.with_metadata(nnx.initializers.lecun_normal(), logical_axes=axes),
        bias_init=nnx.with_metadata(nnx.initializers.zeros_init(), logical_axes=axes[1:]),
        rngs=rngs,
    )


def layer_norm(dim: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(
        dim,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
        scale_init=nnx.with_metadata(nnx.initializers.ones_init(), logical_axes=("norm",)),
        bias_init=nnx.with_metadata(nnx.initializers.zeros_init(), logical_axes=("norm",)),
        rngs=rngs,
    )


def dropout(x: jnp.ndarray, rate: float, key: jax.Array | None) -> jnp.ndarray:
    """Inverted dropout; identity when ``key`` is None (evaluation) or ``rate`` is 0."""
    if key is None or rate == 0:
        return x
    keep = jax.random.bernoulli(key, 1 - rate, x.shape)
    return jnp.where(keep, x / (1 - rate), 0).astype(x.dtype)


class Attention(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        d, dtype = config.dim, jnp.dtype(config.compute_dtype)
        self.num_heads, self.rope_base = config.num_heads, config.rope_base
        self.query = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.key = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.value = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.out = dense(d, d, ("heads", "embed"), dtype, rngs)

    def __call__(self, x, positions, frame_mask):
        """``x [B, T, D]``, ``positions [B, T]``, ``frame_mask [B, T]`` → ``[B, T, D]``."""
        b, t, d = x.shape
        split = lambda y: y.reshape(b, t, self.num_heads, d // self.num_heads)  # noqa: E731
        q = rope.rotate(split(self.query(x)), positions, self.rope_base)
        k = rope.rotate(split(self.key(x)), positions, self.rope_base)
        v = split(self.value(x))
        logits = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=jnp.float32)
        logits = logits / jnp.sqrt(jnp.float32(d // self.num_heads))
        logits = jnp.where(frame_mask[:, None, None, :], logits, NEG_INF)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        return self.out(jnp.einsum("bnts,bsnh->btnh", probs, v).reshape(b, t, d))


#: What a block's output is for Data2vec's targets (see ``Encoder.__call__``).
BLOCK_OUTPUT_KINDS = ("ffn", "residual")


class Block(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        d, dtype = config.dim, jnp.dtype(config.compute_dtype)
        self.dropout_rate = config.dropout
        self.attention_norm = layer_norm(d, rngs)
        self.attention = Attention(config, rngs)
        self.mlp_norm = layer_norm(d, rngs)
        self.mlp_in = dense(d, config.mlp_ratio * d, ("embed", "mlp"), dtype, rngs)
        self.mlp_out = dense(config.mlp_ratio * d, d, ("mlp", "embed"), dtype, rngs)

    def __call__(self, x, positions, frame_mask, keep, keys):
        """``keep [B]``: 1 to run the block for an example, 0 to skip it (LayerDrop).

        Returns the new residual stream and the MLP's output before it is added to it."""
        keep = keep[:, None, None].astype(x.dtype)
        h = self.attention(self.attention_norm(x), positions, frame_mask)
        x = x + keep * dropout(h, self.dropout_rate, keys[0])
        h = self.mlp_out(jax.nn.gelu(self.mlp_in(self.mlp_norm(x))))
        return x + keep * dropout(h, self.dropout_rate, keys[1]), h


class Encoder(nnx.Module):
    """Gated landmarks ``[B, T, L, 3]`` → features ``[B, T, D]``."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        self.config = config
        self.stem = nnx.Conv(
            config.num_landmarks * 3,
            config.dim,
            kernel_size=(config.conv_kernel,),
            padding="SAME",
            dtype=jnp.dtype(config.compute_dtype),
            param_dtype=jnp.float32,
            kernel_init=nnx.with_metadata(
                nnx.initializers.lecun_normal(), logical_axes=("conv", "input", "embed")
            ),
            bias_init=nnx.with_metadata(nnx.initializers.zeros_init(), logical_axes=("embed",)),
            rngs=rngs,
        )
        self.blocks = nnx.List([Block(config, rngs) for _ in range(config.num_layers)])
        self.final_norm = layer_norm(config.dim, rngs)

    def __call__(
        self,
        landmarks,
        frame_mask,
        positions,
        *,
        key: jax.Array | None = None,
        block_outputs: int = 0,
        block_output_kind: str = "ffn",
    ):
        """Encodes a batch.

        Args:
          landmarks: ``[B, T, L, 3]`` float (already masked, normalised, gated).
          frame_mask: ``[B, T]`` bool, True for real frames.
          positions: ``[B, T]`` RoPE positions (frame indices).
          key: PRNG key for dropout and LayerDrop; ``None`` means evaluation (deterministic).
          block_outputs: also return the outputs of the last this many blocks: Data2vec's
            teacher targets.
          block_output_kind: what a block's output is: ``ffn``, its MLP's output before the
            residual connection adds it (Data2vec's choice), or ``residual``, the residual
            stream after the block (before the final norm).

        Returns:
          ``[B, T, D]`` float32 features; padded frames hold values that nothing downstream
          may use without ``frame_mask``. With ``block_outputs = k``: ``(features,
          [k, B, T, D])``.
        """
        b, t = frame_mask.shape
        x = landmarks.reshape(b, t, -1) * frame_mask[..., None]
        x = self.stem(x).astype(jnp.float32)
        n = len(self.blocks)
        if key is None:
            keep = jnp.ones((n, b), bool)
            block_keys = [(None, None)] * n
        else:
            layer_key, dropout_key = jax.random.split(key)
            keep = jax.random.bernoulli(layer_key, 1 - self.config.layer_drop, (n, b))
            block_keys = list(jax.random.split(dropout_key, (n, 2)))
        if block_output_kind not in BLOCK_OUTPUT_KINDS:
            raise ValueError(
                f"block_output_kind must be one of {BLOCK_OUTPUT_KINDS}, not {block_output_kind!r}"
            )
        outputs = []
        for i, block in enumerate(self.blocks):
            x, mlp_output = block(x, positions, frame_mask, keep[i], block_keys[i])
            if i >= n - block_outputs:
                outputs.append(mlp_output if block_output_kind == "ffn" else x)
        if block_outputs:
            return self.final_norm(x), jnp.stack(outputs)
        return self.final_norm(x)
