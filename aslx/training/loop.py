"""What every training program does around its step: records, the training stream, state on
the mesh, resume, and the loop itself (log, evaluate, checkpoint, stop cleanly). The library
objects a config stands for (input, optimiser, readers) come from :mod:`aslx.training.config`.

The one trainer (:mod:`aslx.training.trainer`) runs every objective through these, so every
run resumes, logs and fails the same way.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator

import jax
import ml_collections
import numpy as np

from aslx import files, processes
from aslx.input import fit, pipeline
from aslx.input.batch import device_batch
from aslx.records.metadata import NoSuchSplit, RecordSet
from aslx.run import card as card_lib
from aslx.run import checkpoint as checkpoint_lib
from aslx.run import lock as lock_lib
from aslx.run import provenance
from aslx.training import compile_cache, metrics_log, sharding
from aslx.training import config as config_lib
from aslx.training import step as step_lib
from aslx.training.config import ConfigError


class TrainingError(RuntimeError):
    """The run cannot go on; the message says why and at which step."""


#: What a trainer raises for a user to fix, each message naming the file or field and the fix:
#: a bad config or record set, a workdir that holds another run, a run that cannot go on (a
#: preempted one, in a script, :func:`completed`). A program ends them in one line
#: (:func:`aslx.cli.fail`); anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, TrainingError, FileNotFoundError)


#: The one key of what a trainer's ``train()`` returns for a run stopped by a preemption notice
#: (its checkpoint saved): ``{STOPPED_AT: step}``.
STOPPED_AT = "stopped_at"


def completed(result: dict, workdir) -> dict:
    """``result``, the dict a trainer's ``train()`` returned, when its run reached the last
    step. A run stopped by a preemption notice returns ``{STOPPED_AT: step}``: this raises
    :class:`TrainingError` naming ``workdir`` and the step, so a script that trains several
    runs in one process stops there instead of starting the next one after the notice (the
    scheduler's kill would follow mid-run)."""
    if STOPPED_AT in result:
        raise TrainingError(
            f"{workdir}: stopped by a preemption notice (SIGTERM) at step "
            f"{result[STOPPED_AT]}; rerun the same command to resume"
        )
    return result


def open_records(config: ml_collections.ConfigDict, splits) -> RecordSet:
    """The record set of ``config.data.dir``, checked to hold ``splits`` (empty ones skipped)."""
    folder = files.path(config.data.dir)
    if not (folder / "metadata.json").is_file():
        raise ConfigError(
            f"config.data.dir={config.data.dir!r}: no record set there (no metadata.json); "
            "write one with python -m aslx.ingest"
        )
    records = RecordSet(folder)
    for split in splits:
        if split:
            try:
                records.require_split(split, "set config.data.*_split")
            except NoSuchSplit as e:
                raise ConfigError(str(e)) from None
    return records


def use_compilation_cache(config: ml_collections.ConfigDict, say: Callable) -> str | None:
    """Turns on the persistent compilation cache of ``config.compilation_cache``
    (:mod:`aslx.training.compile_cache`) and says where it is; returns the folder."""
    cache = compile_cache.enable(config.compilation_cache)
    if cache:
        say(f"compilation cache: {cache}")
    return cache


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """``jax.distributed.initialize()`` when ``config.distributed``, with the coordinator,
    process count and id of the config where given (else JAX detects them). On CPUs the
    processes talk through gloo."""
    if not config.distributed:
        return
    kwargs = {}
    if config.coordinator_address:
        kwargs["coordinator_address"] = config.coordinator_address
    if config.num_processes > 0:
        kwargs["num_processes"] = config.num_processes
    if config.process_id >= 0:
        kwargs["process_id"] = config.process_id
    # Cross-process collectives of the CPU backend (tests, CPU clusters); GPUs and TPUs use
    # their own, whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kwargs)


def global_train_batches(
    config: ml_collections.ConfigDict,
    records: RecordSet,
    input_config: pipeline.InputConfig,
    start_step: int,
) -> Iterator[dict]:
    """This process's rows of every global training batch from ``start_step`` on: its readers'
    batches (the arrays that go to the devices, and ``clip_id``), concatenated. Reader ``r`` of
    ``R`` reads shard files ``r, r + R, …`` with the pipeline's resumable stream, so the global
    batches depend on ``(seed, step, R)`` only, never on how many processes share the readers.
    Each batch is cut to the smallest bound of :func:`aslx.training.config.bucket_bounds` that
    holds the global batch's longest clip."""
    total, mine = config_lib.readers(config)
    bounds = config_lib.bucket_bounds(config, records)
    streams = [
        pipeline.train_batches(
            records,
            config.data.train_split,
            input_config,
            start_step=start_step,
            process_index=r,
            process_count=total,
        )
        for r in mine
    ]
    while True:
        parts = [
            device_batch(batch) | {"clip_id": batch["clip_id"]}
            for batch in (next(stream) for stream in streams)
        ]
        batch = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        # every process cuts the global batch to the same length
        longest = processes.max_over(int(batch["frame_mask"].sum(1).max()))
        yield pipeline.trim_frames(batch, fit.bucket_length(longest, bounds))


@contextlib.contextmanager
def claimed_workdir(workdir: files.PathLike, lead: bool, say: Callable) -> Iterator:
    """The run's workdir, held for the run (:class:`aslx.run.lock.WorkdirLock`, taken by
    process 0 for all). A start that fails before its first checkpoint removes a workdir it
    created, so a mistyped flag leaves no empty folder behind; an existing workdir is never
    removed."""
    workdir = files.path(workdir)
    created = not workdir.exists()
    lock = lock_lib.WorkdirLock(workdir, say) if lead else contextlib.nullcontext()
    try:
        with lock:
            yield workdir
    except lock_lib.WorkdirBusy as e:
        raise TrainingError(str(e)) from None
    except BaseException:
        if lead and created and not checkpoint_lib.has_steps(workdir / "checkpoints"):
            files.remove_tree(workdir)
        raise


def _card_differences(old: dict, new: dict) -> list[str]:
    """``field: old -> new`` for each model-card field that differs (the model config's
    fields one by one); a field the old card lacks (written by an older aslx) is not
    compared."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in old or old[key] is None and key == "train_frames":
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "vocab":
            out += [f"{key}.{d}" for d in _card_differences(a, b)]
        elif a != b:
            out.append(key if key == "vocab" else f"{key}: {a!r} -> {b!r}")
    return out


def check_run_files(
    workdir: files.PathLike, card: card_lib.ModelCard, started: dict, earlier: dict | None
) -> None:
    """Refuses, before anything is written and on every process, a start in a workdir that
    holds another model's card (another preset, other records, another size: its checkpoints
    belong to that model) or a run started (``earlier``, its ``provenance.json``) with other
    records or training fields than this start's (``started``,
    :func:`aslx.run.provenance.record`); the message names each field that differs."""
    if card_lib.exists(workdir):
        old = card_lib.read(workdir).to_json()
        differences = _card_differences(old, card.to_json())
        if differences:
            shown = "; ".join(differences[:4]) + (" …" if len(differences) > 4 else "")
            raise ConfigError(
                f"{workdir} holds a run of another model ({shown}); nothing was changed there: "
                "give a new --workdir, or the config and records that run was trained with"
            )
    if earlier is not None:
        differences = provenance.differences(earlier, started)
        if differences:
            raise ConfigError(
                f"{workdir} was started with other records or settings "
                f"({'; '.join(differences)}); nothing was changed there: rerun with what it was "
                "started with (only total_steps may grow), or give a new --workdir"
            )


def write_run_files(
    workdir: files.PathLike, card: card_lib.ModelCard, config, started: dict
) -> None:
    """The workdir's ``model.json`` (the model card), ``config.json`` (the run's whole
    config) and ``provenance.json`` (``started``), each written whole or not at all; call it on
    process 0 after :func:`check_run_files`, and only for a start that trains."""
    card_lib.write(workdir, card)
    files.write_text(
        files.path(workdir) / card_lib.CONFIG_FILE, config.to_json_best_effort(indent=1) + "\n"
    )
    provenance.write(workdir, started)


def open_log(
    config: ml_collections.ConfigDict, workdir, start_step: int, say: Callable
) -> metrics_log.MetricsLog:
    """The run's metrics log; only process 0 writes."""
    return metrics_log.MetricsLog(
        workdir,
        total_steps=config.total_steps,
        global_batch_size=config.batch_size,
        enabled=jax.process_index() == 0,
        console_every=config.log_every,
        start_step=start_step,
        print_fn=say,
    )


