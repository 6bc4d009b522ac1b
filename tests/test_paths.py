"""Every path a program takes goes through one path type (:func:`aslx.files.path`, etils'
``epath``, which reaches buckets through ``tf.io.gfile``).

The end-to-end run names every path as a ``file://`` URI: ingest's source and output, the
workdir and records of a finetuning run, both exports, an alignments file, predict's model and
inputs; the exported weights, the workdir and the alignments file are then read back as a
run's ``init_from``, ``teacher`` and ``data.alignments`` are. A bare ``pathlib.Path``
or ``open`` on such a string would read ``file:/…`` relative to the working directory, so the
programs run from an empty folder that must stay empty, and every output must appear where
the URI points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aslx import files, synthetic
from aslx.input import pipeline
from aslx.run import source as source_lib
from aslx.training.metrics_log import read_metrics
from tests.processes import ROOT, TIMEOUT, environment, succeeded

TINY = (
    "--config.model.num_layers=1",
    "--config.model.dim=32",
    "--config.data.max_frames=32",
    "--config.data.buckets=none",
    "--config.batch_size=8",
    "--config.total_steps=3",
    "--config.warmup_steps=1",
    "--config.log_every=1",
    "--config.eval_every=3",
    "--config.checkpoint_every=3",
    "--config.compilation_cache=none",
    "--config.augment.enabled=False",  # paths are what is tested; it saves a compilation
)


def uri(path) -> str:
    return "file://" + os.fspath(path)


def test_path_accepts_local_paths_and_file_uris(tmp_path):
    assert os.fspath(files.path(uri(tmp_path / "a"))) == os.fspath(tmp_path / "a")
    assert os.fspath(files.path("relative/x")) == "relative/x"
    assert os.fspath(files.absolute("relative/x")) == os.path.abspath("relative/x")
    assert os.fspath(files.path("gs://bucket/records")) == "gs://bucket/records"
    assert files.is_local(uri(tmp_path)) and not files.is_local("gs://bucket/x")
    assert os.fspath(files.absolute("gs://bucket/x")) == "gs://bucket/x"
    written = files.write_json(uri(tmp_path / "deep" / "x.json"), {"a": 1})
    assert json.loads((tmp_path / "deep" / "x.json").read_text()) == {"a": 1}
    assert os.fspath(written) == os.fspath(tmp_path / "deep" / "x.json")
    with files.local_copy(uri(tmp_path / "deep" / "x.json")) as local:
        assert local == tmp_path / "deep" / "x.json"


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paths") / "raw"
    synthetic.generate(folder, num_phrases=24, num_signers=4, seed=3)
    return folder


def test_ingest_finetune_export_align_predict_with_file_uris(raw, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = environment() | {"PYTHONPATH": os.fspath(ROOT)}
    records, workdir = tmp_path / "records", tmp_path / "workdir"
    weights, exported = tmp_path / "export" / "tiny.safetensors", tmp_path / "export" / "tflite"
    aligned = tmp_path / "align" / "train.npz"

    def program(*args: str) -> subprocess.CompletedProcess:
        return succeeded(
            subprocess.run(
                [sys.executable, "-m", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        )

    def finetune(where, *extra: str) -> None:
        program(
            "finetune.main",
            "--config",
            os.fspath(ROOT / "configs" / "finetune_tiny.py"),
            f"--workdir={uri(where)}",
            f"--config.data.dir={uri(records)}",
            *TINY,
            *extra,
        )

    # fmt: off
    program("aslx.ingest", "--format", "kaggle-fingerspelling", "--src", uri(raw),
            "--out", uri(records), "--val-fraction", "0.25", "--shards", "2", "--no-progress")
    finetune(workdir)
    program("aslx.export", "--workdir", uri(workdir), "--format", "weights", "--out", uri(weights))
    program("aslx.export", "--workdir", uri(workdir), "--format", "tflite", "--out", uri(exported))
    program("aslx.align", "--workdir", uri(workdir), "--data", uri(records), "--out", uri(aligned),
            "--no-progress")
    parquet = sorted((raw / "train_landmarks").glob("*.parquet"))[0]
    from_export = program("aslx.predict", "--model", uri(exported), "--limit", "2", uri(parquet))
    from_workdir = program("aslx.predict", "--model", uri(workdir), "--limit", "2", uri(parquet))
    # fmt: on

    assert list(cwd.iterdir()) == []  # nothing read or written as "file:/…" relative paths
    assert (records / "metadata.json").is_file()
    assert {p.name for p in records.glob("*.tfrecord")} >= {"train-00000-of-00002.tfrecord"}
    assert (workdir / "results.json").is_file() and (workdir / "model.json").is_file()
    assert [r["step"] for r in read_metrics(workdir) if r["split"] == "train"] == [1, 2, 3]
    assert (exported / "model.tflite").is_file() and (exported / "inference_args.json").is_file()
    # what a run's config.init_from, teacher.weights and data.alignments are read with
    assert source_lib.read_source(uri(weights)).step == 3
    assert source_lib.read_source(uri(workdir)).step == 3
    meta = pipeline.check_alignments(uri(aligned), uri(records), "train")
    assert meta["split"] == "train" and meta["records"] == os.fspath(records)
    lines = [line for line in from_export.stdout.splitlines() if line.strip()]
    assert lines and lines == [line for line in from_workdir.stdout.splitlines() if line.strip()]
