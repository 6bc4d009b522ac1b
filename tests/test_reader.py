"""A trained model's input settings come from its model card alone, and every reader uses them:
a run trained with ``data.long_clips='truncate'`` is truncated, not resampled, by predict, the
TFLite export and align; length buckets read alike in training, export and predict."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from aslx import ctc_frames
from aslx.decoding import viterbi
from aslx.decoding.align_records import align_records, summary_text
from aslx.export import __main__ as export_cli
from aslx.export import tflite
from aslx.export.predictor import Predictor
from aslx.input import batch as batch_lib
from aslx.input import fit, pipeline
from aslx.records import alignments as alignments_file
from aslx.records.metadata import RecordSet
from aslx.run import card as card_lib
from aslx.run import reader
from aslx.training import config as config_lib
from tests.conftest import random_clip, tiny_ctc_config

MAX_FRAMES = 48  # tiny_ctc_config's; the synthetic clips have 29–163 frames: many are longer
LONG = 97


@pytest.fixture(scope="module")
def truncating_run(synthetic_records, tmp_path_factory):
    """A 2-step CTC finetuning run of :func:`tiny_ctc_config` with ``long_clips='truncate'``."""
    from finetune.train import train

    config = tiny_ctc_config(synthetic_records)
    config.data.long_clips = "truncate"
    config.total_steps = 2
    workdir = tmp_path_factory.mktemp("truncating_run") / "work"
    train(config, str(workdir), print_fn=lambda *a, **k: None)
    return workdir


@pytest.fixture(scope="module")
def model(truncating_run):
    return reader.load_for_inference(truncating_run)


def first_frames_log_probs(model: reader.InferenceModel, clip: np.ndarray) -> np.ndarray:
    """The reference: ``[T, V]`` log-probabilities of the forward pass on the clip's first
    ``T`` frames, unpadded (a clip of ``T`` frames needs no fitting)."""
    columns = tflite.clip_columns(clip[:MAX_FRAMES], model.inputs.preset)
    y_scale = model.inputs.normalization.y_scale
    batch = tflite.columns_to_batch(columns, len(columns), model.inputs.preset, y_scale)
    return np.asarray(model.forward(model.params, batch)["log_probs"][0])


def test_the_settings_are_the_cards(truncating_run, model):
    card = card_lib.read(truncating_run)
    assert card.long_clips == "truncate" and card.max_frames == MAX_FRAMES
    assert model.inputs == reader.InputSettings.of_card(card)
    assert model.inputs.long_clips == "truncate" and model.inputs.buckets == card.buckets
    assert model.inputs.preset.name == card.preset
    assert model.inputs.normalization == card.normalization
    config = model.inputs.input_config(8)  # what align and the reports read records with
    assert (config.long_clips, config.max_frames, config.preset) == (
        "truncate",
        MAX_FRAMES,
        card.preset,
    )
    np.testing.assert_array_equal(model.inputs.fit_indices(LONG), np.arange(MAX_FRAMES))


def test_predict_truncates_a_long_clip(truncating_run, model):
    predictor = Predictor(truncating_run)
    clip = random_clip(np.random.default_rng(0), LONG)
    got = predictor.log_probs(clip)
    want = first_frames_log_probs(model, clip)
    assert got.shape == want.shape == (MAX_FRAMES, want.shape[1])
    np.testing.assert_allclose(got, want, atol=1e-4)
    resampled = predictor.log_probs(clip[fit.fit_indices(LONG, MAX_FRAMES)])
    assert np.abs(got - resampled).max() > 1e-3  # the two policies are told apart


def test_the_tflite_export_truncates_a_long_clip(truncating_run, model, tmp_path):
    tflite.export(truncating_run, tmp_path, quantize="float32", buckets="none")
    args = json.loads((tmp_path / tflite.ARGS_FILE).read_text())["aslx"]
    assert args["long_clips"] == "truncate" and args["max_frames"] == MAX_FRAMES
    assert args["signatures"] == {tflite.DEFAULT_SIGNATURE: MAX_FRAMES}
    graph = tflite.TFLiteModel(tmp_path)
    clip = random_clip(np.random.default_rng(1), LONG)
    got = graph(tflite.clip_columns(clip, graph.preset))["logits"]
    np.testing.assert_allclose(got, first_frames_log_probs(model, clip), atol=1e-4)
    # The export predicts as the workdir does.
    assert Predictor(tmp_path)(clip) == Predictor(truncating_run)(clip)


def test_align_truncates_a_long_clip(truncating_run, model, synthetic_records, tmp_path):
    """Each fitted alignment is the model's best path over the clip's first T frames, and the
    stored frames past them keep the last one's position."""
    out = tmp_path / "train.npz"
    summary = align_records(truncating_run, synthetic_records, out, batch_size=12, progress=False)
    assert summary["long_clips"] == "truncate" and summary["fitted"] > 0
    assert f"read as their first {MAX_FRAMES} frames" in summary_text(summary, "train")
    alignments, meta = alignments_file.read_file(out)
    assert meta["long_clips"] == "truncate" and meta["max_frames"] == MAX_FRAMES
    blank_id = RecordSet(synthetic_records).vocab.blank_id
    config = pipeline.InputConfig(
        batch_size=12, max_frames=MAX_FRAMES, preset="kaggle75", long_clips="truncate"
    )
    checked = long = 0
    batches = pipeline.eval_batches(
        synthetic_records, "train", config, process_index=0, process_count=1
    )
    for batch in batches:
        out = model.forward(model.params, batch_lib.device_batch(batch))
        log_probs = np.asarray(jax.device_get(out["log_probs"]))
        for i in np.flatnonzero(batch["example_mask"]):
            n, stored = int(batch["num_frames"][i]), int(batch["record_frames"][i])
            labels = batch["labels"][i][batch["label_mask"][i]].tolist()
            labels = labels[: ctc_frames.fitting_prefix(labels, n)]
            carried = alignments[batch["clip_id"][i].decode()]
            assert carried.shape == (stored,)
            best = viterbi.viterbi_align(log_probs[i, :n], labels, blank_id)
            want = viterbi.score(log_probs[i, :n], best, labels, blank_id)
            got = viterbi.score(log_probs[i, :n], carried[:n], labels, blank_id)
            assert got == pytest.approx(want, abs=1e-3)
            if stored > MAX_FRAMES:
                assert (carried[MAX_FRAMES:] == carried[MAX_FRAMES - 1]).all()
                long += 1
            checked += 1
    assert checked == 36 and long == summary["fitted"] > 0