def place_state(params, tx, mesh, ema_of: Callable | None = None):
    """``(state, shardings)``: a fresh training state built directly with its shardings (the
    EMA of ``ema_of(params)``, :func:`aslx.training.step.init_state`)."""

    def init(p):
        return step_lib.init_state(p, tx, ema_of)

    shardings = sharding.state_shardings(jax.eval_shape(lambda: init(params)), mesh)
    state = jax.jit(init, out_shardings=shardings)(params)
    return state, shardings


def resume(
    checkpoints: checkpoint_lib.Checkpointer, state, say: Callable, from_good: bool = False
) -> tuple:
    """``(state, start_step, seconds)``: the latest checkpoint's state, step and the wall
    seconds the run had trained for when it was saved (over all its starts), or the fresh
    state at step 0 and 0 seconds.

    A damaged latest checkpoint (unreadable, unlike its digests, holding NaN) ends the run
    with one line naming the steps that verify and the flag that resumes from the newest of
    them; with ``from_good`` (that flag) the run resumes there and sets the later steps aside
    (``<step>.damaged``)."""
    steps = checkpoints.all_steps()
    if not steps:
        return state, 0, 0.0
    try:
        restored, extra = checkpoints.restore(state)
    except checkpoint_lib.CheckpointDamaged as e:
        good = _newest_good(checkpoints, state, before=e.step)
        if good is None:
            raise TrainingError(
                f"{checkpoints.directory}: {e}; no earlier step restores either (when every "
                "step fails alike, suspect this machine rather than the files); with the files "
                "damaged, start again with a new --workdir"
            ) from None
        step, restored, extra = good
        if not from_good:
            raise TrainingError(
                f"{checkpoints.directory}: {e}; step {step} verifies: rerun with "
                "--config.resume_from_good=True to resume from it (the later steps are set "
                "aside, not deleted)"
            ) from None
        names = checkpoints.set_aside([s for s in steps if s > step])
        say(f"{e}; resuming from step {step}, the later steps set aside: {', '.join(names)}")
    except ValueError as e:  # the saved tree is not this run's (another model, older aslx)
        detail = "; ".join(line.strip() for line in str(e).splitlines())
        raise TrainingError(
            f"{detail}. Its checkpoints cannot resume this run: give a new --workdir"
        ) from None
    state = restored
    start_step = int(extra["next_step"])
    say(f"resumed from {checkpoints.directory} at step {start_step}")
    return state, start_step, float(extra.get("seconds", 0.0))


