"""Exported weights files: a bitwise round trip, read anywhere a workdir is (warm start,
distillation teacher, ``load_trained``), clear errors, and an atomic write."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import safetensors
from safetensors import numpy as safetensors_numpy

from aslx.export import weights as weights_lib
from aslx.model import model as model_lib
from aslx.model.paths import flatten
from aslx.run import card as card_lib
from aslx.run import checkpoint, weights_file
from aslx.run import source as source_lib
from aslx.training.metrics_log import read_metrics
from tests.conftest import tiny_ctc_config


@pytest.fixture(scope="module")
def teacher(tiny_ctc_run):
    """A finished tiny finetuning run's workdir: raw and EMA weights that differ."""
    return tiny_ctc_run


@pytest.fixture(scope="module")
def exported(teacher, tmp_path_factory):
    """``{choice: file}``: the teacher exported as selected, raw and EMA weights."""
    out = tmp_path_factory.mktemp("exported")
    return {
        choice: weights_lib.export_weights(teacher, out / f"{choice}/w.safetensors", choice)
        for choice in ("selected", "raw", "ema")
    }


def checkpoint_params(workdir, step, key) -> dict[str, np.ndarray]:
    return flatten(checkpoint.read_arrays(workdir / "checkpoints", step)[key])


def load_weights(path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(model card as JSON, flat parameters)`` of an exported file."""
    source = weights_file.read(path)
    return source.card.to_json(), source.params


def header(path) -> dict[str, str]:
    """The file's metadata read with safetensors alone, as another framework would."""
    with safetensors.safe_open(str(path), framework="numpy") as f:
        return f.metadata()


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("choice, key", [("raw", "params"), ("ema", "ema_params")])
def test_round_trip_gives_the_checkpoints_arrays_bitwise(teacher, exported, choice, key):
    description, params = load_weights(exported[choice])
    assert description == card_lib.read(teacher).to_json()
    meta = header(exported[choice])
    step = int(meta["step"])
    expected = checkpoint_params(teacher, step, key)
    assert sorted(params) == sorted(expected)
    assert params["encoder/blocks/attention/query/kernel"].ndim == 3  # [layers, in, out]
    for path, value in expected.items():
        assert params[path].dtype == value.dtype == np.float32, path
        assert np.array_equal(params[path], value), path
    assert meta["format"] == "aslx-weights" and meta["format_version"] == "2"
    assert meta["weights"] == choice and meta["source"] == os.path.abspath(teacher)
    assert json.loads(meta["model"]) == description


def test_raw_and_ema_files_differ_and_selected_is_what_results_chose(teacher, exported):
    _, raw = load_weights(exported["raw"])
    _, ema = load_weights(exported["ema"])
    assert any(not np.array_equal(raw[p], ema[p]) for p in raw)
    results = json.loads((teacher / "results.json").read_text())
    meta = header(exported["selected"])
    assert meta["weights"] == results["selected_weights"]
    latest = checkpoint.Checkpointer(teacher / "checkpoints", read_only=True).latest_step()
    assert int(meta["step"]) == results.get("best_step", latest)


def test_unknown_weights_choice_is_refused(teacher, tmp_path):
    with pytest.raises(ValueError, match="weights must be one of selected, raw, ema"):
        weights_lib.export_weights(teacher, tmp_path / "w.safetensors", "best")


# --- a file serves wherever a workdir does ---------------------------------------------------


@pytest.mark.parametrize("choice", ["raw", "ema"])
def test_source_weights_of_a_file_equal_the_workdirs(teacher, exported, choice):
    from_file = source_lib.source_weights(exported[choice])
    step = int(header(exported[choice])["step"])
    from_workdir = source_lib.source_weights(teacher, step, choice)
    assert sorted(from_file) == sorted(from_workdir)
    for path, value in from_workdir.items():
        assert np.array_equal(from_file[path], value), path


def test_a_file_refuses_weights_it_does_not_hold(exported):
    with pytest.raises(ValueError, match=r"holds the raw weights of step \d+, not the ema"):
        source_lib.source_weights(exported["raw"], weights="ema")


def test_load_trained_from_a_file_gives_the_same_model(teacher, exported):
    from_workdir = source_lib.load_trained(teacher)
    from_file = source_lib.load_trained(exported["selected"])
    assert from_file.card == from_workdir.card
    assert from_file.config == from_workdir.config
    assert (from_file.weights, from_file.step) == (from_workdir.weights, from_workdir.step)
    rng = np.random.default_rng(0)
    shape = (2, 16, from_file.config.num_landmarks, from_file.config.landmark_channels)
    landmarks = rng.normal(size=shape).astype(np.float32)
    frame_mask = np.arange(16)[None, :] < np.array([[16], [9]])
    outputs = [
        model_lib.apply(trained.graphdef, trained.params, landmarks, frame_mask)
        for trained in (from_workdir, from_file)
    ]
    assert np.array_equal(outputs[0]["ctc_logits"], outputs[1]["ctc_logits"])


def test_a_file_teaches_and_initialises_a_finetuning_run(synthetic_records, exported, tmp_path):
    """The exported file as a frozen distillation teacher and as the starting weights."""
    from finetune.train import train

    teacher_file = exported["selected"]
    teacher_description, teacher_params = load_weights(teacher_file)
    config = tiny_ctc_config(synthetic_records)
    config.total_steps = 2
    config.data.eval_split = ""  # the student's scores are not what is tested here
    config.teacher.weights = str(teacher_file)
    config.init_from = str(teacher_file)
    workdir = tmp_path / "student"
    lines = []
    train(config, str(workdir), print_fn=lines.append)
    report = next(line for line in map(str, lines) if line.startswith("init from"))
    assert re.search(
        rf"loaded {len(teacher_params)} parameters, skipped 0, newly initialised 2", report
    )
    assert "distill_head" in report  # the student's new head, for the teacher's labels
    model = json.loads((workdir / "model.json").read_text())["model"]
    assert model["distill_vocab"] == teacher_description["model"]["ctc_vocab"] > 0
    logged = [r for r in read_metrics(workdir) if r["split"] == "train"]
    assert len(logged) == 2 and all(r["kd_loss"] > 0 for r in logged)


# --- bad input -------------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{path}: no such weights file")):
        load_weights(path)
    with pytest.raises(FileNotFoundError, match="neither a training workdir nor"):
        source_lib.source_weights(path)


def test_a_file_that_is_not_safetensors_is_named(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("not a weights file at all")
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a safetensors file")):
        load_weights(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a safetensors file")):
        source_lib.load_trained(path)


def test_a_safetensors_file_without_aslx_metadata_is_named(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors_numpy.save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(
        ValueError, match=re.escape(f"{path}: a safetensors file without aslx metadata")
    ):
        load_weights(path)


def test_a_newer_format_version_is_named(exported, tmp_path):
    with safetensors.safe_open(str(exported["raw"]), framework="numpy") as f:
        meta = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    path = tmp_path / "future.safetensors"
    safetensors_numpy.save_file(tensors, str(path), metadata=meta | {"format_version": "3"})
    with pytest.raises(ValueError, match=re.escape(f"{path}: aslx weights format version '3'")):
        load_weights(path)


# --- atomic write ----------------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_half_written(teacher, tmp_path, monkeypatch):
    out = tmp_path / "w.safetensors"

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00")  # the start of a header, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_numpy, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        weights_lib.export_weights(teacher, out, "raw")
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    weights_lib.export_weights(teacher, out, "raw")
    before = out.read_bytes()
    monkeypatch.setattr(safetensors_numpy, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        weights_lib.export_weights(teacher, out, "ema")
    assert out.read_bytes() == before
    assert list(tmp_path.iterdir()) == [out]


def test_a_file_exports_again_unchanged(exported, tmp_path):
    again = weights_lib.export_weights(exported["raw"], tmp_path / "again.safetensors")
    assert header(again) == header(exported["raw"])
    _, first = load_weights(exported["raw"])
    _, second = load_weights(again)
    assert all(np.array_equal(first[p], second[p]) for p in first) and first.keys() == second.keys()


def test_the_card_of_a_file_comes_from_its_header(teacher, exported):
    assert source_lib.read_card(exported["raw"]) == card_lib.read(teacher)
    assert source_lib.read_card(teacher) == card_lib.read(teacher)
    assert weights_file.read_card(exported["raw"]) == weights_file.read(exported["raw"]).card
