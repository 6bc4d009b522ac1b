"""Every script in ``benchmarks/`` still runs and writes the fields its readers expect: each
``main`` runs in-process at tiny sizes (``--smoke`` where it trains; see
``benchmarks/harness.py``), on the synthetic record sets and the small archive of
``tests/conftest.py``. These tests check behaviour, not speed; :data:`SMOKE_TESTS` names the
test of every script, and a script without one fails :func:`test_every_script_has_a_smoke_test`.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmarks import (
    augment,
    buckets,
    harness,
    input_pipeline,
    target_kinds,
    train_step,
)
from benchmarks import compile as compile_benchmark  # not the builtin

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: Where the smoke tests live: the real-landmark ones in a file of their own, so that two
#: workers share them.
SMOKE_TEST_FILES = (Path(__file__), Path(__file__).with_name("test_benchmarks_real_data.py"))

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
        "test_harness_seeds_refuses_a_count_below_its_least",
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
    """A new file in ``benchmarks/`` needs an entry in :data:`SMOKE_TESTS` naming a test in
    one of :data:`SMOKE_TEST_FILES`."""
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")} | {p.name for p in BENCHMARKS.glob("*.sh")}
    assert scripts == set(SMOKE_TESTS), "add a smoke test for each new script to SMOKE_TESTS"
    defined = {
        node.name
        for path in SMOKE_TEST_FILES
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    missing = {t for tests in SMOKE_TESTS.values() for t in tests if t not in defined}
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


def test_target_kinds_benchmark_writes_its_fields(tmp_path):
    out = tmp_path / "target_kinds.json"
    args = ["--model", "tiny", "--smoke", "--phrases", "24", "--frames", "32", "--batch", "4"]
    assert target_kinds.main(args + ["--workdir", str(tmp_path / "w"), "--json", str(out)]) == 0
    result = read(out)
    kinds = {f"{k}_{f}" for k in target_kinds.KINDS for f in ("val", "gain")}
    assert kinds | {"scratch_val", "pretrain_seconds", "model"} <= set(result)
    assert set(result["pretrain_seconds"]) == set(target_kinds.KINDS)


def test_harness_seeds_refuses_a_count_below_its_least(capsys):
    parser = harness.parser("x")
    harness.add_seeds_argument(parser, 3, "seeds", 1)
    out = ["--json", "out.json"]
    assert parser.parse_args(out).seeds == 3
    assert parser.parse_args(out + ["--seeds", "2"]).seeds == 2
    with pytest.raises(SystemExit):
        parser.parse_args(out + ["--seeds", "0"])
    assert "--seeds: 0: at least 1" in capsys.readouterr().err
