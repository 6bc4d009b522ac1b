"""Shared fixtures: where the real data lives, and small sources built to a format's schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tests.processes import FAST_COMPILE_FLAGS  # noqa: E402

# Before JAX starts its backend; subprocesses get the same flags (tests/processes.py).
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()

import jax  # noqa: E402

from aslx.landmarks import layouts  # noqa: E402
from aslx.training import compile_cache  # noqa: E402
from aslx.vocab import KAGGLE_CHARACTERS  # noqa: E402

# Most of the suite's time is XLA compiling the same tiny programs in several tests and
# workers: every compiled program goes to the persistent cache the trainers use (``auto``:
# ``$JAX_COMPILATION_CACHE_DIR``, else ``~/.cache/aslx/jax``), the quick ones included, so a
# program is compiled once per machine. Tests of the cache itself give their runs a folder of
# their own.
compile_cache.enable("auto")
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: The files that take minutes (subprocess runs, many short trainings), longest first. ``make
#: test`` hands whole files to its workers in collection order, so these start first instead of
#: ending the suite alone.
SLOWEST_FILES = (
    "test_multiprocess_finetune.py",
    "test_multiprocess.py",
    "test_finetune.py",
    "test_paths.py",
    "test_pretrain.py",
    "test_integrity.py",  # trainings resumed, rerun and refused
    "test_faults.py",  # subprocesses on full, read-only and size-limited storage
    "test_aot.py",  # compiles for a TPU slice
    "test_benchmarks_real_data.py",  # smoke runs of the benchmarks that train on real landmarks
    "test_benchmarks.py",  # a smoke run of every other benchmark script
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a clear message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real landmark data not found at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


def random_clip(rng: np.random.Generator, frames: int, *, left=True, right=True) -> np.ndarray:
    """A ``[frames, 543, 3]`` clip of random coordinates; hands present as asked, some frames
    of each present hand missing."""
    points = rng.uniform(0.2, 0.8, size=(frames, layouts.NUM_LANDMARKS, 3)).astype(np.float32)
    for group, present in (("left_hand", left), ("right_hand", right)):
        hand = layouts.group_slice(group)
        if not present:
            points[:, hand] = np.nan
        else:
            points[rng.random(frames) < 0.2, hand] = np.nan
    return points


def write_wide_parquet(path: Path, sequences: dict[int, np.ndarray], drop: tuple[str, ...] = ()):
    """Writes sequences in the Kaggle asl-fingerspelling wide layout, built here with pandas
    alone (independent of aslx's writer): index ``sequence_id``, ``frame``, then the x, y, z
    columns of face, left hand, pose, right hand."""
    frames = []
    for sequence_id, points in sequences.items():
        n = len(points)
        columns = {"frame": np.arange(n, dtype=np.int16)}
        for axis_index, axis in enumerate("xyz"):
            for group, size in layouts.GROUPS:
                start = layouts.OFFSETS[group]
                for i in range(size):
                    columns[f"{axis}_{group}_{i}"] = points[:, start + i, axis_index]
        table = pd.DataFrame(columns, index=pd.Index([sequence_id] * n, name="sequence_id"))
        frames.append(table.drop(columns=list(drop)))
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_parquet(path)


@pytest.fixture
def fingerspelling_source(tmp_path: Path):
    """A small Kaggle asl-fingerspelling folder with good clips and one of every bad case.

    Returns (folder, {sequence_id: (phrase, points)} of the good clips, bad sequence ids).
    """
    rng = np.random.default_rng(0)
    good = {
        101: ("hello world", random_clip(rng, 40)),
        102: ("aab", random_clip(rng, 4, left=False)),  # 3 chars + 1 repeat = exactly 4 frames
        103: ("3 main st", random_clip(rng, 25, right=False)),
        201: ("zoo", random_clip(rng, 12)),
    }
    bad = {
        104: ("no hands", random_clip(rng, 20, left=False, right=False)),
        105: ("abcdefghijkl", random_clip(rng, 11)),  # 12 characters in 11 frames
        106: ("aab", random_clip(rng, 3)),  # needs 4 frames with the repeat
        107: ("Capital", random_clip(rng, 30)),  # 'C' is not a Kaggle character
        202: ("bad columns", random_clip(rng, 10)),
    }
    src = tmp_path / "kaggle_fs"
    write_wide_parquet(
        src / "train_landmarks/1.parquet",
        {k: good[k][1] if k in good else bad[k][1] for k in (101, 102, 103, 104, 105, 106, 107)},
    )
    write_wide_parquet(src / "train_landmarks/2.parquet", {201: good[201][1]})
    write_wide_parquet(src / "train_landmarks/3.parquet", {202: bad[202][1]}, drop=("z_pose_3",))
    rows = [("train_landmarks/1.parquet", 1, k, 7, (good | bad)[k][0]) for k in range(101, 108)]
    rows += [("train_landmarks/1.parquet", 1, 108, 7, "listed but absent")]
    rows += [("train_landmarks/2.parquet", 2, 201, 8, good[201][0])]
    rows += [("train_landmarks/3.parquet", 3, 202, 9, bad[202][0])]
    rows += [("train_landmarks/404.parquet", 404, 401, 9, "missing file")]
    pd.DataFrame(
        rows, columns=["path", "file_id", "sequence_id", "participant_id", "phrase"]
    ).to_csv(src / "train.csv", index=False)
    with open(src / "character_to_prediction_index.json", "w") as f:
        json.dump({c: i for i, c in enumerate(KAGGLE_CHARACTERS)}, f)
    return src, good, sorted(bad) + [108, 401]


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory) -> Path:
    """48 synthetic phrases of 4 signers, ingested in-process into 2 shards per split
    (train 36, val 12): a record set for short training runs."""
    from aslx import synthetic

    root = tmp_path_factory.mktemp("synthetic_records")
    synthetic.record_set(root, num_phrases=48, num_signers=4, val_fraction=0.25, num_shards=2)
    return root / "records"


def tiny_ctc_config(records: Path):
    """A 4-step CTC finetuning configuration on ``records``: one 32-wide block, 48 frames,
    batch 8, no augmentation (not what its users test; it saves compiling the recipe)."""
    from aslx.training import config as config_lib

    c = config_lib.finetune()
    c.data.dir = str(records)
    c.data.max_frames = 48
    c.model.num_layers = 1
    c.model.dim = 32
    c.batch_size = 8
    c.total_steps = 4
    c.warmup_steps = 1
    c.log_every = 1
    c.eval_every = 1000
    c.augment.enabled = False
    return c


@pytest.fixture(scope="session")
def tiny_ctc_run(synthetic_records, tmp_path_factory) -> Path:
    """The workdir of a finished :func:`tiny_ctc_config` run on the synthetic record set, with
    raw and EMA weights that differ. Shared by every test that needs a trained model: read it,
    never write into it."""
    from finetune.train import train

    workdir = tmp_path_factory.mktemp("tiny_ctc_run") / "work"
    train(tiny_ctc_config(synthetic_records), str(workdir), print_fn=lambda *a, **k: None)
    return workdir


#: The classes of ``mp_holistic_35signs`` (its sorted folder names): the 26 letters and 9 words.
SIGN_CLASSES = tuple(
    sorted(
        [*"abcdefghijklmnopqrstuvwxyz", "hello", "my", "name", "is", "nice", "you", "bye"]
        + ["thank you", "to meet"]
    )
)


def write_signs_archive(folder: Path) -> Path:
    """Writes ``folder/landmarks_f16.npz`` in the layout of ``mp_holistic_35signs`` (``X
    [clips, 30, 543, 3]`` float16, zeros where missing; ``y``, ``classes``, ``seq_id``): the
    35 classes, each with clip numbers 5 and 15 (train), 42 (val) and 48 (test), the clips a
    benchmark's ``--smoke`` run reads. Random points, each clip signed with one hand: it
    exercises the scripts, not learning. Returns ``folder``."""
    rng = np.random.default_rng(0)
    numbers = (5, 15, 42, 48)
    y = np.repeat(np.arange(len(SIGN_CLASSES), dtype=np.int16), len(numbers))
    seq_id = np.tile(np.array(numbers, np.int16), len(SIGN_CLASSES))
    # The packed archive's convention: a missing point is all zeros, not NaN.
    X = np.nan_to_num(np.stack([random_clip(rng, 30) for _ in range(len(y))]), nan=0.0)
    for i, hand in enumerate(rng.integers(0, 2, len(y))):
        X[i, :, layouts.group_slice(("left_hand", "right_hand")[hand])] = 0.0
    np.savez(
        folder / "landmarks_f16.npz",
        X=X.astype(np.float16),
        y=y,
        classes=np.array(SIGN_CLASSES),
        seq_id=seq_id,
    )
    return folder


@pytest.fixture(scope="session")
def signs_archive(tmp_path_factory) -> Path:
    """A folder with a small archive in the layout of ``mp_holistic_35signs``
    (:func:`write_signs_archive`), shared by every benchmark smoke test: read it, never write
    into it."""
    return write_signs_archive(tmp_path_factory.mktemp("signs_archive"))
