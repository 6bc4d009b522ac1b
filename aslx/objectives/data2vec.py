"""Data2vec 2.0 pretraining on landmark clips (Baevski et al. 2022, "Efficient Self-supervised
Learning with Contextualized Target Representations for Vision, Speech and Language",
arXiv:2212.07525).

A student encoder sees only part of each clip and a light decoder predicts, at the hidden
frames, what an EMA teacher computed from the whole clip:

1. **Inverse block masking.** Each clip is repeated ``M`` times with different masks. A mask
   *keeps* whole blocks of ``block_length`` frames and hides the rest: every row keeps the
   same number of blocks, as near to ``1 − R`` of the frames as whole blocks come (K frames),
   so the student's input has one static shape and no kept block is cut into single frames
   (a cut block would leave the student to interpolate between visible neighbours).
2. **Student.** The conv stem runs over the whole clip with the hidden frames zeroed (local
   features before masking, as data2vec 2.0's feature extractor), the visible frames of its
   output are gathered, ``[M·B, K, D]``, and the blocks encode them with their original
   frame indices as RoPE positions; no block computation is spent on hidden frames. The
   encoder's input, attention-probability and output dropout (``model.input_dropout``,
   ``model.attention_dropout``, ``model.dropout``) apply to the student only.
3. **Decoder.** The student's features are scattered back to ``[M·B, T, D]`` with the hidden
   slots filled by ``N(0, σ²)`` noise (σ = 0.01); after dropout (``decoder_input_dropout``,
   0.1), ``decoder_layers`` light blocks predict the targets, as data2vec 2.0's
   ``Decoder1d``: a temporal convolution (kernel 7) in ``decoder_groups`` groups (16), a
   LayerNorm without scale or bias, GELU, and a residual connection wherever the block's input
   and output widths agree; then one dense layer back to D. The decoder has no EMA copy: the
   teacher is an encoder only.
4. **Teacher.** The EMA of the student's encoder runs once per clip on the unmasked input, in
   evaluation mode. The target is the mean of its last ``top_k`` block outputs, each
   instance-normalised over the clip's real frames (per channel: zero mean, unit variance).
   A block's output is, as in Data2vec, its MLP's output before the residual connection adds
   it (``target_kind='ffn'``); ``'residual'`` takes the residual stream after the block
   instead, which in a shallow encoder is mostly the stem's projection of the input, so the
   decoder can largely interpolate it from the visible neighbours. The teacher gets no
   gradient.
5. **Loss.** Mean squared error over hidden, real frames and all channels.
6. **Collapse.** Each step reports the prediction's and the target's spread over the hidden
   frames, per channel ``sqrt(var + 1e-6)`` averaged over channels (``prediction_std``,
   ``target_std``; the variances too). As in data2vec 2.0, training stops when, after a
   warm-up, the target's falls below 0.1 or the prediction's below 0.01
   (:func:`collapse_problem`).

The teacher's EMA decay grows linearly from 0.999 to 0.99999 over the first 100 k steps.
The student's encoder has the finetuning model's parameter paths (``encoder/…``), so a
finetuning run starts from a pretraining workdir with no conversion.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from aslx.augment import recipe
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset
from aslx.model import model as model_lib
from aslx.model.config import ModelConfig
from aslx.model.encoder import BLOCK_OUTPUT_KINDS, Encoder, dense
from aslx.model.partitioning import split_batch


@dataclasses.dataclass(frozen=True)
class Data2vecConfig:
    """The objective's constants (defaults: the design brief's)."""

    num_masks: int = 8
    mask_ratio: float = 0.5
    block_length: int = 5
    top_k: int = 6
    target_kind: str = "ffn"
    decoder_layers: int = 4
    decoder_dim: int = 256
    decoder_kernel: int = 7
    decoder_groups: int = 16
    decoder_input_dropout: float = 0.1
    mask_noise_std: float = 0.01
    ema_start: float = 0.999
    ema_end: float = 0.99999
    ema_ramp_steps: int = 100_000

    def __post_init__(self):
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), not {self.mask_ratio}")
        if self.num_masks < 1 or self.block_length < 1 or self.top_k < 1:
            raise ValueError("num_masks, block_length and top_k must be positive")
        if self.decoder_dim % self.decoder_groups:
            raise ValueError(
                f"decoder_dim {self.decoder_dim} must split into {self.decoder_groups} groups"
            )
        if not 0 <= self.decoder_input_dropout < 1:
            raise ValueError(
                f"decoder_input_dropout must be in [0, 1), not {self.decoder_input_dropout}"
            )
        if self.target_kind not in BLOCK_OUTPUT_KINDS:
            raise ValueError(
                f"target_kind must be one of {BLOCK_OUTPUT_KINDS}, not {self.target_kind!r}"
            )


def ema_decay(config: Data2vecConfig, step) -> jnp.ndarray:
    """The teacher's decay at ``step``: linear from ``ema_start`` to ``ema_end`` over
    ``ema_ramp_steps``, then constant."""
    progress = jnp.minimum(jnp.asarray(step, jnp.float32) / max(config.ema_ramp_steps, 1), 1.0)
    return config.ema_start + (config.ema_end - config.ema_start) * progress


def collapse_problem(
    step: int, metrics: dict, min_target_std: float, min_prediction_std: float, after: int
) -> str | None:
    """The line that stops a collapsed run, or ``None``: past step ``after``, a
    ``target_std`` below ``min_target_std`` (the teacher's targets no longer vary) or a
    ``prediction_std`` below ``min_prediction_std`` (the student predicts one vector).
    data2vec 2.0 stops at 0.1 and 0.01 after 5,000 updates."""
    if step <= after:
        return None
    for name, low, field in (
        ("target", min_target_std, "collapse_target_std"),
        ("prediction", min_prediction_std, "collapse_prediction_std"),
    ):
        std = metrics[f"{name}_std"]
        if std < low:
            whose = "the teacher's targets" if name == "target" else "the student's predictions"
            return (
                f"step {step}: {whose} collapsed (std {std:.3g} < config.{field}={low}); lower "
                "config.lr, raise the EMA decay (config.data2vec.ema_start) or check the data"
            )
    return None


# --- masks, gather and scatter -------------------------------------------------------------


def mask_blocks(frames: int, mask_ratio: float, block_length: int) -> tuple[int, int]:
    """``(blocks, length)``: each row keeps ``blocks`` whole blocks of ``length`` frames, as
    near to ``(1 − R) · T`` frames as whole blocks come (at least one block; ``length`` is
    ``block_length`` cut to ``T``)."""
    length = max(1, min(block_length, frames))
    kept = max(1, frames - round(mask_ratio * frames))
    return max(1, min(round(kept / length), frames // length)), length


def num_visible(frames: int, mask_ratio: float, block_length: int) -> int:
    """Frames every row keeps, ``K``: whole blocks (:func:`mask_blocks`)."""
    blocks, length = mask_blocks(frames, mask_ratio, block_length)
    return blocks * length


def inverse_block_mask(
    key: jax.Array, rows: int, frames: int, mask_ratio: float, block_length: int
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Which frames each row keeps: ``n`` whole blocks (:func:`mask_blocks`), placed uniformly
    at random without overlap (two may touch), so every row keeps the same count and no block
    is cut. Placement: with ``F = T − n·length`` frames free, ``n`` distinct slots
    ``u_0 < … < u_{n−1}`` are drawn from ``F + n``, and block ``i`` starts at
    ``u_i + i·(length − 1)``; every arrangement of the blocks among the free frames is
    equally likely.

    Returns:
      ``visible [rows, K]`` int32, the kept frame indices in increasing order, and
      ``hidden [rows, T]`` bool, True where a frame is masked; K = :func:`num_visible`.
    """
    blocks, length = mask_blocks(frames, mask_ratio, block_length)
    slots = frames - blocks * length + blocks
    _, chosen = jax.lax.top_k(jax.random.uniform(key, (rows, slots)), blocks)
    starts = jnp.sort(chosen, axis=-1) + jnp.arange(blocks) * (length - 1)
    visible = (starts[..., None] + jnp.arange(length)).reshape(rows, blocks * length)
    visible = visible.astype(jnp.int32)
    hidden = jnp.ones((rows, frames), bool).at[jnp.arange(rows)[:, None], visible].set(False)
    return visible, hidden


def gather_frames(x: jnp.ndarray, indices: jnp.ndarray) -> jnp.ndarray:
    """``x [R, T, …]``, ``indices [R, K]`` → ``[R, K, …]``."""
    expanded = indices.reshape(*indices.shape, *([1] * (x.ndim - 2)))
    return split_batch(jnp.take_along_axis(x, expanded, axis=1))


def scatter_frames(values: jnp.ndarray, indices: jnp.ndarray, base: jnp.ndarray) -> jnp.ndarray:
    """``base [R, T, …]`` with ``values [R, K, …]`` written at frames ``indices [R, K]``."""
    return split_batch(base.at[jnp.arange(values.shape[0])[:, None], indices].set(values))


def student_features(
    encoder: Encoder,
    landmarks: jnp.ndarray,
    frame_mask: jnp.ndarray,
    visible: jnp.ndarray,
    hidden: jnp.ndarray,
    key: jax.Array | None,
) -> jnp.ndarray:
    """The student's view of masked rows: ``landmarks [R, T, L, C]``, ``frame_mask [R, T]``,
    ``visible [R, K]`` and ``hidden [R, T]`` (:func:`inverse_block_mask`) → ``[R, K, D]``.

    The stem runs on the whole clip with the hidden frames zeroed and the visible frames of
    its output are gathered (data2vec 2.0 computes local features before masking): a stem
    window beside a gap sees zeros there, never the frame beyond it, and nothing the student
    computes depends on a hidden frame."""
    stem = encoder.embed(landmarks * ~hidden[..., None, None], frame_mask)
    return encoder.encode(
        gather_frames(stem, visible), gather_frames(frame_mask, visible), visible, key=key
    )


# --- targets -------------------------------------------------------------------------------


def instance_norm(x: jnp.ndarray, frame_mask: jnp.ndarray, eps: float = 1e-5) -> jnp.ndarray:
    """Per example and channel, zero mean and unit variance over the real frames;
    ``x [B, T, D]``, ``frame_mask [B, T]``; padding becomes 0."""
    weights = frame_mask.astype(jnp.float32)[..., None]
    count = jnp.maximum(weights.sum(1, keepdims=True), 1.0)
    mean = (x * weights).sum(1, keepdims=True) / count
    variance = (((x - mean) ** 2) * weights).sum(1, keepdims=True) / count
    return (x - mean) * jax.lax.rsqrt(variance + eps) * weights


def targets(block_outputs: jnp.ndarray, frame_mask: jnp.ndarray) -> jnp.ndarray:
    """Mean of instance-normalised block outputs ``[K, B, T, D]`` → ``[B, T, D]``."""
    return jax.vmap(lambda y: instance_norm(y, frame_mask))(block_outputs).mean(0)


# --- the model -----------------------------------------------------------------------------


class Decoder(nnx.Module):
    """data2vec 2.0's light decoder: grouped temporal convolutions from the student's features
    to the teacher's space (see the module docstring, step 3)."""

    def __init__(self, dim: int, config: Data2vecConfig, rngs: nnx.Rngs):
        width, groups = config.decoder_dim, config.decoder_groups
        if dim % groups:
            raise ValueError(f"the encoder's width {dim} must split into {groups} groups")

        def conv(width_in: int) -> nnx.Conv:
            return nnx.Conv(
                width_in,
                width,
                kernel_size=(config.decoder_kernel,),
                padding="SAME",
                feature_group_count=groups,
                param_dtype=jnp.float32,
                kernel_init=nnx.with_metadata(
                    nnx.initializers.lecun_normal(), logical_axes=("conv", None, "mlp")
                ),
                bias_init=nnx.with_metadata(nnx.initializers.zeros_init(), logical_axes=("mlp",)),
                rngs=rngs,
            )

        self.convs = nnx.List(
            [conv(dim if i == 0 else width) for i in range(config.decoder_layers)]
        )
        self.norms = nnx.List(
            [
                nnx.LayerNorm(width, use_scale=False, use_bias=False, rngs=rngs)
                for _ in range(config.decoder_layers)
            ]
        )
        self.project_out = dense(width, dim, ("mlp", "embed"), jnp.float32, rngs)

    def __call__(self, x: jnp.ndarray, frame_mask: jnp.ndarray) -> jnp.ndarray:
        """``[R, T, D]`` (hidden slots filled with noise), ``[R, T]`` → ``[R, T, D]``."""
        mask = frame_mask[..., None].astype(x.dtype)
        h = x
        for conv, norm in zip(self.convs, self.norms):
            out = jax.nn.gelu(norm(conv(h * mask)), approximate=False)
            h = h + out if out.shape == h.shape else out
        return self.project_out(h)


def decoder_params(config: Data2vecConfig, dim: int) -> int:
    """The decoder's parameter count for an encoder ``dim`` wide (nothing is allocated)."""
    decoder = nnx.eval_shape(lambda: Decoder(dim, config, nnx.Rngs(0)))
    return model_lib.count_params(nnx.state(decoder, nnx.Param))


def teacher_part(params):
    """What the EMA teacher follows: the student's encoder (``params["encoder"]``), never the
    decoder, whose EMA nothing reads."""
    return params["encoder"]


class PretrainModel(nnx.Module):
    """The student: the finetuning model's encoder (same paths) and the decoder."""

    def __init__(self, model_config: ModelConfig, config: Data2vecConfig, rngs: nnx.Rngs):
        if config.top_k > model_config.num_layers:
            raise ValueError(
                f"top_k={config.top_k} averages more blocks than the encoder's "
                f"{model_config.num_layers}"
            )
        self.encoder = Encoder(model_config, rngs)
        self.decoder = Decoder(model_config.dim, config, rngs)


def create(
    model_config: ModelConfig, config: Data2vecConfig, seed: int = 0
) -> tuple[nnx.GraphDef, nnx.State]:
    return nnx.split(PretrainModel(model_config, config, nnx.Rngs(seed)), nnx.Param)


def make_loss(
    graphdef: nnx.GraphDef,
    config: Data2vecConfig,
    preset: Preset,
    augment: recipe.AugmentConfig | None,
    normalization: Normalization | None = None,
):
    """``loss_fn(params, batch, key, step, teacher) -> (loss, aux)`` with ``teacher`` the EMA
    of the student's encoder (:func:`teacher_part` of the parameters)."""

    def loss_fn(params, batch, key, step, teacher):
        augment_key, mask_key, noise_key, student_key, dropout_key = jax.random.split(key, 5)
        batch = recipe.prepare_batch(augment_key, batch, augment, preset, normalization)
        landmarks, frame_mask = batch["landmarks"], batch["frame_mask"]
        b, t = frame_mask.shape
        positions = jnp.broadcast_to(jnp.arange(t), (b, t))

        model = nnx.merge(graphdef, params)
        encoder_graphdef = nnx.graphdef(model.encoder)
        teacher_encoder = nnx.merge(encoder_graphdef, jax.lax.stop_gradient(teacher))
        _, blocks = teacher_encoder(
            landmarks,
            frame_mask,
            positions,
            block_outputs=config.top_k,
            block_output_kind=config.target_kind,
        )
        target = targets(blocks, frame_mask)

        m = config.num_masks

        def repeat(x):  # row i·M + j: clip i, mask j
            return split_batch(jnp.repeat(x, m, axis=0))

        visible, hidden = inverse_block_mask(
            mask_key, b * m, t, config.mask_ratio, config.block_length
        )
        features = student_features(
            model.encoder, repeat(landmarks), repeat(frame_mask), visible, hidden, student_key
        )
        noise = config.mask_noise_std * jax.random.normal(noise_key, (b * m, t, features.shape[-1]))
        decoder_input = scatter_frames(features, visible, noise)
        if config.decoder_input_dropout > 0:
            keep = 1.0 - config.decoder_input_dropout
            kept = jax.random.bernoulli(dropout_key, keep, decoder_input.shape)
            decoder_input = jnp.where(kept, decoder_input / keep, 0.0)
        prediction = model.decoder(decoder_input, repeat(frame_mask))

        scored = (hidden & repeat(frame_mask)).astype(jnp.float32)
        count = jnp.maximum(scored.sum(), 1.0)
        error = ((prediction - repeat(target)) ** 2).mean(-1)
        loss = (error * scored).sum() / count

        def channel_variance(x):  # [D], over the scored frames
            w = scored[..., None]
            mean = (x * w).sum((0, 1)) / count
            return (((x - mean) ** 2) * w).sum((0, 1)) / count

        variances = {
            "prediction": channel_variance(prediction),
            "target": channel_variance(repeat(target)),
        }
        aux = {}
        for name, v in variances.items():
            aux[f"{name}_variance"] = v.mean()
            # data2vec 2.0's collapse measure: the mean over channels of sqrt(var + 1e-6)
            aux[f"{name}_std"] = jnp.sqrt(v + 1e-6).mean()
        return loss, aux

    return loss_fn
