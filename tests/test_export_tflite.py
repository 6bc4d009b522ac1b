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
from aslx.decoding import ctc as ctc_decoding
from aslx.export import __main__ as export_cli
from aslx.export import tflite
from aslx.input import fit
from aslx.landmarks import layouts, preprocess, presets
from aslx.landmarks.normalize import Normalization
from aslx.model import model as model_lib
from aslx.model.config import ModelConfig
from aslx.run.card import ModelCard
from aslx.run.reader import InferenceModel
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
        np.asarray(preprocess.permute(x, indices, axis)), np.take(x, indices, axis)
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


def untrained(
    task: str, preset_name: str, normalization: Normalization | None = None, **model
) -> TrainedModel:
    preset = presets.get(preset_name)
    normalization = normalization or Normalization.per_group()
    model["landmark_channels"] = normalization.landmark_channels
    if task == "ctc":
        vocab = vocab_lib.CharVocab.kaggle()
        config = ModelConfig(num_landmarks=preset.num_landmarks, ctc_vocab=vocab.size, **model)
    else:
        vocab = vocab_lib.ClassVocab(tuple(f"sign{i}" for i in range(12)))
        config = ModelConfig(
            num_landmarks=preset.num_landmarks, ctc_vocab=0, num_classes=12, **model
        )
    graphdef, params = model_lib.create(config, seed=3)
    card = ModelCard(
        model=config,
        vocab=vocab,
        preset=preset_name,
        task=task,
        max_frames=40,
        normalization=normalization,
    )
    return TrainedModel(card, graphdef, params, "raw", None)


def write_export(trained, out, quantize, representative=None, buckets=None):
    """The graph of ``trained`` (max_frames 40) at ``buckets`` (default: the card's, none here:
    one signature of 40 frames), written and loaded."""
    model = InferenceModel.of(trained, buckets=buckets)
    flat = tflite.convert(model, quantize=quantize, representative=representative)
    out.mkdir(parents=True, exist_ok=True)
    (out / tflite.MODEL_FILE).write_bytes(flat)
    (out / tflite.ARGS_FILE).write_text(json.dumps(tflite.inference_args(model)))
    return tflite.TFLiteModel(out)


def jax_log_probs(trained, clip):
    """The reference: fitted, padded to 64 frames and jitted, as ``aslx.predict`` runs it."""
    preset = presets.get(trained.card.preset)
    columns = tflite.clip_columns(clip, preset)
    columns = columns[fit.fit_indices(len(columns), 40)]
    padded = np.full((64, columns.shape[1]), np.nan, np.float32)
    padded[: len(columns)] = columns
    function = tflite.inference_function(InferenceModel.of(trained))
    out = np.asarray(jax.jit(function)(padded, len(columns)))
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


def test_each_length_bucket_runs_its_own_signature_and_equals_jax(ctc_export, tmp_path):
    """Buckets 8 and 16 below max_frames 40: three fixed-length signatures, the smallest that
    holds a clip runs it, each equals the JAX model, and the weights are stored once."""
    trained, single = ctc_export
    graph = write_export(trained, tmp_path, "float32", buckets=(8, 16))
    assert graph.args["aslx"]["signatures"] == {
        "frames_8": 8,
        "frames_16": 16,
        "serving_default": 40,
    }
    assert single.args["aslx"]["signatures"] == {"serving_default": 40}
    # The weights once: each extra signature adds only its ops (the normalisation and the
    # dominant-hand rule among them), far less than another copy of the weights would.
    assert graph.num_bytes < 1.75 * single.num_bytes
    rng = np.random.default_rng(6)
    for frames, key in [
        (1, "frames_8"),
        (8, "frames_8"),
        (9, "frames_16"),
        (16, "frames_16"),
        (17, "serving_default"),
        (97, "serving_default"),
    ]:
        assert graph.signature_for(frames) == key
        clip = random_clip(rng, frames)
        out = graph(tflite.clip_columns(clip, graph.preset))
        reference = jax_log_probs(trained, clip)
        assert out["logits"].shape == reference.shape == (min(frames, 40), 60)
        np.testing.assert_allclose(out["logits"], reference, rtol=1e-4, atol=1e-4)


