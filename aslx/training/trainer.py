"""The one trainer: a training job for any objective, in the order a run goes.

    python -m finetune.main --config configs/finetune_tiny.py --workdir runs/finetune_tiny
    python -m pretrain.main --config configs/pretrain_tiny.py --workdir runs/pretrain_tiny

Both programs call :func:`train` with their :class:`Job`: finetuning
(:class:`aslx.training.finetuning.FinetuneJob`) and Data2vec pretraining
(:class:`aslx.training.pretraining.PretrainJob`). A job says only what differs between
objectives: its model and loss (:meth:`Job.build`), where its weights start
(:meth:`Job.start_from`), which metric picks the best checkpoint, what it evaluates during
training, when its metrics say stop, and what it reports at the end. Everything else is here,
once, in sections:

    set-up → records → model (job) → run files → state on the mesh → resume → compile
    → loop (step, log, evaluate, checkpoint: :func:`aslx.training.loop.run`) → results (job)

:func:`make_step` is the one step builder: the trainer jits it, and the step benchmark
(``benchmarks/train_step.py``) and ahead-of-time compilation build theirs with it, so every
measured or compiled step is the one a run takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
from flax import nnx

from aslx import vocab as vocab_lib
from aslx.input import pipeline
from aslx.landmarks import presets
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset
from aslx.model import config as model_config_lib
from aslx.model import model as model_lib
from aslx.model.config import ModelConfig
from aslx.records.metadata import RecordSet
from aslx.run import card as card_lib
from aslx.run import checkpoint as checkpoint_lib
from aslx.run import provenance
from aslx.run import results as results_lib
from aslx.training import config as config_lib
from aslx.training import loop, sharding, warm_start
from aslx.training import step as step_lib
from aslx.training.config import ConfigError


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a job's model reads, known before any model exists: the landmark preset, how the
    points are normalised and the records' vocabulary (``None`` where labels are unused)."""

    preset: Preset
    normalization: Normalization
    vocab: vocab_lib.Vocab | None = None


@dataclasses.dataclass(frozen=True)
class Model:
    """What a job trains, as :meth:`Job.build` returns it.

    ``loss_fn(params, batch, key, step, frozen) -> (loss, aux)`` is the objective
    (:mod:`aslx.training.step`); ``params`` the fresh parameters (abstract shapes when built
    with ``abstract=True``); ``ema_decay`` a number or a function of the step; the EMA follows
    ``ema_of(params)`` (``None``: every parameter); with ``teacher_is_ema`` the loss reads the
    EMA as its teacher (Data2vec), else ``frozen`` (a distillation teacher's parameters, never
    trained). ``lr_multipliers`` scale the learning rate by parameter path; ``card_extra`` adds
    fields to the model card.
    """

    config: ModelConfig
    task: str
    graphdef: nnx.GraphDef
    params: Any
    loss_fn: Callable
    ema_decay: float | Callable
    ema_of: Callable | None = None
    teacher_is_ema: bool = False
    frozen: Any = None
    lr_multipliers: dict | None = None
    card_extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Run:
    """One start of a job, as the trainer set it up, for the job's evaluation and results."""

    config: ml_collections.ConfigDict
    workdir: Any
    records: RecordSet
    inputs: Inputs
    input_config: pipeline.InputConfig
    model: Model
    mesh: jax.sharding.Mesh
    lead: bool
    say: Callable


