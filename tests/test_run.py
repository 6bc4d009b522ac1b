"""The run-artifacts layer: the model card, the results file and atomic writes."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from aslx import files
from aslx import vocab as vocab_lib
from aslx.model.config import ModelConfig
from aslx.run import card as card_lib
from aslx.run import results as results_lib


def a_card(**overrides) -> card_lib.ModelCard:
    fields = dict(
        model=ModelConfig(num_landmarks=51, ctc_vocab=60),
        vocab=vocab_lib.CharVocab.kaggle(),
        preset="hands_pose",
        task="ctc",
        max_frames=128,
    )
    return card_lib.ModelCard(**(fields | overrides))


# --- the model card -----------------------------------------------------------------------------


def test_card_round_trips_through_its_file(tmp_path):
    card = a_card(vocab=vocab_lib.ClassVocab(("a", "b")), task="classification")
    card_lib.write(tmp_path, card)
    assert card_lib.read(tmp_path) == card
    written = json.loads((tmp_path / card_lib.MODEL_FILE).read_text())
    assert set(written) == {
        "model", "vocab", "preset", "task", "max_frames", "normalization", "train_frames",
        "long_clips", "buckets",
    }  # fmt: skip
    assert written["long_clips"] == "resample" and written["buckets"] is None
    truncating = a_card(long_clips="truncate", buckets=(64, 128))
    assert card_lib.ModelCard.from_json(truncating.to_json(), "x") == truncating
    old = {k: v for k, v in truncating.to_json().items() if k not in ("long_clips", "buckets")}
    # A card from before the two fields: its run resampled, its buckets are unknown.
    assert card_lib.ModelCard.from_json(old, "x") == a_card()
    assert written["model"]["num_landmarks"] == 51 and written["preset"] == "hands_pose"
    pretrain = a_card(task="pretrain", data2vec={"mask_ratio": 0.8})
    assert card_lib.ModelCard.from_json(pretrain.to_json(), "x").data2vec == {"mask_ratio": 0.8}


def test_card_errors_name_the_file_and_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model.json"):
        card_lib.read(tmp_path / "elsewhere")
    path = tmp_path / card_lib.MODEL_FILE
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        card_lib.read(tmp_path)
    good = a_card().to_json()
    cases = {
        "lacks vocab, max_frames": {
            k: v for k, v in good.items() if k not in ("vocab", "max_frames")
        },
        "field 'model'": good | {"model": {"no_such_field": 1}},
        "field 'vocab'": good | {"vocab": {"kind": "emoji"}},
        "task must be one of": good | {"task": "dance"},
        "long_clips must be one of": good | {"long_clips": "crop"},
        "must end at max_frames=128": good | {"buckets": [32, 64]},
        r"buckets '64,500'": good | {"buckets": [64, 500]},
    }
    for message, value in cases.items():
        path.write_text(json.dumps(value))
        with pytest.raises(ValueError, match=message) as error:
            card_lib.read(tmp_path)
        assert str(path) in str(error.value)


def test_results_are_empty_until_written(tmp_path):
    assert results_lib.read(tmp_path) == {}
    results_lib.write(tmp_path, {"best_step": 3})
    assert results_lib.read(tmp_path) == {"best_step": 3}
    (tmp_path / results_lib.RESULTS_FILE).write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        results_lib.read(tmp_path)


# --- atomic writes ------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_with_the_users_mode(tmp_path):
    target = tmp_path / "sub" / "out.json"
    files.write_json(target, {"a": 1})
    files.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temp left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 & ~mask


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "weights.bin"
    files.write_bytes(target, b"old")
    for failure in (OSError(28, "No space left on device"), KeyboardInterrupt()):
        with pytest.raises(type(failure)):
            with files.atomic_path(target) as tmp:
                tmp.write_bytes(b"half")
                raise failure
        assert target.read_bytes() == b"old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_open_npz_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="an alignments file was expected"):
        files.open_npz(tmp_path / "none.npz", "an alignments file")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="bad.npz: not a readable .npz archive"):
        files.open_npz(tmp_path / "bad.npz")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(ValueError, match="a single array"):
        files.open_npz(tmp_path / "one.npy")
    np.savez(tmp_path / "good.npz", x=np.arange(3))
    with files.open_npz(tmp_path / "good.npz") as archive:
        np.testing.assert_array_equal(archive["x"], np.arange(3))
