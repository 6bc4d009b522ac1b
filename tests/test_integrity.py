"""Nothing trained on corrupt state, nothing rescored on other data: checkpoint digests and
the run's provenance (:mod:`aslx.run.checkpoint`, :mod:`aslx.run.provenance`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from aslx import synthetic
from aslx.decoding import evaluate as evaluate_lib
from aslx.run.checkpoint import CheckpointDamaged, Checkpointer
from aslx.training import loop
from aslx.training.config import ConfigError
from finetune.train import train
from tests.conftest import tiny_ctc_config


def quiet(*args, **kwargs):
    pass


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def array_files(step_dir: Path) -> list[Path]:
    """The step's TensorStore data files, largest last (the one holding most of the arrays)."""
    return sorted((step_dir / "state").rglob("d/*"), key=lambda p: p.stat().st_size)


def saved_twice(folder: Path, state: dict) -> None:
    with Checkpointer(folder, async_save=False) as checkpoints:
        checkpoints.save(2, state, extra={"next_step": 2})
        checkpoints.save(4, state, extra={"next_step": 4})


def flip_bit(step_dir: Path, at: float, bit: int) -> None:
    """Flips one bit of the step's largest array file, ``at`` a fraction into it."""
    data = array_files(step_dir)[-1]
    damaged = bytearray(data.read_bytes())
    damaged[int(len(damaged) * at)] ^= bit
    data.write_bytes(bytes(damaged))


STATE = {"params": {"w": jnp.arange(4096, dtype=jnp.float32) / 7}, "step": jnp.int32(4)}


# --- checkpoints ----------------------------------------------------------------------------------


def test_one_flipped_bit_in_an_array_file_is_found_and_the_earlier_step_still_verifies(tmp_path):
    saved_twice(tmp_path, STATE)
    flip_bit(tmp_path / "4", at=0.5, bit=0x10)
    before = snapshot(tmp_path)
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(CheckpointDamaged, match=r"^checkpoint step 4 is damaged: ") as error:
            checkpoints.restore(STATE)
        assert error.value.step == 4
        assert checkpoints.verifies(STATE, 2) and not checkpoints.verifies(STATE, 4)
    assert snapshot(tmp_path) == before  # reading changed nothing


def test_a_changed_digest_names_the_array(tmp_path):
    saved_twice(tmp_path, STATE)
    extra = tmp_path / "4" / "extra" / "metadata"
    extra.write_text(extra.read_text().replace('"params/w": "', '"params/w": "0'))
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(CheckpointDamaged, match=r"1 of its arrays differ .*\(params/w\)"):
            checkpoints.restore(STATE)


def test_nan_in_a_saved_state_is_refused_at_restore(tmp_path):
    bad = {"params": {"w": STATE["params"]["w"].at[3].set(jnp.nan)}, "step": STATE["step"]}
    with Checkpointer(tmp_path, async_save=False) as checkpoints:
        checkpoints.save(2, bad, extra={"next_step": 2})
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(CheckpointDamaged, match=r"1 of its arrays hold NaN .*\(params/w\)"):
            checkpoints.restore(STATE)


def test_a_truncated_array_file_is_one_error_not_a_traceback(tmp_path):
    saved_twice(tmp_path, STATE)
    data = array_files(tmp_path / "4")[-1]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(CheckpointDamaged, match=r"^checkpoint step 4 is damaged: "):
            checkpoints.restore(STATE)


def test_digests_are_not_part_of_the_extra_a_caller_reads(tmp_path):
    saved_twice(tmp_path, STATE)
    with Checkpointer(tmp_path) as checkpoints:
        assert checkpoints.restore(STATE)[1] == {"next_step": 4}
        assert checkpoints.read_extra(4) == {"next_step": 4}


def test_resume_names_the_step_that_verifies_then_falls_back_to_it_on_request(tmp_path):
    saved_twice(tmp_path, STATE)
    flip_bit(tmp_path / "4", at=1 / 3, bit=0x01)
    before = snapshot(tmp_path)
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(loop.TrainingError) as error:
            loop.resume(checkpoints, STATE, quiet)
    message = str(error.value)
    assert "\n" not in message
    assert "checkpoint step 4 is damaged" in message
    assert message.endswith(
        "step 2 verifies: rerun with --config.resume_from_good=True to resume from it (the "
        "later steps are set aside, not deleted)"
    )
    assert snapshot(tmp_path) == before
    said = []
    with Checkpointer(tmp_path) as checkpoints:
        state, start, _ = loop.resume(checkpoints, STATE, said.append, from_good=True)
        assert start == 2 and checkpoints.all_steps() == [2]
    np.testing.assert_array_equal(state["params"]["w"], STATE["params"]["w"])
    # The damaged step is kept, byte for byte, under another name.
    assert snapshot(tmp_path / "4.damaged") == {
        k.removeprefix("4/"): v for k, v in before.items() if k.startswith("4/")
    }
    assert "set aside" in said[0]


def test_weights_holding_nan_are_never_scored_nor_chosen(monkeypatch):
    raw = {"w": jnp.ones(3)}
    state = {"params": raw, "ema_params": {"w": jnp.array([1.0, jnp.nan, 1.0])}}
    calls = []

    def evaluate(forward, weights, batches, **kwargs):
        calls.append(weights)
        return {"top1": 0.5}

    monkeypatch.setattr(evaluate_lib, "evaluate", evaluate)
    scores = evaluate_lib.evaluate_variants(None, state, lambda: [], ("raw", "ema"))
    assert list(scores) == ["raw"] and calls == [raw]
    with pytest.raises(ValueError, match="every set of weights .* holds NaN"):
        evaluate_lib.evaluate_variants(None, {"params": state["ema_params"]}, lambda: [], ("raw",))


