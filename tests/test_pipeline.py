"""Input pipeline: batch contents against NumPy, determinism, per-process slices, resume."""

from __future__ import annotations

import numpy as np
import pytest

from aslx.formats import kaggle_fingerspelling
from aslx.input import fit, pipeline
from aslx.landmarks import presets
from aslx.records import writer
from aslx.records.metadata import NoSuchSplit, RecordSet
from aslx.vocab import KAGGLE_CHARACTERS, LABEL_PAD
from tests.conftest import random_clip

NUM_CLIPS = 48


@pytest.fixture(scope="module")
def source_and_records(tmp_path_factory):
    """48 phrases of 5–60 frames (some left-handed, some with both hands), ingested into 4
    shards; returns (clips by clip id, record folder)."""
    rng = np.random.default_rng(0)
    phrases = []
    for i in range(NUM_CLIPS):
        frames = int(rng.integers(5, 61))
        text = "".join(rng.choice(list("abcdefgh "), size=int(rng.integers(1, 5))))
        text = text.strip() or "a"
        points = random_clip(rng, frames, left=bool(i % 3), right=bool(i % 3 != 1))
        phrases.append((1000 + i, i % 4, text, points))
    root = tmp_path_factory.mktemp("pipeline")
    kaggle_fingerspelling.write(
        root / "raw",
        phrases,
        phrases_per_file=16,
        vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)},
    )
    writer.ingest(
        "kaggle-fingerspelling", root / "raw", root / "records", num_shards=4, progress=False
    )
    clips = {}  # the writer names each file after its first sequence id
    for file_start in range(0, NUM_CLIPS, 16):
        for sid, _, text, points in phrases[file_start : file_start + 16]:
            clips[f"{phrases[file_start][0]}/{sid}"] = (text, points)
    return clips, root / "records"


def config(**kwargs) -> pipeline.InputConfig:
    base = dict(batch_size=4, max_frames=32, preset="kaggle75", shuffle_buffer=16, seed=3)
    return pipeline.InputConfig(**(base | kwargs))


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def one_process(**kwargs):
    return dict(process_index=0, process_count=1) | kwargs