def _newest_good(checkpoints: checkpoint_lib.Checkpointer, state, before: int) -> tuple | None:
    """``(step, state, extra)`` of the newest step before ``before`` that restores and
    verifies (each tried once, newest first), or ``None``."""
    for step in reversed(checkpoints.all_steps()):
        if step < before:
            try:
                return step, *checkpoints.restore(state, step)
            except (checkpoint_lib.CheckpointDamaged, ValueError):
                continue
    return None


class PreemptionNotice:
    """Whether a preemption notice (SIGTERM) says to stop after this step, the same step on
    every process.

    One process: a SIGTERM handler sets a flag, read after each step. Several processes
    (``jax.distributed``): the hosts must agree, or one enters the collective save while another
    enters the next step and both wait forever. JAX's preemption sync manager (started by
    ``jax.distributed.initialize``) catches the SIGTERM on whichever host gets it, tells the
    coordinator, and :func:`~jax.experimental.multihost_utils.reached_preemption_sync_point`
    then answers true on every host at the same step (one past the furthest host's step when
    the notice spread). No Python handler is installed there: it would replace JAX's.
    """

    def __init__(self):
        self._signal = None
        self._distributed = jax.process_count() > 1
        self._previous = None
        if not self._distributed:
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self._signal = signum

    def reached(self, step: int) -> bool:
        """True when the run should save and stop after ``step``; call it after every step."""
        if self._distributed:
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(step)
        return self._signal is not None

    def close(self) -> None:
        """Gives SIGTERM back to the handler it had before."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def clip_listing(clip_ids, shown: int = 4) -> str:
    """``clips a, b, c, d … (16 in all)``: a batch's clips (``[batch]`` bytes), padding left
    out; on several processes, this process's rows."""
    if clip_ids is None:
        return "clips not known"
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in clip_ids]
    names = [n for n in names if n]
    more = f" … ({len(names)} in all)" if len(names) > shown else ""
    return f"clips {', '.join(names[:shown])}{more}" if names else "no clips (padding only)"


