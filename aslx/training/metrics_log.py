"""How training programs report progress: a JSONL file, TensorBoard scalars and a console line.

:class:`MetricsLog` writes every call to :meth:`MetricsLog.write` twice under ``workdir``:

* ``metrics.jsonl``: one JSON object per line,
  ``{"step": 120, "split": "train", "time": 1718000000.5, "loss": 1.234, ...}``; ``time`` is
  Unix seconds. NaN and ±inf are written as ``null`` so every line stays valid JSON (Python's
  ``json`` would otherwise write the non-standard ``NaN``, which most other readers reject).
* ``tensorboard/``: TensorFlow event files, one scalar per metric tagged ``<split>/<name>``
  (written with ``tf.summary``, so TensorBoard itself need not be installed to train).

:meth:`MetricsLog.console` prints one human-readable progress line with throughput and ETA.

Resuming. A run that was killed after its last checkpoint has already written records for
steps after the step it resumes from, and the resumed run writes those steps again. So a
resumed log first drops the records of steps after its ``start_step`` (and a partial last
line), rewriting ``metrics.jsonl`` whole: it holds one record per (split, step) after any
resume. TensorBoard shows both runs' points for those steps (each run writes its own event
file, and event files are never rewritten).

Multi-host runs construct the log on every process with ``enabled=jax.process_index() == 0``;
a disabled log writes, prints and creates nothing, and does not even read the metric values
(which would wait on the device).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from etils import epath

from aslx import files

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
#: Keys every JSONL record has; metrics may not use them.
RESERVED_KEYS = frozenset({"step", "split", "time"})
#: Metrics shown in this order at the front of the console line, in their own formats.
_LEADING = ("loss", "lr", "learning_rate")
_LEARNING_RATE_KEYS = frozenset({"lr", "learning_rate"})
#: Metrics kept in the files but left off the console line (bookkeeping, not progress).
FILE_ONLY = frozenset({"compilations", "batch_frames"})


def _to_float(name: str, value: Any) -> float:
    """A metric value (Python number, NumPy or JAX scalar) as a Python float."""
    array = np.asarray(value)  # brings a JAX array to the host
    if array.size != 1:
        raise ValueError(f"metric {name!r} must be a scalar, got shape {array.shape}")
    return float(array.reshape(()))


def _json_number(value: float) -> float | None:
    """``value``, or None where JSON has no number for it (NaN, ±inf)."""
    return value if math.isfinite(value) else None


def format_duration(seconds: float) -> str:
    """A short duration: ``1h02m`` from an hour up, ``35m12s`` from a minute up, else ``12s``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"  # seconds are noise at this scale
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _format_rate(rate: float) -> str:
    """About three significant digits, never in exponent form: ``2.31``, ``73.9``, ``1,234``."""
    if rate >= 100:
        return f"{rate:,.0f}"
    if rate >= 10:
        return f"{rate:.1f}"
    return f"{rate:.2f}"


def _format_metric(name: str, value: float) -> str:
    """``lr 3.0e-04`` for learning rates, four significant digits for everything else."""
    if name in _LEARNING_RATE_KEYS:
        return f"{name} {value:.1e}"
    return f"{name} {value:.4g}"


