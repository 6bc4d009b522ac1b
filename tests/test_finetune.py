"""The finetuning program end to end (``python -m finetune.main``), on a small synthetic record set.

Every run is a subprocess, as a user runs it: the device count is fixed when JAX starts, and a
run must survive SIGKILL. The runs are tiny (one 32-wide block, batch 16, 20 steps) and train
on two length buckets (56 and 64 frames, windows of 3 batches sorted by length), so resume and
the 8-device run are checked with buckets on.
The 1-device runs share a JAX compilation cache, so only the first one compiles the train step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aslx.run.checkpoint import Checkpointer, read_arrays
from aslx.training.metrics_log import read_metrics
from tests.processes import (
    TIMEOUT,
    assert_bitwise_equal,
    environment,
    finalized_steps,
    finish,
    flatten,
    last_logged_step,
    run,
    start,
    succeeded,
    train_losses,
    trainer,
)

TOTAL_STEPS = 20
SMALL = (
    "--config.model.num_layers=1",
    "--config.model.dim=32",
    "--config.data.max_frames=64",
    "--config.data.buckets=56",
    "--config.data.bucket_window=3",
    "--config.batch_size=16",
    f"--config.total_steps={TOTAL_STEPS}",
    "--config.warmup_steps=2",
    "--config.log_every=1",
    "--config.eval_every=1000",
    "--config.checkpoint_every=4",
)
KILL_SEED = 20240611


# --- helpers -------------------------------------------------------------------------------


def command(workdir: Path, records: Path, *extra: str) -> list[str]:
    # extra last: an override given twice takes its last value
    return trainer("finetune.main", "configs/finetune_tiny.py", workdir, records, *SMALL, *extra)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """64 synthetic phrases of 4 signers, ingested into 8 shards (train 48, val 16)."""
    base = tmp_path_factory.mktemp("finetune_data")
    env = environment()
    succeeded(
        run(
            [sys.executable, "-m", "aslx.synthetic", "--out", str(base / "raw")]
            + ["--phrases", "64", "--signers", "4", "--seed", "0"],
            env,
        )
    )
    succeeded(
        run(
            [sys.executable, "-m", "aslx.ingest", "--format", "kaggle-fingerspelling"]
            + ["--src", str(base / "raw"), "--out", str(base / "records")]
            + ["--val-fraction", "0.2", "--shards", "8", "--overwrite", "--no-progress"],
            env,
        )
    )
    return base / "records"


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def baseline(records, jax_cache, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """The same 20-step run on 1 CPU device and on 8 fake ones (4 data × 2 fsdp), side by side.

    ``{"one": (workdir, result), "eight": (workdir, result)}``.
    """
    base = tmp_path_factory.mktemp("finetune_baseline")
    runs = {
        "one": (base / "one", (), environment(cache=jax_cache)),
        "eight": (base / "eight", ("--config.fsdp=2",), environment(devices=8)),
    }
    return {
        name: (workdir, succeeded(run(command(workdir, records, *extra), env)))
        for name, (workdir, extra, env) in runs.items()
    }


@pytest.fixture(scope="module")
def reference(baseline) -> Path:
    """The uninterrupted 1-device run's workdir."""
    return baseline["one"][0]


# --- 1. data parallel + FSDP on 8 devices = 1 device ---------------------------------------