@contextlib.contextmanager
def save_errors(checkpoints: checkpoint_lib.Checkpointer, step: int, begun: list[int]):
    """Turns a failed checkpoint save into one :class:`TrainingError` line naming the save that
    failed (the oldest of ``begun``, the steps whose saves this run began, newer than the
    newest step on disk: a background save's error surfaces a few steps later), the cause
    (:func:`aslx.files.storage_fault`: disk full, read-only …) and where to resume from.

    The checkpointer is closed before the error is raised: its background writer is dead,
    and leaving it to the interpreter's exit would print its threads' tracebacks."""
    try:
        yield
    except Exception as error:  # noqa: BLE001  orbax and TensorStore raise many kinds
        cause = (
            files.storage_fault(error)
            or f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        )
        with contextlib.suppress(Exception):  # the same error again, already in hand
            checkpoints.close()
        kept = checkpoints.all_steps()  # a failed save is never finalized
        failed = min((s for s in begun if s > max(kept, default=-1)), default=step)
        resume = f"it resumes from step {max(kept)}" if kept else "it starts again"
        raise TrainingError(
            f"step {step}: saving the checkpoint of step {failed} in {checkpoints.directory} "
            f"failed, {cause}; the run stopped. Fix that and rerun the same command: {resume}"
        ) from None


class Saves:
    """The checkpoints one start of a run saves, and the training seconds each records.

    ``seconds_before`` is the wall time of the run's earlier starts (:func:`resume`); each
    save records the total so far, so that a resumed run's figure covers all its starts. A
    save that fails, now or in the background, ends the run in one line (:func:`save_errors`).
    """

    def __init__(self, checkpoints, config, start_step: int, seconds_before: float):
        self.checkpoints, self.config, self.start_step = checkpoints, config, start_step
        self.began = time.monotonic()
        self.seconds_before = seconds_before
        self.begun: list[int] = []  # the steps whose saves this start began
        self.recorded = [seconds_before]  # the seconds each save records, the newest last

    def save(self, step: int, state, metrics: dict | None = None) -> None:
        """Saves ``state`` as ``step`` unless that step is already saved (or is where this
        start began)."""
        if step == (self.begun[-1] if self.begun else self.start_step):
            return
        self.recorded.append(self.seconds_before + time.monotonic() - self.began)
        extra = {"next_step": step, "seed": self.config.seed, "seconds": self.recorded[-1]}
        with save_errors(self.checkpoints, step, self.begun + [step]):
            self.checkpoints.save(step, state, extra=extra, metrics=metrics)
        self.begun.append(step)

    def check(self, step: int) -> None:
        """Raises the error of a background save that failed."""
        with save_errors(self.checkpoints, step, self.begun):
            self.checkpoints.check_for_errors()

    def wait(self, step: int) -> None:
        """Waits for every save begun to be written."""
        with save_errors(self.checkpoints, step, self.begun):
            self.checkpoints.wait_until_finished()

    @property
    def seconds(self) -> float:
        """The training seconds over all starts, as the newest save records them."""
        return self.recorded[-1]


def check_finite(pending, max_nonfinite: int) -> None:
    """Raises :class:`TrainingError` when ``pending`` (``(step, non-finite steps in a row,
    clip ids)`` of a step, or ``None``) shows ``max_nonfinite`` non-finite losses in a row."""
    if pending is not None and int(pending[1]) >= max_nonfinite:
        step, _, clip_ids = pending
        raise TrainingError(
            f"step {step}: the loss was not finite for {max_nonfinite} steps in a "
            f"row, the last of those batches holding {clip_listing(clip_ids)}; lower config.lr "
            "or check those clips"
        )


