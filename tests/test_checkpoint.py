"""aslx.run.checkpoint: round trips of the real training state, retention, atomicity,
errors, and restoring onto other shardings (4 fake CPU devices, in a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from aslx.model import config as config_lib
from aslx.model import model as model_lib
from aslx.run.checkpoint import Checkpointer, read_arrays
from aslx.training import optimizer, sharding
from tests.processes import environment

ROOT = Path(__file__).resolve().parents[1]
EXTRA = {"data": {"epoch": 2, "position": 12345, "seed": 7}, "config": {"model": "tiny"}}


@pytest.fixture(scope="module")
def state() -> dict:
    """The trainer's state after one optimiser step, so no part of it is all zeros or equal
    to another part (EMA ≠ parameters, Adam moments ≠ 0)."""
    _, params = model_lib.create(config_lib.sized("tiny"), seed=0)
    tx = optimizer.adamw(1e-3)

    @jax.jit  # eager optax on ~150 leaves takes seconds
    def train_step(params):
        opt_state = tx.init(params)
        grads = jax.tree.map(lambda p: jnp.sin(p) + 0.01, params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), opt_state

    new_params, opt_state = train_step(params)
    return {
        "step": jnp.int32(1),
        "params": new_params,
        "opt_state": opt_state,
        "ema_params": params,
        "nonfinite": jnp.int32(3),
    }


def with_step(state: dict, step: int) -> dict:
    return {**state, "step": jnp.int32(step)}


def assert_bitwise_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.dtype, x.shape) == (y.dtype, y.shape)
        assert x.tobytes() == y.tobytes()


def by_path(tree) -> dict[str, np.ndarray]:
    """Leaves keyed by a path that reads the same for the live state and orbax's dicts."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        out["/".join(names)] = np.asarray(leaf)
    return out


def step_dirs(directory: Path) -> list[int]:
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def test_round_trip_is_bitwise_and_returns_extra(tmp_path, state):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        assert ckpt.save(10, state, extra=EXTRA)
        assert ckpt.latest_step() == 10
    target = jax.tree.map(jnp.zeros_like, state)  # values must come from disk, not the target
    with Checkpointer(tmp_path) as ckpt:
        restored, extra = ckpt.restore(target)
        assert ckpt.read_extra() == EXTRA
    assert extra == EXTRA
    assert isinstance(restored["params"], nnx.State)
    assert isinstance(restored["ema_params"], nnx.State)
    assert_bitwise_equal(restored, state)


def test_restore_onto_eval_shape_target_with_and_without_shardings(tmp_path, state):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(5, state, extra=EXTRA)
        ckpt.wait_until_finished()
        abstract = jax.eval_shape(lambda: state)
        restored, extra = ckpt.restore(abstract)
        assert_bitwise_equal(restored, state)
        assert extra == EXTRA

        replicated = NamedSharding(sharding.make_mesh(), PartitionSpec())
        sharded_target = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), abstract
        )
        restored, _ = ckpt.restore(sharded_target, step=5)
    assert_bitwise_equal(restored, state)
    assert all(leaf.sharding == replicated for leaf in jax.tree.leaves(restored))


def test_async_save_then_wait(tmp_path, state):
    ckpt = Checkpointer(tmp_path, async_save=True)
    assert ckpt.save(1, state, extra={"n": 1}) is True
    ckpt.wait_until_finished()
    assert step_dirs(tmp_path) == [1]
    assert not [p for p in tmp_path.iterdir() if ocp.step.TMP_DIR_SUFFIX in p.name]
    assert ckpt.all_steps() == [1] and ckpt.latest_step() == 1
    # orbax skips a step that is not newer than the latest; force is not needed for that
    assert ckpt.save(1, state) is False
    assert ckpt.save(2, with_step(state, 2), extra={"n": 2}) is True
    # Restoring the step still being written waits for it instead of failing.
    restored, extra = ckpt.restore(state, step=2)
    assert int(restored["step"]) == 2 and extra == {"n": 2}
    ckpt.close()
    ckpt.close()  # twice is fine


def test_retention_keeps_last_n_plus_best(tmp_path, state):
    accuracy = {1: 0.5, 2: 0.9, 3: 0.1, 4: None, 5: 0.2, 6: 0.3}
    with Checkpointer(tmp_path, keep_last=2, best_metric="accuracy") as ckpt:
        for step, acc in accuracy.items():
            metrics = None if acc is None else {"accuracy": acc, "loss": 1.0}
            assert ckpt.save(step, with_step(state, step), metrics=metrics)
            ckpt.wait_until_finished()
            if step == 3:
                assert step_dirs(tmp_path) == [2, 3]  # step 1: neither recent nor best
        # Step 4 had no metrics: once two newer steps exist, nothing keeps it.
        assert step_dirs(tmp_path) == [2, 5, 6]
        assert ckpt.all_steps() == [2, 5, 6]
        assert ckpt.latest_step() == 6
        assert ckpt.best_step() == 2

    # A new run in the same directory ranks by the metrics stored on disk.
    with Checkpointer(tmp_path, keep_last=2, best_metric="accuracy") as ckpt:
        assert ckpt.best_step() == 2
        ckpt.save(7, with_step(state, 7), metrics={"accuracy": 0.95})
        ckpt.wait_until_finished()
        assert step_dirs(tmp_path) == [6, 7]  # 7 is both recent and best
        assert ckpt.best_step() == 7


