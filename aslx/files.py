"""Where aslx reads and writes: one path type for local folders and buckets, files written
whole or not at all, and archives opened with one clear error.

**Paths.** Every path a user gives (records, workdir, export folder, alignments, teacher and
init weights, raw sources) goes through :func:`path`: a local path, a ``file://`` URI (the
local path it names) or an object-store URI (``gs://``, ``s3://``), all as ``etils.epath``
paths, which reach buckets through TensorFlow's ``tf.io.gfile`` (the file system tf.data reads
shards with) and have ``pathlib``'s methods. Code that needs a real local file (an mmapped
safetensors, a TFLite interpreter) asks :func:`local_copy` for one.

**Whole files.** Every file aslx writes for later reading (``model.json``, ``results.json``,
exported weights, alignments, TFLite exports) goes through :func:`atomic_path`. Locally the
content goes to a hidden, uniquely named file beside the target, is flushed to disk (``fsync``)
and renamed over the target. A rename within one folder is atomic, so a crash, a full disk or
Ctrl-C leaves either the old file or the complete new one, never half of one, and never the
temporary file. The result has mode ``0644`` less the process umask, like any file the user
writes (``tempfile.mkstemp`` alone would leave ``0600``). In a bucket the file is written to a
local temporary file and uploaded as one object, which appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from etils import epath

#: What the public functions take for a file or folder.
PathLike = str | os.PathLike
_FILE_URI = "file://"

#: Permission bits of a written file before the umask applies.
FILE_MODE = 0o644


def _umask() -> int:
    """The process umask, read without setting it where the system allows: ``os.umask`` can
    only be read by changing it, and other threads (orbax's writers) may create files then."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def path(value: PathLike) -> epath.Path:
    """``value`` as the one path type aslx uses: an ``epath.Path`` that knows local paths,
    ``file://`` URIs (the local path after the scheme) and ``gs://`` / ``s3://`` buckets."""
    text = os.fspath(value)
    if text.startswith(_FILE_URI):
        text = text[len(_FILE_URI) :] or "/"
    return epath.Path(text)


def is_local(value: PathLike) -> bool:
    """Whether ``value`` names this machine's file system (not a bucket)."""
    return "://" not in os.fspath(path(value))


def absolute(value: PathLike) -> epath.Path:
    """``value`` with a relative local path made absolute (a bucket URI is absolute already):
    what is written into a run's files to say where something came from."""
    value = path(value)
    return epath.Path(os.path.abspath(value)) if is_local(value) else value


def remove_tree(value: PathLike) -> None:
    """Deletes the folder ``value`` and everything in it, as far as it can (cleaning up after
    a failure must not raise a second error over the first)."""
    with contextlib.suppress(Exception):
        path(value).rmtree()


@contextlib.contextmanager
def local_copy(value: PathLike) -> Iterator[Path]:
    """A local file with the bytes of ``value``: the file itself where it is local, else a
    temporary download, removed afterwards. For readers that need a real file (memory maps,
    the TFLite interpreter)."""
    value = path(value)
    if is_local(value):
        yield Path(os.fspath(value))
        return
    with tempfile.TemporaryDirectory(prefix="aslx-") as folder:
        local = Path(folder) / value.name
        local.write_bytes(value.read_bytes())
        yield local


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yields a temporary local path to write; on success its content becomes ``target``.

    The parent folder is created. Whatever the body raises (``OSError`` of a full disk,
    ``KeyboardInterrupt``), the temporary file is removed and ``target`` is left as it was.
    """
    target = path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not is_local(target):
        with tempfile.TemporaryDirectory(prefix="aslx-") as folder:
            tmp = Path(folder) / target.name
            yield tmp
            target.write_bytes(tmp.read_bytes())  # one upload: the object appears whole
        return
    target = Path(os.fspath(target))
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp, FILE_MODE & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(target: PathLike, data: bytes) -> epath.Path:
    """Writes ``data`` to ``target`` atomically (see :func:`atomic_path`); returns ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return path(target)


def write_text(target: PathLike, text: str) -> epath.Path:
    """Writes UTF-8 ``text`` to ``target`` atomically; returns ``target``."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: PathLike, value, **dumps_options) -> epath.Path:
    """Writes ``value`` as indented JSON (one trailing newline) to ``target`` atomically."""
    return write_text(target, json.dumps(value, indent=1, **dumps_options) + "\n")


def sha256(value: PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes as hex, read in ``chunk``-byte pieces (a model file need
    not fit in memory twice)."""
    digest = hashlib.sha256()
    with path(value).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def open_npz(source: PathLike, what: str = "an .npz archive") -> np.lib.npyio.NpzFile:
    """``np.load`` of an ``.npz`` archive (no pickles), to use as a context manager.

    Raises ``FileNotFoundError`` when there is no file and ``ValueError`` naming the file when
    it is not a readable archive (truncated, another format, a single ``.npy`` array).
    """
    source = path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: not found ({what} was expected)")
    try:
        if is_local(source):
            archive = np.load(os.fspath(source), allow_pickle=False)
        else:
            archive = np.load(io.BytesIO(source.read_bytes()), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{source}: not a readable .npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{source}: a single array, not {what}")
    return archive


def check_writable(folder: PathLike) -> None:
    """Raises the ``OSError`` of writing into ``folder`` now, before minutes of work that
    would end in it: a probe file is written and removed in ``folder``, or in its nearest
    existing parent when it does not exist yet (nothing is created). Buckets are not probed."""
    target = path(folder)
    if not is_local(target):
        return
    probe = Path(os.fspath(target)).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    with tempfile.NamedTemporaryFile(dir=probe, prefix=".aslx-probe-"):
        pass


def storage_fault(error: BaseException) -> str | None:
    """A one-line cause when ``error`` (or an error it was raised from) is a storage fault
    (disk full, quota, read-only file system, file too large), else ``None``."""
    causes = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EFBIG: "a file grew past the size limit",
        errno.EACCES: "permission denied",
    }
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in causes:
            where = f" ({error.filename})" if error.filename else ""
            return f"{causes[error.errno]}{where}"
        text = str(error)
        for code, cause in causes.items():
            if os.strerror(code) in text:
                # TensorFlow's and TensorStore's errors carry the file in their text only.
                path = re.search(r"(?<![\w.])(/[^\s;:'\"]+)", text)
                return f"{cause} ({path.group(1)})" if path else cause
        error = error.__cause__ or error.__context__
    return None
