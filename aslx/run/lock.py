"""One run per workdir: a lock file naming its holder.

Two trainers writing one workdir destroy each other's checkpoints (orbax deletes what it takes
for a dead save of an earlier run), so a trainer holds ``<workdir>/.lock`` from before its
first write to its exit. The file is created with ``O_EXCL`` (atomic on a local or network
file system) and holds the holder's host, pid and start time as JSON. A second start fails
with one line that names the holder. A lock whose holder is gone (same host, dead pid: a
``kill -9``, a crashed machine rebooted) is taken over with a message. A lock from another
host cannot be checked from here; the message says how to remove it when that run is gone.

Buckets (``gs://``) have no atomic create: a workdir there is not locked (said once), and a
pod's processes share the lock of process 0, which takes it for the whole run.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Callable

from aslx import files

LOCK_FILE = ".lock"


class WorkdirBusy(RuntimeError):
    """Another live run holds the workdir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.datetime.now().isoformat(timespec="seconds"),
    }


class WorkdirLock:
    """Holds ``workdir``'s lock from :meth:`acquire` to :meth:`release` (a context manager).

    ``say`` prints the takeover of a stale lock and the note that a bucket is not locked.
    """

    def __init__(self, workdir: files.PathLike, say: Callable[[str], None] = print):
        self.workdir = files.path(workdir)
        self.path = self.workdir / LOCK_FILE
        self.say = say
        self.held = False

    def _create(self) -> bool:
        """Creates the lock file holding this process; False when it exists already."""
        try:
            fd = os.open(os.fspath(self.path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(_holder(), f)
        return True

    def _read(self) -> dict:
        try:
            value = json.loads(self.path.read_text())
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}  # half-written by a holder killed while creating it: treat as stale

    def acquire(self) -> WorkdirLock:
        if not files.is_local(self.workdir):
            self.say(f"{self.workdir}: a bucket has no atomic create, so the workdir is not locked")
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # two starts racing for a stale lock: one of them wins
            if self._create():
                self.held = True
                return self
            holder = self._read()
            host, pid = holder.get("host"), holder.get("pid")
            if host == socket.gethostname() and isinstance(pid, int) and _alive(pid):
                raise WorkdirBusy(
                    f"{self.workdir} is in use by pid {pid} on {host} since "
                    f"{holder.get('since', '?')}; wait for that run or stop it, or give "
                    "another --workdir"
                )
            if host not in (None, socket.gethostname()):
                raise WorkdirBusy(
                    f"{self.workdir} is locked by pid {pid} on host {host} since "
                    f"{holder.get('since', '?')}; if that run is gone, delete {self.path}"
                )
            self.say(
                f"{self.workdir}: taking over the lock of pid {pid} (no longer running"
                f"{', since ' + holder['since'] if holder.get('since') else ''})"
            )
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.fspath(self.path))
        raise WorkdirBusy(
            f"{self.workdir}: could not take {self.path}; another run keeps taking it"
        )

    def release(self) -> None:
        """Removes the lock if this process holds it (never another's)."""
        if not self.held:
            return
        self.held = False
        if self._read().get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(os.fspath(self.path))

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