def test_retention_min_mode_and_nan_is_never_best(tmp_path):
    small = {"w": np.arange(4, dtype=np.float32)}
    loss = {1: 3.0, 2: 1.0, 3: float("nan"), 4: 2.0, 5: 5.0}
    with Checkpointer(tmp_path, keep_last=1, best_metric="loss", best_mode="min") as ckpt:
        for step, value in loss.items():
            ckpt.save(step, small, metrics={"loss": value})
        ckpt.wait_until_finished()
        assert step_dirs(tmp_path) == [2, 5]
        assert ckpt.best_step() == 2


def test_latest_and_best_step_when_nothing_ranks(tmp_path):
    small = {"w": np.ones(3, np.float32)}
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.all_steps() == [] and ckpt.latest_step() is None and ckpt.best_step() is None
        ckpt.save(3, small, metrics={"accuracy": 1.0})  # no best_metric: metrics ignored
        ckpt.save(8, small)
        ckpt.wait_until_finished()
        assert ckpt.latest_step() == 8 and ckpt.best_step() is None
    with Checkpointer(tmp_path, best_metric="accuracy") as ckpt:
        assert ckpt.best_step() is None  # nothing was saved with metrics


def test_interrupted_save_is_ignored(tmp_path, state):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, with_step(state, 1), extra={"n": 1})
        ckpt.save(2, with_step(state, 2), extra={"n": 2})
    # A save of step 3 that died half-way: orbax's temporary directory with part of the files.
    half = tmp_path / f"3{ocp.step.TMP_DIR_SUFFIX}-1700000000"
    shutil.copytree(tmp_path / "2", half)
    shutil.rmtree(half / "extra")
    (half / "state" / "manifest.ocdbt").unlink()

    with Checkpointer(tmp_path, read_only=True) as reader:
        assert reader.all_steps() == [1, 2] and reader.latest_step() == 2
        restored, extra = reader.restore(jax.eval_shape(lambda: state))
        assert int(restored["step"]) == 2 and extra == {"n": 2}
        with pytest.raises(FileNotFoundError, match="step 3"):
            reader.restore(state, step=3)
    assert int(read_arrays(tmp_path)["step"]) == 2
    assert half.exists()  # readers never delete

    with Checkpointer(tmp_path) as writer:  # a writer clears dead temporary directories
        assert writer.save(3, with_step(state, 3), extra={"n": 3})  # (done before it saves)
        writer.wait_until_finished()
        assert not half.exists()
        assert step_dirs(tmp_path) == [1, 2, 3]
        assert writer.read_extra() == {"n": 3}