def step_compiling(train_step, state, batch, key, frozen, step: int, lengths: set, log, say):
    """``(state, metrics)`` of the first step at a new batch length: the step is compiled (or
    loaded from the compilation cache) first; the log says which and how long it took, and
    leaves that step out of its throughput."""
    length = batch["frame_mask"].shape[1]
    lengths.add(length)
    say(f"step {step + 1}: compiling the step for {length} frames ({len(lengths)} lengths so far)")
    started = time.monotonic()
    with compile_cache.watch() as cache:  # compiling is synchronous
        state, metrics = train_step(state, batch, key, frozen)
    how = (
        "loaded from the compilation cache" if cache["hits"] and not cache["misses"] else "compiled"
    )
    seconds = time.monotonic() - started
    log.leave_out(1, seconds)
    say(f"step {step + 1}: {how} in {seconds:.1f} s")
    return state, metrics


def log_step(step: int, metrics, extra: dict, log, on_log) -> None:
    """Writes a logged step's metrics (fetched from the device) with ``extra`` to the log and
    the console, then calls ``on_log(step, metrics)``, which may stop the run."""
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()} | extra
    log.write(step, metrics)
    log.console(step, metrics)
    if on_log is not None:
        on_log(step, metrics)


def run(
    *,
    config: ml_collections.ConfigDict,
    state,
    train_step: Callable,
    batches: Iterator[dict],
    to_device: Callable,
    key: jax.Array,
    start_step: int,
    checkpoints: checkpoint_lib.Checkpointer,
    log: metrics_log.MetricsLog,
    schedule: Callable,
    seconds_before: float = 0.0,
    frozen=None,
    evaluate: Callable[[object, int], dict | None] | None = None,
    on_log: Callable[[int, dict], None] | None = None,
    say: Callable = print,
) -> tuple:
    """Steps from ``start_step`` to ``config.total_steps``.

    Every ``log_every`` steps the metrics are logged and ``on_log(step, metrics)`` may raise
    :class:`TrainingError`; ``evaluate(state, step)`` returns scores to log and save with the
    checkpoint (or ``None``). Checkpoints every ``checkpoint_every`` steps, at evaluations and
    at the end (:class:`Saves`). SIGTERM (preemption) saves and stops: see
    :class:`PreemptionNotice`. A run whose loss stayed non-finite for ``max_nonfinite`` steps
    in a row raises :class:`TrainingError` naming the step; the counter is read one step late,
    so the host never waits on the device for it.

    Returns:
      ``(state, last step, stopped by a preemption notice, seconds trained over all starts)``,
      the seconds as the last checkpoint records them (a start with no step to take adds
      none).
    """
    saves = Saves(checkpoints, config, start_step, seconds_before)
    preemption = PreemptionNotice()
    train_step = processes.CompiledTogether(train_step, "train_step")
    step, previous, stopped = start_step, None, False
    lengths = set()  # one compilation of the step per batch length (bucket)
    try:
        while step < config.total_steps and not stopped:
            host_batch = next(batches)
            clip_ids = host_batch.pop("clip_id", None)
            length = host_batch["frame_mask"].shape[1]
            batch = to_device(host_batch)
            if length in lengths:
                state, metrics = train_step(state, batch, key, frozen)
            else:
                state, metrics = step_compiling(
                    train_step, state, batch, key, frozen, step, lengths, log, say
                )
            step += 1
            check_finite(previous, config.max_nonfinite)
            previous = (step, metrics["nonfinite"], clip_ids)
            if step % config.log_every == 0 or step == config.total_steps:
                check_finite(previous, config.max_nonfinite)
                extra = {"lr": float(schedule(step - 1)), "compilations": float(len(lengths))}
                log_step(step, metrics, extra | {"batch_frames": float(length)}, log, on_log)
            scores = evaluate(state, step) if evaluate is not None else None
            if scores is not None or step % config.checkpoint_every == 0:
                saves.save(step, state, scores)
            stopped = preemption.reached(step)
            if step % config.log_every == 0:  # a background save that failed stops the run
                saves.check(step)
        check_finite(previous, config.max_nonfinite)
        saves.save(step, state)
        saves.wait(step)
    finally:
        with contextlib.suppress(Exception):  # already said, or being raised
            checkpoints.wait_until_finished()
        preemption.close()
        log.close()
        if hasattr(batches, "close"):
            # now, not at the interpreter's exit, where a tf.data iterator's destructor can wait
            # forever for worker threads already gone (a run stopped by an error hung so)
            batches.close()
    if stopped:
        say(f"stopped by a preemption notice (SIGTERM) at step {step}; rerun the command to resume")
    return state, step, stopped, saves.seconds
