"""Warm start: parameters matched by path, layers kept evenly spaced, an honest report."""

from __future__ import annotations

import numpy as np
import pytest

from aslx.model import config as config_lib
from aslx.model import model as model_lib
from aslx.model import paths
from aslx.training import warm_start


def tiny(**overrides):
    return model_lib.create(config_lib.sized("tiny", **overrides), seed=0)


def test_every_matching_parameter_is_loaded():
    _, source = tiny()
    _, target = model_lib.create(config_lib.sized("tiny"), seed=1)
    flat_source = paths.flatten(source)
    loaded, report = warm_start.warm_start(target, flat_source)
    assert not report.skipped and not report.fresh
    assert sorted(report.loaded) == sorted(flat_source)
    for path, value in paths.flatten(loaded).items():
        np.testing.assert_array_equal(value, flat_source[path])


def test_other_heads_are_skipped_or_fresh_and_named():
    """A CTC model's weights into a classifier of another vocabulary: the encoder loads, the
    CTC head has no place, the class head starts fresh."""
    _, source = model_lib.create(config_lib.sized("tiny", ctc_vocab=60), seed=0)
    _, target = model_lib.create(
        config_lib.sized("tiny", ctc_vocab=0, num_classes=35, num_landmarks=51), seed=1
    )
    _, report = warm_start.warm_start(target, paths.flatten(source))
    assert "ctc_head/kernel: not in this model" in report.skipped
    assert any(s.startswith("encoder/stem/kernel: shape") for s in report.skipped)
    assert report.fresh == ["class_head/bias", "class_head/kernel", "encoder/stem/kernel"]
    assert "encoder/blocks/mlp_in/kernel" in report.loaded
    assert "skipped 3" in report.summary() and "newly initialised 3" in report.summary()


@pytest.mark.parametrize(
    "source, target, expected",
    [(24, 6, [0, 5, 9, 14, 18, 23]), (4, 2, [0, 3]), (3, 3, [0, 1, 2]), (5, 1, [0])],
)
def test_block_indices_are_evenly_spaced(source, target, expected):
    assert warm_start.block_indices(source, target) == expected


def test_block_indices_refuse_more_layers_than_the_source_has():
    with pytest.raises(ValueError, match="cannot keep 5 of 4"):
        warm_start.block_indices(4, 5)


def test_keep_layers_maps_source_blocks_onto_the_student():
    _, source = model_lib.create(config_lib.sized("tiny", num_layers=4), seed=0)
    _, target = model_lib.create(config_lib.sized("tiny", num_layers=2), seed=1)
    flat_source = paths.flatten(source)
    loaded, report = warm_start.warm_start(target, flat_source, keep_layers=2)
    flat = paths.flatten(loaded)
    assert not report.fresh and not report.skipped
    for student, teacher in ((0, 0), (1, 3)):  # the stacked blocks' layer axis, sliced
        np.testing.assert_array_equal(
            flat["encoder/blocks/attention/query/kernel"][student],
            flat_source["encoder/blocks/attention/query/kernel"][teacher],
        )
    np.testing.assert_array_equal(flat["ctc_head/kernel"], flat_source["ctc_head/kernel"])


def test_a_resume_refuses_a_source_trained_again_since(synthetic_records, tiny_ctc_run, tmp_path):
    """A finetune resumed after the workdir it started from was trained again (same folder,
    other weights) would go on from the old weights while its command names the new ones: it is
    refused in one line, nothing changed in its workdir; with the old weights back it resumes."""
    import json
    import shutil

    from aslx.run import source as source_lib
    from aslx.run.weights_file import tensors_digest
    from aslx.training.config import ConfigError
    from finetune.train import train
    from tests.conftest import tiny_ctc_config

    def quiet(*args, **kwargs):
        pass

    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_ctc_run, encoder)
    config = tiny_ctc_config(synthetic_records)
    config.init_from = str(encoder)
    config.total_steps = 2
    workdir = tmp_path / "finetune"
    train(config, str(workdir), print_fn=quiet)
    started_from = source_lib.read_source(encoder)
    record = json.loads((workdir / warm_start.SOURCE_RECORD).read_text())
    assert record == {
        "init_from": str(encoder),
        "step": started_from.step,
        "weights": started_from.weights,
        "digest": tensors_digest(started_from.params),
    }

    shutil.rmtree(encoder)  # trained again: another seed, the same folder
    again = tiny_ctc_config(synthetic_records)
    again.seed = 1
    train(again, str(encoder), print_fn=quiet)
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    config.total_steps = 4  # extend the run: it resumes from step 2
    with pytest.raises(ConfigError) as refusal:
        train(config, str(workdir), print_fn=quiet)
    message = str(refusal.value)
    assert "\n" not in message and message.startswith(f"config.init_from={str(encoder)!r}")
    assert "started from other weights" in message and "give a new --workdir" in message
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before

    # A damaged record is named in one line, not a traceback, and changes nothing either.
    record_file = workdir / warm_start.SOURCE_RECORD
    record_file.write_text('{"digest": ')
    before[record_file] = record_file.read_bytes()
    with pytest.raises(ConfigError) as refusal:
        train(config, str(workdir), print_fn=quiet)
    assert str(refusal.value).startswith(f"{record_file}: not a record of the weights")
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before
    record_file.write_text(json.dumps(record))

    shutil.rmtree(encoder)
    shutil.copytree(tiny_ctc_run, encoder)
    assert train(config, str(workdir), print_fn=quiet)["steps"] == 4
