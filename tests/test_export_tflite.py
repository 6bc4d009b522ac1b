"""The TFLite export: its in-graph preprocessing equals the training pipeline's, the graph
agrees with the JAX model, and ``aslx.export`` / ``aslx.predict`` work end to end."""

from __future__ import annotations

import contextlib
import io
import json

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import given, settings

from aslx import vocab as vocab_lib
from aslx.augment import transforms
from aslx.decoding import ctc as ctc_decoding
from aslx.export import __main__ as export_cli
from aslx.export import tflite
from aslx.input import fit
from aslx.landmarks import layouts, presets
from aslx.model import model as model_lib
from aslx.model.config import ModelConfig
from aslx.run.card import ModelCard
from aslx.run.source import TrainedModel
from tests.conftest import random_clip, write_wide_parquet

# --- the graph's input and preprocessing ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_selected_columns_are_wide_columns_in_file_order(name):
    preset = presets.get(name)
    columns = tflite.selected_columns(preset)
    wide = layouts.wide_columns()
    positions = [wide.index(c) for c in columns]
    assert positions == sorted(positions)
    assert len(columns) == 3 * len(tflite.graph_landmarks(preset))
    assert set(preset.indices) <= set(tflite.graph_landmarks(preset))


@given(st.lists(st.integers(0, 30), min_size=1, max_size=20), st.integers(0, 2))
@settings(max_examples=40, deadline=None)
def test_static_selection_is_take(indices, axis):
    x = np.random.default_rng(0).normal(size=(31, 31, 31)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(transforms.permute(x, indices, axis)), np.take(x, indices, axis)
    )


@pytest.mark.parametrize("name", ["kaggle75", "hands_pose"])
@pytest.mark.parametrize("hands", [(True, True), (False, True), (True, False)])
def test_columns_to_batch_equals_the_numpy_selection(name, hands):
    """The graph's selection (from columns) equals ``presets.select`` on the canonical clip,
    with the pipeline's masking; NaN padding rows change nothing."""
    preset = presets.get(name)
    rng = np.random.default_rng(hash((name, hands)) % 2**32)
    clip = random_clip(rng, 17, left=hands[0], right=hands[1])
    clip[rng.random((17, layouts.NUM_LANDMARKS)) < 0.05] = np.nan
    reference = presets.select(clip, preset)
    mask = ~np.isnan(reference).any(-1)
    columns = tflite.clip_columns(clip, preset)
    padded = np.concatenate([columns, np.full((7, columns.shape[1]), np.nan, np.float32)])
    batch = jax.jit(tflite.columns_to_batch, static_argnums=2)(padded, 17, preset)
    np.testing.assert_array_equal(np.asarray(batch["landmark_mask"][0, :17]), mask)
    np.testing.assert_allclose(
        np.asarray(batch["landmarks"][0, :17]), np.where(mask[..., None], reference, 0), atol=1e-7
    )
    assert not np.asarray(batch["frame_mask"][0, 17:]).any()
    assert not np.asarray(batch["landmark_mask"][0, 17:]).any()


# --- the converted graph against the JAX model ------------------------------------------------


def untrained(task: str, preset_name: str, **model) -> TrainedModel:
    preset = presets.get(preset_name)
    if task == "ctc":
        vocab = vocab_lib.CharVocab.kaggle()
        config = ModelConfig(num_landmarks=preset.num_landmarks, ctc_vocab=vocab.size, **model)
    else:
        vocab = vocab_lib.ClassVocab(tuple(f"sign{i}" for i in range(12)))
        config = ModelConfig(
            num_landmarks=preset.num_landmarks, ctc_vocab=0, num_classes=12, **model
        )
    graphdef, params = model_lib.create(config, seed=3)
    card = ModelCard(model=config, vocab=vocab, preset=preset_name, task=task, max_frames=40)
    return TrainedModel(card, graphdef, params, "raw", None)


def write_export(trained, out, quantize, representative=None):
    flat = tflite.convert(trained, max_frames=40, quantize=quantize, representative=representative)
    out.mkdir(parents=True, exist_ok=True)
    (out / tflite.MODEL_FILE).write_bytes(flat)
    (out / tflite.ARGS_FILE).write_text(json.dumps(tflite.inference_args(trained, 40)))
    return tflite.TFLiteModel(out)


def jax_log_probs(trained, clip):
    """The reference: fitted, padded to 64 frames and jitted, as ``aslx.predict`` runs it."""
    preset = presets.get(trained.card.preset)
    columns = tflite.clip_columns(clip, preset)
    columns = columns[fit.fit_indices(len(columns), 40)]
    padded = np.full((64, columns.shape[1]), np.nan, np.float32)
    padded[: len(columns)] = columns
    out = np.asarray(jax.jit(tflite.inference_function(trained))(padded, len(columns)))
    return out if trained.card.task == "classification" else out[: len(columns)]