KILLED_SAVE = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from aslx.run.checkpoint import Checkpointer

    ckpt = Checkpointer(sys.argv[1])
    ckpt.save(1, {"w": np.full((4,), 1.0, np.float32)}, extra={"n": 1})
    ckpt.wait_until_finished()
    # 64 MiB: the background write is still running when the process dies.
    assert ckpt.save(2, {"w": np.full((16 << 20,), 2.0, np.float32)}, extra={"n": 2})
    os._exit(0)
    """
)


def test_killed_async_save_leaves_previous_step_latest(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(tmp_path)],
        cwd=ROOT,
        env=os.environ | {"JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert step_dirs(tmp_path) == [1]
    assert (tmp_path / f"2{ocp.step.TMP_DIR_SUFFIX}").is_dir()  # the half-written step 2
    with Checkpointer(tmp_path, read_only=True) as reader:
        assert reader.latest_step() == 1
        restored, extra = reader.restore({"w": np.zeros(4, np.float32)})
    assert extra == {"n": 1}
    np.testing.assert_array_equal(restored["w"], np.ones(4, np.float32))


def test_no_checkpoint_raises_file_not_found_naming_the_directory(tmp_path, state):
    empty = tmp_path / "empty"
    with Checkpointer(empty) as ckpt:
        with pytest.raises(FileNotFoundError, match=str(empty)):
            ckpt.restore(state)
        with pytest.raises(FileNotFoundError, match=str(empty)):
            ckpt.read_extra()
    missing = tmp_path / "never_created"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        read_arrays(missing)
    assert not missing.exists()  # reading created nothing
    with Checkpointer(tmp_path / "one") as ckpt:
        ckpt.save(4, {"w": np.ones(2, np.float32)})
        ckpt.wait_until_finished()
        with pytest.raises(FileNotFoundError, match=r"step 5 .*\[4\]"):
            ckpt.restore({"w": np.ones(2, np.float32)}, step=5)


def test_mismatched_target_raises_value_error_naming_what_differs(tmp_path, state):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, state)
        ckpt.wait_until_finished()

        missing_key = {k: v for k, v in state.items() if k != "nonfinite"}
        with pytest.raises(ValueError, match="saved but not in the target") as error:
            ckpt.restore(missing_key)
        assert str(tmp_path) in str(error.value) and "nonfinite" in str(error.value)

        extra_key = {**state, "extra_counter": jnp.int32(0)}
        with pytest.raises(ValueError, match="in the target but not saved.*extra_counter"):
            ckpt.restore(extra_key)

        def narrow_ctc_bias(path, leaf):
            name = jax.tree_util.keystr(path)
            if name.startswith("['params']['ctc_head']['bias']"):
                return jax.ShapeDtypeStruct((7,), leaf.dtype)
            return leaf

        reshaped = jax.tree_util.tree_map_with_path(narrow_ctc_bias, jax.eval_shape(lambda: state))
        with pytest.raises(ValueError, match=r"different shapes.*params/ctc_head/bias/value"):
            ckpt.restore(reshaped)


def test_invalid_arguments(tmp_path, state):
    with pytest.raises(ValueError, match="keep_last"):
        Checkpointer(tmp_path, keep_last=0)
    with pytest.raises(ValueError, match="best_mode"):
        Checkpointer(tmp_path, best_mode="largest")
    with Checkpointer(tmp_path, best_metric="accuracy") as ckpt:
        with pytest.raises(ValueError, match="accuracy"):
            ckpt.save(1, state, metrics={"loss": 1.0})
        with pytest.raises(TypeError, match="JSON"):
            ckpt.save(1, state, extra={"when": object()})
        assert ckpt.all_steps() == []
    with Checkpointer(tmp_path, read_only=True) as reader:
        with pytest.raises(RuntimeError, match="read-only"):
            reader.save(1, state)


def test_read_arrays_without_target(tmp_path, state):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, with_step(state, 1))
        ckpt.save(2, with_step(state, 2))
    latest = read_arrays(tmp_path)
    assert isinstance(latest, dict) and isinstance(latest["params"], dict)
    assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(latest))
    assert int(latest["step"]) == 2 and int(read_arrays(tmp_path, step=1)["step"]) == 1
    got, want = by_path(latest), by_path(with_step(state, 2))
    assert got.keys() == want.keys()
    for path, value in want.items():
        assert got[path].dtype == value.dtype and got[path].tobytes() == value.tobytes(), path


RESHARD = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from aslx.model import config as config_lib, model as model_lib
    from aslx.training import sharding
    from aslx.run.checkpoint import Checkpointer

    assert jax.device_count() == 4, jax.devices()
    _, params = model_lib.create(config_lib.sized("tiny"))
    saved = sharding.shard_params(params, sharding.make_mesh(fsdp=4))
    result = {"saved_split": sum(
        len(x.sharding.device_set) == 4 and not x.sharding.is_fully_replicated
        for x in jax.tree.leaves(saved))}
    with Checkpointer(sys.argv[1]) as ckpt:
        ckpt.save(3, {"params": saved}, extra={"fsdp": 4})
        ckpt.wait_until_finished()
        for fsdp in (1, 2):
            shardings = jax.tree.leaves(sharding.param_shardings(params, sharding.make_mesh(fsdp)))
            abstract = jax.eval_shape(lambda: params)
            target = jax.tree.unflatten(jax.tree.structure(abstract), [
                jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s)
                for a, s in zip(jax.tree.leaves(abstract), shardings, strict=True)])
            restored, extra = ckpt.restore({"params": target})
            leaves = jax.tree.leaves(restored["params"])
            result[f"fsdp{fsdp}"] = {
                "placed": all(x.sharding == s for x, s in zip(leaves, shardings)),
                "equal": all(np.array_equal(np.asarray(x), np.asarray(y))
                             for x, y in zip(leaves, jax.tree.leaves(params))),
                "extra": extra,
            }
    print(json.dumps(result))
    """
)


def test_restore_onto_other_shardings_on_four_devices(tmp_path):
    """Saved split over fsdp=4, restored replicated (fsdp=1) and split over fsdp=2."""
    result = subprocess.run(
        [sys.executable, "-c", RESHARD, str(tmp_path)],
        cwd=ROOT,
        env=environment(devices=4),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["saved_split"] > 0
    for fsdp in (1, 2):
        assert report[f"fsdp{fsdp}"] == {"placed": True, "equal": True, "extra": {"fsdp": 4}}
