"""``python -m aslx.report joints`` on a real (tiny) gated finetuning run: what it writes is
what the checkpoint holds, and top-K really keeps K landmarks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from aslx.landmarks import presets
from aslx.model import gate as gate_lib
from aslx.report import __main__ as report
from aslx.report import gated_run as gated_run_lib
from aslx.report import positions

PRESET = "hands_pose"  # 51 points: the smallest preset with more than one body part
N = presets.get(PRESET).num_landmarks


@pytest.fixture(scope="module")
def gated_run(synthetic_records, tmp_path_factory):
    """A 6-step hard-concrete finetuning run on a synthetic record set, and its report."""
    from aslx.training import config as config_lib
    from finetune import train

    root = tmp_path_factory.mktemp("joints")
    config = config_lib.finetune()
    config.data.dir = str(synthetic_records)
    config.data.preset = PRESET
    config.data.max_frames = 32
    config.model.gate = "hard_concrete"
    config.model.num_layers = 1
    config.model.dim = 32
    config.batch_size = 8
    config.total_steps = 6
    config.warmup_steps = 1
    config.eval_every = 1000
    config.gate.l0_weight = 0.05
    config.augment.enabled = False  # not what is tested here; saves compiling the recipe
    workdir = root / "work"
    results = train.train(config, str(workdir), print_fn=lambda *a, **k: None)
    out = root / "report"
    return workdir, out, results


@pytest.fixture(scope="module")
def report_output(gated_run):
    import contextlib
    import io

    workdir, out, _ = gated_run
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = report.main(["joints", "--workdir", str(workdir), "--out", str(out), "--top", "12"])
    assert code == 0
    return out, printed.getvalue()


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _checkpoint_logits(workdir) -> np.ndarray:
    """The gate logits of the weights the run's results.json scored, read straight from orbax."""
    from aslx.run import checkpoint

    results = json.loads((workdir / "results.json").read_text())
    arrays = checkpoint.read_arrays(workdir / "checkpoints", results.get("best_step"))
    key = "ema_params" if results["selected_weights"] == "ema" else "params"
    logits = arrays[key]["gate"]["logits"]
    return np.asarray(logits["value"] if isinstance(logits, dict) else logits)


def test_writes_every_file(report_output):
    import matplotlib.image

    out, _ = report_output
    pictures = ["left_hand", "right_hand", "pose", "top_k", "accuracy_vs_kept"]
    for name in pictures:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.shape[0] > 200 and image.shape[1] > 200, name
        assert image[..., :3].std() > 0.05, f"{name}.png is blank"
    for name in ("keep_probabilities.csv", "accuracy_vs_kept.csv"):
        assert (out / name).stat().st_size > 0
    assert not (out / "lips.png").exists()  # hands_pose has no face


def test_keep_probabilities_are_the_checkpoint_gate(gated_run, report_output):
    workdir, _, _ = gated_run
    out, _ = report_output
    rows = _rows(out / "keep_probabilities.csv")
    preset = presets.get(PRESET)
    assert len(rows) == N
    assert [r["name"] for r in rows] == preset.landmark_names()
    assert [r["group"] for r in rows] == ["left_hand"] * 21 + ["right_hand"] * 21 + ["pose"] * 9
    assert [int(r["canonical_index"]) for r in rows] == preset.indices.tolist()

    logits = _checkpoint_logits(workdir)
    assert not np.allclose(logits, 3.0, atol=1e-7), "the trained logits, not the initial ones"
    np.testing.assert_allclose([float(r["logit"]) for r in rows], logits, rtol=1e-5)
    # Hard-concrete keep probability P(z > 0) = σ(a − β log(−γ/ζ)), β = 2/3 by default.
    beta = json.loads((workdir / "model.json").read_text())["model"]["hard_concrete_beta"]
    expected = 1 / (1 + np.exp(-(logits - beta * np.log(-gate_lib.GAMMA / gate_lib.ZETA))))
    np.testing.assert_allclose([float(r["keep_probability"]) for r in rows], expected, rtol=1e-5)
    assert [int(r["kept"]) for r in rows] == (logits > 0).astype(int).tolist()