def test_eight_devices_give_the_same_losses_as_one(baseline):
    (one_dir, one), (eight_dir, eight) = baseline["one"], baseline["eight"]
    assert "on 1 cpu device(s)" in one.stdout
    assert "on 8 cpu device(s)" in eight.stdout
    for result in (one, eight):  # both buckets were trained on, each compiled once
        for length in (56, 64):
            assert result.stdout.count(f"compiling the step for {length} frames") == 1
    # The first run with a fresh cache folder compiles, and says so.
    assert re.findall(r"step \d+: (compiled|loaded from the compilation cache) in", one.stdout) == [
        "compiled",
        "compiled",
    ]
    losses_one, losses_eight = train_losses(one_dir), train_losses(eight_dir)
    steps = list(range(1, TOTAL_STEPS + 1))
    assert sorted(losses_one) == steps and sorted(losses_eight) == steps
    one_values = np.array([losses_one[s] for s in steps], dtype=np.float64)
    eight_values = np.array([losses_eight[s] for s in steps], dtype=np.float64)
    assert np.all(np.isfinite(one_values))
    # It trained: the loss moves from step to step and its second half is well below its
    # first. Length-sorted batches alternate between short and long clips (a long clip's
    # phrase is longer, so its summed CTC loss is larger), hence halves rather than ends.
    assert len(set(one_values.tolist())) == TOTAL_STEPS
    half = TOTAL_STEPS // 2
    assert one_values[half:].mean() < 0.75 * one_values[:half].mean()
    np.testing.assert_allclose(eight_values, one_values, rtol=0, atol=1e-4)


# --- 2. SIGKILL at a random step, restart = uninterrupted ----------------------------------


def test_a_run_killed_and_restarted_ends_where_an_uninterrupted_one_does(
    records, reference, jax_cache, tmp_path
):
    kill_at = int(np.random.default_rng(KILL_SEED).integers(6, 17))  # 6 … 16
    workdir = tmp_path / "killed"
    cmd, env = command(workdir, records), environment(cache=jax_cache)
    process = start(cmd, env)
    deadline = time.monotonic() + TIMEOUT
    try:
        # Kill once the run has logged step kill_at and has a finished checkpoint to resume
        # from (a save still in flight is not one).
        while last_logged_step(workdir) < kill_at or not finalized_steps(workdir):
            assert process.poll() is None, finish(process, cmd).stderr[-3000:]
            assert time.monotonic() < deadline, f"step {kill_at} not reached"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed_at = last_logged_step(workdir)
    assert kill_at <= killed_at < TOTAL_STEPS, (kill_at, killed_at)
    with Checkpointer(workdir / "checkpoints", read_only=True) as checkpoints:
        resume_step = checkpoints.latest_step()
        seconds_before = checkpoints.read_extra(resume_step)["seconds"]
    assert resume_step is not None and resume_step % 4 == 0 and resume_step <= killed_at

    restarted = succeeded(run(cmd, env))
    resumed = re.findall(r"resumed from (\S+) at step (\d+)", restarted.stdout)
    assert resumed == [(str(workdir / "checkpoints"), str(resume_step))], restarted.stdout
    assert f"step {resume_step + 1}/{TOTAL_STEPS}" in restarted.stdout
    assert f"step {resume_step}/{TOTAL_STEPS}" not in restarted.stdout
    # The second start compiles nothing anew: the step comes from the persistent cache.
    assert f"compilation cache: {jax_cache}" in restarted.stdout
    loaded = re.findall(
        r"step \d+: (loaded from the compilation cache|compiled) in", restarted.stdout
    )
    assert loaded and set(loaded) == {"loaded from the compilation cache"}, restarted.stdout
    # The training time counts both starts.
    assert json.loads((workdir / "results.json").read_text())["seconds"] > seconds_before > 0

    # The same final state, bit for bit: parameters, EMA, optimiser moments and counters.
    final, want = read_arrays(workdir / "checkpoints"), read_arrays(reference / "checkpoints")
    assert {"params", "ema_params", "opt_state"} <= set(want)
    assert int(final["step"]) == TOTAL_STEPS
    for part in ("params", "ema_params", "opt_state"):
        assert_bitwise_equal(final[part], want[part])
    assert_bitwise_equal(final, want)
    # And the same loss at every step (the restarted run's records win for the replayed ones).
    assert train_losses(workdir) == train_losses(reference)


# --- 3. rerunning a finished run ------------------------------------------------------------


