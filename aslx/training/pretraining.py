"""Data2vec 2.0 pretraining as a job of the one trainer (:mod:`aslx.training.trainer`).

    python -m pretrain.main --config configs/pretrain_tiny.py --workdir runs/pretrain_tiny

The student and its light decoder learn to predict, at masked frames, what the teacher (the
EMA of the student's encoder, on the whole clip) makes of them (:mod:`aslx.objectives.data2vec`).
Labels are unused. The run stops when the student's or the teacher's outputs collapse
(:func:`aslx.objectives.data2vec.collapse_problem`); finetuning starts from its raw student
weights (``--config.init_from=WORKDIR``).
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from aslx.augment.recipe import AugmentConfig
from aslx.model import config as model_config_lib
from aslx.model import model as model_lib
from aslx.objectives import data2vec
from aslx.training import config as config_lib
from aslx.training import trainer
from aslx.training.config import ConfigError
from aslx.training.loop import TrainingError
from aslx.training.trainer import Inputs, Model, Run


def augment_config(config: ml_collections.ConfigDict) -> AugmentConfig | None:
    """The recipe without its label steps: pretraining has no labels to keep aligned."""
    recipe = config_lib.augment_config(config)
    if recipe is None:
        return None
    return dataclasses.replace(recipe, align_ctc_label=False, cutmix_p=0.0)


def objective_of(config: ml_collections.ConfigDict) -> data2vec.Data2vecConfig:
    """``config.data2vec`` as the objective's settings."""
    try:
        return data2vec.Data2vecConfig(**config.data2vec)
    except ValueError as e:
        raise ConfigError(f"config.data2vec: {e}") from None


def build(config: ml_collections.ConfigDict, inputs: Inputs, *, abstract: bool = False) -> Model:
    """The student, its decoder and the Data2vec loss of ``config`` for ``inputs`` (abstract
    parameters with ``abstract``)."""
    objective = objective_of(config)
    model_config = config_lib.model_config(
        config,
        num_landmarks=inputs.preset.num_landmarks,
        landmark_channels=inputs.normalization.landmark_channels,
    )

    def create():
        return data2vec.create(model_config, objective, seed=config.seed)

    try:
        graphdef, params = jax.eval_shape(create) if abstract else create()
    except ValueError as e:
        raise ConfigError(f"config.data2vec: {e}") from None
    loss_fn = data2vec.make_loss(
        graphdef, objective, inputs.preset, augment_config(config), inputs.normalization
    )
    return Model(
        config=model_config,
        task="pretrain",
        graphdef=graphdef,
        params=params,
        loss_fn=loss_fn,
        ema_decay=lambda step: data2vec.ema_decay(objective, step),
        ema_of=data2vec.teacher_part,
        teacher_is_ema=True,
        card_extra={"data2vec": dataclasses.asdict(objective)},
    )


def stop_on_collapse(config: ml_collections.ConfigDict, step: int, metrics: dict) -> None:
    """Raises :class:`TrainingError` when the logged metrics show a collapse."""
    problem = data2vec.collapse_problem(
        step,
        metrics,
        config.collapse_target_std,
        config.collapse_prediction_std,
        config.collapse_after,
    )
    if problem:
        raise TrainingError(problem)


class PretrainJob(trainer.Job):
    """Data2vec 2.0 pretraining for :func:`trainer.train`."""

    verb = "pretraining"

    def build(self, config, inputs, *, abstract=False):
        return build(config, inputs, abstract=abstract)

    def on_log(self, config, step, metrics):
        stop_on_collapse(config, step, metrics)

    def describe(self, run: Run, params) -> str:
        objective = objective_of(run.config)
        name = model_config_lib.size_name(run.config.model.size, run.model.config)
        preset = run.inputs.preset
        return (
            f"pretraining {name} ({model_lib.count_params(params):,} parameters with the "
            f"decoder, {preset.name} {preset.num_landmarks} points), {objective.num_masks} "
            f"masks of ratio {objective.mask_ratio} per clip,"
        )

    def results(self, run, evaluation, state, finished, checkpoints):
        # Finetuning starts from the student (raw weights); the EMA weights are the teacher.
        results = super().results(run, evaluation, state, finished, checkpoints)
        run.say(
            f"pretrained for {finished['steps']} steps; finetune from it with "
            f"--config.init_from={run.workdir}\ncheckpoints: {checkpoints.directory}\n"
            "TensorBoard: pip install tensorboard && tensorboard --logdir "
            f"{run.workdir / 'tensorboard'}"
        )
        return results
