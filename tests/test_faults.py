"""Faults and bad input: a damaged file is refused in one line before anything trusts it, one
bad file never costs the good ones, a second run cannot take a busy workdir, and a failure
leaves nothing half-written. The trainer's own faults (a rerun with another model, a full
disk, bad values) are in ``test_finetune.py``, beside its trained fixtures."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aslx import files
from aslx.export import tflite
from aslx.formats import detect, mp_data, npz
from aslx.formats.clip import Clip, Skipped
from aslx.landmarks import layouts
from aslx.records import writer as ingest_lib
from aslx.run import lock as lock_lib
from aslx.run import source as source_lib
from aslx.run import weights_file
from tests.processes import environment

ROOT = Path(__file__).resolve().parents[1]


def clips(n: int, frames: int = 6, seed: int = 0) -> np.ndarray:
    """``[n, frames, 543, 3]`` clips with both hands present (zeros elsewhere)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, frames, layouts.NUM_LANDMARKS, 3), np.float32)
    for group in ("left_hand", "right_hand", "pose"):
        s = layouts.group_slice(group)
        X[:, :, s] = rng.uniform(0.2, 0.8, X[:, :, s].shape)
    return X


def read_all(path) -> tuple[list[Clip], list[Skipped]]:
    items = list(detect.read_path(path))
    return [c for c in items if isinstance(c, Clip)], [s for s in items if isinstance(s, Skipped)]


# --- 1. a damaged or mismatched TFLite export --------------------------------------------------