class MetricsLog:
    """Writes metrics to ``<workdir>/metrics.jsonl`` and TensorBoard, and prints progress lines.

    Args:
        workdir: the run's folder; created on the first :meth:`write` if missing.
        total_steps: the step the run ends at, for the ``step i/N`` display and the ETA.
        global_batch_size: samples per step over all processes, for samples/s.
        enabled: False on every process but process 0 of a multi-host run: nothing is
            written, printed or created.
        console_every: :meth:`maybe_console` prints when ``step`` is a multiple of this.
        start_step: the step this run starts (or resumes) from; the first console line
            measures throughput from it and from the time of construction.
        print_fn: where console lines go.
        clock: monotonic seconds, for throughput; injectable for tests.

    Files are opened lazily, on the first :meth:`write`, so a log used only for console
    lines never imports TensorFlow. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        total_steps: int,
        global_batch_size: int,
        enabled: bool = True,
        console_every: int = 50,
        start_step: int = 0,
        print_fn: Callable[[str], object] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if console_every < 1:
            raise ValueError(f"console_every must be at least 1, got {console_every}")
        self.workdir = files.path(workdir)
        self.total_steps = int(total_steps)
        self.global_batch_size = int(global_batch_size)
        self.enabled = enabled
        self.console_every = int(console_every)
        self.start_step = int(start_step)
        self._print = print_fn
        self._clock = clock
        # Throughput is measured between consecutive console lines.
        self._last_console_step = self.start_step
        self._last_console_time = clock()
        self._left_out = (0, 0.0)  # (steps, seconds) since the last console line, not timed
        self._jsonl = None  # open text file, once the first record is written
        self._writer = None  # tf.summary writer, likewise
        self._tf = None
        self._scalar_metadata = None
        self._closed = False

    # -- files ----------------------------------------------------------------------------

    @property
    def metrics_path(self) -> epath.Path:
        """``<workdir>/metrics.jsonl``."""
        return self.workdir / METRICS_FILE

    @property
    def tensorboard_dir(self) -> epath.Path:
        """``<workdir>/tensorboard``, the event files' folder."""
        return self.workdir / TENSORBOARD_DIR

    def _open(self) -> None:
        """Opens ``metrics.jsonl`` for appending and creates the TensorBoard writer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.metrics_path
        if path.exists():
            # Records of steps this start will write again, and a killed run's partial last
            # line, go: one record per (split, step).
            kept = [line for line in path.read_text().splitlines() if self._keeps(line)]
            files.write_text(path, "".join(line + "\n" for line in kept))
        self._jsonl = path.open("a")  # UTF-8; closed in close()

        from aslx.tf_cpu import tensorflow

        self._tf = tensorflow()
        # Each writer makes its own event file (time, host and pid in its name), so a resumed
        # run never overwrites the earlier run's events.
        self._writer = self._tf.summary.create_file_writer(os.fspath(self.tensorboard_dir))
        # tf.summary.scalar lives in the tensorboard package, which tensorflow-cpu 2.21 does
        # not install (it raises TBNotInstalledError without it). tf.summary.write is
        # TensorFlow's own; with the scalars plugin's
        # metadata it writes exactly what tf.summary.scalar would: a float32 scalar tensor
        # that TensorBoard shows under "Scalars" (empty plugin content: format version 0).
        metadata = self._tf.compat.v1.SummaryMetadata
        self._scalar_metadata = metadata(
            plugin_data=metadata.PluginData(plugin_name="scalars"),
            data_class="DATA_CLASS_SCALAR",
        )

    def _keeps(self, line: str) -> bool:
        """Whether an existing line stays: a whole record of a step up to ``start_step``."""
        try:
            return int(json.loads(line)["step"]) <= self.start_step
        except (ValueError, KeyError, TypeError):
            return False

    def write(self, step: int, metrics: Mapping[str, Any], *, split: str = "train") -> None:
        """Appends one record to ``metrics.jsonl`` and one scalar per metric to TensorBoard.

        Values may be Python numbers or NumPy / JAX scalars. Both files are flushed, so a run
        that is killed keeps everything written before it.
        """
        if not self.enabled:
            return
        if self._closed:
            raise RuntimeError("MetricsLog.write after close()")
        clash = RESERVED_KEYS.intersection(metrics)
        if clash:
            raise ValueError(f"metric names {sorted(clash)} are reserved for the record itself")
        # Convert everything before writing anything, so a bad value leaves no half record.
        values = {name: _to_float(name, value) for name, value in metrics.items()}
        if self._jsonl is None:
            self._open()

        record = {"step": int(step), "split": split, "time": time.time()}
        record.update({name: _json_number(v) for name, v in values.items()})
        # allow_nan=False: a non-finite number slipping through would be a bug, not a NaN.
        self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
        self._jsonl.flush()

        tf = self._tf
        with self._writer.as_default():
            for name, value in values.items():
                tf.summary.write(
                    f"{split}/{name}",
                    tf.constant(value, tf.float32),
                    step=int(step),
                    metadata=self._scalar_metadata,
                )
        self._writer.flush()

    # -- console --------------------------------------------------------------------------

    def leave_out(self, steps: int, seconds: float) -> None:
        """Keeps ``steps`` steps that took ``seconds`` (a step that compiled) out of the next
        console line's throughput and ETA: a compilation says nothing about the steps to come."""
        self._left_out = (self._left_out[0] + steps, self._left_out[1] + seconds)

    def console(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Prints one progress line, e.g.
        ``step 120/5,000  loss 1.234  lr 3.0e-04  2.31 steps/s  73.9 samples/s  ETA 35m12s``.

        Throughput is measured from the previous console line (the first line: from
        construction and ``start_step``), without the steps :meth:`leave_out` named; the ETA
        assumes it holds for the remaining steps. Where no timed step or no time has passed
        since, throughput and ETA are left out.
        """
        if not self.enabled:
            return
        now = self._clock()
        left_steps, left_seconds = self._left_out
        steps = step - self._last_console_step - left_steps
        elapsed = now - self._last_console_time - left_seconds
        self._last_console_step, self._last_console_time = step, now
        self._left_out = (0, 0.0)

        parts = [f"step {step:,}/{self.total_steps:,}"]
        values = {name: _to_float(name, value) for name, value in metrics.items()}
        for name in _LEADING:
            if name in values:
                parts.append(_format_metric(name, values[name]))
        parts += [
            _format_metric(n, v)
            for n, v in values.items()
            if n not in _LEADING and n not in FILE_ONLY
        ]
        if steps > 0 and elapsed > 0:
            rate = steps / elapsed
            remaining = max(0, self.total_steps - step)
            parts.append(f"{_format_rate(rate)} steps/s")
            parts.append(f"{_format_rate(rate * self.global_batch_size)} samples/s")
            parts.append(f"ETA {format_duration(remaining / rate)}")
        self._print("  ".join(parts))
        if self._print is print:
            sys.stdout.flush()  # progress must show promptly when stdout goes to a log file

    def maybe_console(self, step: int, metrics: Mapping[str, Any]) -> bool:
        """:meth:`console` when ``step`` is a multiple of ``console_every`` or the last step.

        Returns whether a line was printed (always False when disabled).
        """
        if not self.enabled:
            return False
        if step % self.console_every == 0 or step == self.total_steps:
            self.console(step, metrics)
            return True
        return False

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Flushes and closes both files. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._jsonl is not None:
            self._jsonl.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_metrics(workdir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``<workdir>/metrics.jsonl``, the last one for each (split, step).

    Later records win because a resumed run rewrites the steps that a killed run logged after
    its last checkpoint. Returned sorted by (step, split). Lines that are not valid JSON (the
    partial last line of a killed run) are skipped with a warning. Non-finite values read back
    as None. Raises FileNotFoundError when there is no ``metrics.jsonl``.
    """
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    bad = 0
    path = files.path(workdir) / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics log (has the run started?)")
    with path.open("r") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            latest[(record["split"], record["step"])] = record
    if bad:
        warnings.warn(f"{bad} unreadable line(s) skipped in {path}", stacklevel=2)
    return [latest[key] for key in sorted(latest, key=lambda k: (k[1], k[0]))]
