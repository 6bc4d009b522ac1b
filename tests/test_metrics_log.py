"""MetricsLog: the JSONL file, TensorBoard scalars, console lines, resuming and disabled logs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from aslx.training.metrics_log import MetricsLog, format_duration, read_metrics


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def raw_records(workdir: Path) -> list[dict]:
    """Every line of metrics.jsonl, parsed strictly (NaN / Infinity literals are an error)."""

    def reject(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line, parse_constant=reject) for line in lines]


def tensorboard_scalars(workdir: Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in the event files under workdir/tensorboard.

    Also checks that every tag is marked for TensorBoard's scalars plugin, which is what puts
    it in TensorBoard's "Scalars" tab.
    """
    from aslx.tf_cpu import tensorflow

    tf = tensorflow()
    scalars, plugins = [], {}
    for path in sorted((workdir / "tensorboard").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                assert array.shape == () and array.dtype == np.float32
                scalars.append((value.tag, event.step, float(array)))
                if value.HasField("metadata"):
                    plugins.setdefault(value.tag, set()).add(value.metadata.plugin_data.plugin_name)
    assert {tag: {"scalars"} for tag, _, _ in scalars} == plugins
    return scalars


def test_write_appends_one_json_record_per_call(tmp_path):
    workdir = tmp_path / "run"
    before = time.time()
    with MetricsLog(workdir, total_steps=100, global_batch_size=8) as log:
        log.write(0, {"loss": 2.5, "lr": np.float32(0.25), "accuracy": jnp.asarray(0.5)})
        log.write(10, {"loss": np.float64(1.5), "count": 3})
        log.write(10, {"loss": 1.75}, split="eval")
    records = raw_records(workdir)
    assert [(r["step"], r["split"]) for r in records] == [(0, "train"), (10, "train"), (10, "eval")]
    assert all(before <= r["time"] <= time.time() for r in records)
    assert {k: v for k, v in records[0].items() if k != "time"} == {
        "step": 0,
        "split": "train",
        "loss": 2.5,
        "lr": 0.25,
        "accuracy": 0.5,
    }
    assert records[1]["loss"] == 1.5 and records[1]["count"] == 3.0
    assert records[2]["loss"] == 1.75


def test_nan_and_inf_are_written_as_null(tmp_path):
    with MetricsLog(tmp_path, total_steps=10, global_batch_size=1) as log:
        log.write(1, {"loss": float("nan"), "up": np.inf, "down": -jnp.inf, "ok": 1.0})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    (record,) = raw_records(tmp_path)
    assert record["loss"] is None and record["up"] is None and record["down"] is None
    assert record["ok"] == 1.0
    # TensorBoard keeps the real value: a NaN loss should show as NaN there.
    (loss,) = [v for tag, _, v in tensorboard_scalars(tmp_path) if tag == "train/loss"]
    assert math.isnan(loss)


def test_tensorboard_scalars_are_tagged_split_slash_name(tmp_path):
    with MetricsLog(tmp_path, total_steps=100, global_batch_size=8) as log:
        log.write(0, {"loss": 2.0, "lr": 1e-3})
        log.write(50, {"loss": jnp.float32(1.25)})
        log.write(50, {"wer": 0.5}, split="eval")
    assert (tmp_path / "tensorboard").is_dir()
    scalars = tensorboard_scalars(tmp_path)
    assert sorted(scalars) == sorted(
        [
            ("train/loss", 0, 2.0),
            ("train/lr", 0, pytest.approx(1e-3)),
            ("train/loss", 50, 1.25),
            ("eval/wer", 50, 0.5),
        ]
    )


def test_a_resumed_log_holds_one_record_per_split_and_step(tmp_path):
    # The first run logs up to step 150 but its last checkpoint was at step 100.
    with MetricsLog(tmp_path, total_steps=200, global_batch_size=4) as log:
        for step in (0, 50, 100, 150):
            log.write(step, {"loss": 10.0 - step / 100})
        log.write(100, {"wer": 0.9}, split="eval")
    first_lines = (tmp_path / "metrics.jsonl").read_text().splitlines()

    with MetricsLog(tmp_path, total_steps=200, global_batch_size=4, start_step=100) as log:
        for step in (150, 200):
            log.write(step, {"loss": 1.0 - step / 1000})

    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    # The first run's records up to the checkpoint, byte for byte; its step 150 is gone.
    assert lines[:4] == [first_lines[i] for i in (0, 1, 2, 4)]
    records = raw_records(tmp_path)
    assert [(r["step"], r["split"]) for r in records] == [
        (0, "train"),
        (50, "train"),
        (100, "train"),
        (100, "eval"),
        (150, "train"),
        (200, "train"),
    ]
    assert read_metrics(tmp_path) == sorted(records, key=lambda r: (r["step"], r["split"]))
    losses = {r["step"]: r["loss"] for r in records if r["split"] == "train"}
    assert losses == {0: 10.0, 50: 9.5, 100: 9.0, 150: 0.85, 200: 0.8}
    # Each run has its own event file; neither overwrote the other.
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2


def test_resume_after_a_partial_last_line_drops_it(tmp_path):
    with MetricsLog(tmp_path, total_steps=10, global_batch_size=1) as log:
        log.write(1, {"loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "split": "tr')  # killed mid-write
    with MetricsLog(tmp_path, total_steps=10, global_batch_size=1, start_step=1) as log:
        log.write(2, {"loss": 0.5})
    records = raw_records(tmp_path)  # every line whole again
    assert [(r["step"], r["loss"]) for r in records] == [(1, 1.0), (2, 0.5)]


def test_read_metrics_skips_an_unreadable_line_with_a_warning(tmp_path):
    with MetricsLog(tmp_path, total_steps=10, global_batch_size=1) as log:
        log.write(1, {"loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "split": "tr')  # killed mid-write, not yet resumed
    with pytest.warns(UserWarning, match="1 unreadable line"):
        records = read_metrics(tmp_path)
    assert [(r["step"], r["loss"]) for r in records] == [(1, 1.0)]


def test_read_metrics_without_a_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path)


def test_console_line_format_rates_and_eta(tmp_path):
    clock, lines = FakeClock(), []
    log = MetricsLog(
        tmp_path / "run", total_steps=5000, global_batch_size=32, print_fn=lines.append, clock=clock
    )
    clock.now = 48.0  # 120 steps in 48 s: 2.5 steps/s, 80 samples/s, 4,880 steps left
    log.console(120, {"grad_norm": 0.123456, "lr": jnp.asarray(3e-4), "loss": np.float32(1.2341)})
    clock.now = 58.0  # 50 more steps in 10 s: 5 steps/s, measured from the previous line
    log.console(170, {"loss": 1.0})
    assert lines == [
        "step 120/5,000  loss 1.234  lr 3.0e-04  grad_norm 0.1235  "
        "2.50 steps/s  80.0 samples/s  ETA 32m32s",
        "step 170/5,000  loss 1  5.00 steps/s  160 samples/s  ETA 16m06s",
    ]
    assert not (tmp_path / "run").exists()  # console lines alone open no files


def test_console_measures_the_first_line_from_start_step():
    clock, lines = FakeClock(), []
    clock.now = 1000.0
    log = MetricsLog(
        "unused",
        total_steps=100_000,
        global_batch_size=512,
        start_step=10_000,
        print_fn=lines.append,
        clock=clock,
    )
    clock.now += 40.0
    log.console(10_100, {"loss": 0.25})
    # 2.5 steps/s, 1,280 samples/s; 89,900 steps left take 35,960 s = 9 h 59 m 20 s.
    assert lines == ["step 10,100/100,000  loss 0.25  2.50 steps/s  1,280 samples/s  ETA 9h59m"]
    clock.now += 1.0
    log.console(10_100, {})  # no step since the previous line: no rate to report
    assert lines[-1] == "step 10,100/100,000"


def test_a_step_that_compiled_is_left_out_of_throughput_and_eta():
    clock, lines = FakeClock(), []
    log = MetricsLog(
        "unused", total_steps=100, global_batch_size=4, print_fn=lines.append, clock=clock
    )
    clock.now = 30.0  # step 1 compiled for 29.5 s and ran
    log.leave_out(1, 29.5)
    log.console(1, {})
    assert lines == ["step 1/100"]  # no timed step yet: no rate, no ETA
    clock.now = 31.5  # steps 2-10 in 1 s, step 6 compiled for another length in 0.5 s
    log.leave_out(1, 0.5)
    log.console(10, {})
    # 8 timed steps in 1 s: 8 steps/s, 90 steps left take 11.25 s
    assert lines[-1] == "step 10/100  8.00 steps/s  32.0 samples/s  ETA 11s"


def test_format_duration():
    assert format_duration(3720) == "1h02m"
    assert format_duration(35 * 60 + 12) == "35m12s"
    assert format_duration(12.4) == "12s"
    assert format_duration(59.6) == "1m00s"
    assert format_duration(0) == "0s"
    assert format_duration(30 * 3600) == "30h00m"


def test_maybe_console_prints_every_n_steps_and_the_last():
    clock, lines = FakeClock(), []
    log = MetricsLog(
        "unused",
        total_steps=120,
        global_batch_size=1,
        console_every=50,
        print_fn=lines.append,
        clock=clock,
    )
    printed = []
    for step in range(1, 121):
        clock.now += 0.5
        if log.maybe_console(step, {"loss": 1.0}):
            printed.append(step)
    assert printed == [50, 100, 120]
    assert [line.split("  ")[0] for line in lines] == [
        "step 50/120",
        "step 100/120",
        "step 120/120",
    ]
    assert lines[-1].endswith("2.00 steps/s  2.00 samples/s  ETA 0s")


def test_disabled_log_writes_and_prints_nothing(tmp_path):
    lines = []
    workdir = tmp_path / "run"
    with MetricsLog(
        workdir, total_steps=10, global_batch_size=4, enabled=False, print_fn=lines.append
    ) as log:
        log.write(5, {"loss": jnp.asarray(1.0)})
        log.write(5, {"wer": 0.5}, split="eval")
        log.console(5, {"loss": 1.0})
        assert not log.maybe_console(10, {"loss": 1.0})
    assert lines == []
    assert not workdir.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_metrics_are_rejected_before_anything_is_written(tmp_path):
    with MetricsLog(tmp_path, total_steps=10, global_batch_size=1) as log:
        with pytest.raises(ValueError, match="reserved"):
            log.write(1, {"step": 3.0})
        with pytest.raises(ValueError, match="scalar"):
            log.write(1, {"loss": np.ones(3)})
    assert not (tmp_path / "metrics.jsonl").exists()
    with pytest.raises(RuntimeError, match="after close"):
        log.write(2, {"loss": 1.0})


def test_bookkeeping_metrics_stay_off_the_console_but_reach_the_file(tmp_path):
    lines = []
    log = MetricsLog(tmp_path / "run", total_steps=10, global_batch_size=4, print_fn=lines.append)
    metrics = {"loss": 1.5, "compilations": 2.0, "batch_frames": 64.0}
    log.write(5, metrics)
    log.console(5, metrics)
    log.close()
    assert "loss 1.5" in lines[0]
    assert "compilations" not in lines[0] and "batch_frames" not in lines[0]
    (record,) = read_metrics(tmp_path / "run")
    assert record["compilations"] == 2.0 and record["batch_frames"] == 64.0
