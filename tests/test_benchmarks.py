"""The benchmark scripts still run and write the fields their readers expect (tiny sizes;
these tests check behaviour, not speed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_input_pipeline_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "input.json"
    args = [
        "--json",
        str(out),
        "--phrases",
        "24",
        "--batch-size",
        "4",
        "--max-frames",
        "64",
        "--batches",
        "2",
    ]
    assert load("input_pipeline").main(args) == 0
    result = json.loads(out.read_text())
    assert {"sequences_per_s", "max_frames", "batch_size"} <= set(result)
    assert result["sequences_per_s"] > 0 and result["max_frames"] == 64


@pytest.mark.parametrize(
    "objective, params, compile_only", [("ctc", 147_260, False), ("data2vec", 151_232, True)]
)
def test_train_step_benchmark_writes_its_fields(tmp_path, objective, params, compile_only):
    out = tmp_path / "step.json"
    args = ["--objective", objective, "--model", "tiny", "--batch", "2", "--frames", "16"]
    args += ["--steps", "1", "--rounds", "1", "--json", str(out)]
    assert load("train_step").main(args + (["--compile-only"] if compile_only else [])) == 0
    result = json.loads(out.read_text())
    compiled = {"compile_seconds", "peak_bytes", "flops_per_step", "device", "remat"}
    timed = {"step_ms", "samples_per_s", "real_frames_per_s", "augment_share", "mfu"}
    assert compiled <= set(result)
    assert result["objective"] == objective
    assert result["params"] == params and result["flops_per_step"] > 0
    if objective == "data2vec":  # 2 grouped blocks 64 wide (7 · 4 · 64 + 64 each), 64 → 64 out
        assert result["decoder_params"] == 2 * (7 * 4 * 64 + 64) + 64 * 64 + 64
    assert result["peak_bytes"] > 0 and result["compile_seconds"] > 0
    if compile_only:
        assert not timed & set(result)
    else:
        assert timed <= set(result)
        assert 0 <= result["augment_share"] < 1
        assert result["real_frames_per_s"] < result["samples_per_s"] * 16
        assert result["mfu"] is None  # no peak is assumed for a CPU
        assert np.isfinite(result["loss"])


def test_train_step_flops_grow_with_depth():
    """Model FLOPs count every block: cost analysis counts a scanned loop's body once, so the
    benchmark counts an unrolled lowering; each added block adds the same work."""
    train_step = load("train_step")
    batch = train_step.make_batch(np.random.default_rng(0), 2, 16, 75, 60)
    flops = [train_step.model_flops("tiny", "ctc", "float32", batch, n) for n in (1, 2, 3)]
    per_block = flops[1] - flops[0]
    assert per_block > 0.2 * flops[0]
    assert flops[2] - flops[1] == pytest.approx(per_block, rel=0.01)


def test_augment_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "augment.json"
    args = [
        "--json",
        str(out),
        "--batch",
        "4",
        "--frames",
        "32",
        "--repeats",
        "1",
        "--numpy-samples",
        "2",
    ]
    assert load("augment").main(args) == 0
    result = json.loads(out.read_text())
    assert {"device_samples_per_s", "numpy_samples_per_s", "speedup", "device"} <= set(result)
    ratio = result["device_samples_per_s"] / result["numpy_samples_per_s"]
    assert abs(result["speedup"] - ratio) <= 0.01 * ratio + 0.01


def test_inference_benchmark_writes_its_fields(tmp_path, shared_data, tiny_ctc_run):
    """On the shared trained model (``--model``); training the sizes is the same code as the
    ``spelling`` task of ``real_data.py``."""
    out = tmp_path / "inference.json"
    args = [
        "--json",
        str(out),
        "--data",
        str(shared_data / "mp_holistic_35signs"),
        "--workdir",
        str(tmp_path / "work"),
        "--model",
        str(tiny_ctc_run),
        "--clips",
        "3",
        "--timing-clips",
        "2",
    ]
    assert load("inference").main(args) == 0
    result = json.loads(out.read_text())[tiny_ctc_run.name]
    assert {
        "tflite_ms",
        "jax_ms",
        "tflite_bytes",
        "decode_agreement",
        "max_rel_logit_error",
    } <= set(result)
    assert result["clips"] == 3 and result["tflite_bytes"] > 0
    lengths = ["64", "128", "256", "384"]  # JSON keys: the clip lengths timed
    for key in ("tflite_ms", "jax_ms", "tflite_over_jax"):
        assert list(result[key]) == lengths
    for length in lengths:
        ratio = result["tflite_ms"][length] / result["jax_ms"][length]
        assert result["tflite_over_jax"][length] == pytest.approx(ratio)
    assert 0 <= result["decode_agreement"] <= 1 and result["max_rel_logit_error"] < 1e-2


def test_pretrain_gain_labels_every_tenth_train_clip_and_keeps_val_and_test():
    from aslx.formats.npz import SPLIT_BOUNDARIES, split_of

    boundaries = load("real_data").few_label_boundaries((5, 15, 25, 35))
    splits = [split_of(clip, boundaries) for clip in range(60)]
    assert [c for c, s in enumerate(splits) if s == "train"] == [5, 15, 25, 35]
    assert all(s == "unused" for c, s in enumerate(splits) if c < 42 and c % 10 != 5)
    assert splits[42:] == [split_of(clip, SPLIT_BOUNDARIES) for clip in range(42, 60)]


def test_pretrain_gain_pairs_the_runs_by_seed():
    paired_gain = load("real_data").paired_gain
    pretrained, scratch = [0.93, 0.95, 0.91, 0.96], [0.94, 0.92, 0.90, 0.93]
    gaps = np.subtract(pretrained, scratch)
    gain, stderr = paired_gain(pretrained, scratch)
    np.testing.assert_allclose(gain, gaps.mean())
    np.testing.assert_allclose(stderr, gaps.std(ddof=1) / np.sqrt(4))
    # A start that wins every seed by the same margin has no spread, whatever the seeds do.
    assert paired_gain([0.5, 0.9, 0.7], [0.4, 0.8, 0.6]) == pytest.approx((0.1, 0.0))
    assert paired_gain([0.9], [0.8])[1] is None
    with pytest.raises(ValueError, match="same seeds"):
        paired_gain([0.9, 0.8], [0.8])


def test_pretrain_gain_pretrains_each_encoder_on_its_finetunes_preprocessing():
    from aslx.training.config import PREPROCESSING_FIELDS

    real_data = load("real_data")

    def preprocessing(config):
        return {field: config.data[field] for field in PREPROCESSING_FIELDS}

    frames = []
    for make in (real_data.few_label_isolated_config, real_data.spelling_config):
        finetune = make(Path("records"))
        pretrain = real_data.pretrain_config(Path("records"), finetune)
        assert preprocessing(pretrain) == preprocessing(finetune)
        assert pretrain.data.dir == "records" and pretrain.data.max_frames == 32
        frames.append(finetune.data.normalization)
    assert frames == ["group", "body"]


def test_real_data_refuses_a_stale_workdir_in_one_line(
    synthetic_records, tiny_ctc_run, tmp_path, capsys
):
    """A workdir left by another version of the benchmark (another model where
    ``pretrain_gain`` pretrains) ends the script with the trainer's one-line refusal, not a
    traceback, and changes nothing there."""
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    (data / "landmarks_f16.npz").touch()  # never read: the records below are reused
    workdir = tmp_path / "work"
    workdir.mkdir()
    for kind in ("signs", "signs_10pct"):
        (workdir / f"records_{kind}").symlink_to(synthetic_records)
    stale = workdir / "pretrain_tiny_clips_group"
    shutil.copytree(tiny_ctc_run, stale)
    before = {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()}
    out = tmp_path / "gain.json"
    args = ["--task", "pretrain_gain", "--data", str(data), "--workdir", str(workdir)]
    assert load("real_data").main(args + ["--json", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "holds a run of another model" in lines[0], lines
    assert {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()} == before
    assert not out.exists()


def test_a_preempted_run_stops_the_benchmark_naming_its_workdir(synthetic_records, tmp_path):
    """A preemption notice (SIGTERM) during one of a benchmark's trainings: the trainer saves
    and returns, and ``real_data.run`` raises the one-line ``TrainingError`` (one of the
    trainers' ``USER_ERRORS``, which every benchmark's ``main`` ends with ``cli.fail``) instead
    of handing back a result without scores, so the next run does not start after the
    notice."""
    import functools
    import signal

    from aslx.run.checkpoint import Checkpointer
    from aslx.training.loop import USER_ERRORS, TrainingError
    from finetune.train import train
    from tests.conftest import tiny_ctc_config

    real_data = load("real_data")

    def notice_at_step_2(line="", *args, **kwargs):
        if str(line).startswith("step 2/"):  # the trainer's handler is installed by now
            signal.raise_signal(signal.SIGTERM)

    config = tiny_ctc_config(synthetic_records)
    config.checkpoint_every = 1000
    workdir = tmp_path / "run"
    trainer = functools.partial(train, print_fn=notice_at_step_2)
    with pytest.raises(TrainingError) as refusal:
        real_data.run(config, workdir, trainer)
    message = str(refusal.value)
    assert message.startswith(f"{workdir}: stopped by a preemption notice (SIGTERM) at step 2")
    assert "rerun the same command to resume" in message and "\n" not in message
    assert issubclass(TrainingError, USER_ERRORS)
    with Checkpointer(workdir / "checkpoints", read_only=True) as checkpoints:
        assert checkpoints.latest_step() == 2  # saved at the notice, not at a schedule
    assert not (workdir / "results.json").exists()
    # The same command resumes and finishes; its result passes through unchanged.
    result = real_data.run(config, workdir)
    assert result["steps"] == config.total_steps and "stopped_at" not in result
