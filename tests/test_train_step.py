"""The generic train step: accumulation, non-finite steps, EMA, keys, schedules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aslx.training import optimizer
from aslx.training import step as step_lib


def regression_loss(params, batch, key, step, frozen):
    """Mean squared error of a linear map, plus a key-dependent term that is exactly 0 so the
    key's value shows in ``aux`` without changing the gradient."""
    prediction = batch["x"] @ params["w"] + params["b"]
    loss = jnp.mean((prediction - batch["y"]) ** 2)
    return loss, {"key_bits": jax.random.uniform(key), "step_seen": step.astype(jnp.float32)}


def data(seed: int, n: int = 16):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"x": x, "y": (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)}


def fresh(tx):
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    return step_lib.init_state(params, tx)


@pytest.mark.parametrize("accumulate", [2, 4, 8])
def test_accumulation_equals_one_big_step(accumulate):
    tx = optax.sgd(0.1)
    whole = jax.jit(step_lib.make_train_step(regression_loss, tx, ema_decay=0.9))
    split = jax.jit(
        step_lib.make_train_step(regression_loss, tx, ema_decay=0.9, grad_accum_steps=accumulate)
    )
    a, b = fresh(tx), fresh(tx)
    key = jax.random.key(0)
    for i in range(3):
        a, ma = whole(a, data(i), key)
        b, mb = split(b, data(i), key)
        np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-6)
    for name in ("w", "b"):
        np.testing.assert_allclose(a["params"][name], b["params"][name], rtol=1e-6, atol=1e-7)


def test_micro_batches_take_every_nth_example():
    batch = {"x": np.arange(8)}
    micro = step_lib._micro_batches(batch, 4)
    assert micro["x"].tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_a_non_finite_step_changes_nothing_but_the_counters():
    tx = optimizer.adamw(1e-2)
    train_step = jax.jit(step_lib.make_train_step(regression_loss, tx, ema_decay=0.5))
    state, _ = train_step(fresh(tx), data(0), jax.random.key(0))
    bad = data(1)
    bad["x"][3, 1] = np.nan
    after, metrics = train_step(state, bad, jax.random.key(0))
    assert int(metrics["nonfinite"]) == 1 and int(metrics["skipped"]) == 1
    for name in ("params", "opt_state", "ema_params"):
        jax.tree.map(np.testing.assert_array_equal, after[name], state[name])
    assert int(after["step"]) == 2 and int(after["nonfinite"]) == 1 and int(after["skipped"]) == 1
    after, _ = train_step(after, bad, jax.random.key(0))
    assert int(after["nonfinite"]) == 2
    after, metrics = train_step(after, data(2), jax.random.key(0))
    assert int(metrics["nonfinite"]) == 0 and int(after["nonfinite"]) == 0
    assert int(after["skipped"]) == 2


def test_ema_follows_its_formula():
    tx = optax.sgd(0.1)
    decay = 0.75
    train_step = jax.jit(step_lib.make_train_step(regression_loss, tx, ema_decay=decay))
    state = fresh(tx)
    ema = jax.tree.map(np.asarray, state["ema_params"])
    for i in range(4):
        state, _ = train_step(state, data(i), jax.random.key(0))
        ema = jax.tree.map(
            lambda e, p: decay * e + (1 - decay) * np.asarray(p), ema, state["params"]
        )
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), state["ema_params"], ema
        )


def test_each_step_folds_its_number_into_the_key():
    tx = optax.sgd(0.0)
    train_step = jax.jit(step_lib.make_train_step(regression_loss, tx, ema_decay=0.0))
    state = fresh(tx)
    seen = []
    for _ in range(3):
        state, metrics = train_step(state, data(0), jax.random.key(7))
        seen.append((float(metrics["key_bits"]), float(metrics["step_seen"])))
    assert [s for _, s in seen] == [0.0, 1.0, 2.0]
    assert len({bits for bits, _ in seen}) == 3
    # the same step of another run draws the same numbers
    again, metrics = train_step(fresh(tx), data(0), jax.random.key(7))
    assert float(metrics["key_bits"]) == seen[0][0]


@pytest.mark.parametrize("kind", ["cosine", "one_cycle"])
def test_schedules_warm_up_then_decay(kind):
    schedule = optimizer.schedule(kind, 1e-3, 100, 1000)
    values = np.array([float(schedule(s)) for s in range(0, 1000, 10)])
    peak = int(values.argmax())
    assert 8 <= peak <= 11  # the peak at the end of the warm-up (step ~100)
    assert np.all(np.diff(values[: peak + 1]) >= 0) and np.all(np.diff(values[peak:]) <= 1e-12)
    assert values.max() == pytest.approx(1e-3, rel=1e-3)
    assert values[-1] < 1e-4


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="one_cycle"):
        optimizer.schedule("linear", 1e-3, 10, 100)


def test_lr_multiplier_scales_only_its_module():
    params = {"gate": {"logits": jnp.zeros(4)}, "head": {"bias": jnp.zeros(4)}}
    tx = optimizer.adamw(1e-3, lr_multipliers={"gate": 10.0})
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["gate"]["logits"], 10 * updates["head"]["bias"], rtol=1e-6)
    assert float(jnp.abs(updates["head"]["bias"]).max()) == pytest.approx(1e-3, rel=1e-3)


def test_layer_decay_scales_each_block_of_the_real_model():
    from aslx.model import config as model_config_lib
    from aslx.model import model as model_lib
    from aslx.model.paths import flatten

    config = model_config_lib.sized("tiny", num_landmarks=5, ctc_vocab=7)  # 2 blocks
    _, params = model_lib.create(config)
    multipliers = optimizer.layer_decay_multipliers(config.num_layers, 0.5)
    assert multipliers == {"encoder/stem": 0.125, "encoder/blocks": (0.25, 0.5)}
    tx = optimizer.adamw(1e-3, weight_decay=0.0, lr_multipliers=multipliers)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    steps = {}
    for path, u in flatten(updates).items():  # stacked blocks: one entry per layer
        if path.startswith("encoder/blocks/"):
            for i, layer in enumerate(np.asarray(u)):
                steps[path.replace("blocks/", f"blocks/{i}/")] = float(np.abs(layer).max())
        else:
            steps[path] = float(np.abs(u).max())
    expected = {
        "encoder/stem/": 0.125e-3,
        "encoder/blocks/0/": 0.25e-3,
        "encoder/blocks/1/": 0.5e-3,
    }
    for path, step in steps.items():
        want = next((v for k, v in expected.items() if path.startswith(k)), 1e-3)
        assert step == pytest.approx(want, rel=1e-3), path
    assert {p.split("/")[0] for p, s in steps.items() if s == pytest.approx(1e-3, rel=1e-3)} == {
        "encoder",  # the final norm
        "ctc_head",
    }
    assert optimizer.layer_decay_multipliers(2, 1.0) == {}
    with pytest.raises(ValueError, match="layer decay"):
        optimizer.layer_decay_multipliers(2, 0.0)
