"""Ingest: record sets from real data, every bad-input case, atomic output, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aslx import ingest as ingest_cli
from aslx.landmarks import presets
from aslx.records import example, metadata, writer


def read_records(folder: Path, split: str, shards: int | None = None) -> list[dict]:
    """Every record of a split (of its first ``shards`` shards), decoded, in shard order."""
    import tensorflow as tf

    records = metadata.RecordSet(folder)
    num_landmarks = records.meta["layout"]["num_landmarks"]
    out = []
    for path, count in records.shards(split)[:shards]:
        rows = [
            {k: v.numpy() for k, v in example.parse(s, num_landmarks).items()}
            for s in tf.data.TFRecordDataset(path)
        ]
        assert len(rows) == count
        out.extend(rows)
    return out


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_silfa_metadata(shared_data, tmp_path):
    """The acceptance command: 558 examples, 24 classes present."""
    out = tmp_path / "silfa"
    code = ingest_cli.main(
        [
            "--format",
            "kaggle-signs",
            "--src",
            str(shared_data / "silfa_alphabet_parquet"),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["num_examples"] == 558 and meta["num_classes"] == 24
    assert meta["splits"] == {"train": 558} and meta["skipped"] == []
    assert meta["vocabulary"]["kind"] == "classes" and len(meta["vocabulary"]["classes"]) == 26


def test_npz_metadata_and_records(shared_data, tmp_path):
    """2,100 examples, 35 classes, the fixed 1,470 / 210 / 420 split; records hold the clip's
    points (float16) with NaN where the recorder wrote zeros."""
    out = tmp_path / "npz"
    src = shared_data / "mp_holistic_35signs/landmarks_f16.npz"
    meta = writer.ingest("npz", src, out, progress=False)
    assert meta["num_examples"] == 2100 and meta["num_classes"] == 35
    assert meta["splits"] == {"train": 1470, "val": 210, "test": 420}
    archive = dict(np.load(src))  # decompress once
    val = read_records(out, "val", shards=2)
    classes = list(archive["classes"])
    for record in val:
        label, number = record["clip_id"].decode().rsplit("/", 1)
        row = np.flatnonzero(
            (archive["y"] == classes.index(label)) & (archive["seq_id"] == int(number))
        )[0]
        assert 42 <= int(number) < 48
        expected = archive["X"][row].astype(np.float32)
        expected[np.all(expected == 0, axis=-1)] = np.nan
        np.testing.assert_array_equal(record["landmarks"], expected)
        assert list(record["label_ids"]) == [classes.index(label)]


def test_mp_data_six_clips(shared_data, tmp_path):
    meta = writer.ingest(
        "mp-data",
        shared_data / "mp_holistic_35signs/raw_sample/MP_Data",
        tmp_path / "mp",
        progress=False,
    )
    assert meta["num_examples"] == 6 and meta["frames"]["min"] == meta["frames"]["max"] == 30


def test_pose_skips_openpose(shared_data, tmp_path):
    pytest.importorskip("pose_format")
    meta = writer.ingest("pose", shared_data / "pose_files", tmp_path / "pose", progress=False)
    assert meta["num_examples"] == 14 and meta["num_classes"] == 4
    assert [
        s["file"].endswith("openpose.pose") or s["file"].endswith("example.pose")
        for s in meta["skipped"]
    ] == [True, True]


def test_every_bad_input_is_skipped_named_and_counted(fingerspelling_source, tmp_path, capsys):
    """Missing file, wrong columns, absent (empty) clip, no hand, unknown character, phrase
    too long for CTC (also through a repeat): each skipped with one line naming it, counted,
    and the good clips written intact."""
    src, good, _ = fingerspelling_source
    out = tmp_path / "records"
    code = ingest_cli.main(
        [
            "--format",
            "kaggle-fingerspelling",
            "--src",
            str(src),
            "--out",
            str(out),
            "--no-progress",
            "--shards",
            "2",
        ]
    )
    assert code == 0
    meta = json.loads((out / "metadata.json").read_text())
    reasons = {s["file"]: s["reason"] for s in meta["skipped"]}
    assert "file not found" in reasons["train_landmarks/404.parquet"]
    assert "z_pose_3" in reasons["train_landmarks/3.parquet"]
    assert "absent" in reasons["train_landmarks/1.parquet#108"]
    assert "no hand detected" in reasons["train_landmarks/1.parquet#104"]
    assert "needs at least 12 frames" in reasons["train_landmarks/1.parquet#105"]
    assert "needs at least 4 frames" in reasons["train_landmarks/1.parquet#106"]
    assert "'C'" in reasons["train_landmarks/1.parquet#107"]
    assert meta["num_skipped"] == 7 and meta["num_examples"] == len(good) == 4
    err = capsys.readouterr().err
    assert all(f"skipped {file}: " in err for file in reasons)
    records = read_records(out, "train")
    written = {r["clip_id"].decode(): r for r in records}
    vocab = metadata.RecordSet(out).vocab
    for sequence_id, (phrase, points) in good.items():
        record = next(r for k, r in written.items() if k.endswith(f"/{sequence_id}"))
        assert record["label"].decode() == phrase
        assert vocab.decode(record["label_ids"]) == phrase
        np.testing.assert_array_equal(
            record["landmarks"], points.astype(np.float16).astype(np.float32)
        )
    assert meta["max_label_length"] == len("hello world")


def test_replacement_maps_unknown_characters(fingerspelling_source, tmp_path):
    """--replace C=c makes the capitalised phrase usable instead of skipped."""
    src, _, _ = fingerspelling_source
    out = tmp_path / "records"
    assert (
        ingest_cli.main(
            [
                "--format",
                "kaggle-fingerspelling",
                "--src",
                str(src),
                "--out",
                str(out),
                "--no-progress",
                "--replace",
                "C=c",
            ]
        )
        == 0
    )
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["num_examples"] == 5
    labels = {r["label"].decode(): r["label_ids"] for r in read_records(out, "train")}
    assert metadata.RecordSet(out).vocab.decode(labels["Capital"]) == "capital"


def test_ingest_twice_gives_identical_files(fingerspelling_source, tmp_path):
    src, _, _ = fingerspelling_source
    writer.ingest("kaggle-fingerspelling", src, tmp_path / "a", progress=False, num_shards=3)
    writer.ingest("kaggle-fingerspelling", src, tmp_path / "b", progress=False, num_shards=3)
    a, b = folder_bytes(tmp_path / "a"), folder_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == 4  # 3 shards + metadata.json
    assert all(a[k] == b[k] for k in a)


def test_shards_are_dealt_round_robin(shared_data, tmp_path):
    """Shard sizes differ by at most one; splits smaller than the shard count get fewer files."""
    meta = writer.ingest(
        "mp-data",
        shared_data / "mp_holistic_35signs/raw_sample/MP_Data",
        tmp_path / "mp",
        progress=False,
        num_shards=4,
    )
    counts = [s["num_examples"] for s in meta["shards"]["train"]]
    assert counts == [2, 2, 1, 1]
    meta = writer.ingest(
        "mp-data",
        shared_data / "mp_holistic_35signs/raw_sample/MP_Data",
        tmp_path / "mp8",
        progress=False,
        num_shards=8,
    )
    assert [s["file"] for s in meta["shards"]["train"]] == [
        f"train-{k:05d}-of-00006.tfrecord" for k in range(6)
    ]


def test_preset_selection_at_ingest(fingerspelling_source, tmp_path):
    """--preset kaggle75 stores the selected (dominant-hand, mirrored) points."""
    src, good, _ = fingerspelling_source
    out = tmp_path / "k75"
    meta = writer.ingest("kaggle-fingerspelling", src, out, preset="kaggle75", progress=False)
    assert meta["layout"]["num_landmarks"] == 75
    for record in read_records(out, "train"):
        sequence_id = int(record["clip_id"].decode().split("/")[1])
        expected = presets.select(good[sequence_id][1], presets.KAGGLE75)
        np.testing.assert_array_equal(
            record["landmarks"], expected.astype(np.float16).astype(np.float32)
        )


def test_val_fraction_holds_out_whole_signers(shared_data, tmp_path):
    meta = writer.ingest(
        "npz",
        shared_data / "mp_holistic_35signs/landmarks_f16.npz",
        tmp_path / "x",
        progress=False,
        val_fraction=0.3,
    )
    # npz clips have no signer id: the clip id is hashed, so about 30 % of train moves.
    assert meta["splits"]["test"] == 420
    moved = meta["splits"]["val"] - 210
    assert 0.2 * 1470 < moved < 0.4 * 1470 and meta["splits"]["train"] + moved == 1470


class Interrupt(KeyboardInterrupt):
    pass


def test_interrupt_leaves_no_partial_output(fingerspelling_source, tmp_path, monkeypatch):
    """Ctrl-C mid-ingest: no output folder, no partial folder; an older output survives."""
    src, _, _ = fingerspelling_source
    out = tmp_path / "records"
    writer.ingest("kaggle-fingerspelling", src, out, progress=False)
    before = folder_bytes(out)
    real_serialize = example.serialize
    calls = []

    def serialize_then_interrupt(*args):
        calls.append(1)
        if len(calls) % 3 == 0:
            raise Interrupt()
        return real_serialize(*args)

    monkeypatch.setattr(writer.example, "serialize", serialize_then_interrupt)
    with pytest.raises(Interrupt):
        writer.ingest("kaggle-fingerspelling", src, out, progress=False, overwrite=True)
    assert folder_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kaggle_fs", "records"]
    with pytest.raises(Interrupt):
        writer.ingest("kaggle-fingerspelling", src, tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh").exists()


def test_killed_ingest_leaves_nothing_that_looks_valid(fingerspelling_source, tmp_path):
    """SIGKILL mid-write: the output folder does not exist (only a hidden partial folder,
    which no reader accepts), and the next ingest removes the leftover."""
    src, _, _ = fingerspelling_source
    out = tmp_path / "records"
    script = (
        "import os, signal, sys\n"
        "from aslx.records import writer, example\n"
        "real = example.serialize\n"
        "count = [0]\n"
        "def serialize(*a):\n"
        "    count[0] += 1\n"
        "    if count[0] == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*a)\n"
        "writer.example.serialize = serialize\n"
        f"writer.ingest('kaggle-fingerspelling', {str(src)!r}, {str(out)!r}, progress=False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[1],
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == -9
    assert not out.exists()
    leftovers = list(tmp_path.glob(".records.partial-*"))
    assert len(leftovers) == 1
    with pytest.raises(FileNotFoundError, match="not a finished record set"):
        metadata.RecordSet(leftovers[0])
    writer.ingest("kaggle-fingerspelling", src, out, progress=False)
    assert not list(tmp_path.glob(".records.partial-*")) and (out / "metadata.json").exists()


def test_cli_errors_are_one_line(tmp_path, capsys, fingerspelling_source):
    """A missing source, an existing output, an unknown format: exit 2 with one clear line."""
    assert (
        ingest_cli.main(
            ["--format", "npz", "--src", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "none.npz: not found" in capsys.readouterr().err
    src, _, _ = fingerspelling_source
    writer.ingest("kaggle-fingerspelling", src, tmp_path / "o", progress=False)
    assert (
        ingest_cli.main(
            ["--format", "kaggle-fingerspelling", "--src", str(src), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ingest_cli.main(["--format", "avi", "--src", "x", "--out", "y"])


def test_empty_clip_is_skipped(tmp_path):
    """A clip folder with no frames is skipped as empty; its neighbours are written."""
    root = tmp_path / "MP_Data"
    (root / "hi/0").mkdir(parents=True)
    (root / "hi/1").mkdir(parents=True)
    vector = np.full(1662, 0.5, np.float32)
    for frame in range(3):
        np.save(root / f"hi/0/{frame}.npy", vector)
    meta = writer.ingest("mp-data", root, tmp_path / "out", progress=False)
    assert meta["num_examples"] == 1
    assert meta["skipped"] == [{"file": "hi/1", "reason": "empty clip (no frames)", "clips": 1}]


def test_records_are_byte_identical_across_processes():
    """Feature order inside a serialized record must not depend on Python's hash seed, or a
    second ingest in a new process would write different files."""
    script = (
        "import hashlib, numpy as np\n"
        "from aslx.records import example\n"
        "points = np.linspace(0, 1, 2 * 543 * 3, dtype=np.float32).reshape(2, 543, 3)\n"
        "print(hashlib.sha256(example.serialize('a/1', points, 'ab', [0, 1])).hexdigest())\n"
    )
    digests = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip().splitlines()[-1])
    assert len(digests) == 1


def npz_slice(src: Path, out: Path, rows) -> Path:
    """A few clips of a packed archive, every array kept, as a small archive of its layout."""
    with np.load(src) as archive:
        np.savez(out, **{k: archive[k] if k == "classes" else archive[k][rows] for k in archive})
    return out


def test_several_sources_make_one_record_set(shared_data, tmp_path):
    """One signer's archive (its own split), other signers' labelled clips sent to train and to
    a split of their own, and unlabelled clips: one record set, one vocabulary, clip ids
    prefixed with their file names, each clip in its source's split."""
    xsigner = shared_data / "xsigner"
    one = npz_slice(
        shared_data / "mp_holistic_35signs/landmarks_f16.npz", tmp_path / "one.npz", [0, 45, 50]
    )
    train = npz_slice(xsigner / "labelled_train_f16.npz", tmp_path / "train.npz", slice(0, 4))
    val = npz_slice(xsigner / "labelled_val_f16.npz", tmp_path / "val.npz", slice(0, 2))
    unlabelled = npz_slice(xsigner / "unlabelled_f16.npz", tmp_path / "free.npz", slice(0, 2))
    sources = [str(one), f"train={train}", f"xval={val}", f"train={unlabelled}"]
    assert (
        ingest_cli.main(
            ["--format", "npz", "--out", str(tmp_path / "out"), "--no-progress"]
            + [arg for source in sources for arg in ("--src", source)]
        )
        == 0
    )
    meta = metadata.RecordSet(tmp_path / "out").meta
    assert meta["splits"] == {"test": 1, "train": 7, "val": 1, "xval": 2}
    ids = [r["clip_id"].decode() for r in read_records(tmp_path / "out", "train")]
    assert (
        sorted(i.split("/")[0] for i in ids) == ["free.npz"] * 2 + ["one.npz"] + ["train.npz"] * 4
    )
    labels = {
        r["clip_id"].decode(): r["label"].decode() for r in read_records(tmp_path / "out", "train")
    }
    assert labels["free.npz/clip/0"] == "" and labels["train.npz/hello/0"] == "hello"


