"""Finetuning and distillation as a job of the one trainer (:mod:`aslx.training.trainer`).

    python -m finetune.main --config configs/finetune_tiny.py --workdir runs/finetune_tiny

The model is a CTC or classification head on the encoder (:mod:`aslx.objectives.finetune`),
optionally started from a pretrained or finetuned source (``init_from``, matched by path) and
distilled from a frozen teacher (``teacher.*``). During training the eval split scores the raw
and the EMA weights every ``eval_every`` steps and keeps the best checkpoint; at the end the
best checkpoint's raw or EMA weights, chosen on the eval split (never on test), are scored on
the eval and test splits (:func:`results`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx

from aslx import processes
from aslx import vocab as vocab_lib
from aslx.decoding import evaluate as evaluate_lib
from aslx.input import pipeline
from aslx.model import gate as gate_lib
from aslx.model import inference
from aslx.model import model as model_lib
from aslx.model.config import ModelConfig
from aslx.objectives import finetune as objective_lib
from aslx.run import results as results_lib
from aslx.run import source as source_lib
from aslx.training import config as config_lib
from aslx.training import optimizer, sharding, trainer, warm_start
from aslx.training.config import ConfigError
from aslx.training.loop import TrainingError
from aslx.training.trainer import Inputs, Model, Run


def check_vocab(config: ml_collections.ConfigDict, vocab: vocab_lib.Vocab, folder) -> None:
    """A classification run needs records of classes, not characters."""
    if config.task == "classification" and not isinstance(vocab, vocab_lib.ClassVocab):
        raise ConfigError(
            f"{folder}: holds a character vocabulary, but config.task='classification' needs "
            "classes; use config.task='ctc' for these records"
        )


@dataclasses.dataclass(frozen=True)
class Teacher:
    """What the student's loss reads of a frozen distillation teacher: its model, graph and
    parameters (abstract shapes where nothing is allocated, as in :mod:`aslx.training.aot`)."""

    config: ModelConfig
    graphdef: nnx.GraphDef
    params: Any


def abstract_teacher(model_config: ModelConfig) -> Teacher:
    """A teacher of ``model_config`` on abstract shapes: what compiling a distillation step
    needs when no trained teacher is at hand."""
    graphdef, params = jax.eval_shape(lambda: model_lib.create(model_config))
    return Teacher(model_config, graphdef, params)


def check_labelled(config: ml_collections.ConfigDict, records) -> None:
    """A classification run needs labelled training clips; clips without a label (an
    unlabelled source ingested beside labelled ones) are left out of its loss, and a split of
    nothing else is refused."""
    split = config.data.train_split
    unlabelled = records.unlabelled(split)
    if config.task == "classification" and unlabelled:
        if unlabelled >= records.meta["splits"].get(split, 0):
            raise ConfigError(
                f"{records.folder}: none of the {unlabelled:,} {split} clips has a label; "
                "classification learns from labels (pretrain on unlabelled clips: "
                "python -m pretrain.main)"
            )


def load_teacher(config: ml_collections.ConfigDict, inputs: Inputs) -> Teacher | None:
    """The frozen distillation teacher of ``config.teacher``, checked to read what this run
    reads; ``None`` when the run has none."""
    source = config.teacher.workdir or config.teacher.weights
    if not source:
        return None
    try:
        teacher = source_lib.load_trained(source)
    except (FileNotFoundError, ValueError) as e:
        field = "workdir" if config.teacher.workdir else "weights"
        raise ConfigError(f"config.teacher.{field}: {e}") from None
    if teacher.card.vocab != inputs.vocab:
        raise ConfigError(
            f"teacher {source}: its vocabulary differs from the records' ({config.data.dir})"
        )
    if teacher.card.preset != inputs.preset.name:
        raise ConfigError(
            f"teacher {source}: reads preset {teacher.card.preset}, this run "
            f"{inputs.preset.name}; set config.data.preset={teacher.card.preset}"
        )
    if teacher.card.normalization != inputs.normalization:
        raise ConfigError(
            f"teacher {source}: normalises its input as {teacher.card.normalization}, this run "
            f"as {inputs.normalization}; set config.data's normalization fields to the teacher's"
        )
    return Teacher(teacher.config, teacher.graphdef, teacher.params)


def build(
    config: ml_collections.ConfigDict,
    inputs: Inputs,
    *,
    abstract: bool = False,
    teacher: Teacher | None = None,
) -> Model:
    """The finetuning model and loss of ``config`` for ``inputs`` (abstract parameters with
    ``abstract``: nothing allocated, for compiling and counting), distilled from ``teacher``
    or else from ``config.teacher``'s."""
    teacher = teacher or load_teacher(config, inputs)
    ctc_vocab, blank_id = inference.ctc_layout(inputs.vocab)
    model_config = config_lib.model_config(
        config,
        num_landmarks=inputs.preset.num_landmarks,
        landmark_channels=inputs.normalization.landmark_channels,
        ctc_vocab=ctc_vocab if config.task == "ctc" else 0,
        num_classes=inputs.vocab.size if config.task == "classification" else 0,
        distill_vocab=teacher.config.ctc_vocab if teacher else 0,
    )

    def create():
        return model_lib.create(model_config, seed=config.seed)

    graphdef, params = jax.eval_shape(create) if abstract else create()
    objective = objective_lib.Objective(
        task=config.task,
        preset=inputs.preset,
        augment=config_lib.augment_config(config),
        blank_id=blank_id,
        label_smoothing=config.label_smoothing,
        kd_weight=config.teacher.kd_weight,
        kd_average=config.teacher.kd_average,
        l0_weight=config.gate.l0_weight,
        temperature=lambda step: config_lib.temperature(config, step),
        normalization=inputs.normalization,
    )
    multipliers = {"gate": config.gate.lr_multiplier}
    multipliers |= optimizer.layer_decay_multipliers(model_config.num_layers, config.layer_decay)
    return Model(
        config=model_config,
        task=config.task,
        graphdef=graphdef,
        params=params,
        loss_fn=objective_lib.make_loss(graphdef, objective, teacher and teacher.graphdef),
        ema_decay=config.ema_decay,
        frozen=teacher.params if teacher else None,
        lr_multipliers=multipliers,
    )