def test_rerunning_a_finished_run_changes_nothing(records, reference, jax_cache, tmp_path):
    workdir = tmp_path / "finished"
    shutil.copytree(reference, workdir)
    before_arrays = read_arrays(workdir / "checkpoints")
    before_steps = finalized_steps(workdir)
    before_metrics = (workdir / "metrics.jsonl").read_text()
    before_results = json.loads((workdir / "results.json").read_text())

    result = succeeded(run(command(workdir, records), environment(cache=jax_cache)))
    assert f"already trained for {TOTAL_STEPS} steps" in result.stdout
    assert f"at step {TOTAL_STEPS}" in result.stdout  # resumed at the end
    assert not re.search(r"^step \d+/", result.stdout, re.MULTILINE)  # no training step

    assert finalized_steps(workdir) == before_steps
    assert_bitwise_equal(read_arrays(workdir / "checkpoints"), before_arrays)
    assert (workdir / "metrics.jsonl").read_text() == before_metrics
    after_results = json.loads((workdir / "results.json").read_text())
    for key in ("steps", "best_step", "selected_weights", "val/normalized_levenshtein"):
        assert after_results[key] == before_results[key], key


# --- 4. clear one-line errors ---------------------------------------------------------------

ERRORS = {
    "missing data directory": (
        ["--config.data.dir=/nonexistent"],
        ["config.data.dir='/nonexistent'", "no metadata.json", "python -m aslx.ingest"],
    ),
    "vocabulary does not fit the task": (
        ["--config.task=classification"],
        ["character vocabulary", "config.task='classification'", "use config.task='ctc'"],
    ),
    "warm-up not below total steps": (
        [f"--config.warmup_steps={TOTAL_STEPS}"],
        [
            f"config.warmup_steps={TOTAL_STEPS}",
            f"config.total_steps={TOTAL_STEPS}",
            "--config.warmup_steps=N",
        ],
    ),
    "unknown config key": (
        ["--config.no_such_field=1"],
        ["--config.no_such_field", "no field 'no_such_field'", "aslx/training/config.py"],
    ),
    "misspelt config key": (
        ["--config.data.dirr=/x"],
        ["--config.data.dirr", "no field 'dirr'", "did you mean 'dir'?"],
    ),
    "no batches sorted together": (
        ["--config.data.bucket_window=0"],
        ["config.data.bucket_window=0", "at least 1"],
    ),
    "a negative learning rate": (["--config.lr=-0.01"], ["config.lr=-0.01", "above 0"]),
    "no frames": (["--config.data.max_frames=0"], ["config.data.max_frames=0", "at least 1"]),
    "an unknown preset": (
        ["--config.data.preset=hands"],
        ["config.data.preset='hands'", "kaggle75"],
    ),
    "checkpoints never": (["--config.checkpoint_every=0"], ["config.checkpoint_every=0"]),
    "logs never": (["--config.log_every=0"], ["config.log_every=0", "at least 1"]),
    "fsdp over more devices than there are": (
        ["--config.fsdp=8"],
        ["config.fsdp: fsdp=8 does not divide the 1 devices", "a divisor"],
    ),
    "a start that is not a weights file": (  # the command runs in the repository root
        ["--config.init_from=README.md"],
        ["config.init_from: README.md", "not a safetensors file"],
    ),
}


