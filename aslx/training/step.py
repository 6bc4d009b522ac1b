"""One optimiser step as a pure function of pytrees, shared by pretraining and finetuning.

The training state is a plain dict of arrays, so it jits, shards and checkpoints as it is:

=================  =========================================================================
key                what
=================  =========================================================================
step               int32 scalar: optimiser steps taken (skipped non-finite steps count too)
params             ``nnx.State`` of the model's parameters (float32)
opt_state          the optimiser's state (AdamW moments, counters)
ema_params         exponential moving average of ``params``: ``ema ← d · ema + (1 − d) · θ``
nonfinite          int32: non-finite steps in a row (0 after a good step)
skipped            int32: non-finite steps in total
=================  =========================================================================

:func:`make_train_step` wraps a loss ``loss_fn(params, batch, key, step, frozen) -> (loss,
aux)`` into ``step_fn(state, batch, key, frozen) -> (state, metrics)``:

* the key of a step is ``fold_in(key, step)``: a resumed run draws exactly the same numbers;
* gradient accumulation splits the batch into ``n`` micro-batches (example ``i`` goes to
  micro-batch ``i mod n``, so each device contributes equally to each), sums their gradients
  in a ``lax.scan`` and divides by ``n``: the update equals one step on the whole batch when the
  loss is a mean over equally sized micro-batches;
* a step whose loss or gradients are not finite changes nothing but the counters: parameters,
  optimiser state and EMA stay as they were (the host stops the run after too many in a row);
* ``frozen`` holds what the loss reads but never trains (a distillation teacher's parameters),
  passed as an argument so that XLA does not bake it into the program as constants; with
  ``teacher_is_ema`` the loss gets the EMA parameters there instead (Data2vec's teacher);
* ``ema_decay`` is a number or a function of the step (Data2vec's schedule).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[..., tuple[jnp.ndarray, dict]]


def all_params(params):
    """What the EMA follows by default: every parameter."""
    return params


def init_state(params, tx: optax.GradientTransformation, ema_of: Callable | None = None) -> dict:
    """A fresh training state for ``params``; the EMA follows ``ema_of(params)`` (default:
    :func:`all_params`; Data2vec's teacher follows only the encoder)."""
    ema_of = ema_of or all_params

    def zero():  # one buffer each: a donated state must not hold one buffer twice
        return jnp.zeros((), jnp.int32)

    return {
        "step": zero(),
        "params": params,
        "opt_state": tx.init(params),
        "ema_params": jax.tree.map(jnp.copy, ema_of(params)),
        "nonfinite": zero(),
        "skipped": zero(),
    }


def _all_finite(tree) -> jnp.ndarray:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))


def _micro_batches(batch: dict, n: int) -> dict:
    """``[B, …]`` → ``[n, B / n, …]`` with example ``i`` in micro-batch ``i mod n``."""

    def split(x):
        return x.reshape(x.shape[0] // n, n, *x.shape[1:]).swapaxes(0, 1)

    return jax.tree.map(split, batch)


def make_train_step(
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    *,
    ema_decay: float | Callable,
    grad_accum_steps: int = 1,
    teacher_is_ema: bool = False,
    ema_of: Callable | None = None,
) -> Callable:
    """``step_fn(state, batch, key, frozen) -> (state, metrics)`` (not jitted: the caller jits
    it with its shardings). ``metrics`` holds ``loss``, ``grad_norm``, the counters ``nonfinite``
    and ``skipped`` after the step, and the mean of every ``aux`` scalar. The EMA follows
    ``ema_of(params)``, as :func:`init_state` built it."""
    ema_of = ema_of or all_params
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def gradients(params, batch, key, step, frozen):
        if grad_accum_steps == 1:
            return grad_fn(params, batch, key, step, frozen)
        micro = _micro_batches(batch, grad_accum_steps)
        keys = jax.random.split(key, grad_accum_steps)

        def body(total, xs):
            (loss, aux), grads = grad_fn(params, xs[0], xs[1], step, frozen)
            return jax.tree.map(jnp.add, total, ((loss, aux), grads)), None

        (_, aux_shape), grads_shape = jax.eval_shape(
            grad_fn, params, jax.tree.map(lambda x: x[0], micro), keys[0], step, frozen
        )
        zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype),
            ((jax.ShapeDtypeStruct((), jnp.float32), aux_shape), grads_shape),
        )
        total, _ = jax.lax.scan(body, zeros, (micro, keys))
        return jax.tree.map(lambda x: x / grad_accum_steps, total)

    def step_fn(state: dict, batch: dict, key: jax.Array, frozen=None):
        params = state["params"]
        if teacher_is_ema:
            frozen = state["ema_params"]
        decay = ema_decay(state["step"]) if callable(ema_decay) else ema_decay
        key = jax.random.fold_in(key, state["step"])
        (loss, aux), grads = gradients(params, batch, key, state["step"], frozen)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        updates, opt_state = tx.update(grads, state["opt_state"], params)
        new_params = optax.apply_updates(params, updates)
        new_ema = jax.tree.map(
            lambda e, p: decay * e + (1.0 - decay) * p, state["ema_params"], ema_of(new_params)
        )

        def keep_if_finite(new, old):
            return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)

        state = {
            "step": state["step"] + 1,
            "params": keep_if_finite(new_params, params),
            "opt_state": keep_if_finite(opt_state, state["opt_state"]),
            "ema_params": keep_if_finite(new_ema, state["ema_params"]),
            "nonfinite": jnp.where(finite, 0, state["nonfinite"] + 1),
            "skipped": state["skipped"] + (~finite).astype(jnp.int32),
        }
        metrics = aux | {
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "nonfinite": state["nonfinite"],
            "skipped": state["skipped"],
        }
        if callable(ema_decay):
            metrics["ema_decay"] = decay
        return state, metrics

    return step_fn
