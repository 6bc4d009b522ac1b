"""Pods on one machine: 2 processes × 4 fake CPU devices on localhost train exactly like
1 process × 8 devices (the same global batches, losses and final weights), and write one
checkpoint together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aslx.model.paths import flatten
from aslx.run.checkpoint import read_arrays
from aslx.training.metrics_log import read_metrics
from tests.processes import environment, finish_job, run, start_job, succeeded, trainer

STEPS = 6


def command(records: Path, workdir: Path, *extra: str) -> list[str]:
    return trainer(
        "pretrain.main",
        "configs/pretrain_tiny.py",
        workdir,
        records,
        "--config.data.preset=hands_pose",
        "--config.data.max_frames=32",
        "--config.data.readers=2",
        "--config.model.num_layers=2",
        "--config.model.dim=32",
        "--config.data2vec.top_k=2",
        "--config.data2vec.num_masks=2",
        "--config.data2vec.decoder_layers=1",
        "--config.data2vec.decoder_dim=32",
        "--config.batch_size=8",
        f"--config.total_steps={STEPS}",
        "--config.warmup_steps=1",
        "--config.log_every=1",
        "--config.checkpoint_every=3",
        # Augmentation is one jitted function of the global batch, whatever holds its rows
        # (checked on 8 devices in test_finetune.py); here it would only add compile time.
        "--config.augment.enabled=False",
        *extra,
    )


@pytest.fixture(scope="module")
def runs(synthetic_records, tmp_path_factory):
    base = tmp_path_factory.mktemp("multiprocess")
    cache = base / "cache"  # the job's own: only process 0 writes, so process 1 compiles
    one = succeeded(run(command(synthetic_records, base / "one"), environment(devices=8)))
    job = start_job(
        command(synthetic_records, base / "two"), environment(devices=4, cache=cache), 2
    )
    outputs = [succeeded(result) for result in finish_job(job)]
    return base / "one", base / "two", one.stdout, [(o.stdout, o.stderr) for o in outputs]


def test_two_processes_give_the_losses_of_one(runs):
    one, two, one_out, outputs = runs
    assert "on 8 cpu device(s)" in one_out and "on 8 cpu device(s)" in outputs[0][0]
    # only process 0 prints (gloo's own connection lines aside)
    assert "step 1/" in outputs[0][0] and "step " not in outputs[1][0]
    assert "pretraining" not in outputs[1][0]
    a = [r["loss"] for r in read_metrics(one) if r["split"] == "train"]
    b = [r["loss"] for r in read_metrics(two) if r["split"] == "train"]
    assert len(a) == len(b) == STEPS and len(set(a)) == STEPS
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_the_processes_write_one_checkpoint_with_the_same_weights(runs):
    one, two, _, _ = runs
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == [
        "3",
        "6",
    ]
    a, b = (flatten(read_arrays(w / "checkpoints")["params"]) for w in (one, two))
    assert a.keys() == b.keys()
    for path in a:
        # Up to float32 summation order (the batch split over processes reorders the sums).
        np.testing.assert_allclose(a[path], b[path], rtol=1e-5, atol=1e-5, err_msg=path)