def assert_batches_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def expected_example(points: np.ndarray, preset: str, max_frames: int, long_clips="resample"):
    """The NumPy reference of one example: select, fit into T, mask, pad."""
    stored = points.astype(np.float16).astype(np.float32)
    selected = presets.select(stored, presets.get(preset))
    frames = len(selected)
    if frames > max_frames:
        if long_clips == "resample":
            selected = selected[np.arange(max_frames) * frames // max_frames]
        else:
            selected = selected[:max_frames]
    mask = ~np.isnan(selected).any(-1)
    out = np.zeros((max_frames, *selected.shape[1:]), np.float32)
    out[: len(selected)] = np.where(mask[..., None], selected, 0)
    full_mask = np.zeros((max_frames, selected.shape[1]), bool)
    full_mask[: len(selected)] = mask
    return out, full_mask, len(selected)


@pytest.mark.parametrize("preset", ["kaggle75", "hands_pose", "full543"])
@pytest.mark.parametrize("long_clips", ["resample", "truncate"])
def test_batches_match_numpy_reference(source_and_records, preset, long_clips):
    """Every example equals the NumPy reference: selection (dominant hand, mirroring), long
    clips fitted into T, missing points 0 with mask 0, padding masked, labels padded with -1."""
    clips, records = source_and_records
    vocab = RecordSet(records).vocab
    cfg = config(preset=preset, long_clips=long_clips)
    seen = 0
    for batch in pipeline.eval_batches(records, "train", cfg, **one_process()):
        for i in np.flatnonzero(batch["example_mask"]):
            text, points = clips[batch["clip_id"][i].decode()]
            landmarks, mask, frames = expected_example(points, preset, 32, long_clips)
            np.testing.assert_array_equal(batch["landmarks"][i], landmarks)
            np.testing.assert_array_equal(batch["landmark_mask"][i], mask)
            assert batch["num_frames"][i] == frames == batch["frame_mask"][i].sum()
            assert batch["frame_mask"][i][:frames].all()
            labels = batch["labels"][i]
            assert vocab.decode(labels[batch["label_mask"][i]]) == text
            assert (labels[~batch["label_mask"][i]] == LABEL_PAD).all()
            seen += 1
    assert seen == NUM_CLIPS


def test_left_dominant_clip_is_mirrored(source_and_records):
    """A clip with only a left hand comes out with that hand in the hand slots, x mirrored."""
    clips, records = source_and_records
    for batch in pipeline.eval_batches(records, "train", config(), **one_process()):
        for i in np.flatnonzero(batch["example_mask"]):
            _, points = clips[batch["clip_id"][i].decode()]
            if np.isnan(points[:, 522:543]).all():
                left = points[0, 468].astype(np.float16).astype(np.float32)
                if not np.isnan(left).any():
                    assert batch["landmarks"][i, 0, 0, 0] == pytest.approx(1 - left[0])
                    return
    pytest.fail("fixture has no left-only clip with a wrist in frame 0")


def test_same_seed_same_stream_other_seed_other_stream(source_and_records):
    _, records = source_and_records
    a = take(pipeline.train_batches(records, "train", config(), **one_process()), 20)
    b = take(pipeline.train_batches(records, "train", config(), **one_process()), 20)
    c = take(pipeline.train_batches(records, "train", config(seed=4), **one_process()), 20)
    for x, y in zip(a, b):
        assert_batches_equal(x, y)
    assert any(not np.array_equal(x["clip_id"], y["clip_id"]) for x, y in zip(a, c))


def test_each_epoch_is_a_permutation(source_and_records):
    """One epoch (48 // 4 = 12 batches) holds every clip once, and epochs differ in order."""
    _, records = source_and_records
    batches = take(pipeline.train_batches(records, "train", config(), **one_process()), 24)
    first = np.concatenate([b["clip_id"] for b in batches[:12]])
    second = np.concatenate([b["clip_id"] for b in batches[12:]])
    assert len(set(first)) == len(set(second)) == NUM_CLIPS
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("start_step", [1, 7, 12, 30])
def test_resume_equals_uninterrupted(source_and_records, start_step):
    """Restarting at step k (within an epoch, at an epoch boundary, two epochs on) yields
    exactly the batches k, k+1, … of an uninterrupted run."""
    _, records = source_and_records
    full = take(pipeline.train_batches(records, "train", config(), **one_process()), start_step + 5)
    resumed = take(
        pipeline.train_batches(records, "train", config(), start_step=start_step, **one_process()),
        5,
    )
    for x, y in zip(full[start_step:], resumed):
        assert_batches_equal(x, y)


def test_two_processes_read_disjoint_slices_that_cover_the_data(source_and_records):
    """Training: each process reads its own shard files (disjoint clip sets, together all
    clips). Evaluation: disjoint records, together all, the same number of batches each."""
    _, records = source_and_records
    cfg = config(batch_size=2)
    per_process = []
    for index in range(2):
        steps = pipeline.batches_per_epoch(RecordSet(records), "train", 2, index, 2)
        batches = take(
            pipeline.train_batches(records, "train", cfg, process_index=index, process_count=2),
            steps,
        )
        per_process.append(set(np.concatenate([b["clip_id"] for b in batches])))
    assert not per_process[0] & per_process[1]
    assert len(per_process[0] | per_process[1]) == NUM_CLIPS
    cfg = config(batch_size=5)
    evals = [
        list(pipeline.eval_batches(records, "train", cfg, process_index=i, process_count=2))
        for i in range(2)
    ]
    shards = RecordSet(records).shards("train")
    largest = max(sum(n for _, n in shards[i::2]) for i in range(2))  # whole files per process
    assert len(evals[0]) == len(evals[1]) == -(-largest // 5)
    ids = [{c for b in e for c, m in zip(b["clip_id"], b["example_mask"]) if m} for e in evals]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == NUM_CLIPS


def test_eval_padding_examples_are_fully_masked(source_and_records):
    _, records = source_and_records
    batches = list(pipeline.eval_batches(records, "train", config(batch_size=10), **one_process()))
    last = batches[-1]
    assert last["example_mask"].sum() == NUM_CLIPS % 10
    pad = ~last["example_mask"]
    assert not last["frame_mask"][pad].any() and not last["landmark_mask"][pad].any()
    assert (last["labels"][pad] == LABEL_PAD).all() and not last["label_mask"][pad].any()


def test_clear_errors(source_and_records, tmp_path):
    """Too few shards for the processes, labels longer than max_label_length, a preset the
    records cannot give, a folder that is not a record set: each a clear error."""
    _, records = source_and_records
    with pytest.raises(ValueError, match="--shards 8"):
        pipeline.train_batches(records, "train", config(), process_index=0, process_count=8)
    with pytest.raises(ValueError, match="labels are never cut"):
        pipeline.train_batches(records, "train", config(max_label_length=1), **one_process())
    with pytest.raises(ValueError, match="one batch"):
        pipeline.train_batches(records, "train", config(batch_size=100), **one_process())
    with pytest.raises(FileNotFoundError, match="aslx.ingest"):
        pipeline.train_batches(tmp_path, "train", config(), **one_process())
    with pytest.raises(KeyError, match="no split 'val'"):
        list(pipeline.eval_batches(records, "val", config(), **one_process()))
    with pytest.raises(ValueError, match="long_clips"):
        config(long_clips="crop")


def test_records_of_a_preset_only_give_that_preset(tmp_path, source_and_records):
    clips, _ = source_and_records
    raw = tmp_path / "raw"
    rng = np.random.default_rng(5)
    kaggle_fingerspelling.write(
        raw,
        [(i, 0, "ab", random_clip(rng, 10)) for i in range(8)],
        vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)},
    )
    writer.ingest(
        "kaggle-fingerspelling",
        raw,
        tmp_path / "k75",
        preset="kaggle75",
        num_shards=2,
        progress=False,
    )
    batch = next(
        pipeline.train_batches(tmp_path / "k75", "train", config(preset=None), **one_process())
    )
    assert batch["landmarks"].shape == (4, 32, 75, 3)
    with pytest.raises(ValueError, match="re-ingest with --preset full543"):
        pipeline.train_batches(
            tmp_path / "k75", "train", config(preset="hands_pose"), **one_process()
        )


