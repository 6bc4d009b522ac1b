"""Running the programs as a user does: subprocesses with a fixed device count, alone or as the
processes of one ``jax.distributed`` job on localhost, and reading back what they wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from aslx.training.metrics_log import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600
#: XLA flags of every test process, this one included (``tests/conftest.py``): compile for
#: quick compilation, not for quick code. The suite's programs are tiny and most of its time is
#: XLA compiling them; the flags change how the CPU code is optimised, not what it computes.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def xla_flags(devices: int = 1) -> str:
    """``XLA_FLAGS`` for a test process with ``devices`` fake CPU devices."""
    many = f" --xla_force_host_platform_device_count={devices}" if devices > 1 else ""
    return FAST_COMPILE_FLAGS + many


def environment(*, devices: int = 1, cache: Path | None = None) -> dict[str, str]:
    """A CPU-only JAX with ``devices`` fake devices; ``cache`` is the persistent compilation
    cache (caching every compilation, however quick), else the cache is off."""
    env = dict(os.environ)
    env |= {"TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    env["XLA_FLAGS"] = xla_flags(devices)
    if cache is not None:
        env |= {
            "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        }
    return env


def trainer(module: str, config: str, workdir: Path, records: Path, *flags: str) -> list[str]:
    """``python -m MODULE --config CONFIG --workdir=… --config.data.dir=… FLAGS``: a run of
    ``finetune.main`` or ``pretrain.main`` (a flag given twice takes its last value)."""
    return [
        sys.executable,
        "-m",
        module,
        "--config",
        config,
        f"--workdir={workdir}",
        f"--config.data.dir={records}",
        *flags,
    ]


def run(
    cmd: list[str], env: dict[str, str], *, max_file_kib: int | None = None
) -> subprocess.CompletedProcess:
    """Runs ``cmd`` to its end; ``max_file_kib`` caps every file it writes (bash's
    ``ulimit -f``: a write past it fails with EFBIG, as on a full disk or a quota)."""
    if max_file_kib is not None:
        cmd = ["bash", "-c", f'ulimit -f {int(max_file_kib)} && exec "$@"', "bash", *cmd]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen, cmd: list[str]) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    )
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_job(cmd: list[str], env: dict[str, str], processes: int) -> list[subprocess.Popen]:
    """``processes`` copies of ``cmd`` as the processes of one ``jax.distributed`` job."""
    port = free_port()
    return [
        start(
            cmd
            + [
                "--config.distributed=True",
                f"--config.coordinator_address=127.0.0.1:{port}",
                f"--config.num_processes={processes}",
                f"--config.process_id={i}",
            ],
            env,
        )
        for i in range(processes)
    ]


def finish_job(job: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Every process's result (waiting for all of them, so none is left behind)."""
    return [finish(p, p.args) for p in job]


def train_losses(workdir: Path) -> dict[int, float | None]:
    return {r["step"]: r["loss"] for r in read_metrics(workdir) if r["split"] == "train"}


def last_logged_step(workdir: Path) -> int:
    """The highest training step in ``metrics.jsonl`` so far (a run may be writing it)."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    step = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the line being written
            continue
        if record.get("split") == "train":
            step = max(step, record["step"])
    return step


def finalized_steps(workdir: Path) -> list[int]:
    """Checkpoint steps on disk: orbax renames ``<step>.orbax-checkpoint-tmp…`` to ``<step>``
    only once the save is complete."""
    folder = workdir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"params/encoder/0/…": array}`` of a tree of dicts and lists from read_arrays."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    elif tree is None:
        return {}
    else:
        return {prefix: np.asarray(tree)}
    out = {}
    for key, value in items:
        out |= flatten(value, f"{prefix}/{key}" if prefix else str(key))
    return out


def assert_bitwise_equal(got: dict, want: dict) -> None:
    got, want = flatten(got), flatten(want)
    assert sorted(got) == sorted(want)
    differ = [
        path
        for path in want
        if got[path].dtype != want[path].dtype
        or got[path].shape != want[path].shape
        or got[path].tobytes() != want[path].tobytes()
    ]
    assert not differ, f"{len(differ)} of {len(want)} arrays differ, e.g. {differ[:5]}"


def assert_close(got: dict, want: dict, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Equal up to float32 summation order: the batch split over processes reorders the
    normalisation's and the gradient's sums (a few 1e-6 on weights of 1e-3 after 6 steps)."""
    got, want = flatten(got), flatten(want)
    assert sorted(got) == sorted(want)
    for path in want:
        np.testing.assert_allclose(got[path], want[path], rtol=rtol, atol=atol, err_msg=path)