def test_accuracy_table(gated_run, report_output):
    from aslx.decoding import evaluate as evaluate_lib
    from aslx.model import inference
    from aslx.training import sharding

    workdir, _, results = gated_run
    out, printed = report_output
    rows = {r["setting"]: r for r in _rows(out / "accuracy_vs_kept.csv")}
    assert list(rows) == ["top-10", "top-25", "top-50", "all", "learned"]  # 100 > 51 points
    assert [int(rows[s]["kept"]) for s in ("top-10", "top-25", "top-50", "all")] == [10, 25, 50, N]
    metric = "normalized_levenshtein"
    assert all(int(r["examples"]) == results["val/examples"] for r in rows.values())

    # The learned gate is exactly what training scored with the same weights.
    assert float(rows["learned"][metric]) == pytest.approx(results[f"val/{metric}"], abs=1e-9)
    assert int(rows["learned"]["kept"]) == int((_checkpoint_logits(workdir) > 0).sum())

    # "all" is the model with every gate open, evaluated here without the report's helpers.
    run = gated_run_lib.load_run(workdir)
    from aslx.input import pipeline

    batches = pipeline.eval_batches(
        json.loads((workdir / "config.json").read_text())["data"]["dir"],
        "val",
        pipeline.InputConfig(batch_size=32, max_frames=32, preset=PRESET),
    )
    open_gate = evaluate_lib.evaluate(
        inference.make_forward(run.graphdef, run.preset, run.task, run.normalization),
        run.with_logits(np.ones(N, np.float32)),
        batches,
        task="ctc",
        vocab=run.vocab,
        to_device=sharding.host_to_global(sharding.make_mesh(1)),
    )
    assert float(rows["all"][metric]) == pytest.approx(open_gate[metric], abs=1e-9)

    assert "hard_concrete gate" in printed
    for part in ("left_hand", "right_hand", "pose"):
        assert part in printed
    assert "top-10" in printed and "learned" in printed


def test_the_report_counts_the_kept_at_both_thresholds_and_those_between(report_output):
    from aslx.report import joints

    logits = np.asarray([-3.0, -2.0, -0.5, 0.0, 1.0])
    assert joints.threshold_line(logits, 0.0) == (
        "kept 1 at logit > 0.00 (this model's), 4 at logit > -2.40; "
        "3 landmarks lie between the two thresholds"
    )
    assert joints.threshold_line(logits, gate_lib.NONZERO_THRESHOLD) == (
        "kept 4 at logit > -2.40 (this model's), 1 at logit > 0.00; "
        "3 landmarks lie between the two thresholds"
    )
    _, printed = report_output
    assert "at logit > 0.00 (this model's)" in printed and "lie between" in printed


def test_top_k_logits_keep_exactly_k():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=N).astype(np.float32)
    logits[:20] = 0.5  # ties must not keep more or fewer than K
    for k in (0, 1, 10, 19, 20, 25, 50, N):
        forced = gated_run_lib.top_k_logits(logits, k)
        kept = forced > 0
        assert kept.sum() == k
        assert np.all(forced != 0)  # every landmark decidedly open or closed
        if 0 < k < N:
            assert logits[kept].min() >= logits[~kept].max()
    assert np.all(gated_run_lib.top_k_logits(np.full(N, 3.0), N) > 0)
    with pytest.raises(ValueError, match="cannot keep 52 of 51"):
        gated_run_lib.top_k_logits(logits, N + 1)

    names = [name for name, _ in gated_run_lib.settings(np.zeros(543))]
    assert names == ["top-10", "top-25", "top-50", "top-100", "all", "learned"]
    assert [name for name, _ in gated_run_lib.settings(np.zeros(20))] == [
        "top-10",
        "all",
        "learned",
    ]


def test_body_parts_follow_the_preset():
    full = dict(positions.body_parts(presets.get("full543")))
    assert list(full) == ["face", "left_hand", "pose", "right_hand", "lips"]
    assert full["face"].size == 468 and full["lips"].size == 40
    assert set(full["lips"]) <= set(full["face"])
    kaggle = dict(positions.body_parts(presets.get("kaggle75")))
    assert list(kaggle) == ["hand", "pose", "lips"]  # its own lips group, not a second one


def test_a_model_without_a_gate_is_refused(tmp_path, capsys):
    from aslx.model.config import ModelConfig
    from aslx.run import card as card_lib
    from aslx.vocab import CharVocab

    workdir = tmp_path / "plain"
    workdir.mkdir()
    card_lib.write(
        workdir,
        card_lib.ModelCard(
            model=ModelConfig(num_landmarks=N, gate="none"),
            vocab=CharVocab.kaggle(),
            preset=PRESET,
            task="ctc",
            max_frames=32,
        ),
    )
    args = ["joints", "--workdir", str(workdir), "--out", str(tmp_path / "out")]
    assert report.main(args) == 2
    error = capsys.readouterr().err
    assert str(workdir) in error and "has no joint gate" in error
    assert not (tmp_path / "out").exists()

    assert report.main(["joints", "--workdir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "model.json" in capsys.readouterr().err


def test_unknown_split_is_named(gated_run, tmp_path, capsys):
    workdir, _, _ = gated_run
    args = ["joints", "--workdir", str(workdir), "--out", str(tmp_path), "--split", "test"]
    assert report.main(args) == 2
    assert "no split 'test'" in capsys.readouterr().err