CLIP_LENGTHS = (1, 9, 40, 97)


@pytest.fixture(scope="module")
def ctc_export(tmp_path_factory):
    trained = untrained("ctc", "kaggle75", num_layers=1, dim=32, num_heads=2)
    return trained, write_export(trained, tmp_path_factory.mktemp("ctc"), "float32")


def test_ctc_graph_equals_jax_for_any_length_and_decodes_greedily(ctc_export):
    trained, graph = ctc_export
    rng = np.random.default_rng(1)
    for frames in CLIP_LENGTHS:
        clip = random_clip(rng, frames, left=frames % 2 == 0)
        out = graph(tflite.clip_columns(clip, graph.preset))
        reference = jax_log_probs(trained, clip)
        assert out["logits"].shape == reference.shape == (min(frames, 40), 60)
        np.testing.assert_allclose(out["logits"], reference, rtol=1e-4, atol=1e-4)
        # In-graph decoding: one row per emitted character, the blank column dropped.
        ids = ctc_decoding.collapse(reference.argmax(-1), graph.blank_id)
        assert out["outputs"].shape == (len(ids), 59)
        assert [int(i) + (int(i) >= graph.blank_id) for i in out["outputs"].argmax(-1)] == ids


def test_float16_classification_graph_is_within_one_percent(tmp_path):
    trained = untrained("classification", "hands_pose", num_layers=1, dim=32, num_heads=2)
    graph = write_export(trained, tmp_path, "float16")
    rng = np.random.default_rng(2)
    for frames in CLIP_LENGTHS:
        clip = random_clip(rng, frames)
        out = graph(tflite.clip_columns(clip, graph.preset))
        reference = jax_log_probs(trained, clip)
        assert out["outputs"].shape == (12,)
        error = np.abs(out["logits"] - reference).max() / np.abs(reference).max()
        assert error < 1e-2


def test_int8_export_calibrates_and_runs(tmp_path):
    trained = untrained("classification", "hands_pose", num_layers=1, dim=32, num_heads=2)
    preset = presets.get("hands_pose")
    rng = np.random.default_rng(4)
    calibration = [tflite.clip_columns(random_clip(rng, n), preset) for n in (12, 30, 45)]
    graph = write_export(trained, tmp_path, "int8", calibration)
    out = graph(calibration[0])
    assert out["outputs"].shape == (12,) and np.isfinite(out["outputs"]).all()
    with pytest.raises(ValueError, match="representative"):
        tflite.convert(trained, max_frames=40, quantize="int8")


# --- the command lines, from a trained workdir --------------------------------------------------


@pytest.fixture(scope="module")
def trained_workdir(tiny_ctc_run):
    """A 4-step CTC finetuning run on the synthetic record set (48 frames)."""
    return tiny_ctc_run


def run_main(main, argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_export_then_predict_agree_with_the_workdir(trained_workdir, tmp_path):
    from aslx import predict

    out = tmp_path / "export"
    code, printed, err = run_main(
        export_cli.main,
        ["--workdir", str(trained_workdir), "--format", "tflite", "--out", str(out)],
    )
    assert code == 0, err
    assert "MB" in printed and sorted(p.name for p in out.iterdir()) == [
        tflite.ARGS_FILE,
        tflite.MODEL_FILE,
    ]
    args = json.loads((out / tflite.ARGS_FILE).read_text())
    assert args["selected_columns"] == tflite.selected_columns(presets.get("kaggle75"))
    assert args["aslx"]["max_frames"] == 48

    rng = np.random.default_rng(5)
    clips = {7: random_clip(rng, 30), 8: random_clip(rng, 75, right=False)}
    write_wide_parquet(tmp_path / "phrases.parquet", clips)
    lines = {}
    for model in (out, out / tflite.MODEL_FILE, trained_workdir):
        code, printed, err = run_main(
            predict.main, ["--model", str(model), str(tmp_path / "phrases.parquet")]
        )
        assert code == 0, err
        lines[str(model)] = printed.splitlines()
    assert len(set(map(tuple, lines.values()))) == 1, lines
    assert [line.split("\t")[0] for line in lines[str(out)]] == ["phrases/7", "phrases/8"]


def test_predict_refuses_what_it_cannot_read(trained_workdir, tmp_path):
    from aslx import predict

    code, _, err = run_main(predict.main, ["--model", str(tmp_path / "nothing"), "x.parquet"])
    assert code == 2 and "nothing" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run_main(
        predict.main, ["--model", str(trained_workdir), str(tmp_path / "notes.txt")]
    )
    assert code == 2 and "notes.txt" in err and len(err.strip().splitlines()) == 1


def test_export_of_a_missing_workdir_is_one_line(tmp_path):
    code, _, err = run_main(
        export_cli.main,
        ["--workdir", str(tmp_path / "none"), "--format", "tflite", "--out", str(tmp_path / "o")],
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "none" in err
    assert not (tmp_path / "o").exists()