# --- length buckets -----------------------------------------------------------------------------


@pytest.mark.parametrize("start_step", [1, 5, 12, 31])
def test_sorted_windows_resume_exactly(source_and_records, start_step):
    """Sorted windows of 3 batches: restarting anywhere (inside a window too) yields exactly the
    uninterrupted stream's batches."""
    _, records = source_and_records
    sorted_config = config(sort_window=3)
    full = take(
        pipeline.train_batches(records, "train", sorted_config, **one_process()), start_step + 4
    )
    resumed = take(
        pipeline.train_batches(
            records, "train", sorted_config, start_step=start_step, **one_process()
        ),
        4,
    )
    for x, y in zip(full[start_step:], resumed):
        assert_batches_equal(x, y)


def test_sorted_windows_regroup_the_same_records_by_length(source_and_records):
    _, records = source_and_records
    window = 3
    plain = take(pipeline.train_batches(records, "train", config(), **one_process()), 4 * window)
    grouped = take(
        pipeline.train_batches(records, "train", config(sort_window=window), **one_process()),
        4 * window,
    )
    padded, bucketed = 0, 0
    for w in range(4):
        steps = slice(w * window, (w + 1) * window)
        ids = [sorted(np.concatenate([b["clip_id"] for b in s[steps]])) for s in (plain, grouped)]
        assert ids[0] == ids[1]  # each window holds the records its steps held before
        lengths = sorted(int(b["num_frames"].max()) for b in grouped[steps])
        in_order = np.sort(np.concatenate([b["num_frames"] for b in grouped[steps]]))
        # Sorted: each batch is one slice of the window's length order.
        assert lengths == [int(in_order[(i + 1) * 4 - 1]) for i in range(window)]
        padded += sum(int(b["num_frames"].max()) for b in plain[steps])
        bucketed += sum(lengths)
    assert bucketed < padded


