"""Saving and restoring training state: the one place aslx talks to orbax-checkpoint.

A :class:`Checkpointer` wraps an orbax ``CheckpointManager`` over one directory. Every saved
step holds the training state (any JAX pytree: step counter, ``nnx.State`` parameters, optax
state, EMA parameters …), a small JSON ``extra`` dict (the input pipeline's position, the
config) and, when the checkpointer ranks steps by a metric, that step's metrics. Layout::

    <directory>/
      <step>/                         one finalized checkpoint; the name is the plain step number
        _CHECKPOINT_METADATA          orbax: which handler wrote each item, commit timestamps
        state/                        the state pytree: TensorStore (OCDBT) array data written by
          _METADATA, manifest.ocdbt,  every process for its own shards, plus the tree's structure,
          d/, ocdbt.process_<i>/ …    shapes, dtypes and shardings (read back by read_arrays)
        extra/metadata                JSON: ``extra`` exactly as given to save
        metrics/metrics               JSON: ``metrics`` (only when best_metric is set)
      <step>.orbax-checkpoint-tmp*/   a save in progress or one that never finished: ignored by
                                      every read here; the next writer to open the directory
                                      deletes it (in the background, done before its first save)

Why it looks like this:

* **Atomic.** Orbax writes a step under a temporary name and renames it to ``<step>`` only
  once every item (on every process) is committed; on object stores, where renames are not
  atomic, ``commit_success.txt`` marks the finished step instead. A run killed mid-save leaves
  at worst a ``*.orbax-checkpoint-tmp*`` directory, which is never a step. On top of that,
  :meth:`Checkpointer.all_steps` (and so ``latest_step``, ``restore`` …) lists only steps whose
  directory is finalized on disk, so even this process's own save still in flight is not
  offered for restoring until it is done.
* **Asynchronous.** ``save`` copies the arrays to host memory and returns; writing happens on
  a background thread, so the state's device buffers may be donated to the next step right
  away. A new save first waits for the previous one. Call :meth:`~Checkpointer.wait_until_finished`
  (or ``close``) before the program exits.
* **Retention.** The last ``keep_last`` steps are kept, plus the best step by
  ``metrics[best_metric]`` even when it is older (orbax preservation policies
  ``LatestN`` ∪ ``BestN(n=1)``). Steps saved without metrics are kept by recency only.
  Old steps are deleted only after the save that displaced them has been committed.
* **One JSON beside the arrays.** ``extra`` rides in the same step directory, so the data
  position and config always belong to exactly the state they were saved with.
* **Checked at restore.** Orbax's array files carry no checksum. Every save records a digest
  of each array in ``extra`` (:func:`state_checks`, computed on the devices, each summing its
  own shard); :meth:`Checkpointer.restore` recomputes them and checks that every array is
  finite, and raises :class:`CheckpointDamaged` naming the step (also for files it cannot
  read), so nothing trains on damaged state.

Multi-process runs: every process calls ``save``, ``restore``, ``wait_until_finished`` and
``close`` with the same arguments (they contain barriers). Orbax writes each process's array
shards from that process and does everything that must happen once (JSON items, renaming the
temporary directory, deleting old steps, removing stale temporary directories) on the primary
process, so nothing here needs its own primary-host branch. ``extra`` and ``metrics`` must be
the same on every process: only the primary's copy is written. The directory must be shared
by all processes (a network file system or an object store).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers

from aslx import files
from aslx.model import paths

STATE = "state"
EXTRA = "extra"
_SHOWN = 5  # differing paths named in a structure-mismatch error, per kind


def _leaf_shapes(tree: Any) -> dict[tuple[str, ...], tuple[int, ...] | None]:
    """``{path: shape}`` for every leaf of ``tree`` (shape ``None`` where a leaf has none)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    shapes = {}
    for path, leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is None and isinstance(leaf, int | float | bool | np.number):
            shape = ()
        shapes[paths.path_names(path)] = None if shape is None else tuple(shape)
    return shapes