def start_from(config: ml_collections.ConfigDict, params, workdir, say) -> tuple:
    """``(params, record)``: ``params`` with the matching weights of ``config.init_from``
    and the record of that source (``init_from.json``), checked against a resumed run's
    record before anything is written; ``(params, None)`` without ``init_from``."""
    if not config.init_from:
        return params, None
    try:
        source = source_lib.read_source(config.init_from)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"config.init_from: {e}") from None
    record = warm_start.source_record(config.init_from, source)
    warm_start.check_source(workdir, record)
    params, report = warm_start.warm_start(params, source.params, config.init_keep_layers)
    say(f"init from {config.init_from}: {report.details()}")
    return params, record


def primary_metric(config: ml_collections.ConfigDict, inputs: Inputs) -> tuple[str | None, str]:
    """``(eval split/metric, mode)`` that picks the best checkpoint (no eval split: none)."""
    name, mode = evaluate_lib.primary_metric(config.task, inputs.vocab)
    return (f"{config.data.eval_split}/{name}" if config.data.eval_split else None), mode


class Evaluation:
    """Scores a run's raw and EMA weights on a split, and what evaluating costs.

    One per start of a run: it compiles the evaluation forward pass on every process together
    (:class:`aslx.processes.CompiledTogether`) and adds up the seconds its evaluations took,
    so each evaluation's log line can say its share of the start's wall time.
    """

    def __init__(self, run: Run, log):
        config = run.config
        self.run, self.log = run, log
        self.metric, self.mode = evaluate_lib.primary_metric(config.task, run.inputs.vocab)
        self.variants = ("raw", "ema") if config.ema_decay else ("raw",)
        self.eval_input = config_lib.eval_input_config(config, run.input_config)
        self.forward = processes.CompiledTogether(
            inference.make_forward(
                run.model.graphdef, run.inputs.preset, config.task, run.inputs.normalization
            ),
            "eval_forward",
        )
        self.to_device = sharding.host_to_global(run.mesh)
        self.began = time.monotonic()
        self.seconds = 0.0

    def scores(self, state, split: str) -> dict[str, dict]:
        """``{variant: metrics}`` of the raw and the EMA weights on ``split``."""
        run = self.run
        try:
            return evaluate_lib.evaluate_variants(
                self.forward,
                state,
                lambda: pipeline.eval_batches(run.records, split, self.eval_input),
                self.variants,
                task=run.config.task,
                vocab=run.inputs.vocab,
                to_device=self.to_device,
                beam=run.config.decode_beam,
            )
        except ValueError as e:
            raise TrainingError(f"evaluating on {split}: {e}") from None

    def during_training(self, state, step: int) -> dict | None:
        """The eval split's flat scores at an evaluation step (``None`` at others), logged
        with the evaluation's seconds and all evaluations' share of the start so far, so
        that ``eval_every`` and ``decode_beam`` can be judged."""
        config = self.run.config
        if not config.data.eval_split or (step % config.eval_every and step != config.total_steps):
            return None
        split = config.data.eval_split
        began = time.monotonic()
        scores = evaluate_lib.flat_scores(split, self.scores(state, split), self.metric, self.mode)
        seconds = time.monotonic() - began
        self.seconds += seconds
        share = self.seconds / max(time.monotonic() - self.began, 1e-9)
        self.log.write(step, scores | {"eval_seconds": seconds, "eval_share": share}, split="eval")
        self.run.say(
            f"step {step:,}: "
            + "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if not evaluate_lib.is_count(k))
            + f"  (evaluated in {seconds:.1f} s; evaluation {share:.0%} of the run so far)"
        )
        return scores


