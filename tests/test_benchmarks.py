"""Every script in ``benchmarks/`` still runs and writes the fields its readers expect: each
``main`` runs in-process at tiny sizes (``--smoke`` where it trains; see
``benchmarks/harness.py``), on the synthetic record sets and the small archive of
``tests/conftest.py``. These tests check behaviour, not speed; :data:`SMOKE_TESTS` names the
test of every script, and a script without one fails :func:`test_every_script_has_a_smoke_test`.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmarks import (
    augment,
    buckets,
    cross_signer,
    decode,
    harness,
    inference,
    input_pipeline,
    real_data,
    robustness,
    target_kinds,
    train_step,
)
from benchmarks import compile as compile_benchmark  # not the builtin

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

#: The tests that run each module of ``benchmarks/`` (those without a ``main`` through the
#: scripts that use them and their own test files).
SMOKE_TESTS = {
    "__init__": ("test_every_script_imports_the_one_way",),
    "augment": ("test_augment_benchmark_writes_its_fields",),
    "buckets": ("test_buckets_benchmark_writes_its_fields",),
    "compile": ("test_compile_benchmark_writes_its_fields",),
    "cross_signer": ("test_cross_signer_benchmark_writes_its_fields",),
    "decode": ("test_decode_benchmark_writes_its_fields",),
    "harness": (
        "test_harness_ends_a_user_error_in_one_line_and_the_smoke_run_with_the_call",
        "test_harness_tiny_run_cuts_a_recipe_and_keeps_its_data",
        "test_harness_table_aligns_its_columns",
    ),
    "inference": ("test_inference_benchmark_writes_its_fields",),
    "input_pipeline": ("test_input_pipeline_benchmark_writes_its_fields",),
    "numpy_augment": ("test_augment_benchmark_writes_its_fields",),  # + test_numpy_augment.py
    "real_data": ("test_real_data_benchmark_writes_its_fields",),
    "robustness": ("test_robustness_benchmark_writes_its_fields",),
    "robustness_shifts": ("test_robustness_benchmark_writes_its_fields",),  # + its own file
    "target_kinds": ("test_target_kinds_benchmark_writes_its_fields",),
    "train_step": ("test_train_step_benchmark_writes_its_fields",),
    "device_check.sh": ("test_device_check_is_valid_bash_naming_scripts_that_exist",),
}


def test_every_script_has_a_smoke_test():
    """A new file in ``benchmarks/`` needs an entry in :data:`SMOKE_TESTS` naming a test here."""
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")} | {p.name for p in BENCHMARKS.glob("*.sh")}
    assert scripts == set(SMOKE_TESTS), "add a smoke test for each new script to SMOKE_TESTS"
    missing = {t for tests in SMOKE_TESTS.values() for t in tests if t not in globals()}
    assert not missing, missing


def imports_of(path: Path) -> list[ast.AST]:
    return [
        n
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]


IMPORT_STYLE = sorted(p.name for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("name", IMPORT_STYLE)
def test_every_script_imports_the_one_way(name):
    """The import style of ``benchmarks/harness.py``: a script reaches the project's packages
    from the root (``from benchmarks import …``), never a sibling file by its bare name nor a
    file by its path; modules without a ``main`` import only the library."""
    path = BENCHMARKS / name
    text = path.read_text()
    siblings = {p.stem for p in BENCHMARKS.glob("*.py")}
    for node in imports_of(path):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        assert not set(names) & siblings, f"{name}: import {names} as benchmarks.NAME"
        assert "importlib.util" not in names, f"{name}: import modules by name, not by path"
    project = {"benchmarks", "configs", "finetune", "pretrain"}
    uses = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in imports_of(path)
        for a in n.names
    }
    if "def main(" not in text:
        assert not uses & project, f"{name}: a module without main imports only aslx"
    elif uses & project:
        assert "ROOT = Path(__file__).resolve().parents[1]" in text, name
        assert "sys.path.insert(0, str(ROOT))" in text, name


def test_device_check_is_valid_bash_naming_scripts_that_exist():
    script = BENCHMARKS / "device_check.sh"
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    named = set(re.findall(r"benchmarks/([\w.]+\.(?:py|sh))", script.read_text()))
    assert named and all((BENCHMARKS / n).is_file() for n in named), named
    assert {"train_step.py", "buckets.py", "target_kinds.py"} <= named


# --- the harness -----------------------------------------------------------------------------


def test_harness_ends_a_user_error_in_one_line_and_the_smoke_run_with_the_call(capsys):
    from aslx.training.config import ConfigError

    @harness.command
    def main(argv=None):
        parser = harness.parser("doc")
        harness.add_smoke_argument(parser)
        harness.parse_args(parser, argv)
        assert harness.smoke()
        raise ConfigError("config.lr: must be positive; set --config.lr=1e-3")

    assert main(["--json", "out.json", "--smoke"]) == 2
    assert capsys.readouterr().err == "error: config.lr: must be positive; set --config.lr=1e-3\n"
    assert not harness.smoke()  # a later call, or a test calling real_data.run, runs in full

    @harness.command
    def buggy(argv=None):
        raise RuntimeError("a bug keeps its traceback")

    with pytest.raises(RuntimeError, match="traceback"):
        buggy([])


def test_harness_tiny_run_cuts_a_recipe_and_keeps_its_data():
    from configs.bench import few_label_pretrain, joint_gate

    for config in (joint_gate.get_config("gated"), few_label_pretrain.get_config("isolated")):
        data = config.data.to_dict()
        harness.tiny_run(config)
        assert config.total_steps == harness.SMOKE_STEPS > config.warmup_steps
        assert config.checkpoint_every == harness.SMOKE_STEPS
        assert (config.model.num_layers, config.model.dim) == (1, 32)
        assert config.batch_size <= harness.SMOKE_BATCH and not config.augment.enabled
        assert config.data.to_dict() == data
    assert config.data2vec.top_k == 1 and joint_gate.get_config().model.gate == "hard_concrete"


def test_harness_table_aligns_its_columns(capsys):
    harness.print_table(("run", "steps", "note"), [("a", 10, "x"), ("long name", 2, "yy")], "lrl")
    assert capsys.readouterr().out.splitlines() == [
        "run        steps  note",
        "a             10  x",
        "long name      2  yy",
    ]


# --- each script ------------------------------------------------------------------------------


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_input_pipeline_benchmark_writes_its_fields(tmp_path, signs_archive):
    out = tmp_path / "input.json"
    args = ["--json", str(out), "--phrases", "24", "--batch-size", "4", "--max-frames", "64"]
    args += ["--batches", "2", "--data", str(signs_archive)]
    assert input_pipeline.main(args) == 0
    result = read(out)
    assert {"sequences_per_s", "max_frames", "batch_size", "rows"} <= set(result)
    assert result["sequences_per_s"] > 0 and result["max_frames"] == 64
    assert {r["data"] for r in result["rows"]} == {"synthetic", "mp_holistic_35signs"}


@pytest.mark.parametrize(
    "objective, params, compile_only", [("ctc", 147_260, False), ("data2vec", 151_232, True)]
)
def test_train_step_benchmark_writes_its_fields(tmp_path, objective, params, compile_only):
    """The timed CTC step (its augmentation share measured beside it) and the compiled
    pretraining step."""
    out = tmp_path / "step.json"
    args = ["--objective", objective, "--model", "tiny", "--batch", "2", "--frames", "16"]
    args += ["--steps", "1", "--rounds", "1", "--json", str(out)]
    assert train_step.main(args + (["--compile-only"] if compile_only else [])) == 0
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
    batch = train_step.make_batch(np.random.default_rng(0), 2, 16, 75, 60)
    flops = [train_step.model_flops("tiny", "ctc", "float32", batch, n) for n in (1, 2, 3)]
    per_block = flops[1] - flops[0]
    assert per_block > 0.2 * flops[0]
    assert flops[2] - flops[1] == pytest.approx(per_block, rel=0.01)


def test_compile_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "compile.json"
    args = ["--model", "tiny", "--shallow", "1", "--deep", "2", "--batch", "1", "--frames", "8"]
    assert compile_benchmark.main(args + ["--no-augment", "--json", str(out)]) == 0
    result = read(out)
    assert {"depth_1_s", "depth_2_s", "ratio", "batch", "frames", "device"} <= set(result)
    assert result["ratio"] == pytest.approx(result["depth_2_s"] / result["depth_1_s"])


def test_augment_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "augment.json"
    args = ["--json", str(out), "--batch", "4", "--frames", "32", "--repeats", "1"]
    assert augment.main(args + ["--numpy-samples", "2"]) == 0
    result = read(out)
    assert {"device_samples_per_s", "numpy_samples_per_s", "speedup", "device"} <= set(result)
    ratio = result["device_samples_per_s"] / result["numpy_samples_per_s"]
    assert abs(result["speedup"] - ratio) <= 0.01 * ratio + 0.01


def test_buckets_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "buckets.json"
    args = ["--smoke", "--phrases", "24", "--batch", "4", "--steps", "2", "--rounds", "1"]
    assert buckets.main(args + ["--max-frames", "64", "--json", str(out)]) == 0
    result = read(out)
    rates = {"padded_frames_per_s", "bucketed_frames_per_s", "speedup", "padding_share"}
    assert rates | {"bucketed_padding_share", "bounds", "device"} <= set(result)
    assert result["bounds"][-1] == result["max_frames"] == 64 and result["smoke"] is True
    assert 0 <= result["padding_share"] < 1 and result["padded_frames_per_s"] > 0


def test_inference_benchmark_writes_its_fields(tmp_path, signs_archive, tiny_ctc_run):
    """On the shared trained model (``--model``); training the sizes is the same code as the
    ``spelling`` task of ``real_data.py``."""
    out = tmp_path / "inference.json"
    args = ["--json", str(out), "--data", str(signs_archive), "--workdir", str(tmp_path / "w")]
    args += ["--model", str(tiny_ctc_run), "--clips", "3", "--timing-clips", "2"]
    assert inference.main(args) == 0
    result = read(out)[tiny_ctc_run.name]
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


def smoke_args(signs_archive: Path, tmp_path: Path, json_name: str) -> list[str]:
    """The flags of a ``--smoke`` run of a real-landmark benchmark on the small archive."""
    workdir, out = tmp_path / "work", tmp_path / json_name
    return ["--smoke", "--data", str(signs_archive), "--workdir", str(workdir), "--json", str(out)]


def test_decode_benchmark_writes_its_fields(tmp_path, signs_archive):
    args = smoke_args(signs_archive, tmp_path, "decode.json")
    assert decode.main(args + ["--steps", "2", "--beam", "2", "--repeats", "1"]) == 0
    result = read(tmp_path / "decode.json")
    speeds = {"python_ms_per_clip", "batched_ms_per_clip", "tensorflow_ms_per_clip", "speedup"}
    agreement = {"agreement", "tensorflow_agreement", "speedup_over_tensorflow"}
    assert speeds | agreement | {"val_normalized_levenshtein", "mean_labels_per_clip"} <= set(
        result
    )
    assert result["clips"] == real_data.SMOKE_WORDS["val"] and result["beam"] == 2
    assert (tmp_path / "work" / "smoke" / "inference_tiny_2" / "results.json").is_file()


#: What ``real_data.py --task pretrain_gain`` writes (besides ``task`` and ``runs``).
PRETRAIN_GAIN_FIELDS = {
    "pretrain_steps",
    "isolated_normalization",
    "scratch_test_accuracy",
    "pretrained_test_accuracy_per_seed",
    "isolated_test_gain",
    "spelling_test_gain_stderr",
    "pretrained_test_normalized_levenshtein",
    "scratch_spelling_lr",
}


def test_real_data_benchmark_writes_its_fields(tmp_path, signs_archive):
    """``pretrain_gain``, the task that runs the most: the pretraining and the few-label
    recipes of both tasks, the isolated and the spelled records (the other tasks are one or two
    runs of recipes ``tests/test_configs.py`` builds; each would add 10–20 s here)."""
    args = smoke_args(signs_archive, tmp_path, "out.json")
    assert real_data.main(args + ["--task", "pretrain_gain", "--seeds", "1"]) == 0
    result = read(tmp_path / "out.json")
    assert result["task"] == "pretrain_gain" and result["smoke"] is True
    assert PRETRAIN_GAIN_FIELDS <= set(result)
    assert len(result["runs"]) == 4  # scratch and pretrained, for each task, at one rate
    assert all(run["steps"] == harness.SMOKE_STEPS for run in result["runs"].values())
    # The tiny run's records and runs live apart from the real ones.
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["smoke"]


def test_robustness_benchmark_writes_its_fields(tmp_path, signs_archive):
    assert robustness.main(smoke_args(signs_archive, tmp_path, "robustness.json")) == 0
    result = read(tmp_path / "robustness.json")
    for prefix in ("", "baseline_", "mask_channel_"):
        for split in ("val", "test"):
            for key in ("clean", "shift_camera_16x9", "still_held_static"):
                assert 0 <= result[f"{prefix}{key}_{split}_accuracy"] <= 1
        assert f"{prefix}val_accuracy" in result
    assert result["source_camera_aspect"] == robustness.SOURCE_ASPECT


def test_cross_signer_benchmark_writes_its_fields(tmp_path, signs_archive, shared_data):
    """Both recipes on a few clips of each file: every figure, for both models, and the run
    that ``python -m aslx.predict`` reads."""
    args = smoke_args(signs_archive, tmp_path, "cross.json")
    assert cross_signer.main(args + ["--xsigner", str(shared_data / "xsigner")]) == 0
    result = read(tmp_path / "cross.json")
    assert result["val_signers_clips"] == cross_signer.SMOKE_CLIPS
    for prefix in ("", "baseline_"):
        for key in ("top1", "top5", "macro", "letters_top1", "words_top1"):
            value = result[f"{prefix}val_signers_{key}"]
            assert 0 <= value <= 1 or math.isnan(value)
        assert result[prefix + "val_signers_top1"] <= result[prefix + "val_signers_top5"]
        assert sum(n for _, n in result[prefix + "per_signer_top1"].values()) == 12
        assert sum(n for _, n in result[prefix + "per_class_top1"].values()) == 12
        assert 0 <= result[prefix + "in_signer_test_top1"] <= 1
        assert all(t != p for t, p, _ in result[prefix + "confusions"])
    assert (Path(result["workdir"]) / "model.json").is_file()


def test_target_kinds_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "target_kinds.json"
    args = ["--model", "tiny", "--smoke", "--phrases", "24", "--frames", "32", "--batch", "4"]
    assert target_kinds.main(args + ["--workdir", str(tmp_path / "w"), "--json", str(out)]) == 0
    result = read(out)
    kinds = {f"{k}_{f}" for k in target_kinds.KINDS for f in ("val", "gain")}
    assert kinds | {"scratch_val", "pretrain_seconds", "model"} <= set(result)
    assert set(result["pretrain_seconds"]) == set(target_kinds.KINDS)


# --- real_data's own rules ------------------------------------------------------------------


def test_pretrain_gain_labels_every_tenth_train_clip_and_keeps_val_and_test():
    from aslx.formats.npz import SPLIT_BOUNDARIES, split_of

    boundaries = real_data.few_label_boundaries((5, 15, 25, 35))
    splits = [split_of(clip, boundaries) for clip in range(60)]
    assert [c for c, s in enumerate(splits) if s == "train"] == [5, 15, 25, 35]
    assert all(s == "unused" for c, s in enumerate(splits) if c < 42 and c % 10 != 5)
    assert splits[42:] == [split_of(clip, SPLIT_BOUNDARIES) for clip in range(42, 60)]


def test_a_smoke_run_reads_only_its_clips():
    from aslx.formats.npz import split_of

    boundaries = real_data.clip_boundaries(real_data.SMOKE_SPLITS)
    kept = {clip: split_of(clip, boundaries) for clip in range(60)}
    assert {c: s for c, s in kept.items() if s != "unused"} == real_data.SMOKE_SPLITS


def test_pretrain_gain_pairs_the_runs_by_seed():
    paired_gain = real_data.paired_gain
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
    from configs.bench import few_label, few_label_pretrain

    def preprocessing(config):
        return {field: config.data[field] for field in PREPROCESSING_FIELDS}

    frames = []
    for task in few_label.ARGS:
        finetune = few_label.get_config(task)
        pretrain = few_label_pretrain.get_config(task)
        assert preprocessing(pretrain) == preprocessing(finetune)
        assert pretrain.data.max_frames == 32 and finetune.total_steps == 1500
        frames.append(finetune.data.normalization)
    assert frames == ["group", "body"]


def test_real_data_refuses_a_stale_workdir_in_one_line(
    synthetic_records, tiny_ctc_run, tmp_path, capsys
):
    """A workdir left by another version of the benchmark (another model where
    ``pretrain_gain`` pretrains) ends the script with the trainer's one-line refusal, not a
    traceback, and changes nothing there."""
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
    assert real_data.main(args + ["--json", str(out)]) == 2
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