# --- length buckets: one vocabulary -----------------------------------------------------------


def test_training_export_and_predict_read_buckets_alike(tiny_ctc_run, synthetic_records):
    """The same words give the same bounds to the trainer (``config.data.buckets``), to export
    (``--buckets``) and to predict; with none given, export and predict take the card's, the
    bounds the run trained at."""
    records = RecordSet(synthetic_records)
    config = tiny_ctc_config(synthetic_records)
    card = card_lib.read(tiny_ctc_run)
    assert card.buckets == config_lib.bucket_bounds(config, records)  # the trainer wrote them
    loaded = reader.load_for_inference(tiny_ctc_run)
    assert loaded.inputs.buckets == card.buckets
    assert tuple(tflite.signatures_of(loaded.inputs).values()) == card.buckets
    assert Predictor(tiny_ctc_run).lengths == card.buckets
    assert Predictor(tiny_ctc_run, buckets="16,32").lengths == (16, 32, MAX_FRAMES)

    config.data.max_frames = 128
    for text in ("auto", "none", "64,128", "64", "32, 96"):
        config.data.buckets = text
        trained_at = config_lib.bucket_bounds(config, records)
        ran = dataclasses.replace(card, max_frames=128, buckets=trained_at)
        assert reader.InputSettings.of_card(ran).buckets == trained_at
        assert reader.InputSettings.of_card(ran, buckets=text).buckets == trained_at
        assert (
            export_cli.parse_args(
                ["--workdir", "w", "--format", "tflite", "--out", "o", "--buckets", text]
            ).buckets
            == text
        )
    ran = dataclasses.replace(card, max_frames=128, buckets=None)
    for bad in ("64,x", "0,64", "128,64", "200"):
        config.data.buckets = bad
        with pytest.raises(config_lib.ConfigError, match="config.data.buckets"):
            config_lib.bucket_bounds(config, records)
        with pytest.raises(ValueError, match="buckets"):
            reader.InputSettings.of_card(ran, buckets=bad)