def test_sources_of_other_vocabularies_are_refused(shared_data, tmp_path, capsys):
    one = npz_slice(
        shared_data / "mp_holistic_35signs/landmarks_f16.npz", tmp_path / "one.npz", [0, 1]
    )
    with np.load(one) as archive:
        arrays = dict(archive)
    np.savez(tmp_path / "other.npz", **(arrays | {"classes": arrays["classes"][::-1]}))
    code = ingest_cli.main(
        [
            "--format",
            "npz",
            "--src",
            str(one),
            "--src",
            str(tmp_path / "other.npz"),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]  # fmt: skip
    )
    assert code == 2 and not (tmp_path / "out").exists()
    assert "other.npz: its labels differ from" in capsys.readouterr().err


def test_two_sources_of_one_file_name_are_refused(shared_data, tmp_path, capsys):
    """Clip ids are prefixed with the file name: two sources named alike would collide."""
    src = shared_data / "mp_holistic_35signs/raw_sample/MP_Data"
    (tmp_path / "other").mkdir()
    copy = tmp_path / "other" / "MP_Data"
    copy.symlink_to(src)
    code = ingest_cli.main(
        [
            "--format",
            "mp-data",
            "--src",
            str(src),
            "--src",
            f"val={copy}",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]  # fmt: skip
    )
    assert code == 2 and not (tmp_path / "out").exists()
    assert "two sources are named 'MP_Data'" in capsys.readouterr().err
