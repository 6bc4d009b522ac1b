"""The whole network: joint gate → encoder → task heads, and its functional use.

Heads (each optional, sized by the config):

* ``ctc_logits [B, T, ctc_vocab]``: per-frame CTC logits (the time axis is never pooled away
  before a CTC head).
* ``distill_logits [B, T, distill_vocab]``: a *separate* head that learns a teacher's per-frame
  argmax (sharing the CTC head hurts).
* ``class_logits [B, num_classes]``: classification from the mean of the valid frames.

Use it functionally, the way the trainer does::

    graphdef, params = model_lib.create(config, seed=0)      # nnx.split once
    outputs = model_lib.apply(graphdef, params, landmarks, frame_mask, key=key)  # inside jit
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from aslx.model.config import ModelConfig
from aslx.model.encoder import Encoder, dense
from aslx.model.gate import JointGate


def masked_mean(features: jnp.ndarray, frame_mask: jnp.ndarray) -> jnp.ndarray:
    """Mean over valid frames: ``[B, T, D]``, ``[B, T]`` → ``[B, D]`` (0 for an empty clip)."""
    weights = frame_mask.astype(features.dtype)[..., None]
    return (features * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)


class SignModel(nnx.Module):
    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        self.config = config
        self.gate = (
            JointGate(
                config.num_landmarks,
                config.gate,
                config.gate_init,
                config.hard_concrete_beta,
                config.gate_eval_threshold,
            )
            if config.gate != "none"
            else None
        )
        self.encoder = Encoder(config, rngs)
        head = lambda n: dense(config.dim, n, ("embed", "vocab"), jnp.float32, rngs) if n else None  # noqa: E731
        self.ctc_head = head(config.ctc_vocab)
        self.distill_head = head(config.distill_vocab)
        self.class_head = head(config.num_classes)

    def __call__(
        self,
        landmarks: jnp.ndarray,
        frame_mask: jnp.ndarray,
        positions: jnp.ndarray | None = None,
        *,
        key: jax.Array | None = None,
        gate_temperature: float | jnp.ndarray = 1.0,
    ) -> dict[str, jnp.ndarray]:
        """Runs the network.

        Args:
          landmarks: ``[B, T, L, C]`` the normalised input, 0 where missing
            (:func:`aslx.landmarks.normalize.model_input`).
          frame_mask: ``[B, T]`` bool.
          positions: ``[B, T]`` frame indices for RoPE; default ``0 … T-1``.
          key: PRNG key; given means training (dropout, LayerDrop, gate sampling), ``None``
            means evaluation (deterministic, hard gate).
          gate_temperature: the sigmoid gate's temperature (annealed by the trainer).

        Returns:
          A dict with ``features [B, T, D]``, the configured heads' logits (float32), and
          ``gate_mask [B, L]`` when the model has a gate.
        """
        b, t = frame_mask.shape
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(t), (b, t))
        outputs = {}
        encoder_key = gate_key = None
        if key is not None:
            encoder_key, gate_key = jax.random.split(key)
        if self.gate is not None:
            mask = self.gate(b, train=key is not None, key=gate_key, temperature=gate_temperature)
            landmarks = landmarks * mask[:, None, :, None].astype(landmarks.dtype)
            outputs["gate_mask"] = mask
        features = self.encoder(landmarks, frame_mask, positions, key=encoder_key)
        outputs["features"] = features
        if self.ctc_head is not None:
            outputs["ctc_logits"] = self.ctc_head(features)
        if self.distill_head is not None:
            outputs["distill_logits"] = self.distill_head(features)
        if self.class_head is not None:
            outputs["class_logits"] = self.class_head(masked_mean(features, frame_mask))
        return outputs


def create(config: ModelConfig, seed: int = 0) -> tuple[nnx.GraphDef, nnx.State]:
    """Builds the model and splits it once into (graph definition, parameters)."""
    return nnx.split(SignModel(config, nnx.Rngs(seed)), nnx.Param)


def abstract_params(config: ModelConfig) -> tuple[nnx.GraphDef, nnx.State]:
    """(graph definition, parameter shapes) without allocating any parameter."""
    return nnx.eval_shape(lambda: create(config))


def apply(graphdef: nnx.GraphDef, params: nnx.State, *args, **kwargs) -> dict[str, jnp.ndarray]:
    """Pure forward pass: ``SignModel.__call__`` on ``params`` (safe inside ``jit``)."""
    return nnx.merge(graphdef, params)(*args, **kwargs)


def count_params(params: nnx.State) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params))
