"""Files written whole or not at all, and archives opened with one clear error.

Every file aslx writes for later reading (``model.json``, ``results.json``, exported weights,
alignments, TFLite exports) goes through :func:`atomic_path`: the content goes to a hidden,
uniquely named file beside the target, is flushed to disk (``fsync``) and renamed over the
target. A rename within one folder is atomic, so a crash, a full disk or Ctrl-C leaves either
the old file or the complete new one, never half of one, and never the temporary file. The
result has mode ``0644`` less the process umask, like any file the user writes
(``tempfile.mkstemp`` alone would leave ``0600``).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

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


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``target`` to write; on success it becomes ``target``.

    The parent folder is created. Whatever the body raises (``OSError`` of a full disk,
    ``KeyboardInterrupt``), the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
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


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``target`` atomically (see :func:`atomic_path`); returns ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Writes UTF-8 ``text`` to ``target`` atomically; returns ``target``."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, value, **dumps_options) -> Path:
    """Writes ``value`` as indented JSON (one trailing newline) to ``target`` atomically."""
    return write_text(target, json.dumps(value, indent=1, **dumps_options) + "\n")


def open_npz(path: str | os.PathLike, what: str = "an .npz archive") -> np.lib.npyio.NpzFile:
    """``np.load`` of an ``.npz`` archive (no pickles), to use as a context manager.

    Raises ``FileNotFoundError`` when there is no file and ``ValueError`` naming the file when
    it is not a readable archive (truncated, another format, a single ``.npy`` array).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found ({what} was expected)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single array, not {what}")
    return archive
