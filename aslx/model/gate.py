"""The learnable joint gate: one keep-or-drop decision per input landmark.

Each landmark ``j`` has its own keep-logit ``a_j``; the gate multiplies that landmark's
coordinates by a mask value ``z_j``. Decisions are **independent per landmark** (never a
softmax across landmarks: that forces the mask to sum to 1, so with 543 points each gets about
1/543 and the input vanishes). The sparsity penalty is the expected number of kept landmarks,
a **sum** over landmarks (a mean would shrink the penalty 543-fold).

Two kinds:

* ``sigmoid``: ``z_j = σ(a_j / τ)`` in training with a temperature ``τ`` the trainer anneals from
  soft to sharp; keep probability ``σ(a_j / τ)``.
* ``hard_concrete`` (Louizos, Welling & Kingma 2018, "Learning Sparse Neural Networks through L0
  Regularization", arXiv:1712.01312): in training ``u ~ U(0, 1)``,
  ``s = σ((log u − log(1 − u) + a_j) / β)``, ``z_j = clip(s (ζ − γ) + γ, 0, 1)`` with
  ``γ = −0.1, ζ = 1.1``: the stretch puts real probability mass on exactly 0 and exactly 1, so
  gates can close completely. Keep probability (closed form) ``P(z_j > 0) = σ(a_j − β log(−γ/ζ))``.

In evaluation both are hard: ``z_j = 1`` if ``a_j`` > the model's ``gate_eval_threshold``
else 0 (:func:`kept`). The default threshold 0 keeps a landmark whose keep probability is
above 1/2 (for the hard-concrete gate: whose deterministic estimate
``ẑ_j = clip(σ(a_j)(ζ − γ) + γ, 0, 1)`` is above 1/2). Louizos et al. use ẑ itself at test
time, which is non-zero wherever ``a_j > log(−γ/ζ) ≈ −2.40`` (:data:`NONZERO_THRESHOLD`):
that keeps every landmark 0 keeps and those with ``−2.40 < a_j ≤ 0`` too (at a scale below
1, which a hard mask drops). The joints report shows the kept counts at both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

GAMMA, ZETA = -0.1, 1.1
#: Keep-logit above which the hard-concrete gate's test-time estimate ẑ is non-zero.
NONZERO_THRESHOLD = math.log(-GAMMA / ZETA)


def kept(logits, threshold: float = 0.0):
    """Which landmarks the evaluation mask keeps: ``logits > threshold`` (bool, same shape;
    NumPy in, NumPy out; JAX in, JAX out)."""
    return logits > threshold


class JointGate(nnx.Module):
    """Keep-logits ``[num_landmarks]`` and the masks they give."""

    def __init__(
        self,
        num_landmarks: int,
        kind: str,
        init: float = 3.0,
        beta: float = 2 / 3,
        eval_threshold: float = 0.0,
    ):
        if kind not in ("sigmoid", "hard_concrete"):
            raise ValueError(f"gate kind must be sigmoid or hard_concrete, not {kind!r}")
        self.kind, self.beta, self.eval_threshold = kind, beta, eval_threshold
        self.logits = nnx.Param(
            jnp.full((num_landmarks,), init, jnp.float32), logical_axes=("landmarks",)
        )

    def keep_probabilities(self, temperature: float | jnp.ndarray = 1.0) -> jnp.ndarray:
        """``[num_landmarks]`` probability that each landmark is kept (nonzero) in training."""
        logits = self.logits[...]
        if self.kind == "sigmoid":
            return jax.nn.sigmoid(logits / temperature)
        return jax.nn.sigmoid(logits - self.beta * jnp.log(-GAMMA / ZETA))

    def expected_l0(self, temperature: float | jnp.ndarray = 1.0) -> jnp.ndarray:
        """Expected number of kept landmarks: the **sum** of keep probabilities (a scalar)."""
        return self.keep_probabilities(temperature).sum()

    def num_kept(self) -> jnp.ndarray:
        """Landmarks the evaluation mask keeps."""
        return kept(self.logits[...], self.eval_threshold).sum()

    def __call__(
        self,
        batch_size: int,
        *,
        train: bool,
        key: jax.Array | None = None,
        temperature: float | jnp.ndarray = 1.0,
    ) -> jnp.ndarray:
        """The mask ``[batch, num_landmarks]`` float32: sampled per example for hard-concrete in
        training, hard 0/1 in evaluation."""
        logits = self.logits[...]
        if not train:
            mask = kept(logits, self.eval_threshold).astype(jnp.float32)
            return jnp.broadcast_to(mask, (batch_size, logits.size))
        if self.kind == "sigmoid":
            return jnp.broadcast_to(jax.nn.sigmoid(logits / temperature), (batch_size, logits.size))
        if key is None:
            raise ValueError("the hard-concrete gate needs a key in training")
        u = jax.random.uniform(key, (batch_size, logits.size), minval=1e-6, maxval=1 - 1e-6)
        s = jax.nn.sigmoid((jnp.log(u) - jnp.log1p(-u) + logits) / self.beta)
        return jnp.clip(s * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)
