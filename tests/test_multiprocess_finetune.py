"""Finetuning as a 2-host job on one machine: 2 processes × 4 fake CPU devices with ``fsdp=2``
(so parameters are sharded across the processes' devices) against 1 process × 8 devices.

* The same losses, validation scores and final checkpoint as one process, with evaluation on
  a split of **one** file: process 1 has no file of its own and runs padding-only batches, so
  the evaluation collectives would stall if the processes ran different batch counts.
* A SIGTERM to **one** process (a preempted host) stops both at the same step: they save one
  checkpoint together and exit 0; the rerun resumes and ends bit for bit where an
  uninterrupted 2-process run ends.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from aslx.run.checkpoint import read_arrays
from aslx.training.metrics_log import read_metrics
from tests.processes import (
    TIMEOUT,
    assert_bitwise_equal,
    assert_close,
    environment,
    finalized_steps,
    finish_job,
    last_logged_step,
    run,
    start_job,
    succeeded,
    train_losses,
    trainer,
)

STEPS = 8
EVERY = 4  # evaluation and checkpoint interval
STOP_AFTER = 3  # the SIGTERM goes to process 1 once step 3 is logged


def command(records: Path, workdir: Path) -> list[str]:
    return trainer(
        "finetune.main",
        "configs/finetune_tiny.py",
        workdir,
        records,
        "--config.data.max_frames=64",
        "--config.data.buckets=none",
        "--config.data.readers=2",
        "--config.model.num_layers=1",
        "--config.model.dim=32",
        "--config.fsdp=2",
        "--config.batch_size=8",
        f"--config.total_steps={STEPS}",
        "--config.warmup_steps=2",
        "--config.log_every=1",
        f"--config.eval_every={EVERY}",
        f"--config.checkpoint_every={EVERY}",
        # Augmentation is one jitted function of the global batch, whatever holds its rows
        # (checked on 8 devices in test_finetune.py); here it would only add compile time.
        "--config.augment.enabled=False",
    )


@pytest.fixture(scope="module")
def one_file_val(synthetic_records, tmp_path_factory) -> Path:
    """The synthetic record set with its validation split in one file (TFRecord files
    concatenate into a valid one): fewer eval files than processes."""
    folder = tmp_path_factory.mktemp("one_file_val") / "records"
    shutil.copytree(synthetic_records, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    shards = meta["shards"]["val"]
    assert len(shards) == 2
    merged = "val-00000-of-00001.tfrecord"
    data = b"".join((folder / s["file"]).read_bytes() for s in shards)
    for s in shards:
        (folder / s["file"]).unlink()
    (folder / merged).write_bytes(data)
    meta["shards"]["val"] = [
        {"file": merged, "num_examples": sum(s["num_examples"] for s in shards)}
    ]
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def runs(one_file_val, tmp_path_factory) -> dict[str, Path]:
    """``one``: 1 process × 8 devices; ``two``: 2 × 4, uninterrupted. The 2-process runs here
    and in the preemption test share a compilation cache."""
    base = tmp_path_factory.mktemp("multiprocess_finetune")
    succeeded(run(command(one_file_val, base / "one"), environment(devices=8)))
    job = start_job(
        command(one_file_val, base / "two"), environment(devices=4, cache=base / "cache"), 2
    )
    outputs = finish_job(job)
    for result in outputs:
        succeeded(result)
    return {"one": base / "one", "two": base / "two", "cache": base / "cache"}


def eval_scores(workdir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(workdir) if r["split"] == "eval"}


def test_two_processes_train_and_evaluate_like_one(runs):
    one, two = runs["one"], runs["two"]
    a, b = train_losses(one), train_losses(two)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    assert len(set(a.values())) == STEPS  # it trains: every step's loss differs
    np.testing.assert_allclose([b[s] for s in a], list(a.values()), rtol=1e-5, atol=1e-5)
    # validation at steps 4 and 8 on all 12 clips of the one-file split
    scores_one, scores_two = eval_scores(one), eval_scores(two)
    assert sorted(scores_one) == sorted(scores_two) == [4, 8]
    for step, want in scores_one.items():
        got = scores_two[step]
        counts = {k: v for k, v in want.items() if k.startswith("val/") and "examples" in k}
        assert counts and set(counts.values()) == {12}, want
        for key, value in want.items():
            if key.startswith("val/"):  # the scores (not the time, nor the seconds taken)
                np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    results = [json.loads((w / "results.json").read_text()) for w in (one, two)]
    assert results[0]["best_step"] == results[1]["best_step"]


def test_two_processes_write_the_checkpoint_of_one(runs):
    assert finalized_steps(runs["two"])[-1] == STEPS
    assert_close(read_arrays(runs["two"] / "checkpoints"), read_arrays(runs["one"] / "checkpoints"))


def test_sigterm_to_one_process_stops_both_at_one_step_and_the_rerun_is_bitwise(
    runs, one_file_val, tmp_path
):
    workdir = tmp_path / "preempted"
    cmd = command(one_file_val, workdir)
    env = environment(devices=4, cache=runs["cache"])
    job = start_job(cmd, env, 2)
    deadline = time.monotonic() + TIMEOUT
    try:
        while last_logged_step(workdir) < STOP_AFTER:
            assert all(p.poll() is None for p in job), finish_job(job)[0].stderr[-3000:]
            assert time.monotonic() < deadline, f"step {STOP_AFTER} not reached"
            time.sleep(0.01)
        job[1].send_signal(signal.SIGTERM)  # process 1 only: process 0 hears it from JAX
        outputs = finish_job(job)
    finally:
        for p in job:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for result in outputs:
        succeeded(result)  # exit 0, and neither hung in a collective the other never entered
    stopped = re.findall(
        r"stopped by a preemption notice \(SIGTERM\) at step (\d+)", outputs[0].stdout
    )
    assert len(stopped) == 1, outputs[0].stdout
    step = int(stopped[0])
    assert STOP_AFTER <= step < STEPS
    # One save at the agreed step, written by both processes together (orbax finalizes a step
    # only once every process has written its shards), and no training past it.
    assert finalized_steps(workdir)[-1] == step
    assert last_logged_step(workdir) == step
    assert int(read_arrays(workdir / "checkpoints", step)["step"]) == step

    rerun = [succeeded(result) for result in finish_job(start_job(cmd, env, 2))]
    assert f"at step {step}" in rerun[0].stdout  # "resumed from … at step N"
    final, want = read_arrays(workdir / "checkpoints"), read_arrays(runs["two"] / "checkpoints")
    assert int(final["step"]) == STEPS
    assert_bitwise_equal(final, want)
    assert train_losses(workdir) == train_losses(runs["two"])