class Job:
    """One objective's part in a run; the defaults suit an objective with no evaluation."""

    #: what the log calls the run ("training", "pretraining")
    verb = "training"

    def splits(self, config: ml_collections.ConfigDict) -> tuple[str, ...]:
        """The record splits the run reads (empty names skipped)."""
        return (config.data.train_split,)

    def check_records(self, config: ml_collections.ConfigDict, records: RecordSet) -> None:
        """Raises :class:`~aslx.training.config.ConfigError` when the records do not suit."""

    def build(
        self, config: ml_collections.ConfigDict, inputs: Inputs, *, abstract: bool = False
    ) -> Model:
        raise NotImplementedError

    def start_from(self, config, params, workdir, say) -> tuple[Any, dict | None]:
        """``(params, record)``: the parameters training starts from and what the run records
        of where they came from (``None``: a fresh start). Nothing may be written yet."""
        return params, None

    def best_metric(self, config, inputs: Inputs) -> tuple[str | None, str]:
        """``(metric, 'max' or 'min')`` that picks the best checkpoint; ``None``: no best."""
        return None, "max"

    def evaluation(self, run: Run, log) -> Any:
        """What evaluates the weights during training (``None``: nothing): an object whose
        ``during_training(state, step)`` returns the scores of an evaluation step, logged to
        ``log`` and saved with the checkpoint, or ``None`` at other steps."""
        return None

    def on_log(self, config, step: int, metrics: dict) -> None:
        """Called with each logged step's metrics; raises ``TrainingError`` to stop."""

    def describe(self, run: Run, params) -> str:
        """The log's first line about the model."""
        name = model_config_lib.size_name(run.config.model.size, run.model.config)
        preset = run.inputs.preset
        return (
            f"{self.verb} {name} ({model_lib.count_params(params):,} parameters, "
            f"{preset.name} {preset.num_landmarks} points)"
        )

    def results(self, run: Run, evaluation, state, finished: dict, checkpoints) -> dict:
        """What ``results.json`` holds, written there by process 0; ``finished`` has
        ``steps``, ``seconds`` and ``workdir``, ``evaluation`` is :meth:`evaluation`'s. With no
        evaluation to choose by, the raw weights of the last step."""
        checkpoints.close()
        results = finished | {"selected_weights": "raw"}
        if run.lead:
            results_lib.write(run.workdir, results)
        return results


# --- the step -------------------------------------------------------------------------------------


