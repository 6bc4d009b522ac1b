"""The smoke runs of the benchmarks that train on real landmarks (``--smoke`` on the small
archive of ``tests/conftest.py``) and ``real_data.py``'s own rules: a file of their own, so
that ``make test``'s workers run them beside the other benchmarks' smoke runs
(:data:`tests.test_benchmarks.SMOKE_TESTS` names them too)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from aslx.records.metadata import RecordSet
from benchmarks import cross_signer, decode, harness, inference, real_data, robustness


def read(path: Path) -> dict:
    return json.loads(path.read_text())


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
    """Both recipes on a few clips of each file: every figure, for both models, the run that
    ``python -m aslx.predict`` reads, and the pretraining gain with all and with a tenth of
    the labels (one seed: a gain without a spread)."""
    args = smoke_args(signs_archive, tmp_path, "cross.json") + ["--seeds", "1"]
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
    gains = result["pretrain_gain_cross_signer"]
    assert set(gains) == {"all_labels", "few_labels"}
    for gain in gains.values():
        assert gain["seeds"] == [0] and gain["stderr"] is None  # one seed: no spread
        assert gain["gain"] == pytest.approx(gain["pretrained_top1"][0] - gain["scratch_top1"][0])
    assert gains["few_labels"]["clips"] < gains["all_labels"]["clips"]
    pool = RecordSet(tmp_path / "work" / "smoke" / "records_pretrain")
    assert result["pretrain_clips"] == pool.splits["train"] > 0
    assert (Path(result["pretrain_workdir"]) / "model.json").is_file()


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
