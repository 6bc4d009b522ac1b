"""The optimiser every aslx program uses: AdamW with global-norm clipping, and its schedules.

AdamW (Loshchilov & Hutter 2019, arXiv:1711.05101), β = (0.9, 0.98), weight decay 0.01 on
matrices only: biases, norm scales and the gate's keep-logits (1-D apart from the stacked
blocks' ``layers`` axis) are not decayed. The
global gradient norm is clipped to 1.0 first. Warm-up matters: training these encoders without
it diverges.

Schedules (``step`` counts optimiser steps):

* ``cosine``: linear warm-up from 0 to ``peak`` over ``warmup_steps``, then
  ``end + (peak − end) · (1 + cos(π · progress)) / 2`` to ``total_steps``.
* ``one_cycle`` (Smith & Topin 2018, arXiv:1708.07120): cosine rise from ``peak / 25`` to
  ``peak`` over the warm-up, cosine fall to ``peak / 25 / 1e4`` at the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from aslx.model import paths

#: The logical axis of stacked blocks (:func:`aslx.model.encoder.stacked_blocks`): one entry
#: per layer, not a dimension of the parameter itself.
LAYERS_AXIS = "layers"


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def decay_mask(params):
    """True for parameters that get weight decay: matrices, not counting a ``layers`` axis
    (a stack of biases ``[layers, D]`` is still a bias). Plain arrays count every axis."""

    def is_matrix(x) -> bool:
        axes = x.get_metadata().get("logical_axes") if _is_variable(x) else None
        axes = axes or (None,) * x.ndim
        return sum(axis != LAYERS_AXIS for axis in axes) >= 2

    return jax.tree.map(is_matrix, params, is_leaf=_is_variable)


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int, end: float = 0.0):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, cosine decay to ``end``."""
    return optax.warmup_cosine_decay_schedule(
        0.0, peak, warmup_steps, max(total_steps, warmup_steps + 1), end
    )


def schedule(kind: str, peak: float, warmup_steps: int, total_steps: int, end: float = 0.0):
    """The learning rate as a function of the step: ``cosine`` or ``one_cycle``."""
    if kind == "cosine":
        return warmup_cosine(peak, warmup_steps, total_steps, end)
    if kind == "one_cycle":
        return optax.cosine_onecycle_schedule(
            max(total_steps, 2), peak, pct_start=max(warmup_steps, 1) / max(total_steps, 2)
        )
    raise ValueError(f"unknown schedule {kind!r}; choose cosine or one_cycle")


def under(prefix: str):
    """``params -> mask``: True for the parameters whose path starts with ``prefix``, a
    sub-module path such as ``gate`` or ``encoder/blocks``."""
    parts = tuple(prefix.split("/"))

    def mask(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: paths.path_names(path[: len(parts)]) == parts, params
        )

    return mask


def layer_decay_multipliers(num_layers: int, decay: float) -> dict[str, float | tuple]:
    """Layer-wise learning-rate decay (Clark et al. 2020, arXiv:2003.10555; BEiT, Bao et al.
    2022, arXiv:2106.08254): the last encoder block learns at ``decay`` × the rate, each block
    below at one more factor ``decay``, the stem at ``decay ** (num_layers + 1)``; the final
    norm and the heads keep the full rate. A pretrained encoder's lower layers hold general
    features that a small labelled set should move least. ``decay = 1`` is no decay (``{}``).

    The blocks are stacked (one leading ``[num_layers]`` axis), so their entry is a tuple of
    per-layer factors, first block first.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"layer decay must be in (0, 1], not {decay}")
    if decay == 1:
        return {}
    return {
        "encoder/stem": decay ** (num_layers + 1),
        "encoder/blocks": tuple(decay ** (num_layers - i) for i in range(num_layers)),
    }


def scale_by_layer(factors) -> optax.GradientTransformation:
    """Multiplies each update ``[layers, …]`` by ``factors [layers]`` along its leading axis."""
    factors = np.asarray(factors, np.float32)

    def update(updates, state, params=None):
        del params

        def scale(u):
            if u.shape[:1] != factors.shape:
                raise ValueError(
                    f"per-layer factors {factors.shape} do not match an update of shape {u.shape}"
                )
            return u * jnp.asarray(factors, u.dtype).reshape(-1, *([1] * (u.ndim - 1)))

        return jax.tree.map(scale, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def adamw(
    learning_rate,
    *,
    b1: float = 0.9,
    b2: float = 0.98,
    weight_decay: float = 0.01,
    clip_norm: float = 1.0,
    lr_multipliers: dict[str, float] | None = None,
) -> optax.GradientTransformation:
    """Clip by global norm, then AdamW with decay on matrices only.

    ``lr_multipliers`` scales the updates of whole sub-modules, named by path prefix
    (``{"gate": 10.0, "encoder/stem": 0.5}``; a tuple scales stacked parameters layer by
    layer, ``{"encoder/blocks": (0.25, 0.5)}``): Adam's step is about the learning rate
    whatever the gradient's size, so a parameter that must travel far in one run (a joint
    gate's keep-logit) needs a larger rate, not a larger loss weight; and one that should stay
    near its pretrained value (:func:`layer_decay_multipliers`) a smaller one.
    """
    parts = [
        optax.clip_by_global_norm(clip_norm),
        optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay, mask=decay_mask),
    ]
    for prefix, factor in (lr_multipliers or {}).items():
        if isinstance(factor, tuple | list):
            parts.append(optax.masked(scale_by_layer(factor), under(prefix)))
        elif factor != 1.0:
            parts.append(optax.masked(optax.scale(factor), under(prefix)))
    return optax.chain(*parts)