def make_step(
    config: ml_collections.ConfigDict, model: Model, tx, mesh: jax.sharding.Mesh | None = None
) -> Callable:
    """``step_fn(state, batch, key, frozen) -> (state, metrics)`` of ``model``'s objective:
    augmentation and the loss inside, gradient accumulation of ``config.grad_accum_steps``,
    the EMA, the non-finite guard (:func:`aslx.training.step.make_train_step`); not jitted.
    Traced under ``mesh``, so the model keeps its activations split along the batch
    (:mod:`aslx.model.partitioning`)."""
    step_fn = step_lib.make_train_step(
        model.loss_fn,
        tx,
        ema_decay=model.ema_decay,
        grad_accum_steps=config.grad_accum_steps,
        teacher_is_ema=model.teacher_is_ema,
        ema_of=model.ema_of,
    )
    if mesh is None:
        return step_fn

    def on_mesh(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return step_fn(*args)

    return on_mesh


def optimizer_for(config: ml_collections.ConfigDict, model: Model):
    """``(tx, schedule)`` of ``config`` with the model's learning-rate multipliers."""
    return config_lib.optimizer_for(config, model.lr_multipliers)


def init_state(model: Model, params, tx) -> dict:
    """A fresh training state of ``params`` (:func:`aslx.training.step.init_state`)."""
    return step_lib.init_state(params, tx, model.ema_of)


# --- the phases of a run --------------------------------------------------------------------------


def train(config: ml_collections.ConfigDict, workdir, job: Job, *, print_fn=print) -> dict:
    """Runs ``job`` as ``config`` says in ``workdir``; resumes when it holds a checkpoint.

    Returns what ``workdir/results.json`` holds, or ``{loop.STOPPED_AT: step}`` when a
    preemption notice stopped the run (its checkpoint saved).
    """
    config_lib.check(config)
    loop.initialize_distributed(config)
    lead = jax.process_index() == 0
    say = print_fn if lead else (lambda *a, **k: None)
    with loop.claimed_workdir(workdir, lead, say) as workdir:
        loop.use_compilation_cache(config, say)
        return run_job(config, workdir, job, lead, say)


def read_inputs(config: ml_collections.ConfigDict, job: Job) -> tuple:
    """``(records, inputs, input_config)``: the run's record set (checked to hold the job's
    splits and suit the job), what its model reads of it, and one reader's host pipeline; every
    data setting is checked here, before anything is built or written."""
    records = loop.open_records(config, job.splits(config))
    job.check_records(config, records)
    preset = presets.get(config.data.preset) if config.data.preset else records.preset
    inputs = Inputs(preset, config_lib.normalization(config, records), records.vocab)
    return records, inputs, config_lib.input_config(config, preset)


def model_card(
    config: ml_collections.ConfigDict, records: RecordSet, inputs: Inputs, model: Model
) -> card_lib.ModelCard:
    """The run's model card: the one record of what the trained model is and reads."""
    return card_lib.ModelCard(
        model=model.config,
        vocab=records.vocab,
        preset=inputs.preset.name,
        task=model.task,
        max_frames=config.data.max_frames,
        normalization=inputs.normalization,
        train_frames=records.frame_summary(),
        long_clips=config.data.long_clips,
        buckets=config_lib.bucket_bounds(config, records),
        **model.card_extra,
    )


def place(config: ml_collections.ConfigDict, model: Model, params, mesh):
    """``(state, shardings, frozen, schedule, tx)``: the fresh state built on the mesh with its
    shardings, and the frozen teacher's parameters sharded like the model's."""
    tx, schedule = optimizer_for(config, model)
    state, shardings = loop.place_state(params, tx, mesh, model.ema_of)
    frozen = sharding.shard_params(model.frozen, mesh) if model.frozen is not None else None
    return state, shardings, frozen, schedule, tx


def checkpointer(run: Run, job: Job) -> checkpoint_lib.Checkpointer:
    """The run's checkpoints: the last ``keep_last`` and the best by the job's metric."""
    metric, mode = job.best_metric(run.config, run.inputs)
    return checkpoint_lib.Checkpointer(
        run.workdir / "checkpoints",
        keep_last=run.config.keep_last,
        best_metric=metric,
        best_mode=mode,
    )


def run_job(config: ml_collections.ConfigDict, workdir, job: Job, lead: bool, say) -> dict:
    """:func:`train` in a workdir this process holds."""
    # --- records and model ------------------------------------------------------------------------
    records, inputs, input_config = read_inputs(config, job)
    model = job.build(config, inputs)
    params, source_record = job.start_from(config, model.params, workdir, say)
    # --- refused here, before anything is written: another model, other records or settings ------
    card = model_card(config, records, inputs, model)
    try:
        earlier = provenance.read(workdir)
        finished = results_lib.read(workdir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    started = provenance.record(config, config.data.dir, records.identity(), earlier)
    loop.check_run_files(workdir, card, started, earlier)
    # --- state on the mesh, resume ----------------------------------------------------------------
    try:
        mesh = sharding.make_mesh(config.fsdp)
    except ValueError as e:  # a pod recipe's fsdp on fewer devices
        raise ConfigError(f"config.fsdp: {e}; set --config.fsdp to a divisor of them") from None
    state, shardings, frozen, schedule, tx = place(config, model, params, mesh)
    run = Run(config, workdir, records, inputs, input_config, model, mesh, lead, say)
    checkpoints = checkpointer(run, job)
    state, start_step, seconds_before = loop.resume(
        checkpoints, state, say, config.resume_from_good
    )
    if start_step >= config.total_steps and finished:
        # A start that trains nothing writes nothing: the run's files stay as it left them.
        checkpoints.close()
        say(
            f"{workdir}: already trained for {start_step} steps; its results are unchanged in "
            f"{workdir / results_lib.RESULTS_FILE} (raise total_steps to train on)"
        )
        return finished
    # --- run files --------------------------------------------------------------------------------
    if lead:
        loop.write_run_files(workdir, card, config, started)
        if source_record is not None:
            warm_start.keep_source_record(workdir, source_record)
    # --- compile and loop -------------------------------------------------------------------------
    train_step = jax.jit(
        make_step(config, model, tx, mesh), donate_argnums=(0,), out_shardings=(shardings, None)
    )
    log = loop.open_log(config, workdir, start_step, say)
    evaluation = job.evaluation(run, log)
    say(
        f"{job.describe(run, params)} for {config.total_steps} steps, batch {config.batch_size}, "
        f"on {jax.device_count()} {jax.devices()[0].platform} device(s); workdir {workdir}"
    )
    state, step, stopped, seconds = loop.run(
        config=config,
        state=state,
        train_step=train_step,
        batches=loop.global_train_batches(config, records, input_config, start_step),
        to_device=sharding.host_to_global(mesh),
        key=jax.random.key(config.seed),
        start_step=start_step,
        checkpoints=checkpoints,
        log=log,
        schedule=schedule,
        seconds_before=seconds_before,
        frozen=frozen,
        evaluate=evaluation.during_training if evaluation else None,
        on_log=lambda step, metrics: job.on_log(config, step, metrics),
        say=say,
    )
    if stopped:
        checkpoints.close()
        return {loop.STOPPED_AT: step}
    # --- results ----------------------------------------------------------------------------------
    finished = {"steps": step, "seconds": seconds, "workdir": str(workdir)}
    return job.results(run, evaluation, state, finished, checkpoints)
