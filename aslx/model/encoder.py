"""The encoder: conv stem → pre-LN transformer blocks with RoPE → final LayerNorm.

Shapes: ``B`` batch, ``T`` frames, ``D`` width, ``N`` heads, ``H = D / N``.

* **Stem.** One temporal convolution (kernel 3) over the flattened selected points
  ``[B, T, L·3] → [B, T, D]``: the first layer already sees motion between neighbouring
  frames. Beyond the clip's real frames it sees zeros (``stem_padding='zeros'``: padding
  frames are zeroed, so they look exactly like the convolution's own zero padding) or the
  first and last real frames repeated (``'edge'``: a held pose looks the same at the clip's
  ends as inside it, and a one-frame photo the same as that pose held). Either way padding
  frames never leak into valid frames.
* **Blocks.** ``x += drop(attn(LN(x)))``, ``x += drop(mlp(LN(x)))``; multi-head attention with
  rotary embeddings on q and k (:mod:`aslx.model.rope`) through
  ``jax.nn.dot_product_attention`` with per-example key lengths (cuDNN flash attention on a
  GPU, XLA elsewhere; the TFLite graph runs :func:`explicit_attention`); GELU MLP of
  ``mlp_ratio · D``. LayerDrop (Fan et al. 2019, arXiv:1909.11556) skips whole blocks per
  example in training.
* **Stacked blocks.** The ``num_layers`` blocks are one :class:`Block` whose parameters have a
  leading ``[num_layers]`` axis (logical axis ``layers``; paths ``encoder/blocks/…`` without a
  layer index). They run under ``lax.scan`` (MaxText's habit: one block is compiled whatever
  the depth) with a rematerialisation policy from the config, or unrolled over the same
  parameters (``scan_layers=False``).
* **Numerics.** Parameters are float32; matrix products run in ``compute_dtype`` (bfloat16 on
  accelerators), attention logits, softmax, norms and the residual stream in float32.

The frame mask is a *prefix* everywhere (``frame_mask[b, t]`` is True exactly for ``t <
num_frames[b]``): the pipeline pads at the end, and Data2vec's gathered rows keep the visible
frames in order. Attention therefore needs only each example's key length.

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
from aslx.model.partitioning import split_batch


def _attention_implementation(config: ModelConfig) -> str:
    if config.attention != "auto":
        return config.attention
    on_gpu = jax.default_backend() == "gpu"
    return "cudnn" if on_gpu and config.compute_dtype == "bfloat16" else "xla"


def dot_product_attention(q, k, v, key_lengths, implementation: str = "xla"):
    """Softmax attention of ``q, k, v [B, T, N, H]`` over the first ``key_lengths [B]`` keys.

    Logits and softmax are float32 whatever the inputs' dtype. An example with no valid key
    (``key_lengths = 0``) gets finite outputs: XLA's mask gives it a uniform softmax over its
    (zero-gradient) padding; cuDNN's kernel would divide by zero, so it attends to one key
    there. Nothing downstream reads padded frames."""
    if implementation == "explicit":
        return explicit_attention(q, k, v, key_lengths)
    if implementation == "cudnn":
        key_lengths = jnp.maximum(key_lengths, 1)
    return jax.nn.dot_product_attention(
        q, k, v, key_value_seq_lengths=key_lengths.astype(jnp.int32), implementation=implementation
    )


def explicit_attention(q, k, v, key_lengths, dropout_rate: float = 0.0, key=None):
    """:func:`dot_product_attention` written out: ``softmax(q kᵀ / √H + mask) v`` per head;
    with a ``key`` and a nonzero ``dropout_rate``, dropout on the probabilities (training).

    The layout an op-by-op interpreter (TFLite, XNNPACK) runs fastest: heads first, so the
    ``[B, N, T, T]`` scores are never transposed; ``1/√H`` applied to q (``[T, D]``), not to
    the scores; the key mask an additive ``[B, 1, 1, T]`` bias (``-1e30`` past the key length,
    so a row with no valid key is uniform over its padding, as XLA's), which broadcasts in
    the add instead of a ``[B, N, T, T]`` select."""
    h = q.shape[-1]
    q = jnp.swapaxes(q, 1, 2).astype(jnp.float32) * (h**-0.5)  # [B, N, T, H]
    k = jnp.transpose(k, (0, 2, 3, 1)).astype(jnp.float32)  # [B, N, H, S]
    v = jnp.swapaxes(v, 1, 2)  # [B, N, S, H]
    valid = jnp.arange(k.shape[-1]) < key_lengths[:, None]
    bias = jnp.where(valid, 0.0, -1e30).astype(jnp.float32)[:, None, None, :]
    probs = dropout(jax.nn.softmax(q @ k + bias, axis=-1), dropout_rate, key)
    return jnp.swapaxes(probs.astype(v.dtype) @ v, 1, 2)


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
        self.implementation = _attention_implementation(config)
        self.dropout_rate = config.attention_dropout
        self.query = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.key = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.value = dense(d, d, ("embed", "heads"), dtype, rngs)
        self.out = dense(d, d, ("heads", "embed"), dtype, rngs)

    def __call__(self, x, positions, key_lengths, key=None):
        """``x [B, T, D]``, ``positions [B, T]``, ``key_lengths [B]`` (real frames, a prefix)
        → ``[B, T, D]``. ``key``: dropout on the attention probabilities (training; the fused
        kernels have none, so a nonzero rate runs :func:`explicit_attention`)."""
        b, t, d = x.shape
        split = lambda y: y.reshape(b, t, self.num_heads, d // self.num_heads)  # noqa: E731
        q = rope.rotate(split(self.query(x)), positions, self.rope_base)
        k = rope.rotate(split(self.key(x)), positions, self.rope_base)
        v = split(self.value(x))
        if key is not None and self.dropout_rate > 0:
            attended = explicit_attention(q, k, v, key_lengths, self.dropout_rate, key)
        else:
            attended = dot_product_attention(q, k, v, key_lengths, self.implementation)
        return self.out(attended.reshape(b, t, d))


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

    def __call__(self, x, positions, key_lengths, keep=None, keys=None):
        """``keep [B]``: 1 to run the block for an example, 0 to skip it (LayerDrop); ``None``
        runs it for all. ``keys [3]``: dropout keys of the attention output, the MLP output and
        the attention probabilities; ``None`` means evaluation.

        Returns the new residual stream and the MLP's output before it is added to it."""
        keys = (None, None, None) if keys is None else keys
        keep = 1.0 if keep is None else keep[:, None, None].astype(x.dtype)
        h = self.attention(self.attention_norm(x), positions, key_lengths, keys[2])
        x = x + keep * dropout(h, self.dropout_rate, keys[0])
        h = self.mlp_out(jax.nn.gelu(self.mlp_in(self.mlp_norm(x))))
        return x + keep * dropout(h, self.dropout_rate, keys[1]), h


def stacked_blocks(config: ModelConfig, rngs: nnx.Rngs) -> Block:
    """``config.num_layers`` blocks as one :class:`Block` whose every parameter has a leading
    ``[num_layers]`` axis, named ``layers`` (never sharded) in its logical axes."""

    @nnx.split_rngs(splits=config.num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return Block(config, rngs)

    blocks = create(rngs)
    for _, variable in nnx.to_flat_state(nnx.state(blocks, nnx.Param)):
        variable.set_metadata(logical_axes=("layers", *variable.get_metadata()["logical_axes"]))
    return blocks


def _checkpointed(body, policy: str):
    if policy == "none":
        return body
    saveable = None if policy == "full" else getattr(jax.checkpoint_policies, policy)
    # prevent_cse=False: inside scan, XLA cannot merge the recomputation with the forward pass
    # anyway, and the CSE barriers would only slow it down (jax.checkpoint's own advice).
    return jax.checkpoint(body, policy=saveable, prevent_cse=False)


class Encoder(nnx.Module):
    """Gated landmarks ``[B, T, L, C]`` → features ``[B, T, D]``."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        self.config = config
        self.stem = nnx.Conv(
            config.num_landmarks * config.landmark_channels,
            config.dim,
            kernel_size=(config.conv_kernel,),
            # Edge padding is done by hand in ``_stem``; the parameters are the same either way.
            padding="SAME" if config.stem_padding == "zeros" else "VALID",
            dtype=jnp.dtype(config.compute_dtype),
            param_dtype=jnp.float32,
            kernel_init=nnx.with_metadata(
                nnx.initializers.lecun_normal(), logical_axes=("conv", "input", "embed")
            ),
            bias_init=nnx.with_metadata(nnx.initializers.zeros_init(), logical_axes=("embed",)),
            rngs=rngs,
        )
        self.blocks = stacked_blocks(config, rngs)
        self.final_norm = layer_norm(config.dim, rngs)

    def _stem(self, x: jnp.ndarray, frame_mask: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
        """``[B, T, L·C]`` → ``[B, T, D]`` float32, padding frames zeroed first (``zeros``) or
        filled with the last real frame and the clip extended by its first and last real
        frames, as many as the kernel reaches past each end (``edge``); ``lengths [B]`` are
        the real frames (the mask is a prefix)."""
        x = x * frame_mask[..., None]
        if self.config.stem_padding == "edge":
            last = jnp.maximum(lengths - 1, 0)
            last_frame = jnp.take_along_axis(x, last[:, None, None], axis=1)  # [B, 1, L·C]
            x = jnp.where(frame_mask[..., None], x, last_frame)
            before = (self.config.conv_kernel - 1) // 2
            after = self.config.conv_kernel - 1 - before
            x = jnp.concatenate(
                [jnp.repeat(x[:, :1], before, 1), x, jnp.repeat(x[:, -1:], after, 1)], axis=1
            )
        return self.stem(x).astype(jnp.float32)

    def block(self, index: int) -> Block:
        """Block ``index`` alone (a view of its slice of the stacked parameters)."""
        graphdef, params = nnx.split(self.blocks)
        return nnx.merge(graphdef, jax.tree.map(lambda a: a[index], params))

    def _run_blocks(self, x, positions, key_lengths, layers, params, outputs_kind):
        """Runs the blocks ``params`` (leading layer axis) over ``x``; ``layers`` holds their
        per-layer inputs (LayerDrop ``keep [n, B]``, dropout ``keys [n, 2]``, each possibly
        ``None``). Returns ``x`` and, when ``outputs_kind`` is set, every block's output
        ``[n, B, T, D]`` of that kind."""
        graphdef = nnx.graphdef(self.blocks)

        def body(x, layer):
            layer_params, keep, keys = layer
            x, mlp_output = nnx.merge(graphdef, layer_params)(x, positions, key_lengths, keep, keys)
            if outputs_kind is None:
                return x, None
            return x, mlp_output if outputs_kind == "ffn" else x

        body = _checkpointed(body, self.config.remat)
        if self.config.scan_layers:
            return jax.lax.scan(body, x, (params, *layers))
        outputs = []
        for i in range(jax.tree.leaves(params)[0].shape[0]):
            x, output = body(x, jax.tree.map(lambda a, i=i: a[i], (params, *layers)))
            outputs.append(output)
        return x, None if outputs_kind is None else jnp.stack(outputs)

    def embed(self, landmarks: jnp.ndarray, frame_mask: jnp.ndarray) -> jnp.ndarray:
        """The stem alone: ``landmarks [B, T, L, C]``, ``frame_mask [B, T]`` → ``[B, T, D]``
        float32. Data2vec's student runs it on the whole clip, its hidden frames zeroed,
        before it gathers the visible frames (so no window straddles a gap)."""
        b, t = frame_mask.shape
        lengths = frame_mask.sum(-1, dtype=jnp.int32)
        x = split_batch(landmarks.reshape(b, t, -1))
        return split_batch(self._stem(x, frame_mask, lengths))

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
        """Encodes a batch: :meth:`embed`, then :meth:`encode`.

        Args:
          landmarks: ``[B, T, L, C]`` float (already masked, normalised, gated).
          frame_mask: ``[B, T]`` bool, True for real frames.
          positions: ``[B, T]`` RoPE positions (frame indices).
          key, block_outputs, block_output_kind: as :meth:`encode`.

        Returns:
          ``[B, T, D]`` float32 features; padded frames hold values that nothing downstream
          may use without ``frame_mask``. With ``block_outputs = k``: ``(features,
          [k, B, T, D])``.
        """
        return self.encode(
            self.embed(landmarks, frame_mask),
            frame_mask,
            positions,
            key=key,
            block_outputs=block_outputs,
            block_output_kind=block_output_kind,
        )

    def encode(
        self,
        x,
        frame_mask,
        positions,
        *,
        key: jax.Array | None = None,
        block_outputs: int = 0,
        block_output_kind: str = "ffn",
    ):
        """The blocks and the final norm over the stem's output ``x [B, T, D]``.

        Args:
          frame_mask: ``[B, T]`` bool, True for real frames (a prefix).
          positions: ``[B, T]`` RoPE positions (frame indices).
          key: PRNG key for dropout (input, attention, outputs) and LayerDrop; ``None`` means
            evaluation (deterministic).
          block_outputs: also return the outputs of the last this many blocks: Data2vec's
            teacher targets.
          block_output_kind: what a block's output is: ``ffn``, its MLP's output before the
            residual connection adds it (Data2vec's choice), or ``residual``, the residual
            stream after the block (before the final norm).
        """
        b, _ = frame_mask.shape
        x = split_batch(x)
        key_lengths = frame_mask.sum(-1, dtype=jnp.int32)
        n = self.config.num_layers
        if key is None:
            layers = (None, None)
        else:
            layer_key, dropout_key, input_key = jax.random.split(key, 3)
            x = dropout(x, self.config.input_dropout, input_key)
            keep = jax.random.bernoulli(layer_key, 1 - self.config.layer_drop, (n, b))
            layers = (keep, jax.random.split(dropout_key, (n, 3)))
        if block_output_kind not in BLOCK_OUTPUT_KINDS:
            raise ValueError(
                f"block_output_kind must be one of {BLOCK_OUTPUT_KINDS}, not {block_output_kind!r}"
            )
        params = nnx.state(self.blocks)
        if not block_outputs:
            x, _ = self._run_blocks(x, positions, key_lengths, layers, params, None)
            return self.final_norm(x)
        # Two scans: only the last ``block_outputs`` blocks stack their outputs, so a 24-block
        # teacher keeps 6 of them in memory, not 24.
        first = n - block_outputs

        def layer_range(part: slice):
            return jax.tree.map(lambda a: a[part], (params, layers))

        if first:
            head_params, head_layers = layer_range(slice(None, first))
            x, _ = self._run_blocks(x, positions, key_lengths, head_layers, head_params, None)
        tail_params, tail_layers = layer_range(slice(first, None))
        x, outputs = self._run_blocks(
            x, positions, key_lengths, tail_layers, tail_params, block_output_kind
        )
        return self.final_norm(x), outputs
