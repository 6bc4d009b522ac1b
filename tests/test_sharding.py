"""Sharding on 8 fake CPU devices (in a subprocess: the device count is fixed when JAX starts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from aslx.training import sharding
from tests.processes import environment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eight_device_run() -> dict:
    env = environment(devices=8)
    result = subprocess.run(
        [sys.executable, "-m", "tests.multidevice_forward"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("fsdp", [1, 4, 8])
def test_sharded_forward_equals_one_device(eight_device_run, fsdp):
    """The same jitted forward (training mode, same key) with parameters sharded over a
    (data, fsdp) mesh of 8 devices matches 1 device within 1e-5 (float32)."""
    diffs = eight_device_run[f"fsdp{fsdp}"]
    assert set(diffs) >= {"ctc_logits", "class_logits", "distill_logits", "gate_mask"}
    assert max(diffs.values()) < 1e-5, diffs


def test_fsdp_really_splits_the_weights(eight_device_run):
    """With fsdp = 8 each device holds 1/8 of an MLP kernel; with fsdp = 1 all of it."""
    assert eight_device_run["fsdp1_mlp_in_devices_per_shard"] == 8
    assert eight_device_run["fsdp8_mlp_in_devices_per_shard"] == 1


def test_large_model_weights_are_sharded_on_their_embed_axis(eight_device_run):
    specs = eight_device_run["large_specs"]
    assert specs["mlp_in"] == [None, "fsdp", None] and specs["query"] == [None, "fsdp", None]
    assert specs["out"] == [None, None, "fsdp"] and specs["ctc_head"] == ["fsdp", None]
    assert specs["norm"] == [None, None]


def test_the_mesh_covers_every_device_once_with_auto_axes(eight_device_run):
    """``jax.make_mesh`` over (data, fsdp): data fills what fsdp leaves, every device once,
    and Auto axes, so the logical-axis rules (not explicit sharding types) place the arrays."""
    mesh = eight_device_run["mesh"]
    assert mesh["shape"] == {"data": 4, "fsdp": 2}
    assert mesh["devices"] == list(range(8))
    assert all("Auto" in t for t in mesh["axis_types"])


def test_split_batch_pins_the_batch_axis_under_a_mesh_only(eight_device_run):
    """Traced under the mesh, an activation of a replicated input comes out split along its
    first axis over (data, fsdp); without a mesh, or with rows that do not divide over the 8
    devices, XLA's choice stands (here: replicated)."""
    specs = eight_device_run["split_batch"]
    assert specs["mesh_16"] == "P(('data', 'fsdp'),)"
    assert specs["no_mesh_16"] == specs["mesh_6"] == specs["no_mesh_6"] == "P()"


def test_a_mesh_that_does_not_divide_the_devices_is_refused():
    with pytest.raises(ValueError, match="does not divide"):
        sharding.make_mesh(fsdp=3, devices=jax.devices() * 2)
