"""The pretraining program end to end, in-process on a small synthetic record set: it logs
what tells whether it learns, stops on collapsed targets, and finetuning starts from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aslx.model.paths import flatten
from aslx.run import checkpoint
from aslx.training import config as config_lib
from aslx.training.loop import TrainingError
from aslx.training.metrics_log import read_metrics

STEPS = 6


def small_pretrain(records):
    c = config_lib.pretrain()
    c.data.dir = str(records)
    c.data.preset = "hands_pose"
    c.data.max_frames = 32
    c.model.num_layers = 2
    c.model.dim = 32
    c.data2vec.top_k = 2
    c.data2vec.num_masks = 2
    c.data2vec.decoder_layers = 1
    c.data2vec.decoder_dim = 32
    c.batch_size = 8
    c.total_steps = STEPS
    c.warmup_steps = 1
    c.log_every = 1
    c.checkpoint_every = 3
    c.collapse_after = 0  # the collapse stop watches every step of these short runs
    return c


@pytest.fixture(scope="module")
def pretrained(synthetic_records, tmp_path_factory):
    from pretrain.train import train

    workdir = tmp_path_factory.mktemp("pretrain") / "work"
    lines = []
    results = train(small_pretrain(synthetic_records), str(workdir), print_fn=lines.append)
    return workdir, results, "\n".join(map(str, lines))


def test_pretraining_logs_its_loss_and_variances(pretrained):
    workdir, results, output = pretrained
    logged = [r for r in read_metrics(workdir) if r["split"] == "train"]
    assert [r["step"] for r in logged] == list(range(1, STEPS + 1))
    for r in logged:
        assert np.isfinite(r["loss"]) and r["loss"] > 0
        assert r["target_variance"] > 0.1 and r["prediction_variance"] >= 0
        # healthy: above data2vec 2.0's stops, which watched every step here
        assert r["target_std"] > 0.1 and r["prediction_std"] > 0.01
        assert r["ema_decay"] == pytest.approx(0.999, abs=1e-6)
    assert results["selected_weights"] == "raw" and results["steps"] == STEPS
    assert json.loads((workdir / "model.json").read_text())["task"] == "pretrain"
    assert f"--config.init_from={workdir}" in output


def test_a_finished_workdir_run_again_keeps_its_results(pretrained, synthetic_records, tmp_path):
    import shutil

    from pretrain.train import train

    workdir, results, _ = pretrained
    again_dir = tmp_path / "work"
    shutil.copytree(workdir, again_dir)
    lines = []
    again = train(small_pretrain(synthetic_records), str(again_dir), print_fn=lines.append)
    assert any("already trained" in str(line) for line in lines)
    assert again["steps"] == STEPS
    # the training time, not this call's
    assert again["seconds"] == results["seconds"] > 0
    assert json.loads((again_dir / "results.json").read_text())["seconds"] == results["seconds"]


def test_collapsed_targets_stop_the_run(synthetic_records, tmp_path):
    from pretrain.train import train

    config = small_pretrain(synthetic_records)
    config.collapse_target_std = 100.0  # the instance-normalised targets have std ~1
    config.collapse_after = 1  # past the warm-up from step 2 on
    config.augment.enabled = False  # stopping needs no augmentation, and compiles faster
    collapsed = r"^step 2: the teacher's targets collapsed \(std \d\.\d+ < "
    with pytest.raises(TrainingError, match=collapsed + r"config\.collapse_target_std=100\.0\)"):
        train(config, str(tmp_path / "work"), print_fn=lambda *a: None)


def test_finetuning_starts_from_the_student_encoder(pretrained, synthetic_records, tmp_path):
    from finetune.train import train

    workdir, _, _ = pretrained
    config = config_lib.finetune()
    config.data.dir = str(synthetic_records)
    config.data.preset = "hands_pose"
    config.data.max_frames = 32
    config.model.num_layers = 2
    config.model.dim = 32
    config.batch_size = 8
    config.total_steps = 1
    config.warmup_steps = 0
    config.augment.enabled = False
    config.init_from = str(workdir)
    lines = []
    train(config, str(tmp_path / "finetune"), print_fn=lines.append)
    report = next(line for line in map(str, lines) if line.startswith("init from"))
    student = flatten(checkpoint.read_arrays(workdir / "checkpoints")["params"])
    encoder = [p for p in student if p.startswith("encoder/")]
    assert f"loaded {len(encoder)} parameters" in report
    assert "decoder/project_out/kernel: not in this model" in report
    assert "newly initialised 2" in report  # the CTC head