def test_body_frame_graph_with_the_resting_hand_rule_equals_jax(tmp_path):
    """The new preprocessing in the graph: body frame, resting-hand rule, mask channel, a
    landscape camera and the stem's edge padding, on clips with a signing hand, a resting one
    and a missing one, one of them a single frame."""
    normalization = Normalization(camera_aspect=1.48, mask_channel=True)
    trained = untrained(
        "classification", "hands_pose", normalization, num_layers=1, dim=32, stem_padding="edge"
    )
    exported = write_export(trained, tmp_path, "float32", buckets=(16,))
    rng = np.random.default_rng(11)
    for frames, resting in ((12, True), (30, False), (1, True)):
        clip = np.full((frames, layouts.NUM_LANDMARKS, 3), np.nan, np.float32)
        pose = layouts.group_slice("pose")
        clip[:, pose] = rng.random((frames, 33, 3)) * 0.05 + np.linspace(0.3, 0.7, 33)[:, None]
        right = layouts.group_slice("right_hand")
        clip[:, right] = rng.random((frames, 21, 3)) * 0.1 + 0.3
        if resting:
            clip[:, layouts.group_slice("left_hand")] = rng.random((21, 3)) * 0.1 + [0.8, 0.9, 0]
        want = jax_log_probs(trained, clip)
        got = exported(tflite.clip_columns(clip, presets.get("hands_pose")))["logits"]
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_bucket_arithmetic():
    """The export's signatures: its buckets, the last max_frames; without a frame limit the
    buckets and the any-length graph."""
    trained = untrained("ctc", "kaggle75", num_layers=1, dim=32, num_heads=2)
    # A card without buckets (a run from before they were recorded) trained at max_frames only.
    signatures = tflite.signatures_of(InferenceModel.of(trained, max_frames=300).inputs)
    assert signatures == {"serving_default": 300}
    inputs = InferenceModel.of(trained, max_frames=300, buckets="64,128,256").inputs
    assert tflite.signatures_of(inputs) == {
        "frames_64": 64,
        "frames_128": 128,
        "frames_256": 256,
        "serving_default": 300,
    }
    inputs = InferenceModel.of(trained, max_frames=0, buckets=(64, 128)).inputs
    assert inputs.buckets == (64, 128)
    assert tflite.signatures_of(inputs) == {"frames_64": 64, "frames_128": 128,
                                            "serving_default": None}  # fmt: skip
    assert inputs.run_length(65) == 128 and inputs.run_length(129) is None
    for bad in ((0, 16), (16, 8), (16, 64)):
        with pytest.raises(ValueError, match="buckets"):
            InferenceModel.of(trained, buckets=bad)  # max_frames 40


def test_dynamic_int8_graph_is_within_ten_percent(tmp_path):
    trained = untrained("classification", "hands_pose", num_layers=1, dim=32, num_heads=2)
    graph = write_export(trained, tmp_path, "dynamic_int8")
    rng = np.random.default_rng(7)
    clip = random_clip(rng, 30)
    out = graph(tflite.clip_columns(clip, graph.preset))
    reference = jax_log_probs(trained, clip)
    assert np.abs(out["logits"] - reference).max() / np.abs(reference).max() < 0.1


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
        tflite.convert(InferenceModel.of(trained), quantize="int8")


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
        [
            "--workdir",
            str(trained_workdir),
            "--format",
            "tflite",
            "--out",
            str(out),
            "--buckets",
            "16,32",
        ],
    )
    assert code == 0, err
    assert "MB" in printed and sorted(p.name for p in out.iterdir()) == [
        tflite.ARGS_FILE,
        tflite.MODEL_FILE,
    ]
    args = json.loads((out / tflite.ARGS_FILE).read_text())
    assert args["selected_columns"] == tflite.selected_columns(presets.get("kaggle75"))
    assert args["aslx"]["max_frames"] == 48
    assert args["aslx"]["signatures"] == {"frames_16": 16, "frames_32": 32, "serving_default": 48}

    # One clip for every bucket (16, 32, 48) and one fitted down to 48 frames.
    rng = np.random.default_rng(5)
    clips = {
        7: random_clip(rng, 30),
        8: random_clip(rng, 75, right=False),
        9: random_clip(rng, 10),
        10: random_clip(rng, 40),
    }
    write_wide_parquet(tmp_path / "phrases.parquet", clips)
    lines = {}
    for model in (out, out / tflite.MODEL_FILE, trained_workdir):
        code, printed, err = run_main(
            predict.main, ["--model", str(model), str(tmp_path / "phrases.parquet")]
        )
        assert code == 0, err
        lines[str(model)] = printed.splitlines()
    assert len(set(map(tuple, lines.values()))) == 1, lines
    names = [line.split("\t")[0] for line in lines[str(out)]]
    assert names == [f"phrases/{i}" for i in clips]