def test_bucket_bounds_lengths_and_trimming():
    frames = {"mean": 81.2, "p95": 200}
    assert fit.default_buckets(frames, 384) == (96, 144, 208, 384)
    assert fit.default_buckets(frames, 64) == (64,)
    auto = fit.default_buckets(frames, 384)
    assert fit.parse_buckets("auto", 384, auto) == (96, 144, 208, 384)
    assert fit.parse_buckets("none", 384, auto) == (384,)
    assert fit.parse_buckets("64, 128", 384, auto) == (64, 128, 384)
    assert fit.parse_buckets("64,384", 384, auto) == (64, 384)
    for bad in ("128,64", "0,64", "64,500", "sixty"):
        with pytest.raises(ValueError, match="buckets"):
            fit.parse_buckets(bad, 384, auto)
    bounds = (64, 128, 384)
    assert [fit.bucket_length(n, bounds) for n in (1, 64, 65, 384)] == [64, 64, 128, 384]
    with pytest.raises(ValueError, match="exceeds"):
        fit.bucket_length(385, bounds)
    batch = {
        "landmarks": np.zeros((2, 8, 3, 3)),
        "frame_mask": np.zeros((2, 8), bool),
        "labels": np.zeros((2, 8), np.int32),
    }
    trimmed = pipeline.trim_frames(batch, 5)
    assert trimmed["landmarks"].shape == (2, 5, 3, 3) and trimmed["frame_mask"].shape == (2, 5)
    assert trimmed["labels"].shape == (2, 8)  # labels have no frame axis


def test_the_split_check_names_the_set_its_splits_and_the_fix(source_and_records):
    """One split check for every caller (trainers, align, reports, the pipeline)."""
    _, records = source_and_records
    record_set = RecordSet(records)
    assert record_set.require_split("train") == record_set.splits["train"]
    with pytest.raises(NoSuchSplit) as error:
        record_set.require_split("test", "pass --split")
    message = str(error.value)  # no quotes around it, unlike a plain KeyError
    assert message == (
        f"{records}: no split 'test' (it has {sorted(record_set.splits)}); pass --split"
    )
    assert isinstance(error.value, KeyError)


def test_eval_with_more_processes_than_files_pads_instead_of_stalling(source_and_records):
    """4 files, 6 processes: each reads only its own file, processes 4 and 5 have none and
    yield padding only, and every process yields the same number of batches."""
    _, records = source_and_records
    shards = RecordSet(records).shards("train")
    assert len(shards) == 4
    cfg = config(batch_size=4)
    evals = [
        list(pipeline.eval_batches(records, "train", cfg, process_index=i, process_count=6))
        for i in range(6)
    ]
    assert len({len(e) for e in evals}) == 1
    assert len(evals[0]) == -(-max(n for _, n in shards) // 4)
    real = [[int(b["example_mask"].sum()) for b in e] for e in evals]
    assert [sum(r) for r in real] == [n for _, n in shards] + [0, 0]
    for empty in evals[4:]:
        assert all(not b["frame_mask"].any() and b["landmarks"].shape[0] == 4 for b in empty)
    ids = [{c for b in e for c, m in zip(b["clip_id"], b["example_mask"]) if m} for e in evals]
    assert sum(map(len, ids)) == len(set().union(*ids)) == NUM_CLIPS
