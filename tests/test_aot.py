"""Ahead-of-time compilation for TPU slices (``python -m aslx.aot``, :mod:`aslx.training.aot`).

The compiles need libtpu, the TPU compiler: ``make test`` installs it beside the environment
(``make tpu-compiler``) on Linux x86-64, the only platform with its wheels; elsewhere those
tests skip, saying why. The table, the HLO reading and the errors need no compiler.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import numpy as np
import pytest

from aslx.input import batch as batch_lib
from aslx.input import pipeline
from aslx.landmarks import presets
from aslx.records.metadata import RecordSet
from aslx.training import aot
from configs import finetune_tiny
from tests import processes

LINUX_X86 = (platform.system(), platform.machine()) == ("Linux", "x86_64")
needs_libtpu = pytest.mark.skipif(
    not LINUX_X86,
    reason=f"libtpu (the TPU compiler) has wheels for Linux x86-64 only, not "
    f"{platform.system()} {platform.machine()}",
)


def aot_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "aslx.aot", *flags]


def run_aot(*flags: str) -> subprocess.CompletedProcess:
    # The TPU compiler optimises as on a real run: the suite's quick-compile flags are for the
    # CPU's code only.
    env = processes.environment()
    env.pop("XLA_FLAGS")
    return processes.run(aot_command(*flags), env)


# --- the slices -----------------------------------------------------------------------------------


def test_slices_are_named_as_cloud_tpu_names_them():
    big = aot.get_slice("v5e-256")
    assert (big.chips, big.hosts, big.topology, big.hbm_bytes) == (256, 64, "v5e:16x16", 16 * 2**30)
    one_host = aot.get_slice("v5e-8")
    assert (one_host.chips, one_host.hosts, one_host.topology) == (8, 1, "v5e:2x4")
    # v5p and v4 names count TensorCores, two a chip.
    v5p = aot.get_slice("v5p-128")
    assert (v5p.chips, v5p.hosts, v5p.topology, v5p.hbm_bytes) == (64, 16, "v5p:4x4x4", 95 * 2**30)
    v4 = aot.get_slice("v4-64")
    assert (v4.chips, v4.hosts, v4.topology, v4.chip_config) == (32, 8, "v4:2x4x4", "megacore")
    assert aot.get_slice("v6e-256").hbm_bytes == 32 * 2**30


def test_an_unknown_slice_is_refused_listing_the_known_ones():
    with pytest.raises(
        aot.AotError, match=r"--topology 'v5e-7': unknown TPU slice; known: .*v5e-8"
    ):
        aot.get_slice("v5e-7")


def test_a_mesh_or_batch_that_does_not_divide_the_chips_is_refused():
    config = finetune_tiny.get_config()
    config.fsdp = 3
    with pytest.raises(aot.AotError, match=r"fsdp=3 does not divide the slice's 8 chips"):
        aot.check_divides(config, 8)
    config.fsdp, config.batch_size, config.grad_accum_steps = 2, 24, 2
    with pytest.raises(aot.AotError, match=r"batch_size=24 does not split .* multiple of 16"):
        aot.check_divides(config, 8)


def test_libtpu_missing_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.delenv("TPU_LIBRARY_PATH", raising=False)
    monkeypatch.setattr(aot, "LIBTPU_BESIDE", tmp_path / "libtpu.so")
    monkeypatch.setattr(aot.importlib.util, "find_spec", lambda name: None)
    problem = aot.libtpu_problem()
    if LINUX_X86:
        assert problem == aot.LIBTPU_MISSING and "make tpu-compiler" in problem
    else:
        assert "Linux x86-64 only" in problem
    with pytest.raises(aot.AotError, match="libtpu"):
        aot.slice_devices(aot.get_slice("v5e-8"))


# --- reading a compiled program -------------------------------------------------------------------

#: A compiled module's text in the TPU compiler's form: a scan of 3 trips whose body gathers a
#: weight, and a gradient all-reduce after it.
HLO = """\
HloModule jit_step, entry_computation_layout={()->f32[]}

