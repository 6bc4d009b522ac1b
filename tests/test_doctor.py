"""``python -m aslx.doctor``: one line per device, and the warning for an unused accelerator."""

from __future__ import annotations

import jax

from aslx import doctor


def test_it_prints_the_backend_and_one_line_per_device(capsys):
    assert doctor.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"backend   {jax.default_backend()}")
    assert lines[1] == f"process   {jax.process_index()} of {jax.process_count()}"
    devices = [line for line in lines if line.startswith("device ")]
    assert len(devices) == jax.local_device_count()
    assert any(line.startswith("python ") and "jax " in line for line in lines)


def test_an_accelerator_that_jax_does_not_use_gets_one_warning_line():
    def nodes(*present):
        return lambda pattern: [p for p in present if pattern.startswith(p)]

    no_tool = lambda name: None  # noqa: E731
    gpu = doctor.accelerators_present(nodes("/dev/nvidia"), no_tool)
    tpu = doctor.accelerators_present(nodes("/dev/accel"), no_tool)
    assert gpu == ["gpu"] and tpu == ["tpu"]
    assert doctor.accelerators_present(nodes(), lambda name: "/usr/bin/nvidia-smi") == ["gpu"]
    assert doctor.accelerators_present(nodes(), no_tool) == []
    warning = doctor.mismatch("cpu", gpu)
    assert warning.startswith("warning: ") and "\n" not in warning and "[cuda12]" in warning
    assert "[tpu]" in doctor.mismatch("cpu", tpu)
    assert doctor.mismatch("gpu", gpu) is None and doctor.mismatch("cpu", []) is None