@pytest.fixture(scope="module")
def error_runs(records, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Every bad command, started side by side: ``{case: (workdir, result)}``."""
    base = tmp_path_factory.mktemp("finetune_errors")
    started = {}
    for i, (case, (extra, _)) in enumerate(ERRORS.items()):
        workdir = base / f"case{i}"
        cmd = command(workdir, records, *extra)
        started[case] = (workdir, cmd, start(cmd, environment()))
    return {case: (w, finish(p, cmd)) for case, (w, cmd, p) in started.items()}


@pytest.mark.parametrize("case", list(ERRORS))
def test_a_bad_command_fails_with_one_clear_line(error_runs, case):
    workdir, result = error_runs[case]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-3000:]
    assert result.stderr.rstrip().splitlines()[-1] == lines[0]  # the last thing printed
    for part in ERRORS[case][1]:
        assert part in lines[0], lines[0]
    assert "training tiny" not in result.stdout
    assert not workdir.exists()  # a failing start leaves no empty workdir


def test_a_rerun_with_another_model_changes_nothing_in_the_workdir(records, reference, tmp_path):
    workdir = tmp_path / "finished"
    shutil.copytree(reference, workdir)
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    result = run(command(workdir, records, "--config.data.preset=hands_pose"), environment())
    assert result.returncode == 2, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1 and "holds a run of another model" in lines[0], result.stderr[-3000:]
    assert "preset: 'kaggle75' -> 'hands_pose'" in lines[0]
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def test_a_second_run_on_a_busy_workdir_fails_in_one_line(records, reference, tmp_path):
    workdir = tmp_path / "busy"
    shutil.copytree(reference, workdir)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": "now"}
    (workdir / ".lock").write_text(json.dumps(holder))  # this test process holds it
    result = run(command(workdir, records), environment())
    assert result.returncode == 2, result.stderr[-3000:]
    assert error_lines(result) == [
        f"error: {workdir} is in use by pid {os.getpid()} on {holder['host']} since now; "
        "wait for that run or stop it, or give another --workdir"
    ]
    assert json.loads((workdir / ".lock").read_text()) == holder  # not taken, not removed


def test_a_full_disk_stops_the_run_in_one_line_and_keeps_every_checkpoint(
    records, reference, jax_cache, tmp_path
):
    """A resumed run whose next checkpoint cannot be written (files capped at 100 KiB, as on a
    full disk) stops with one line naming the save and the cause: no traceback, no hang, and
    the steps already on disk untouched."""
    workdir = tmp_path / "full"
    shutil.copytree(reference, workdir)
    *kept, last = finalized_steps(workdir)
    shutil.rmtree(workdir / "checkpoints" / str(last))  # so that it resumes and saves again
    before = read_arrays(workdir / "checkpoints")
    result = run(command(workdir, records), environment(cache=jax_cache), max_file_kib=100)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == error_lines(result), result.stderr[-3000:]
    (line,) = error_lines(result)
    assert f"saving the checkpoint of step {last} in {workdir / 'checkpoints'} failed" in line
    assert "a file grew past the size limit" in line
    assert line.endswith(f"rerun the same command: it resumes from step {kept[-1]}")
    assert finalized_steps(workdir) == kept
    assert_bitwise_equal(read_arrays(workdir / "checkpoints"), before)
    assert not (workdir / ".lock").exists()


# --- 5. non-finite losses -------------------------------------------------------------------


def test_nonfinite_losses_are_skipped_and_too_many_stop_the_run(records, tmp_path):
    workdir = tmp_path / "diverged"
    max_nonfinite = 3
    result = run(
        command(
            workdir,
            records,
            "--config.lr=1e30",
            f"--config.max_nonfinite={max_nonfinite}",
            "--config.augment.enabled=False",  # compiles faster; the blow-up does not need it
        ),
        environment(),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]

    records_ = [r for r in read_metrics(workdir) if r["split"] == "train"]
    bad = [r["step"] for r in records_ if r["loss"] is None]
    assert bad, "the loss never went non-finite"
    first_bad = bad[0]
    assert first_bad > 1  # the first steps (warm-up from lr 0) are finite
    # Skipped steps are counted one by one and logged with the loss as null.
    for r in records_:
        if r["step"] < first_bad:
            assert r["loss"] is not None and r["skipped"] == 0
        else:
            assert r["loss"] is None and r["skipped"] == r["step"] - first_bad + 1
    stop_step = first_bad + max_nonfinite - 1
    assert records_[-1]["step"] == stop_step - 1  # the stopping step itself is not logged
    (line,) = error_lines(result)
    head = (
        f"error: step {stop_step}: the loss was not finite for {max_nonfinite} steps in a row, "
        "the last of those batches holding clips "
    )
    tail = "; lower config.lr or check those clips"
    assert line.startswith(head) and line.endswith(tail), line
    named = re.fullmatch(r"(.+) … \((\d+) in all\)", line[len(head) : -len(tail)])
    assert named and int(named[2]) == 16, line  # the whole batch, four of it by name
    assert len(named[1].split(", ")) == 4 and all(named[1].split(", ")), line
    # A skipped step changed nothing but the counters: the checkpoint saved after two skipped
    # steps holds finite weights.
    saved = finalized_steps(workdir)
    assert saved and first_bad <= saved[-1] < stop_step
    state = read_arrays(workdir / "checkpoints", saved[-1])
    assert int(state["skipped"]) == int(state["nonfinite"]) == saved[-1] - first_bad + 1
    for part in ("params", "ema_params", "opt_state"):
        for path, array in flatten(state[part]).items():
            assert np.all(np.isfinite(array)), path


# --- 6. what a run leaves in its workdir ----------------------------------------------------


def test_the_workdir_holds_everything_a_run_promises(reference):
    names = {p.name for p in reference.iterdir()}
    assert {"model.json", "config.json", "metrics.jsonl", "tensorboard", "checkpoints"} <= names
    assert "results.json" in names

    model = json.loads((reference / "model.json").read_text())
    assert model["model"]["num_layers"] == 1 and model["model"]["dim"] == 32
    assert model["preset"] == "kaggle75" and model["task"] == "ctc" and model["max_frames"] == 64
    config = json.loads((reference / "config.json").read_text())
    assert config["total_steps"] == TOTAL_STEPS and config["batch_size"] == 16
    assert config["model"]["num_layers"] == 1

    metrics = read_metrics(reference)
    assert [r["step"] for r in metrics if r["split"] == "train"] == list(range(1, TOTAL_STEPS + 1))
    evals = [r for r in metrics if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [TOTAL_STEPS]
    assert "val/normalized_levenshtein" in evals[0]
    assert evals[0]["eval_seconds"] > 0 and 0 < evals[0]["eval_share"] < 1  # what it cost

    events = list((reference / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    data = b"".join(p.read_bytes() for p in events)
    assert b"train/loss" in data and b"eval/val/normalized_levenshtein" in data

    assert finalized_steps(reference)[-1] == TOTAL_STEPS
    results = json.loads((reference / "results.json").read_text())
    assert results["steps"] == TOTAL_STEPS and results["best_step"] == TOTAL_STEPS
    score = results["val/normalized_levenshtein"]
    assert isinstance(score, float) and np.isfinite(score) and score <= 1.0
    assert score == results[f"val/normalized_levenshtein_{results['selected_weights']}"]


def test_a_finished_run_teaches_and_initialises_another(records, reference, jax_cache, tmp_path):
    """The reference run as a frozen teacher (KD on a separate head) and as the starting
    weights of a one-layer student kept from its blocks."""
    workdir = tmp_path / "student"
    result = succeeded(
        run(
            command(
                workdir,
                records,
                f"--config.teacher.workdir={reference}",
                f"--config.init_from={reference}",
                "--config.init_keep_layers=1",
                "--config.total_steps=4",
                "--config.teacher.kd_weight=10.0",
                # one compilation, without the recipe: teaching and loading are what is tested
                "--config.data.buckets=none",
                "--config.augment.enabled=False",
            ),
            environment(cache=jax_cache),
        )
    )
    assert re.search(
        r"init from .*: loaded \d+ parameters, skipped 0, newly initialised 2", result.stdout
    )
    assert "distill_head" in result.stdout  # the new head is named as newly initialised
    logged = [r for r in read_metrics(workdir) if r["split"] == "train"]
    assert len(logged) == 4 and all(r["kd_loss"] > 0 for r in logged)
    for r in logged:
        assert r["loss"] == pytest.approx(r["task_loss"] + 10.0 * r["kd_loss"], rel=1e-5)
    model = json.loads((workdir / "model.json").read_text())["model"]
    assert model["distill_vocab"] == model["ctc_vocab"] == 60