%cond (p: (s32[], f32[4,8])) -> pred[] {
  %p = (s32[]{:T(128)}, f32[4,8]{1,0}) parameter(0)
  %constant.1 = s32[]{:T(128)} constant(3)
  %gte = s32[]{:T(128)} get-tuple-element(%p), index=0
  ROOT %lt = pred[]{:T(512)} compare(%gte, %constant.1), direction=LT
}

%body (p.1: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %p.1 = (s32[]{:T(128)}, f32[4,8]{1,0}) parameter(0)
  %all-gather-start.2 = (bf16[2,8]{1,0}, bf16[4,8]{1,0:T(8,128)}) all-gather-start(%x)
  %all-gather-done.2 = bf16[4,8]{1,0} all-gather-done(%all-gather-start.2)
  ROOT %t = (s32[], f32[4,8]) tuple(%i, %y)
}

%add (a: f32[], b: f32[]) -> f32[] {
  ROOT %sum = f32[] add(%a, %b)
}

ENTRY %main.7_spmd (param.1: f32[4,8], /*index=1*/param.2: f32[16]) -> f32[] {
  %while.3 = (s32[], f32[4,8]) while(%tuple), condition=%cond, body=%body, metadata={op_name="x"}
  %all-reduce.4 = (f32[16]{0:T(128)}, f32[4,8]{1,0}) all-reduce(%a, %b), to_apply=%add
  %all-gather.5 = f32[64,3,2]{2,1,0} all-gather(%c), dimensions={0}
  %all-gather.6 = f32[64,64]{1,0} all-gather(%w), dimensions={0}
  ROOT %r = f32[] constant(0)
}
"""


def test_collectives_count_a_loop_body_as_often_as_the_loop_runs():
    counted = aot.collectives(HLO)
    # The scan's gather runs 3 times (its output 4 × 8 bf16, 64 bytes), the entry's once each.
    assert counted["all-gather"] == {"count": 5, "bytes": 3 * 64 + (64 * 3 * 2 + 64 * 64) * 4}
    assert counted["all-reduce"] == {"count": 1, "bytes": 16 * 4 + 4 * 8 * 4}
    assert counted["reduce-scatter"] == {"count": 0, "bytes": 0}


def test_a_gathered_batch_is_found():
    # A global batch of 64 split 8 ways: the entry's gather of [64, 3, 2] holds the whole
    # batch; the [64, 64] one is a weight's.
    assert aot.batch_gathers(HLO, global_batch=64, per_chip_batch=8) == ["all-gather f32[64, 3, 2]"]
    assert aot.batch_gathers(HLO, global_batch=128, per_chip_batch=16) == []


def test_the_compilers_out_of_memory_error_is_read():
    error = RuntimeError(
        "RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory "
        "space hbm. Used 20.50G of 15.75G hbm. Exceeded hbm capacity by 4.75G."
    )
    assert aot.out_of_memory(error) == (int(20.5 * 2**30), int(15.75 * 2**30))
    other_form = RuntimeError(
        "RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
        "temporaries (66.48G) exceeds available HBM (15.75G)."
    )
    assert aot.out_of_memory(other_form) == (int(66.48 * 2**30), int(15.75 * 2**30))
    assert aot.out_of_memory(RuntimeError("something else")) is None


def test_the_abstract_batch_is_what_the_pipeline_delivers(synthetic_records):
    records = RecordSet(synthetic_records)
    config = pipeline.InputConfig(batch_size=4, max_frames=48, preset="kaggle75")
    real = batch_lib.device_batch(next(pipeline.eval_batches(records, "val", config)))
    landmarks = presets.get("kaggle75").num_landmarks
    shapes = batch_lib.device_batch_shapes(4, 48, landmarks, int(records.meta["max_label_length"]))
    assert {k: (v.shape, v.dtype) for k, v in real.items()} == {
        k: (shape, np.dtype(dtype)) for k, (shape, dtype) in shapes.items()
    }


# --- compiling for v5e-8 --------------------------------------------------------------------------

#: A small step that is not all padding on a TPU's tiles: two blocks 256 wide, 32 frames,
#: 16 clips over 8 chips, its weights split 2 ways.
SMALL = (
    "--config=configs/finetune_tiny.py",
    "--config.model.dim=256",
    "--config.model.num_heads=4",
    "--config.data.max_frames=32",
    "--config.batch_size=16",
    "--config.fsdp=2",
)


@pytest.fixture(scope="module")
def compiled_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot") / "small.json"
    result = processes.succeeded(run_aot(*SMALL, "--topology=v5e-8", f"--json={out}"))
    return json.loads(out.read_text()), result.stdout


@needs_libtpu
def test_a_small_step_compiles_for_v5e_8_and_fits(compiled_small):
    report, stdout = compiled_small
    assert (report["topology"], report["chips"], report["hosts"]) == ("v5e-8", 8, 1)
    assert report["mesh"] == {"data": 4, "fsdp": 2}
    assert report["fits"] and 0 < report["bytes_per_chip"] < report["hbm_bytes"]
    parts = report["bytes"]
    assert report["bytes_per_chip"] == (
        parts["arguments"]
        + parts["outputs"]
        - parts["aliased"]
        + parts["temporaries"]
        + parts["generated_code"]
    )
    assert parts["aliased"] > 0  # the state is donated
    assert report["flops_per_step_per_chip"] > 0
    assert report["compile_seconds"] > 0
    assert "memory a chip" in stdout and "fits" in stdout


@needs_libtpu
def test_the_state_and_batch_are_sharded_as_the_rules_say(compiled_small):
    facts = compiled_small[0]["sharding"]
    # Every parameter, moment and EMA leaf with an embed axis is split 2 ways …
    assert facts["embed_leaves"] > 40
    assert facts["embed_leaves_split"] == facts["embed_leaves"]
    # … so a chip holds its share of the state and of the batch, within 10 %.
    assert 0.9 <= facts["argument_ratio"] <= 1.1
    assert facts["batch_split"]
    assert facts["batch_gathers"] == []


@needs_libtpu
def test_the_compiled_step_gathers_weights_and_reduces_gradients(compiled_small):
    counted = compiled_small[0]["collectives"]
    assert counted["all-gather"]["count"] > 0  # fsdp: weights gathered where used
    reduced = counted["all-reduce"]["count"] + counted["reduce-scatter"]["count"]
    assert reduced > 0  # gradients summed over the data-parallel chips


@needs_libtpu
def test_an_oversized_step_is_refused_in_one_line(tmp_path):
    out = tmp_path / "big.json"
    result = run_aot(
        "--config=configs/finetune_tiny.py",
        "--config.data.max_frames=16384",
        "--config.batch_size=64",
        "--topology=v5e-8",
        f"--json={out}",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: does not fit v5e-8: a chip needs ")
    assert "--config.fsdp" in lines[0] and "grad_accum_steps" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--topology=v9-8",), "error: --topology 'v9-8': unknown TPU slice; known: v5e-1, "),
        (("--topology=v5e-8", "--config.fsdp=3"), "error: --config.fsdp=3 does not divide"),
    ],
)
def test_usage_errors_are_one_line(flags, message):
    result = run_aot("--config=configs/finetune_tiny.py", *flags)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)


@needs_libtpu
def test_fsdp_8_makes_a_mesh_on_a_cube_of_4_chips_a_side():
    """v5p-128 is 4 × 4 × 4 chips: no physical axis holds 8, so fsdp 8 spans two."""
    code = (
        "from aslx.training import aot, sharding; "
        "mesh = sharding.make_mesh(8, devices=aot.slice_devices(aot.get_slice('v5p-128'))); "
        "print(dict(mesh.shape), len(set(mesh.devices.flat)))"
    )
    env = processes.environment()
    result = processes.succeeded(processes.run([sys.executable, "-c", code], env))
    assert result.stdout.strip().splitlines()[-1] == "{'data': 8, 'fsdp': 8} 64"


@pytest.mark.parametrize("limit, start", [(8 * 37, 32), (8 * 3, 256), (7, 32), (8 * 64, 512)])
def test_find_batch_returns_the_largest_multiple_of_the_chips_that_fits(limit, start):
    tried = []

    def fits(batch: int) -> bool:
        tried.append(batch)
        return batch <= limit

    found = aot.largest_batch(fits, unit=8, start=start)
    assert found == (limit // 8 * 8 or None)
    assert all(batch % 8 == 0 for batch in tried)
    assert len(tried) <= 2 * max(limit // 8, 2).bit_length() + 2