@pytest.fixture(scope="module")
def export(tiny_ctc_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    tflite.export(tiny_ctc_run, out, buckets=(16,))
    return out


def test_an_export_records_its_size_checksum_and_inputs(export):
    meta = json.loads((export / tflite.ARGS_FILE).read_text())["aslx"]
    data = (export / tflite.MODEL_FILE).read_bytes()
    assert meta["model_file"]["bytes"] == len(data)
    assert meta["model_file"]["sha256"] == files.sha256(export / tflite.MODEL_FILE)
    assert set(meta["inputs"]) == set(meta["signatures"])
    # every signature takes a clip of any length (fitted in the graph) of the same columns
    assert {tuple(shape) for shape in meta["inputs"].values()} == {
        (-1, len(json.loads((export / tflite.ARGS_FILE).read_text())["selected_columns"]))
    }
    tflite.TFLiteModel(export)  # the intact export loads


@pytest.mark.parametrize("damage", ["truncated", "flipped", "other_args"])
def test_a_damaged_export_is_refused_in_one_line(export, tmp_path, damage):
    bad = tmp_path / "bad"
    bad.mkdir()
    data = bytearray((export / tflite.MODEL_FILE).read_bytes())
    args = json.loads((export / tflite.ARGS_FILE).read_text())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    else:  # inference_args.json of another export: another signature, no checksum
        args["aslx"].pop("model_file")
        args["aslx"]["inputs"] = {"serving_default": [7, 3]}
    (bad / tflite.MODEL_FILE).write_bytes(bytes(data))
    (bad / tflite.ARGS_FILE).write_text(json.dumps(args))
    want = {"truncated": "truncated", "flipped": "SHA-256", "other_args": "signatures"}[damage]
    with pytest.warns(UserWarning) if damage == "other_args" else contextlib.nullcontext():
        with pytest.raises(ValueError, match=want) as error:
            tflite.TFLiteModel(bad)
    assert "\n" not in str(error.value)


def test_predict_on_a_truncated_model_exits_2_quickly_under_a_memory_limit(export, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (export / tflite.MODEL_FILE).read_bytes()
    (bad / tflite.MODEL_FILE).write_bytes(data[: len(data) // 2])
    (bad / tflite.ARGS_FILE).write_bytes((export / tflite.ARGS_FILE).read_bytes())
    np.savez(tmp_path / "c.npz", X=clips(1), y=np.array([0]), classes=np.array(["a"]))
    script = (
        f"ulimit -v 4000000; exec {sys.executable} -m aslx.predict --model {bad} "
        f"{tmp_path / 'c.npz'}"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --model") and "truncated" in last, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


# --- 2. corrupt weights and coordinates ------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tiny_ctc_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("weights") / "w.safetensors"
    weights_file.write(out, source_lib.read_source(tiny_ctc_run))
    return out


def test_weights_with_flipped_bytes_are_refused(weights, tmp_path):
    data = bytearray(weights.read_bytes())
    data[-9] ^= 0x40  # inside the last tensor's bytes, after the header
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum .* damaged"):
        source_lib.read_source(bad)
    source_lib.read_source(weights)  # the intact file still reads


def test_exports_are_written_readable_by_others(export, weights):
    """``0644`` less the umask, as any file the user writes (a temporary file's ``0600``
    would hide a deployed model from the server's user)."""
    umask = os.umask(0o022)
    os.umask(umask)
    written = [p for p in export.rglob("*") if p.is_file()] + [weights]
    assert tflite.MODEL_FILE in {p.name for p in written} and len(written) >= 3
    for path in written:
        assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~umask), path


def test_nonfinite_weights_are_refused_even_with_a_matching_checksum(weights, tmp_path):
    source = weights_file.read(weights)
    name = sorted(source.params)[0]
    source.params[name] = np.full_like(source.params[name], np.nan)
    bad = weights_file.write(tmp_path / "nan.safetensors", source)
    with pytest.raises(ValueError, match=r"non-finite weight values .*" + name.split("/")[0]):
        source_lib.load_trained(bad)


def test_huge_finite_weights_give_a_per_clip_error_not_an_empty_answer(weights, tmp_path):
    """Weights × 1e30 pass every check of the file (finite, matching checksum) but make the
    logits NaN: each clip is named as skipped and the command exits 1."""
    source = weights_file.read(weights)
    source.params = {k: v * np.float32(1e30) for k, v in source.params.items()}
    huge = weights_file.write(tmp_path / "huge.safetensors", source)
    np.savez(tmp_path / "c.npz", X=clips(2), y=np.zeros(2, int), classes=np.array(["a"]))
    result = subprocess.run(
        [sys.executable, "-m", "aslx.predict", "--model", str(huge), str(tmp_path / "c.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stdout == ""
    lines = [x for x in result.stderr.strip().splitlines() if x.startswith("skipped")]
    assert lines == [
        f"skipped a/{i}: the model's outputs are NaN or infinite for this clip (huge or "
        "damaged weights, or impossible coordinates); no answer"
        for i in (0, 1)
    ]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: 2 inputs or clips could not be read")


def test_predict_with_a_tflite_model_and_nothing_to_predict_exits_1_every_time(export, tmp_path):
    """Every input skipped, no clip run: the interpreter is freed before the process ends
    (left to interpreter shutdown it aborted the process, exit 134, about one run in 25)."""
    empty = tmp_path / "empty.parquet"
    columns = {"frame": "int16", "type": "str", "landmark_index": "int16"}
    frame = pd.DataFrame({k: pd.Series([], dtype=v) for k, v in columns.items()})
    for axis in "xyz":
        frame[axis] = pd.Series([], dtype="float32")
    frame.to_parquet(empty)
    command = [sys.executable, "-m", "aslx.predict", "--model", str(export), str(empty)]
    for _ in range(3):
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=300, env=environment()
        )
        assert result.returncode == 1, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("error: 1 input")


def test_clips_with_damaged_coordinates_are_skipped_named_and_the_rest_kept(tmp_path):
    X = clips(4)
    X[1, 2, 500, 0] = np.inf
    X[2, 0, 10, 1] = 3.0e7  # a flipped exponent bit
    np.savez(tmp_path / "c.npz", X=X, y=np.zeros(4, int), classes=np.array(["a"]))
    good, skipped = read_all(tmp_path / "c.npz")
    assert [c.source for c in good] == ["c.npz[0]", "c.npz[3]"]
    assert [s.file.split(" ")[0] for s in skipped] == ["c.npz[1]", "c.npz[2]"]
    assert all("damaged" in s.reason and "\n" not in s.reason for s in skipped)
    meta = ingest_lib.ingest("npz", tmp_path / "c.npz", tmp_path / "rec", progress=False,
                             log=lambda line: None)  # fmt: skip
    assert meta["splits"] == {"train": 2} and len(meta["skipped"]) == 2


# --- 4. one bad file never costs the good ones -----------------------------------------------


def test_a_bad_npz_is_one_line_and_a_short_y_skips_only_the_clips_without_labels(tmp_path):
    np.savez(tmp_path / "c.npz", X=clips(3), y=np.array([0]), classes=np.array(["a"]))
    good, skipped = read_all(tmp_path / "c.npz")
    assert len(good) == 1 and [s.file for s in skipped] == ["c.npz[1]", "c.npz[2]"]
    assert "y has 1 entries for the 3 clips" in skipped[0].reason
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(npz.FormatError, match=r"t\.npz") as error:
        read_all(tmp_path / "t.npz")
    assert "\n" not in str(error.value)


def test_a_bad_frame_file_skips_its_mp_data_clip_only(tmp_path):
    for clip in ("0", "1"):
        folder = tmp_path / "MP_Data" / "hello" / clip
        folder.mkdir(parents=True)
        for f in range(3):
            np.save(folder / f"{f}.npy", np.full(layouts.MP_VECTOR_SIZE, 0.5, np.float32))
    (tmp_path / "MP_Data" / "hello" / "1" / "1.npy").write_bytes(b"")  # 0 bytes
    good, skipped = read_all(tmp_path / "MP_Data")
    assert [c.clip_id for c in good] == ["hello/0"]
    assert skipped[0].file == "hello/1" and "1.npy" in skipped[0].reason
    assert len(list(mp_data.read(tmp_path / "MP_Data"))) == 2


@pytest.mark.parametrize("content", [b"", b"not a pose file at all\n", "truncated"])
def test_a_bad_pose_file_is_skipped_and_the_good_ones_kept(shared_data, tmp_path, content):
    pytest.importorskip("pose_format")
    good_files = sorted((shared_data / "pose_files").rglob("*.pose"))[:2]
    folder = tmp_path / "poses" / "nested"
    folder.mkdir(parents=True)
    for f in good_files:
        (folder / f.name).write_bytes(f.read_bytes())
    if content == "truncated":
        content = good_files[0].read_bytes()[:300]
    (folder / "bad.pose").write_bytes(content)
    good, skipped = read_all(tmp_path / "poses")  # nested: still read as .pose files
    assert len(good) == len(good_files)
    assert [s.file for s in skipped] == ["nested/bad.pose"] and "\n" not in skipped[0].reason


@pytest.mark.parametrize("cut", ["half", "one byte short", "one byte more"])
def test_a_pose_body_of_another_length_than_its_header_says_is_skipped(shared_data, tmp_path, cut):
    """pose-format counts frames from the bytes left: half a file would read as a shorter clip
    whose confidences are coordinates. The header's frame count decides instead."""
    pytest.importorskip("pose_format")
    good = sorted((shared_data / "pose_files").rglob("*.pose"))[0]
    data = good.read_bytes()
    damaged = {
        "half": data[: len(data) // 2],
        "one byte short": data[:-1],
        "one byte more": data + b"\0",
    }[cut]
    (tmp_path / "good.pose").write_bytes(data)
    (tmp_path / "bad.pose").write_bytes(damaged)
    clips, skipped = read_all(tmp_path)
    assert [c.clip_id for c in clips] == ["good"]
    assert [s.file for s in skipped] == ["bad.pose"]
    assert re.match(
        r"its header says \d+ frames \([\d,]+ bytes\) but its body holds ", skipped[0].reason
    )
    assert skipped[0].reason.endswith("truncated or damaged")


# --- 5. one run per workdir, and ingest on a full disk ---------------------------------------


def test_a_second_run_is_refused_while_the_first_holds_the_workdir(tmp_path):
    messages = []
    with lock_lib.WorkdirLock(tmp_path / "w", messages.append):
        holder = json.loads((tmp_path / "w" / lock_lib.LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(lock_lib.WorkdirBusy, match=f"in use by pid {os.getpid()}"):
            lock_lib.WorkdirLock(tmp_path / "w").acquire()
    assert not (tmp_path / "w" / lock_lib.LOCK_FILE).exists()  # released
    assert messages == []


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "w").mkdir()
    lock = lock_lib.WorkdirLock(tmp_path / "w")
    (tmp_path / "w" / lock_lib.LOCK_FILE).write_text(
        json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "since": "earlier"})
    )
    messages = []
    lock.say = messages.append
    with lock:
        pass
    assert len(messages) == 1 and f"pid {int(dead.stdout)}" in messages[0]


def test_ingest_on_a_full_disk_fails_and_leaves_no_partial_folder(tmp_path, monkeypatch):
    np.savez(tmp_path / "c.npz", X=clips(3), y=np.zeros(3, int), classes=np.array(["a"]))
    ingest_lib.ingest("npz", tmp_path / "c.npz", tmp_path / "rec", progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    calls = {"n": 0}
    real_write = ingest_lib._ShardWriters.write

    def full_disk(self, split, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, split, record)

    monkeypatch.setattr(ingest_lib._ShardWriters, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ingest_lib.ingest("npz", tmp_path / "c.npz", tmp_path / "rec", progress=False,
                          overwrite=True)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "rec"]  # no partial folder
    assert {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == before


def test_storage_faults_are_named(tmp_path):
    assert files.storage_fault(OSError(errno.ENOSPC, "x", "/a")) == "the disk is full (/a)"
    wrapped = ValueError("write failed: [Errno 30] Read-only file system")
    assert files.storage_fault(RuntimeError("outer")) is None
    try:
        raise RuntimeError("save failed") from wrapped
    except RuntimeError as e:
        assert files.storage_fault(e) == "the file system is read-only"


# --- 6. storage faults end in one line: a file size limit, a full disk, a read-only folder --------


def _mount(folder: Path, *options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"this test needs a small file system it can mount: {done.stderr.strip()}")


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB file system (a tmpfs, where the test may mount one)."""
    folder = tmp_path / "small"
    _mount(folder, "size=1m")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def read_only(tmp_path):
    """A folder nothing may be written to: mode 0555, or a read-only tmpfs for root (whom
    modes do not stop)."""
    folder = tmp_path / "read_only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    _mount(folder, "size=1m", "ro")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The command's one error line (its last; above it only progress lines), exit status 2."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [x for x in lines if x.startswith("error:")] == lines[-1:], result.stderr[-3000:]
    return lines[-1]


def aslx_command(*args: str, max_file_kib: int | None = None) -> subprocess.CompletedProcess:
    from tests import processes

    return processes.run([sys.executable, "-m", *args], environment(), max_file_kib=max_file_kib)


@pytest.fixture(scope="module")
def big_npz(tmp_path_factory) -> Path:
    """120 clips of 40 frames: about 15 MB of records, more than the small disk holds."""
    path = tmp_path_factory.mktemp("big") / "c.npz"
    np.savez(path, X=clips(120, frames=40), y=np.zeros(120, int), classes=np.array(["a"]))
    return path


def ingest_into(src: Path, out: Path, **kwargs) -> subprocess.CompletedProcess:
    return aslx_command("aslx.ingest", "--format", "npz", "--src", str(src), "--out", str(out),
                        **kwargs)  # fmt: skip


def test_ingest_past_a_file_size_limit_is_one_line_and_leaves_nothing(big_npz, tmp_path):
    line = one_line_error(ingest_into(big_npz, tmp_path / "rec", max_file_kib=64))
    assert line.startswith("error: a file grew past the size limit")
    assert not (tmp_path / "rec").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_ingest_onto_a_full_disk_is_one_line_and_leaves_nothing(big_npz, full_disk):
    line = one_line_error(ingest_into(big_npz, full_disk / "rec"))
    assert line.startswith("error: the disk is full")
    assert list(full_disk.iterdir()) == []


def test_ingest_into_a_read_only_folder_is_one_line(big_npz, read_only):
    line = one_line_error(ingest_into(big_npz, read_only / "rec"))
    assert re.match(r"error: (the file system is read-only|permission denied) \(/", line), line


def test_export_to_a_read_only_folder_fails_before_converting(tiny_ctc_run, read_only):
    result = aslx_command("aslx.export", "--workdir", str(tiny_ctc_run), "--format", "tflite",
                          "--out", str(read_only / "exp"))  # fmt: skip
    line = one_line_error(result)
    assert re.match(r"error: (the file system is read-only|permission denied) \(/", line), line


def test_export_past_a_file_size_limit_is_one_line_and_leaves_nothing(tiny_ctc_run, tmp_path):
    out = tmp_path / "w.safetensors"
    result = aslx_command("aslx.export", "--workdir", str(tiny_ctc_run), "--format", "weights",
                          "--out", str(out), max_file_kib=8)  # fmt: skip
    assert one_line_error(result).startswith("error: a file grew past the size limit")
    assert list(tmp_path.iterdir()) == []


def test_a_trainer_on_a_read_only_workdir_is_one_line(synthetic_records, read_only):
    from tests import processes

    command = processes.trainer("finetune.main", "configs/finetune_tiny.py", read_only / "run",
                                synthetic_records)  # fmt: skip
    line = one_line_error(processes.run(command, environment()))
    assert re.match(r"error: (the file system is read-only|permission denied) \(/", line), line


# --- 7. smaller points -------------------------------------------------------------------------


def test_val_fraction_on_one_signer_is_refused_not_silent(tmp_path):
    np.savez(tmp_path / "c.npz", X=clips(2), y=np.zeros(2, int), classes=np.array(["a"]))
    with pytest.raises(ValueError, match="moved every training clip"):
        ingest_lib.ingest("npz", tmp_path / "c.npz", tmp_path / "rec", progress=False,
                          val_fraction=0.99)  # fmt: skip
    assert not (tmp_path / "rec").exists()


def test_a_checkpoint_of_another_model_is_refused_in_one_line_at_resume(tmp_path):
    """Checkpoints another model (or an older aslx) wrote: resuming names what differs and
    says to give a new workdir, instead of orbax's traceback."""
    from aslx.run.checkpoint import Checkpointer
    from aslx.training import loop

    with Checkpointer(tmp_path / "checkpoints", async_save=False) as checkpoints:
        checkpoints.save(4, {"w": np.zeros(3, np.float32)}, extra={"next_step": 4})
    with Checkpointer(tmp_path / "checkpoints") as checkpoints:
        with pytest.raises(loop.TrainingError) as error:
            loop.resume(checkpoints, {"w": np.zeros(5, np.float32)}, print)
    message = str(error.value)
    assert "\n" not in message and "w saved (3,) target (5,)" in message
    assert message.endswith("cannot resume this run: give a new --workdir")


def test_an_ingest_where_every_clip_is_bad_writes_nothing_and_names_the_reasons(tmp_path):
    X = clips(3)
    X[:, 1, 500, 0] = np.inf
    np.savez(tmp_path / "c.npz", X=X, y=np.zeros(3, int), classes=np.array(["a"]))
    line = one_line_error(ingest_into(tmp_path / "c.npz", tmp_path / "rec"))
    assert re.match(
        r"error: .*c\.npz: every clip was skipped, 3 in all \(3 like: .*landmark 500.*\); "
        r"nothing was written$",
        line,
    )
    assert not (tmp_path / "rec").exists()


def test_unlabelled_clips_are_counted_and_a_classification_of_none_refused(tmp_path):
    """Clips without a label (an unlabelled source beside labelled ones) are counted per split
    in metadata.json; the classification loss leaves them out, and a training split of nothing
    else is refused before anything is built."""
    from aslx.records.metadata import RecordSet
    from aslx.training import config as config_lib
    from aslx.training import finetuning

    np.savez(tmp_path / "l.npz", X=clips(3), y=np.zeros(3, int), classes=np.array(["a"]))
    np.savez(tmp_path / "u.npz", X=clips(2, seed=1))
    specs = [ingest_lib.SourceSpec(tmp_path / "l.npz"), ingest_lib.SourceSpec(tmp_path / "u.npz")]
    ingest_lib.ingest("npz", specs, tmp_path / "mixed", progress=False)
    mixed = RecordSet(tmp_path / "mixed")
    assert mixed.meta["splits"] == {"train": 5} and mixed.unlabelled("train") == 2
    config = config_lib.finetune()
    config.task = "classification"
    finetuning.check_labelled(config, mixed)  # some labelled: trains, the rest left out

    specs = [
        ingest_lib.SourceSpec(tmp_path / "u.npz", "train"),
        ingest_lib.SourceSpec(tmp_path / "l.npz", "val"),
    ]
    ingest_lib.ingest("npz", specs, tmp_path / "none", progress=False)
    with pytest.raises(config_lib.ConfigError, match="none of the 2 train clips has a label"):
        finetuning.check_labelled(config, RecordSet(tmp_path / "none"))


def test_a_flipped_byte_in_a_parquet_page_with_a_crc_is_caught(tmp_path):
    """Pages written with CRCs are verified on reading: a flipped byte that lands on a
    plausible coordinate is refused, not read as a point (files without CRCs cannot be)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aslx.formats import kaggle_signs

    frames = np.repeat(np.arange(40), 21)
    table = pa.table(
        {
            "frame": frames.astype(np.int16),
            "type": ["right_hand"] * len(frames),
            "landmark_index": np.tile(np.arange(21), 40).astype(np.int16),
            "x": np.linspace(0.2, 0.8, len(frames)).astype(np.float32),
            "y": np.linspace(0.3, 0.7, len(frames)).astype(np.float32),
            "z": np.zeros(len(frames), np.float32),
        }
    )
    folder = tmp_path / "train_landmark_files" / "1"
    folder.mkdir(parents=True)
    for name in ("good", "bad"):
        pq.write_table(table, folder / f"{name}.parquet", write_page_checksum=True,
                       compression="none")  # fmt: skip
    bad = folder / "bad.parquet"
    data = bytearray(bad.read_bytes())
    offset = data.find(np.float32(table["x"][400].as_py()).tobytes())
    data[offset] ^= 0x01  # the x of one point, a little off
    bad.write_bytes(bytes(data))
    pd.DataFrame(
        [(f"train_landmark_files/1/{n}.parquet", 1, i, "a") for i, n in enumerate(("good", "bad"))],
        columns=["path", "participant_id", "sequence_id", "sign"],
    ).to_csv(tmp_path / "train.csv", index=False)
    items = list(kaggle_signs.read(tmp_path))
    assert [type(i).__name__ for i in items] == ["Clip", "Skipped"]
    assert "CRC checksum verification failed" in items[1].reason