# --- provenance -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(synthetic_records, tmp_path_factory) -> tuple[Path, Path]:
    """``(workdir, records)`` of a finished 4-step run saved at steps 2 and 4."""
    workdir = tmp_path_factory.mktemp("provenance") / "run"
    config = tiny_ctc_config(synthetic_records)
    config.checkpoint_every = 2
    train(config, str(workdir), print_fn=quiet)
    return workdir, synthetic_records


def copy_of(finished, tmp_path) -> tuple[Path, object]:
    workdir, records = finished
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    config = tiny_ctc_config(records)
    config.checkpoint_every = 2
    return copy, config


def test_a_finished_run_rerun_as_it_was_writes_nothing(finished, tmp_path):
    workdir, config = copy_of(finished, tmp_path)
    before = snapshot(workdir)
    said = []
    results = train(config, str(workdir), print_fn=said.append)
    assert results["steps"] == 4 and "already trained for 4 steps" in said[-1]
    after = snapshot(workdir)
    after.pop(".lock", None)
    before.pop(".lock", None)
    assert after == before


def test_a_rerun_with_another_learning_rate_is_refused_naming_it(finished, tmp_path):
    workdir, config = copy_of(finished, tmp_path)
    before = snapshot(workdir)
    config.lr = 0.005
    with pytest.raises(ConfigError) as error:
        train(config, str(workdir), print_fn=quiet)
    message = str(error.value)
    assert "\n" not in message and "lr: 0.001 -> 0.005" in message
    assert "nothing was changed there" in message
    assert {k: v for k, v in snapshot(workdir).items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }


def test_a_rerun_on_other_records_is_refused_naming_them(finished, tmp_path):
    workdir, config = copy_of(finished, tmp_path)
    other = tmp_path / "other"
    synthetic.record_set(other, num_phrases=48, num_signers=4, val_fraction=0.5, num_shards=2)
    before = snapshot(workdir)
    config.data.dir = str(other / "records")
    with pytest.raises(ConfigError, match=r"started with other records or settings \(records: "):
        train(config, str(workdir), print_fn=quiet)
    assert (workdir / "results.json").read_bytes() == before["results.json"]
    assert (workdir / "config.json").read_bytes() == before["config.json"]


def test_the_same_records_under_another_path_resume(finished, tmp_path):
    workdir, config = copy_of(finished, tmp_path)
    moved = tmp_path / "moved"
    shutil.copytree(config.data.dir, moved)
    config.data.dir, config.total_steps = str(moved), 6
    results = train(config, str(workdir), print_fn=quiet)
    assert results["steps"] == 6
    from aslx.run import provenance

    assert provenance.read(workdir)["total_steps"] == [4, 6]


def test_a_run_on_a_damaged_checkpoint_stops_then_resumes_from_the_good_one(finished, tmp_path):
    workdir, config = copy_of(finished, tmp_path)
    flip_bit(workdir / "checkpoints" / "4", at=0.5, bit=0x04)
    before = snapshot(workdir / "checkpoints")
    config.total_steps = 6
    with pytest.raises(loop.TrainingError) as error:
        train(config, str(workdir), print_fn=quiet)
    message = str(error.value)
    assert "\n" not in message and "checkpoint step 4 is damaged: " in message
    assert "step 2 verifies: rerun with --config.resume_from_good=True" in message
    assert snapshot(workdir / "checkpoints") == before  # nothing written, nothing deleted
    config.resume_from_good = True
    said = []
    results = train(config, str(workdir), print_fn=said.append)
    assert results["steps"] == 6
    assert any("resuming from step 2" in line for line in said)
    assert (workdir / "checkpoints" / "4.damaged").is_dir()


#: The finished run's config as a recipe file, for the command line.
RECIPE = """
from tests.conftest import tiny_ctc_config


def get_config(arg=None):
    config = tiny_ctc_config("")
    config.checkpoint_every = 2
    return config
"""


@pytest.mark.parametrize("fault", ["a damaged checkpoint", "another learning rate"])
def test_the_trainer_command_refuses_in_one_line_with_exit_status_2(finished, tmp_path, fault):
    from tests import processes

    workdir, config = copy_of(finished, tmp_path)
    recipe = tmp_path / "recipe.py"
    recipe.write_text(RECIPE)
    flags = ["--config.total_steps=6"]
    if fault == "a damaged checkpoint":
        flip_bit(workdir / "checkpoints" / "4", at=0.5, bit=0x02)
        expected = "checkpoint step 4 is damaged: "
    else:
        flags.append("--config.lr=0.005")
        expected = "lr: 0.001 -> 0.005"
    before = snapshot(workdir)
    command = processes.trainer(
        "finetune.main", str(recipe), workdir, Path(config.data.dir), *flags
    )
    result = processes.run(command, processes.environment())
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    after = snapshot(workdir)
    assert {k: v for k, v in after.items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }


@pytest.mark.parametrize("damage", ["{not json", '{"records": {}}'])
def test_a_damaged_provenance_file_is_one_line_and_nothing_is_written(finished, tmp_path, damage):
    workdir, config = copy_of(finished, tmp_path)
    (workdir / "provenance.json").write_text(damage)
    before = snapshot(workdir)
    with pytest.raises(ConfigError, match=r"provenance\.json: damaged, .*give a new --workdir$"):
        train(config, str(workdir), print_fn=quiet)
    assert {k: v for k, v in snapshot(workdir).items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }
