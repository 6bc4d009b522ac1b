"""``python -m aslx.align`` on a tiny CTC finetuning run, and the alignments it writes flowing
through the input pipeline and the finetuning config into batches CutMix can use."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from aslx import align as align_cli
from aslx import ctc_frames
from aslx.augment import cutmix as cutmix_lib
from aslx.decoding import viterbi
from aslx.input import batch as batch_lib
from aslx.input import pipeline
from aslx.landmarks import presets
from aslx.model import inference
from aslx.records import alignments as alignments_file
from aslx.records.metadata import RecordSet
from aslx.run import card as card_lib
from aslx.run import source as source_lib
from aslx.training import config as config_lib
from aslx.training import loop
from tests.test_align import assert_valid

MAX_FRAMES = 48  # the synthetic clips have 29–163 frames: many are fitted


@pytest.fixture(scope="module")
def ctc_run(tiny_ctc_run):
    """A 4-step CTC finetuning run (one 32-wide block, 48 frames) on the synthetic record set."""
    return tiny_ctc_run


@pytest.fixture(scope="module")
def aligned(ctc_run, synthetic_records, tmp_path_factory):
    """``(file, printed summary)`` of ``python -m aslx.align`` on the train split."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("alignments") / "train.npz"
    printed = io.StringIO()
    args = ["--workdir", str(ctc_run), "--data", str(synthetic_records), "--out", str(out)]
    with contextlib.redirect_stdout(printed):
        code = align_cli.main([*args, "--batch-size", "5", "--no-progress"])
    assert code == 0
    return out, printed.getvalue()


def eval_examples(records, split: str, max_frames: int):
    """``{clip_id: (labels, fitted frames, record frames)}`` of every clip of ``split``."""
    config = pipeline.InputConfig(batch_size=8, max_frames=max_frames, preset="kaggle75")
    out = {}
    for batch in pipeline.eval_batches(records, split, config, process_index=0, process_count=1):
        for i in np.flatnonzero(batch["example_mask"]):
            labels = batch["labels"][i][batch["label_mask"][i]].tolist()
            out[batch["clip_id"][i].decode()] = (
                labels,
                int(batch["num_frames"][i]),
                int(batch["record_frames"][i]),
            )
    return out


def kept_frames(record_frames: int, max_frames: int) -> np.ndarray:
    """The pipeline's ``resample`` gather."""
    if record_frames <= max_frames:
        return np.arange(record_frames)
    return np.arange(max_frames) * record_frames // max_frames


def test_every_clip_gets_a_valid_alignment(aligned, synthetic_records):
    out, printed = aligned
    alignments, meta = alignments_file.read_file(out)
    examples = eval_examples(synthetic_records, "train", MAX_FRAMES)
    assert sorted(alignments) == sorted(examples) and len(examples) == 36
    assert meta["split"] == "train" and meta["max_frames"] == MAX_FRAMES
    assert meta["clips"] == 36 and meta["frame_axis"] == "record"
    assert meta["records_sha256"] == alignments_file.records_fingerprint(synthetic_records)
    assert any(stored > MAX_FRAMES for _, _, stored in examples.values())  # some were fitted
    for clip, (labels, _, stored) in examples.items():
        stored_alignment = alignments[clip]
        assert stored_alignment.shape == (stored,) and stored_alignment.dtype == np.int32
        kept = ctc_frames.fitting_prefix(labels, min(stored, MAX_FRAMES))
        assert meta["partial"].get(clip, [len(labels)])[0] == kept
        fitted = stored_alignment[kept_frames(stored, MAX_FRAMES)]
        assert_valid(fitted, labels[:kept])  # every (kept) label position, monotone, -1 else
        assert_valid(stored_alignment, labels[:kept])  # still so on the stored frames
    assert printed.startswith("aligned 36 clips of split 'train'")
    assert f"alignments: {out}" in printed


def test_alignments_are_the_models_best_paths(aligned, ctc_run, synthetic_records):
    """Each fitted alignment is as probable as the NumPy Viterbi path under the model's own
    log-probabilities (the CLI runs the JAX version in float32)."""
    alignments, _ = alignments_file.read_file(aligned[0])
    trained = source_lib.load_trained(ctc_run)
    preset = presets.get(trained.card.preset)
    forward = inference.make_forward(trained.graphdef, preset, "ctc", trained.card.normalization)
    blank_id = RecordSet(synthetic_records).vocab.blank_id
    config = pipeline.InputConfig(batch_size=8, max_frames=MAX_FRAMES, preset=preset.name)
    checked = 0
    batches = pipeline.eval_batches(
        synthetic_records, "train", config, process_index=0, process_count=1
    )
    for batch in batches:
        log_probs = np.asarray(forward(trained.params, batch_lib.device_batch(batch))["log_probs"])
        for i in np.flatnonzero(batch["example_mask"]):
            n, stored = int(batch["num_frames"][i]), int(batch["record_frames"][i])
            labels = batch["labels"][i][batch["label_mask"][i]].tolist()
            labels = labels[: ctc_frames.fitting_prefix(labels, n)]
            fitted = alignments[batch["clip_id"][i].decode()][kept_frames(stored, MAX_FRAMES)]
            best = viterbi.viterbi_align(log_probs[i, :n], labels, blank_id)
            want = viterbi.score(log_probs[i, :n], best, labels, blank_id)
            got = viterbi.score(log_probs[i, :n], fitted, labels, blank_id)
            assert got == pytest.approx(want, abs=1e-3)
            checked += 1
    assert checked == 36


@pytest.mark.parametrize(
    ("max_frames", "long_clips"), [(MAX_FRAMES, "resample"), (24, "resample"), (40, "truncate")]
)
def test_training_batches_carry_the_fitted_alignment(
    aligned, synthetic_records, max_frames, long_clips
):
    """Any max_frames and long-clip policy: each example's alignment is its stored one under the
    landmarks' own gather, -1 on padding; with the aligning model's max_frames it is the
    alignment the model made."""
    alignments, _ = alignments_file.read_file(aligned[0])
    config = pipeline.InputConfig(
        batch_size=4,
        max_frames=max_frames,
        preset="kaggle75",
        long_clips=long_clips,
        shuffle_buffer=8,
        alignments=str(aligned[0]),
    )
    stream = pipeline.train_batches(
        synthetic_records, "train", config, process_index=0, process_count=1
    )
    seen = set()
    for _ in range(9):  # one epoch: 36 clips
        batch = next(stream)
        assert batch["alignment"].shape == (4, max_frames)
        assert batch["alignment"].dtype == np.int32
        for i in range(4):
            clip = batch["clip_id"][i].decode()
            stored = alignments[clip]
            n = int(batch["num_frames"][i])
            assert len(stored) == batch["record_frames"][i]
            if long_clips == "truncate":
                want = stored[:max_frames]
            else:
                want = stored[kept_frames(len(stored), max_frames)]
            np.testing.assert_array_equal(batch["alignment"][i, :n], want)
            assert (batch["alignment"][i, n:] == -1).all()
            shown = want[want >= 0]
            assert (np.diff(shown) >= 0).all()
            assert shown.size == 0 or shown.max() < batch["label_mask"][i].sum()
            seen.add(clip)
    assert len(seen) == 36


def test_cutmix_splices_pipeline_batches_consistently(aligned, synthetic_records):
    """The recipe's CutMix on a real batch: every frame still shows a label of its (new) label
    sequence, in order."""
    config = pipeline.InputConfig(
        batch_size=8, max_frames=MAX_FRAMES, preset="kaggle75", alignments=str(aligned[0])
    )
    batch = batch_lib.device_batch(
        next(
            pipeline.train_batches(
                synthetic_records, "train", config, process_index=0, process_count=1
            )
        )
    )
    out = jax.device_get(
        jax.jit(cutmix_lib.cutmix, static_argnums=2)(jax.random.key(0), batch, 1.0)
    )
    assert not np.array_equal(out["labels"], batch["labels"])  # some splice was made
    for i in range(8):
        n, m = int(out["frame_mask"][i].sum()), int(out["label_mask"][i].sum())
        a = out["alignment"][i]
        assert (a[n:] == -1).all()
        shown = a[:n][a[:n] >= 0]
        assert (np.diff(shown) >= 0).all() and (shown < m).all()


def test_the_finetuning_config_wires_the_file(aligned, synthetic_records, tmp_path):
    """data.alignments reaches the training stream (and its arrays go to the devices); a file
    of another split or record set fails before anything is built, naming the field."""
    config = config_lib.finetune()
    config.data.dir = str(synthetic_records)
    config.data.max_frames = MAX_FRAMES
    config.batch_size = 8
    config.data.alignments = str(aligned[0])
    records = loop.open_records(config, ("train",))
    input_config = config_lib.input_config(config, presets.KAGGLE75)
    assert input_config.alignments == str(aligned[0])
    batch = next(loop.global_train_batches(config, records, input_config, 0))
    assert batch["alignment"].shape == (8, MAX_FRAMES)

    config.data.train_split = "val"
    with pytest.raises(config_lib.ConfigError, match=r"config.data.alignments: .*--split val"):
        config_lib.input_config(config, presets.KAGGLE75)
    config.data.train_split = "train"
    config.data.alignments = str(tmp_path / "missing.npz")
    with pytest.raises(config_lib.ConfigError, match="config.data.alignments: .*no alignments"):
        config_lib.input_config(config, presets.KAGGLE75)
    config.data.alignments = ""
    plain = config_lib.input_config(config, presets.KAGGLE75)
    assert plain.alignments == ""
    assert "alignment" not in next(loop.global_train_batches(config, records, plain, 0))


def test_a_file_that_lacks_a_clip_stops_training_naming_it(aligned, synthetic_records, tmp_path):
    alignments, meta = alignments_file.read_file(aligned[0])
    meta = {k: v for k, v in meta.items() if k != "version"}
    dropped = sorted(alignments)[3]
    shorter = tmp_path / "shorter.npz"
    alignments_file.write_file(shorter, {k: v for k, v in alignments.items() if k != dropped}, meta)
    wrong = tmp_path / "wrong.npz"
    alignments_file.write_file(wrong, alignments | {dropped: alignments[dropped][:-1]}, meta)
    for path, why in ((shorter, "no entry"), (wrong, "does not fit")):
        config = pipeline.InputConfig(
            batch_size=4, max_frames=MAX_FRAMES, preset="kaggle75", alignments=str(path)
        )
        stream = pipeline.train_batches(
            synthetic_records, "train", config, process_index=0, process_count=1
        )
        with pytest.raises(ValueError, match=f"clip '{dropped}': .*{why}"):
            for _ in range(9):
                next(stream)
    with pytest.raises(ValueError, match="--split val"):
        pipeline.train_batches(
            synthetic_records,
            "val",
            pipeline.InputConfig(batch_size=4, max_frames=8, alignments=str(aligned[0])),
            process_index=0,
            process_count=1,
        )


def test_bad_commands_fail_with_one_clear_line(ctc_run, synthetic_records, tmp_path, capsys):
    classification = tmp_path / "classes"
    classification.mkdir()
    card = dataclasses.replace(card_lib.read(ctc_run), task="classification")
    card_lib.write(classification, card)
    out = tmp_path / "out.npz"
    cases = {
        "workdir": (tmp_path / "nowhere", synthetic_records, "train", ["nowhere"]),
        "empty workdir": (tmp_path, synthetic_records, "train", ["model.json"]),
        "classification": (classification, synthetic_records, "train", ["classification model"]),
        "data": (ctc_run, tmp_path / "no_records", "train", ["metadata.json", "aslx.ingest"]),
        "split": (ctc_run, synthetic_records, "test", ["no split 'test'"]),
    }
    for case, (workdir, data, split, parts) in cases.items():
        args = ["--workdir", str(workdir), "--data", str(data), "--out", str(out)]
        code = align_cli.main([*args, "--split", split, "--no-progress"])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, case
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, captured.err)
        for part in parts:
            assert part in lines[0], (case, lines[0])
        assert not out.exists(), case