def test_predict_gives_frame_counts_and_warns_once_about_short_clips(trained_workdir, tmp_path):
    from aslx import predict
    from aslx.run import card as card_lib

    shortest = card_lib.read(trained_workdir).train_frames["min"]
    assert shortest > 2  # the synthetic phrases are longer than the short clips below
    rng = np.random.default_rng(6)
    clips = {1: random_clip(rng, shortest + 5), 2: random_clip(rng, 1), 3: random_clip(rng, 2)}
    write_wide_parquet(tmp_path / "phrases.parquet", clips)
    code, printed, err = run_main(
        predict.main, ["--model", str(trained_workdir), str(tmp_path / "phrases.parquet")]
    )
    assert code == 0, err
    frames = [line.split("\t")[1] for line in printed.splitlines()]
    assert frames == [f"{shortest + 5} frames", "1 frames", "2 frames"]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err  # the first short clip, then the count at the end
    assert "phrases/2 has 1 frames" in warnings[0] and f"fewer than the {shortest}" in warnings[0]
    assert warnings[1] == f"warning: 2 clips had fewer than {shortest} frames"


def test_predict_undoes_another_cameras_aspect(trained_workdir):
    from aslx.export.predictor import Predictor

    predictor = Predictor(trained_workdir)
    clip = random_clip(np.random.default_rng(7), 20)
    wide = 16 / 9  # the same scene through a camera of another width / height
    seen = clip * np.array([1.0, wide / predictor.model_aspect, 1.0], np.float32)
    np.testing.assert_allclose(
        predictor.log_probs(predictor.in_model_camera(seen, wide)),
        predictor.log_probs(clip),
        atol=1e-5,
    )
    assert predictor(seen, wide) == predictor(clip)


def test_predict_refuses_what_it_cannot_read(trained_workdir, tmp_path):
    from aslx import predict

    code, _, err = run_main(predict.main, ["--model", str(tmp_path / "nothing"), "x.parquet"])
    assert code == 2 and "nothing" in err and len(err.strip().splitlines()) == 1
    # An unreadable input is named and skipped; the good one after it is still predicted,
    # and the command ends with the count and exit status 1.
    (tmp_path / "notes.txt").write_text("hello")
    np.savez(tmp_path / "good.npz", X=np.full((1, 5, 543, 3), 0.5, np.float32), y=[0],
             classes=np.array(["a"]))  # fmt: skip
    code, out, err = run_main(
        predict.main,
        ["--model", str(trained_workdir), str(tmp_path / "notes.txt"), str(tmp_path / "good.npz")],
    )
    lines = err.strip().splitlines()
    assert code == 1 and lines[0].startswith("skipped ") and "notes.txt" in lines[0], err
    assert lines[-1].startswith("error: 1 input"), err
    assert out.strip().splitlines()[0].startswith("a/0\t5 frames\t"), out


def test_export_refuses_bad_buckets_before_converting(trained_workdir, tmp_path, capsys):
    for bad in ("64,x", "0,64"):
        with pytest.raises(SystemExit) as exit_info:
            export_cli.main(
                [
                    "--workdir",
                    str(trained_workdir),
                    "--format",
                    "tflite",
                    "--out",
                    str(tmp_path / "o"),
                    "--buckets",
                    bad,
                ]
            )
        assert exit_info.value.code == 2
        assert f"--buckets {bad!r}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_export_of_a_missing_workdir_is_one_line(tmp_path):
    code, _, err = run_main(
        export_cli.main,
        ["--workdir", str(tmp_path / "none"), "--format", "tflite", "--out", str(tmp_path / "o")],
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "none" in err
    assert not (tmp_path / "o").exists()
