"""The finetuning objective: task loss + distillation + the joint gate's L0 penalty.

    loss = task + kd_weight · KD + l0_weight · E[L0]

* task: CTC over characters or glosses (per label, :func:`aslx.objectives.losses.ctc`) or
  classification cross-entropy;
* KD: the student's separate distillation head against a frozen teacher's per-frame argmax
  (the teacher runs in evaluation mode on the same augmented batch);
* E[L0]: the gate's expected number of kept landmarks, a **sum** over landmarks, so its weight
  reads as "loss per landmark kept".

A CTC label longer than its clip's frames can emit keeps its longest prefix that fits
(:func:`aslx.augment.transforms.align_ctc_label`, the rule of :mod:`aslx.ctc_frames`), with or
without augmentation; ``labels_cut`` counts the batch's labels so cut (augmentation that
shortens a clip cuts some by design; with it off, only clips fitted to ``max_frames`` can).

The batch is augmented (or only normalised) on device inside the loss, so it runs in the
jitted step; :func:`make_loss` returns a function of pytrees for
:func:`aslx.training.step.make_train_step`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from aslx.augment import recipe, transforms
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset
from aslx.model import model as model_lib
from aslx.objectives import losses


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the loss needs besides parameters and data.

    Attributes:
      task: ``ctc`` or ``classification``.
      preset: the landmark selection (group sizes for normalisation and augmentation).
      augment: the on-device recipe, or ``None`` for normalisation only.
      blank_id: the CTC blank, from the run's vocabulary (``None`` for classification). It
        has no default: the blank's place differs between vocabularies (Kaggle's is after
        the 59 characters; id 0 is the space there), and a wrong blank trains silently.
      label_smoothing: classification targets.
      kd_weight: weight of distillation (used when a teacher is passed as ``frozen``).
      kd_average: how distillation averages its per-frame losses: ``frames`` (over every real
        frame of the batch, as the reference does) or ``examples`` (per clip, then over clips).
      l0_weight: weight of the gate's expected L0.
      temperature: ``step -> temperature`` of the sigmoid gate.
      normalization: how landmarks become the model's input (the teacher reads the same).
    """

    task: str
    preset: Preset
    augment: recipe.AugmentConfig | None
    blank_id: int | None
    label_smoothing: float = 0.0
    kd_weight: float = 10.0
    kd_average: str = "frames"
    l0_weight: float = 0.0
    temperature: Callable = lambda step: 1.0
    normalization: Normalization | None = None

    def __post_init__(self):
        if self.task == "ctc" and self.blank_id is None:
            raise ValueError("a CTC objective needs blank_id, the vocabulary's blank")
        if self.kd_average not in losses.KD_AVERAGES:
            raise ValueError(
                f"kd_average must be one of {losses.KD_AVERAGES}, not {self.kd_average!r}"
            )


def gate_metrics(model: model_lib.SignModel, temperature) -> dict[str, jnp.ndarray]:
    """Whether the gate prunes: kept landmarks (hard evaluation mask), pruning ratio, mean keep
    probability, expected L0 and the temperature."""
    gate = model.gate
    kept = gate.num_kept()
    probabilities = gate.keep_probabilities(temperature)
    return {
        "gate/kept": kept.astype(jnp.float32),
        "gate/pruning_ratio": (probabilities.size - kept) / probabilities.size,
        "gate/mean_keep_probability": probabilities.mean(),
        "gate/expected_l0": probabilities.sum(),
        "gate/temperature": jnp.asarray(temperature, jnp.float32),
    }


def make_loss(graphdef: nnx.GraphDef, objective: Objective, teacher_graphdef=None):
    """``loss_fn(params, batch, key, step, frozen) -> (loss, aux)``; ``frozen`` is the
    teacher's parameters (or ``None``)."""

    def loss_fn(params, batch, key, step, frozen=None):
        augment_key, model_key = jax.random.split(key)
        label_lengths = batch["label_mask"].sum(-1)
        batch = recipe.prepare_batch(
            augment_key, batch, objective.augment, objective.preset, objective.normalization
        )
        model = nnx.merge(graphdef, params)
        temperature = objective.temperature(step)
        out = model(
            batch["landmarks"], batch["frame_mask"], key=model_key, gate_temperature=temperature
        )
        example_mask = batch.get("example_mask")
        if objective.task == "ctc":
            # One rule in every mode, augmentation on or off: a label longer than CTC can emit
            # in the clip's frames keeps its longest prefix that fits, and is counted; left
            # whole, it would cost a finite ~1e5 that no non-finite guard sees. A recipe with
            # AlignCTCLabel has cut it already (no later step of it shortens a clip).
            augment = objective.augment
            if augment is None or not augment.align_ctc_label:
                keys = [
                    k for k in ("frame_mask", "labels", "label_mask", "alignment") if k in batch
                ]
                batch = batch | jax.vmap(transforms.align_ctc_label)({k: batch[k] for k in keys})
            cut = batch["label_mask"].sum(-1) < label_lengths
            if example_mask is not None:
                cut = cut & example_mask.astype(bool)
            task_loss, _ = losses.ctc(
                out["ctc_logits"],
                batch["frame_mask"],
                batch["labels"],
                batch["label_mask"],
                objective.blank_id,
                example_mask,
            )
        else:
            # A clip without a label (an unlabelled source in the records) teaches nothing:
            # left out of the mean, not pulled toward a uniform target.
            labelled = batch["label_mask"][:, 0]
            labelled = labelled if example_mask is None else labelled & example_mask
            task_loss, _ = losses.classification(
                out["class_logits"], batch["labels"][:, 0], labelled, objective.label_smoothing
            )
        loss, aux = task_loss, {"task_loss": task_loss}
        if objective.task == "ctc":
            aux["labels_cut"] = cut.sum().astype(jnp.float32)
        if frozen is not None:
            teacher = model_lib.apply(
                teacher_graphdef, frozen, batch["landmarks"], batch["frame_mask"]
            )
            kd, _ = losses.distillation(
                out["distill_logits"],
                teacher["ctc_logits"],
                batch["frame_mask"],
                example_mask,
                average=objective.kd_average,
            )
            loss = loss + objective.kd_weight * kd
            aux["kd_loss"] = kd
        if model.gate is not None:
            aux |= gate_metrics(model, temperature)
            loss = loss + objective.l0_weight * model.gate.expected_l0(temperature)
        return loss, aux

    return loss_fn