def gate_counts(state, selected: str, model: Model) -> dict:
    """``gate_kept`` and ``gate_total`` landmarks of the selected weights' hard gate."""
    logits = state[evaluate_lib.WEIGHT_VARIANTS[selected]]["gate"]["logits"][...]
    kept = gate_lib.kept(np.asarray(logits.addressable_data(0)), model.config.gate_eval_threshold)
    return {"gate_kept": int(kept.sum()), "gate_total": int(logits.size)}


def results(run: Run, evaluation: Evaluation, state, finished: dict, checkpoints) -> dict:
    """The final scores: the best checkpoint (by the eval split) restored, its raw or EMA
    weights chosen on the eval split (never on test), scored on the eval and test splits;
    written to ``results.json`` and summed up in the log."""
    config, say = run.config, run.say
    results = dict(finished)
    best = checkpoints.best_step()
    if best is not None:
        state, _ = checkpoints.restore(state, best)
        results["best_step"] = best
    checkpoints.close()
    splits = [s for s in (config.data.eval_split, config.data.test_split) if s]
    scores = {split: evaluation.scores(state, split) for split in splits}
    metric, mode = evaluation.metric, evaluation.mode
    selected = "raw"
    if config.data.eval_split:
        selected = evaluate_lib.select_weights(scores[config.data.eval_split], metric, mode)
    results["selected_weights"] = selected
    results |= evaluate_lib.final_scores(scores, selected)
    if run.model.config.gate != "none":
        results |= gate_counts(state, selected, run.model)
    if run.lead:
        results_lib.write(run.workdir, results)
    headline = "  ".join(f"{s}/{metric} {results[f'{s}/{metric}']:.4f}" for s in splits)
    at = f"best step {best}" if best is not None else f"step {finished['steps']}"
    say(
        f"final, {at}, {selected} weights: {headline}\n"
        f"checkpoints: {checkpoints.directory} (rerun the same command to resume or extend)\n"
        f"results: {run.workdir / results_lib.RESULTS_FILE}\n"
        "TensorBoard: pip install tensorboard && tensorboard --logdir "
        f"{run.workdir / 'tensorboard'}"
    )
    split = config.data.eval_split
    if split and evaluate_lib.decodes_nothing(results, split):
        say(
            f"warning: the selected weights decode every {split} clip to no label at all (the "
            "CTC head emits only the blank): the run has not learnt to emit labels; try another "
            "config.lr, more config.total_steps, or check the labels"
        )
    return results


class FinetuneJob(trainer.Job):
    """Finetuning (CTC or classification, distillation, joint gate) for :func:`trainer.train`."""

    verb = "training"

    def splits(self, config):
        return (config.data.train_split, config.data.eval_split, config.data.test_split)

    def check_records(self, config, records):
        check_vocab(config, records.vocab, records.folder)
        check_labelled(config, records)

    def describe(self, run, params):
        line = super().describe(run, params)
        split = run.config.data.train_split
        unlabelled = run.records.unlabelled(split)
        if run.config.task == "classification" and unlabelled:
            clips = run.records.meta["splits"][split]
            line += (
                f"; {unlabelled:,} of the {clips:,} {split} clips have no label and are left "
                "out of the loss"
            )
        return line

    def build(self, config, inputs, *, abstract=False):
        return build(config, inputs, abstract=abstract)

    def start_from(self, config, params, workdir, say):
        return start_from(config, params, workdir, say)

    def best_metric(self, config, inputs):
        return primary_metric(config, inputs)

    def evaluation(self, run, log):
        return Evaluation(run, log)

    def results(self, run, evaluation, state, finished, checkpoints):
        return results(run, evaluation, state, finished, checkpoints)