def _listing(names: list[tuple[str, ...]]) -> str:
    shown = ", ".join("/".join(p) for p in names[:_SHOWN])
    return shown + (f", … ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


#: The key of ``extra`` under which a save records its state's digests (popped on restore).
DIGESTS = "state_digests"


class CheckpointDamaged(ValueError):
    """A saved step whose arrays cannot be read, differ from their digests or hold non-finite
    values; ``step`` names it, the message says what is wrong."""

    def __init__(self, step: int, problem: str):
        super().__init__(f"checkpoint step {step} is damaged: {problem}")
        self.step = step


def _as_words(x: jax.Array) -> jax.Array:
    """``x``'s bits as ``uint32`` words of its shape (a 64-bit value folded into one)."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    width = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[x.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(x, width)
    if x.dtype.itemsize == 8:
        return (bits ^ (bits >> 32)).astype(jnp.uint32)
    return bits.astype(jnp.uint32)


def _index(shape: tuple[int, ...]) -> jax.Array:
    """Each element's flat (row-major) index as ``uint32``, built from per-axis iotas, so a
    sharded array is never reshaped (which would move its shards)."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return index


@jax.jit
def _leaf_checks(leaves: list) -> tuple[jax.Array, jax.Array]:
    """``([n, 2] uint32 digests, [n] bool finite)`` of the leaves.

    A leaf's digest is two position-weighted sums of its 32-bit words modulo 2³², with odd
    weights ``2i + 1`` and ``(i · 2654435761) | 1``: flipping any one bit changes the first
    (2ᵏ times an odd number is never 0 modulo 2³²), and the second makes several flips that
    cancel in one unlikely to cancel in both. Integer sums are exact, so the digest is the same
    on any mesh and any number of processes; each device sums its own shard.
    """
    digests, finite = [], []
    for leaf in leaves:
        x = jnp.asarray(leaf)
        words, index = _as_words(x), _index(x.shape)
        first = jnp.sum(words * (index * jnp.uint32(2) + jnp.uint32(1)), dtype=jnp.uint32)
        second = jnp.sum(
            words * ((index * jnp.uint32(2654435761)) | jnp.uint32(1)), dtype=jnp.uint32
        )
        digests.append(jnp.stack([first, second]))
        ok = jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.bool_(True)
        finite.append(ok)
    if not leaves:
        return jnp.zeros((0, 2), jnp.uint32), jnp.zeros((0,), bool)
    return jnp.stack(digests), jnp.stack(finite)


def state_checks(state: Any) -> tuple[dict[str, str], list[str]]:
    """``({path: digest}, [paths holding non-finite values])`` of a state's array leaves
    (paths as ``params/encoder/stem/kernel``; digests as 16 hex digits)."""
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays = [(paths.path_names(p), leaf) for p, leaf in flat if hasattr(leaf, "shape")]
    digests, finite = jax.device_get(_leaf_checks([leaf for _, leaf in arrays]))
    names = ["/".join(name) for name, _ in arrays]
    return (
        {n: f"{int(a):08x}{int(b):08x}" for n, (a, b) in zip(names, digests)},
        [n for n, ok in zip(names, finite) if not ok],
    )


class Checkpointer:
    """Saves and restores training state in one directory; see the module docstring.

    Args:
      directory: where the steps live (created when missing unless ``read_only``).
      keep_last: how many of the newest steps to keep (≥ 1).
      best_metric: the key of ``metrics`` that ranks steps; the best step is kept beyond
        ``keep_last``. ``None``: retention by recency only, and metrics are not stored.
      best_mode: ``"max"`` or ``"min"``: whether a larger or a smaller metric is better.
      async_save: write in a background thread (``save`` returns once the arrays are copied to
        host memory).
      read_only: for readers of a directory another program writes into (an evaluator watching
        a training run): never saves, never deletes anything, and re-reads the directory on every
        query. A writer, by contrast, removes leftover temporary directories when it opens the
        directory, which would break a save the other program has in flight.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep_last: int = 3,
        best_metric: str | None = None,
        best_mode: str = "max",
        async_save: bool = True,
        read_only: bool = False,
    ):
        if keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        self._directory = files.absolute(directory)  # orbax wants absolute paths
        self._best_metric = best_metric
        self._sign = 1.0 if best_mode == "max" else -1.0
        self._read_only = read_only
        self._closed = False
        policies: list[checkpoint_managers.PreservationPolicy] = [
            checkpoint_managers.LatestN(n=keep_last)
        ]
        if best_metric is not None:
            # _score makes larger always better, so BestN keeps the top one in either mode.
            # Steps without metrics are left to LatestN.
            policies.append(
                checkpoint_managers.BestN(
                    get_metric_fn=self._score, n=1, keep_checkpoints_without_metrics=False
                )
            )
        self._options = ocp.CheckpointManagerOptions(
            # Orbax writes metrics to disk only when best_fn is set; with our preservation
            # policy in charge, best_fn serves just that (and orbax's own best_step).
            best_fn=self._score if best_metric is not None else None,
            best_mode="max",
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            # A writer owns the directory: temporary directories there are dead saves of an
            # earlier run (orbax removes them on the primary process only).
            cleanup_tmp_directories=not read_only,
            read_only=read_only,
            create=not read_only,
        )
        self._manager = ocp.CheckpointManager(
            self._directory,
            options=self._options,
            item_handlers={
                STATE: ocp.StandardCheckpointHandler(),
                EXTRA: ocp.JsonCheckpointHandler(),
            },
        )

    def _score(self, metrics: Mapping[str, float]) -> float:
        """``metrics[best_metric]`` oriented so that larger is better; NaN or missing: worst."""
        value = metrics.get(self._best_metric) if metrics else None
        if value is None or math.isnan(value):
            return -math.inf
        return self._sign * float(value)

    # -- queries -------------------------------------------------------------------------------

    @property
    def directory(self) -> epath.Path:
        return self._directory

    def _finalized(self, step: int) -> bool:
        path = ocp.step.build_step_path(self._directory, ocp.step.standard_name_format(), step)
        return path.exists() and ocp.step.is_checkpoint_finalized(path)

    def all_steps(self) -> list[int]:
        """The finalized steps on disk, ascending (a save still in flight is not listed)."""
        if self._read_only:
            self._manager.reload()  # another program writes here; the cache would go stale
        return sorted(s for s in self._manager.all_steps() if self._finalized(s))

    def latest_step(self) -> int | None:
        """The newest finalized step, or ``None`` when there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def best_step(self) -> int | None:
        """The finalized step with the best ``metrics[best_metric]`` (the later one on a tie).

        ``None`` without ``best_metric`` or when no finalized step was saved with metrics.
        """
        if self._best_metric is None:
            return None
        best, best_score = None, -math.inf
        for step in self.all_steps():
            metrics = self._manager.metrics(step)
            if metrics is None:
                continue
            score = self._score(metrics)
            if best is None or score >= best_score:
                best, best_score = step, score
        return best

    def _resolve(self, step: int | None) -> int:
        """``step`` (default: the latest) checked to be a finalized step on disk."""
        steps = self.all_steps()
        if step is None:
            if not steps:
                raise FileNotFoundError(f"no finalized checkpoint in {self._directory}")
            return steps[-1]
        if step not in steps and step in self._manager.all_steps():
            # This process's own save of that step is still being written: wait for it.
            self.wait_until_finished()
            steps = self.all_steps()
        if step not in steps:
            raise FileNotFoundError(
                f"no finalized checkpoint for step {step} in {self._directory} "
                f"(finalized steps: {steps})"
            )
        return step

    # -- saving --------------------------------------------------------------------------------

    def save(
        self,
        step: int,
        state: Any,
        *,
        extra: dict | None = None,
        metrics: dict[str, float] | None = None,
        force: bool = False,
    ) -> bool:
        """Starts saving ``state`` (and ``extra``, ``metrics``) as ``step``.

        Args:
          step: the step number; it names the directory.
          state: any pytree of arrays (``jax.Array``, NumPy, Python scalars).
          extra: a JSON-serialisable dict stored beside the state (default ``{}``).
          metrics: the step's metrics; with ``best_metric`` set they must contain it (pass
            ``None`` for steps that were not evaluated; those are kept by recency only).
          force: save even where orbax would skip (it skips a step not newer than the latest).

        Returns:
          Whether a save was started. With ``async_save`` it finishes in the background.
        """
        if self._read_only:
            raise RuntimeError(f"Checkpointer on {self._directory} is read-only")
        extra = {} if extra is None else extra
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as error:  # fail here, not in the background thread
            raise TypeError(f"extra for step {step} is not JSON-serialisable: {error}") from None
        if metrics is not None:
            metrics = {str(k): float(v) for k, v in metrics.items()}
            if self._best_metric is not None and self._best_metric not in metrics:
                raise ValueError(
                    f"metrics for step {step} lack best_metric {self._best_metric!r} "
                    f"(got {sorted(metrics)}); pass metrics=None for a step without it"
                )
        digests, _ = state_checks(state)
        extra = extra | {DIGESTS: digests}
        args = ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(state), EXTRA: ocp.args.JsonSave(extra)}
        )
        return bool(
            self._manager.save(
                step,
                args=args,
                metrics=metrics if self._best_metric is not None else None,
                force=force,
            )
        )

    def wait_until_finished(self) -> None:
        """Blocks until a save in flight is committed (and old steps deleted); raises its error."""
        self._manager.wait_until_finished()

    def check_for_errors(self) -> None:
        """Raises the error of a background save that has failed (a full disk …), without
        waiting for one still in flight."""
        self._manager.check_for_errors()

    # -- restoring -----------------------------------------------------------------------------

    def _check_target(self, target: Any, step: int) -> None:
        """Raises a ``ValueError`` naming what differs when ``target`` does not match the saved
        tree (orbax's own error for this is a deep traceback that names neither)."""
        saved_tree = self._manager.item_metadata(step)[STATE].tree
        saved, wanted = _leaf_shapes(saved_tree), _leaf_shapes(target)
        missing = sorted(p for p in saved if p not in wanted)
        unknown = sorted(p for p in wanted if p not in saved)
        reshaped = sorted(
            p
            for p in saved
            if p in wanted and None not in (saved[p], wanted[p]) and saved[p] != wanted[p]
        )
        if not (missing or unknown or reshaped):
            return
        lines = [
            f"the restore target does not match the state saved at step {step} in "
            f"{self._directory}:"
        ]
        if missing:
            lines.append(f"  saved but not in the target ({len(missing)}): {_listing(missing)}")
        if unknown:
            lines.append(f"  in the target but not saved ({len(unknown)}): {_listing(unknown)}")
        if reshaped:
            shown = ", ".join(
                f"{'/'.join(p)} saved {saved[p]} target {wanted[p]}" for p in reshaped[:_SHOWN]
            )
            lines.append(f"  different shapes ({len(reshaped)}): {shown}")
        raise ValueError("\n".join(lines))

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
        """Reads ``step`` (default: the latest finalized one) into the structure of ``target``.

        Args:
          target: a pytree like the saved state, of arrays or of ``jax.ShapeDtypeStruct``s
            (e.g. from ``jax.eval_shape``). Arrays are placed on each leaf's ``sharding``; a
            leaf without one gets the sharding recorded in the checkpoint, which only exists
            on the same device topology, so give shardings when resuming on another mesh.
          step: which step; ``None`` for the latest.

        Returns:
          ``(state, extra)``: the state with ``target``'s tree structure (an ``nnx.State``
          stays one) and the JSON ``extra`` saved with it.

        Raises:
          FileNotFoundError: no finalized checkpoint (for ``step``) in the directory.
          ValueError: ``target``'s paths or shapes differ from the saved tree.
          CheckpointDamaged: the step's files cannot be read, its arrays differ from the
            digests saved with them, or they hold NaN or infinity.
        """
        step = self._resolve(step)
        self._check_target(target, step)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    **{STATE: ocp.args.StandardRestore(target), EXTRA: ocp.args.JsonRestore()}
                ),
            )
        except Exception as error:  # orbax and TensorStore raise many kinds for a bad file
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise CheckpointDamaged(
                step, f"its files cannot be read ({type(error).__name__}: {first[:300]})"
            ) from None
        state, extra = restored[STATE], dict(restored[EXTRA] or {})
        self._verify(step, state, extra.pop(DIGESTS, None))
        return state, extra

    def _verify(self, step: int, state: Any, saved: dict[str, str] | None) -> None:
        """Raises :class:`CheckpointDamaged` when the restored ``state`` differs from the
        digests saved with it or holds non-finite values (steps saved before digests were
        recorded are checked for non-finite values only)."""
        digests, nonfinite = state_checks(state)
        if saved is not None:
            differing = sorted(p for p in digests if saved.get(p, digests[p]) != digests[p])
            if differing:
                raise CheckpointDamaged(
                    step,
                    f"{len(differing)} of its arrays differ from the digests saved with them "
                    f"({', '.join(differing[:_SHOWN])})",
                )
        if nonfinite:
            raise CheckpointDamaged(
                step,
                f"{len(nonfinite)} of its arrays hold NaN or infinity "
                f"({', '.join(nonfinite[:_SHOWN])})",
            )

    def set_aside(self, steps: list[int], suffix: str = "damaged") -> list[str]:
        """Renames each of ``steps`` to ``<step>.<suffix>`` (no longer a step: never read,
        never deleted, and the step number is free to save again); returns the new names.
        Every process calls it; the primary process renames."""
        if self._read_only:
            raise RuntimeError(f"Checkpointer on {self._directory} is read-only")
        self.wait_until_finished()
        names = []
        for step in steps:
            path = ocp.step.build_step_path(self._directory, ocp.step.standard_name_format(), step)
            aside = path.parent / f"{path.name}.{suffix}"
            if jax.process_index() == 0 and path.exists():
                path.rename(aside)
            names.append(str(aside))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("aslx checkpoints set aside")
        self._manager.reload()
        return names

    def verifies(self, target: Any, step: int) -> bool:
        """Whether ``step`` restores into ``target`` and verifies."""
        try:
            self.restore(target, step)
        except (CheckpointDamaged, ValueError, FileNotFoundError):
            return False
        return True

    def read_extra(self, step: int | None = None) -> dict:
        """The ``extra`` dict of ``step`` (default: the latest), without reading any array."""
        step = self._resolve(step)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(**{EXTRA: ocp.args.JsonRestore()})
        )
        extra = dict(restored[EXTRA] or {})
        extra.pop(DIGESTS, None)
        return extra

    def read_arrays(self, step: int | None = None) -> dict:
        """The saved state of ``step`` (default: the latest) as NumPy arrays, without a target.

        The tree is what orbax stored: nested dicts (``nnx.State`` layers and namedtuple
        fields become dict keys, strings throughout) and lists (tuples); empty nodes such as
        optax's ``EmptyState`` are dropped or ``None``.
        """
        step = self._resolve(step)
        # PyTreeCheckpointHandler reads the same files as StandardCheckpointHandler but
        # accepts a restore type per leaf: NumPy, so no device or saved sharding is needed.
        # A second manager over the same directory must be read-only: a writer's would delete
        # the temporary directory of a save this checkpointer has in flight.
        reader = ocp.CheckpointManager(
            self._directory,
            options=dataclasses.replace(
                self._options, read_only=True, create=False, cleanup_tmp_directories=False
            ),
            item_handlers={
                STATE: ocp.PyTreeCheckpointHandler(),
                EXTRA: ocp.JsonCheckpointHandler(),
            },
        )
        try:
            saved_tree = reader.item_metadata(step)[STATE].tree
            restore_args = jax.tree.map(
                lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved_tree
            )
            restored = reader.restore(
                step,
                args=ocp.args.Composite(
                    **{STATE: ocp.args.PyTreeRestore(restore_args=restore_args)}
                ),
            )
        finally:
            reader.close()
        return restored[STATE]

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Waits for a save in flight, then releases orbax's threads. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def has_steps(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a finalized checkpoint step (without opening a manager,
    which would create the folder and clean it)."""
    directory = files.path(directory)
    if not directory.is_dir():
        return False
    return any(
        p.name.isdigit() and ocp.step.is_checkpoint_finalized(p) for p in directory.iterdir()
    )


def read_arrays(directory: str | os.PathLike, step: int | None = None) -> dict:
    """The state saved at ``step`` (default: the latest) in ``directory`` as NumPy arrays.

    Needs no target and no devices (for inspection, export, averaging checkpoints); see
    :meth:`Checkpointer.read_arrays` for the tree's form. Raises ``FileNotFoundError`` when the
    directory holds no finalized checkpoint (for ``step``).
    """
    with Checkpointer(directory, read_only=True) as checkpointer:
        return checkpointer.read_arrays(step)
