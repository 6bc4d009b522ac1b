"""What this host's JAX sees: the backend, every device, this process among the others, the
versions, and a one-line warning when the machine has an accelerator that JAX does not use.

    python -m aslx.doctor

Run it on every host of a job before training (``gcloud … --worker=all --command "python -m
aslx.doctor"``, ``srun python -m aslx.doctor``): a host whose JAX fell back to the CPU, or sees
fewer devices than its neighbours, shows at once. It does not start ``jax.distributed``; the
process index and count are this process's own (0 of 1) unless a launcher already connected it.
"""

from __future__ import annotations

import glob
import importlib.metadata
import platform
import shutil
import sys
from collections.abc import Callable

from aslx import cli

#: Packages whose versions decide what runs where.
PACKAGES = ("jax", "jaxlib", "libtpu", "jax-cuda12-plugin", "flax", "optax", "orbax-checkpoint")


def accelerators_present(
    exists: Callable[[str], list[str]] = glob.glob,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """Accelerator kinds this machine has, whatever JAX uses: ``gpu`` (an NVIDIA device node or
    ``nvidia-smi``), ``tpu`` (a TPU device node). Probes are arguments for the tests."""
    found = []
    if exists("/dev/nvidia[0-9]*") or which("nvidia-smi"):
        found.append("gpu")
    if exists("/dev/accel[0-9]*") or exists("/dev/vfio/[0-9]*"):
        found.append("tpu")
    return found


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def mismatch(backend: str, present: list[str]) -> str | None:
    """The warning for a host whose accelerator JAX does not use, or ``None``."""
    unused = [kind for kind in present if kind != backend]
    if backend != "cpu" or not unused:
        return None
    extra = {"gpu": "cuda12", "tpu": "tpu"}[unused[0]]
    return (
        f"warning: this machine has a {unused[0].upper()} but JAX runs on the CPU; "
        f"install the accelerator build: pip install -e '.[{extra}]'"
    )


def report() -> list[str]:
    """The lines :func:`main` prints."""
    import jax

    backend = jax.default_backend()
    lines = [
        f"backend   {backend} ({jax.device_count()} devices in all, "
        f"{jax.local_device_count()} on this host)",
        f"process   {jax.process_index()} of {jax.process_count()}",
    ]
    for device in jax.local_devices():
        lines.append(
            f"device    {device.id}: {device.platform} {device.device_kind} "
            f"(process {device.process_index})"
        )
    lines.append(
        f"python    {platform.python_version()} on {platform.machine()}; "
        + ", ".join(f"{p} {version(p)}" for p in PACKAGES)
    )
    warning = mismatch(backend, accelerators_present())
    if warning:
        lines.append(warning)
    return lines


@cli.command
def main(argv: list[str] | None = None) -> int:
    cli.parser("python -m aslx.doctor", __doc__).parse_args(argv)
    print("\n".join(report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
