"""The finetuning configuration: every field, its default and its meaning, in one place.

Recipes in ``configs/`` start from :func:`finetune` and change what they need; the command line
changes any field again (``--config.batch_size=64``). This module also turns the configuration
into the library's typed pieces (model, input, augmentation, optimiser), so a recipe never
repeats that wiring and a wrong key or value fails before anything is built.

=============================  ===========================================================
field                          meaning
=============================  ===========================================================
``task``                       ``ctc`` (characters or glosses, from the records' vocabulary)
                               or ``classification``
``seed``                       parameters, data order and every random draw
``data.dir``                   a record set written by ``python -m aslx.ingest``
``data.train_split``           split trained on (``train``)
``data.eval_split``            split evaluated during training, chooses the best checkpoint
``data.test_split``            split scored once at the end with the best checkpoint ('' none)
``data.preset``                landmark selection (``kaggle75``, ``hands_pose``, ``full543``)
``data.max_frames``            static frame count T; longer clips keep T evenly spaced frames
``data.long_clips``            ``resample`` or ``truncate`` clips longer than T
``data.normalization``         ``body`` (each group's local shape plus its placement in the
                               body's frame, the default) or ``group`` (local shape only,
                               the preprocessing before the body frame);
                               :mod:`aslx.landmarks.normalize`
``data.drop_resting_hands``    hide a still second hand that rests away from the signing one
                               (:mod:`aslx.landmarks.hands`)
``data.mask_channel``          give the model each point's detection mask as a channel
``data.group_extent``          what a group's local shape is divided by: ``frame`` (its size,
                               the mean over frames; a photo's hand looks like the clip's) or
                               ``clip`` (its reach over the clip, motion included)
``data.camera_aspect``         the camera's width/height (``16:9``, ``1.333``); '' takes the
                               records' ``camera_aspect`` (``metadata.json``)
``data.buckets``               training lengths: each batch is cut to the smallest bound
                               that holds its longest clip, one compilation per bound;
                               ``auto`` (from the record set's clip lengths, as
                               ``python -m aslx.stats`` prints them), ``none`` (always
                               T) or ascending frame counts ``"64,128,256"`` (T is added)
``data.bucket_window``         training batches sorted by length together before cutting
                               (more: less padding, batches less mixed in length)
``data.shuffle_buffer``        records in the training shuffle buffer
``data.alignments``            per-frame label positions of the training split, a file of
                               ``python -m aslx.align`` for ``data.dir`` (from a trained CTC
                               model): training examples carry them and temporal CutMix
                               (``augment.cutmix_p``) splices clips along them ('' none)
``model.size``                 ``tiny``, ``small``, ``large`` (``aslx.model.config.SIZES``)
``model.*``                    any other ``ModelConfig`` field overrides the size's value
                               (``None``: the size's default)
``augment.enabled``            run the on-device recipe in the train step
``augment.*``                  ``AugmentConfig`` fields (probabilities and ranges)
``batch_size``                 global examples per optimiser step (all processes together)
``grad_accum_steps``           micro-batches per step (``batch_size`` divides by it)
``total_steps``                optimiser steps
``lr``, ``end_lr``             peak and final learning rate
``warmup_steps``               linear warm-up from 0 to ``lr``
``schedule``                   ``cosine`` (warm-up then cosine) or ``one_cycle``
``weight_decay``, ``b1``,      AdamW; decay on matrices only
``b2``
``clip_norm``                  global gradient-norm clip
``label_smoothing``            classification targets
``ema_decay``                  weight EMA (0: none); evaluated beside the raw weights
``decode_beam``                CTC prefix-beam width at evaluation (0 or 1: greedy)
``gate.l0_weight``             weight of the expected number of kept landmarks (a sum)
``gate.lr_multiplier``         learning rate of the keep-logits / ``lr``
``gate.temperature_start``,    the sigmoid gate's temperature, annealed geometrically
``gate.temperature_end``       over training
``init_from``                  a workdir or exported weights file to start from ('' none);
                               the run records which weights (``init_from.json``) and a
                               resume refuses a source trained again since
``init_keep_layers``           keep this many encoder blocks, evenly spaced (0: all)
``layer_decay``                layer-wise learning-rate decay: the last block learns at
                               ``layer_decay`` × ``lr``, each one below at one more factor,
                               the stem lowest; heads at ``lr`` (1: none; 0.5–0.9 suit a
                               pretrained ``init_from``)
``teacher.workdir``,           a frozen teacher: a finetuning workdir or exported weights;
``teacher.weights``            its per-frame argmax trains a separate distillation head
``teacher.kd_weight``          loss = task loss + ``kd_weight`` · distillation
``teacher.kd_average``         distillation's mean: ``frames`` (every real frame of the
                               batch alike, as the reference) or ``examples`` (per clip)
``log_every``                  console and metrics every N steps
``eval_every``                 evaluate (and save the best) every N steps
``checkpoint_every``           save every N steps (and at the end)
``keep_last``                  checkpoints kept besides the best
``resume_from_good``           when the latest checkpoint is damaged (unreadable, unlike
                               its digests, NaN), resume from the newest step that verifies
                               and set the later ones aside (``<step>.damaged``) instead of
                               stopping with the steps that verify named
``max_nonfinite``              stop after this many non-finite losses in a row
``fsdp``                       devices that split the weights (the rest split the batch)
``compilation_cache``          compiled steps kept for the next start: ``auto``
                               (``$JAX_COMPILATION_CACHE_DIR``, else ``~/.cache/aslx/jax``),
                               ``none``, or a folder (``gs://`` too); the log says whether a
                               step was compiled or loaded
``data.readers``               input streams that make each global batch, split among the
                               processes (0: one per process); a run with the same number
                               of readers sees the same batches on any number of hosts
``distributed``                call ``jax.distributed.initialize()`` first (pods)
``coordinator_address``,       where the processes meet (``host:port``), how many there are
``num_processes``,             and which one this is; left empty, JAX detects them (TPU
``process_id``                 pods, SLURM, Open MPI)
=============================  ===========================================================

Pretraining (:func:`pretrain`) has the common fields (seed, data except the eval and test
splits, model, augment, optimiser, logging, checkpoints, fsdp, distributed), with the
student's ``model.input_dropout`` and ``model.attention_dropout`` at data2vec 2.0's 0.1, plus
``data2vec.*`` (``aslx.objectives.data2vec.Data2vecConfig``) and the collapse stop:
``collapse_target_std`` (0.1), ``collapse_prediction_std`` (0.01) and ``collapse_after``
(5,000 steps), data2vec 2.0's (:func:`aslx.objectives.data2vec.collapse_problem`).

This module also turns a config into the library's objects, in one place: the model
(:func:`model_config`), the augmentation (:func:`augment_config`), the host pipeline
(:func:`input_config`, :func:`readers`, :func:`bucket_bounds`) and the optimiser
(:func:`optimizer_for`).
"""

from __future__ import annotations

import dataclasses
import math
import typing

import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from aslx.augment.recipe import AugmentConfig, BlockMask
from aslx.input import fit, pipeline
from aslx.input.pipeline import DEFAULT_SORT_WINDOW
from aslx.landmarks.normalize import (
    DEFAULT_CAMERA_ASPECT,
    EXTENTS,
    FRAMES,
    Normalization,
    parse_aspect,
)
from aslx.landmarks.presets import PRESETS, Preset
from aslx.model.config import ModelConfig, sized
from aslx.objectives import losses
from aslx.records.metadata import RecordSet
from aslx.training import optimizer

TASKS = ("ctc", "classification")
SCHEDULES = ("cosine", "one_cycle")
#: ModelConfig fields fixed by the data, never by the config.
_DATA_MODEL_FIELDS = (
    "num_landmarks",
    "landmark_channels",
    "ctc_vocab",
    "distill_vocab",
    "num_classes",
)


def _placeholder(cls, name: str):
    """A ``None`` default that the command line can still set: a placeholder typed like field
    ``name`` of dataclass ``cls`` (ml_collections refuses to override a plain ``None``)."""
    hint = typing.get_type_hints(cls)[name]
    types = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return config_dict.placeholder(types[0])


def _augment_defaults() -> dict:
    defaults = AugmentConfig()
    out = {"enabled": True}
    for field in dataclasses.fields(AugmentConfig):
        value = getattr(defaults, field.name)
        if isinstance(value, BlockMask):
            value = dataclasses.asdict(value)
        elif value is None:
            value = _placeholder(AugmentConfig, field.name)
        out[field.name] = value
    return out


def _common() -> ml_collections.ConfigDict:
    """The fields every training program has."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = dict(
        dir="",
        train_split="train",
        preset="kaggle75",
        max_frames=128,
        long_clips="resample",
        shuffle_buffer=1024,
        readers=0,
        buckets="auto",
        bucket_window=DEFAULT_SORT_WINDOW,
        normalization="body",
        drop_resting_hands=True,
        mask_channel=False,
        group_extent="frame",
        camera_aspect="",
    )
    model_fields = [f.name for f in dataclasses.fields(ModelConfig)]
    c.model = {"size": "tiny"} | {
        name: _placeholder(ModelConfig, name)
        for name in model_fields
        if name not in _DATA_MODEL_FIELDS
    }
    c.augment = _augment_defaults()
    c.batch_size = 32
    c.grad_accum_steps = 1
    c.total_steps = 1000
    c.lr = 1e-3
    c.end_lr = 0.0
    c.warmup_steps = 100
    c.schedule = "cosine"
    c.weight_decay = 0.01
    c.b1 = 0.9
    c.b2 = 0.98
    c.clip_norm = 1.0
    c.log_every = 50
    c.checkpoint_every = 500
    c.keep_last = 2
    c.resume_from_good = False
    c.max_nonfinite = 5
    c.fsdp = 1
    c.compilation_cache = "auto"
    c.distributed = False
    c.coordinator_address = ""
    c.num_processes = 0
    c.process_id = -1
    return c


def finetune() -> ml_collections.ConfigDict:
    """Every finetuning field with its default (see the module docstring)."""
    c = _common()
    c.task = "ctc"
    c.data.eval_split = "val"
    c.data.test_split = ""
    c.data.alignments = ""
    c.label_smoothing = 0.0
    c.ema_decay = 0.993
    c.decode_beam = 0
    c.gate = dict(l0_weight=0.0, lr_multiplier=1.0, temperature_start=1.0, temperature_end=0.05)
    c.init_from = ""
    c.init_keep_layers = 0
    c.layer_decay = 1.0
    c.teacher = dict(workdir="", weights="", kd_weight=10.0, kd_average="frames")
    c.eval_every = 500
    return c


def pretrain() -> ml_collections.ConfigDict:
    """Every pretraining field: the common ones plus ``data2vec.*`` (the fields of
    ``aslx.objectives.data2vec.Data2vecConfig``) and the collapse stop: past step
    ``collapse_after``, the run stops when the teacher's target std falls below
    ``collapse_target_std`` or the student's prediction std below ``collapse_prediction_std``
    (data2vec 2.0's 0.1, 0.01 and 5,000)."""
    from aslx.objectives.data2vec import Data2vecConfig

    c = _common()
    # data2vec 2.0's dropout on the local features and on the attention probabilities
    c.model.input_dropout = 0.1
    c.model.attention_dropout = 0.1
    c.data2vec = dataclasses.asdict(Data2vecConfig())
    c.collapse_target_std = 0.1
    c.collapse_prediction_std = 0.01
    c.collapse_after = 5000
    return c


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the field and the fix."""


#: Ranges: ``(low, high, low included, high included)``, ``None`` for unbounded.
AT_LEAST_0 = (0, None, True, True)
AT_LEAST_1 = (1, None, True, True)
POSITIVE = (0, None, False, True)
FRACTION = (0, 1, True, False)  # [0, 1)
PROBABILITY = (0, 1, True, True)

#: ``field: range`` of every numeric field that has one; the augmentation's probabilities,
#: ratios and ranges are added by their names in :func:`check_values`.
RANGES = {
    "seed": AT_LEAST_0,
    "data.max_frames": AT_LEAST_1,
    "data.shuffle_buffer": AT_LEAST_1,
    "data.readers": AT_LEAST_0,
    "data.bucket_window": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "grad_accum_steps": AT_LEAST_1,
    "total_steps": AT_LEAST_1,
    "lr": POSITIVE,
    "end_lr": AT_LEAST_0,
    "warmup_steps": AT_LEAST_0,
    "weight_decay": AT_LEAST_0,
    "b1": FRACTION,
    "b2": FRACTION,
    "clip_norm": POSITIVE,
    "log_every": AT_LEAST_1,
    "checkpoint_every": AT_LEAST_1,
    "keep_last": AT_LEAST_1,
    "max_nonfinite": AT_LEAST_1,
    "fsdp": AT_LEAST_1,
    "label_smoothing": FRACTION,
    "ema_decay": FRACTION,
    "decode_beam": AT_LEAST_0,
    "eval_every": AT_LEAST_1,
    "init_keep_layers": AT_LEAST_0,
    "layer_decay": (0, 1, False, True),
    "gate.l0_weight": AT_LEAST_0,
    "gate.lr_multiplier": POSITIVE,
    "gate.temperature_start": POSITIVE,
    "gate.temperature_end": POSITIVE,
    "teacher.kd_weight": AT_LEAST_0,
    "collapse_target_std": AT_LEAST_0,
    "collapse_prediction_std": AT_LEAST_0,
    "collapse_after": AT_LEAST_0,
}
#: ``field: allowed values`` of every field that names a choice.
CHOICES = {
    "schedule": SCHEDULES,
    "task": TASKS,
    "data.long_clips": pipeline.LONG_CLIP_POLICIES,
    "data.normalization": FRAMES,
    "data.group_extent": EXTENTS,
    "teacher.kd_average": losses.KD_AVERAGES,
}


_MISSING = object()


def _lookup(config, field: str):
    """``config``'s value at the dotted ``field``, or ``_MISSING`` where it has none (a
    pretraining config has no ``task``)."""
    for part in field.split("."):
        if part not in config:
            return _MISSING
        config = config[part]
    return config


def _range_problem(field: str, value, low, high, low_in: bool, high_in: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"config.{field} must be a number, not {value!r}"
    below = low is not None and (value < low if low_in else value <= low)
    above = high is not None and (value > high if high_in else value >= high)
    if not (below or above or value != value):  # value != value: NaN
        return None
    if high is None:
        want = f"at least {low}" if low_in else f"above {low}"
    else:
        want = f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
    return f"config.{field}={value!r} must be {want}; give --config.{field} such a value"


def _floats(config, prefix: str = "") -> list[tuple[str, float]]:
    """``(field, value)`` of every float field of ``config``, nested ones included."""
    out = []
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict | dict):
            out += _floats(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            out.append((f"{prefix}{key}", value))
    return out


def check_values(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`ConfigError` naming the first field whose value is NaN or infinite (any
    float field), outside its range (:data:`RANGES`, the augmentation probabilities) or not
    one of its choices
    (:data:`CHOICES`, the preset): before anything is built or compiled."""
    for field, value in _floats(config):
        if not math.isfinite(value):
            raise ConfigError(f"config.{field}={value}: must be a finite number")
    ranges = dict(RANGES)
    for name in config.augment.keys() if "augment" in config else ():
        if name.endswith("_p") or name.endswith("_ratio"):
            ranges[f"augment.{name}"] = PROBABILITY
        elif name.endswith(("_limit", "_stdev", "_shift", "_angle", "_zoom")):
            ranges[f"augment.{name}"] = AT_LEAST_0
        elif name.endswith("_block_mask"):
            ranges[f"augment.{name}.p"] = ranges[f"augment.{name}.ratio"] = PROBABILITY
            ranges[f"augment.{name}.block_size"] = AT_LEAST_1
    for field, bounds in ranges.items():
        value = _lookup(config, field)
        if value is not _MISSING and value is not None:
            problem = _range_problem(field, value, *bounds)
            if problem:
                raise ConfigError(problem)
    for field, allowed in CHOICES.items():
        value = _lookup(config, field)
        if value is not _MISSING and value not in allowed:
            raise ConfigError(f"config.{field} must be one of {tuple(allowed)}, not {value!r}")
    preset = _lookup(config, "data.preset")
    if preset not in (_MISSING, "", None) and preset not in PRESETS:
        raise ConfigError(
            f"config.data.preset={preset!r} is not a preset; choose one of {sorted(PRESETS)} "
            "(or '' for the records' own)"
        )


def check(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`ConfigError` for values no run can use: each field alone
    (:func:`check_values`), then the rules that tie fields together."""
    check_values(config)

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(bool(config.data.dir), "config.data.dir is empty: pass --config.data.dir=RECORDS")
    need(
        config.batch_size % config.grad_accum_steps == 0,
        f"config.batch_size {config.batch_size} does not split into "
        f"config.grad_accum_steps={config.grad_accum_steps} micro-batches",
    )
    need(
        config.warmup_steps < config.total_steps,
        f"config.warmup_steps={config.warmup_steps} must be below "
        f"config.total_steps={config.total_steps}; lower it with --config.warmup_steps=N",
    )
    if "task" not in config:
        return  # pretraining: no task, teacher or gate
    need(
        config.task == "classification" or not config.augment.still_clip_p,
        "config.augment.still_clip_p holds one frame of a clip still, which fits one sign and "
        "not a CTC phrase; set it to 0 for config.task='ctc'",
    )
    need(
        not (config.teacher.workdir and config.teacher.weights),
        "set one of config.teacher.workdir and config.teacher.weights, not both",
    )
    need(
        config.task == "ctc" or not (config.teacher.workdir or config.teacher.weights),
        "distillation learns a teacher's per-frame CTC argmax: it needs config.task='ctc'",
    )


#: The ``config.data`` fields that say how landmarks become the model's input: the preset and
#: what :func:`normalization` reads. A model started from another's weights reads landmarks as
#: that one did only when these agree.
PREPROCESSING_FIELDS = (
    "preset",
    "normalization",
    "group_extent",
    "drop_resting_hands",
    "mask_channel",
    "camera_aspect",
)


def normalization(config: ml_collections.ConfigDict, records: RecordSet | None) -> Normalization:
    """How the run normalises its input: ``config.data``'s choices, the camera aspect from
    ``data.camera_aspect`` or else the records' own (without records, ingest's default)."""
    try:
        if config.data.camera_aspect:
            aspect = parse_aspect(str(config.data.camera_aspect))
        else:
            aspect = records.camera_aspect if records is not None else DEFAULT_CAMERA_ASPECT
        return Normalization(
            frame=config.data.normalization,
            camera_aspect=aspect,
            drop_resting_hands=bool(config.data.drop_resting_hands),
            mask_channel=bool(config.data.mask_channel),
            extent=config.data.group_extent,
        )
    except ValueError as e:
        raise ConfigError(f"config.data: {e}") from None


def model_config(
    config: ml_collections.ConfigDict,
    *,
    num_landmarks: int,
    landmark_channels: int = 3,
    ctc_vocab: int = 0,
    num_classes: int = 0,
    distill_vocab: int = 0,
) -> ModelConfig:
    """The model of ``config.model`` for data with these sizes."""
    overrides = {k: v for k, v in config.model.items() if k != "size" and v is not None}
    try:
        return sized(
            config.model.size,
            num_landmarks=num_landmarks,
            landmark_channels=landmark_channels,
            ctc_vocab=ctc_vocab,
            num_classes=num_classes,
            distill_vocab=distill_vocab,
            **overrides,
        )
    except (KeyError, ValueError) as e:
        raise ConfigError(f"config.model: {e}") from None


def augment_config(config: ml_collections.ConfigDict) -> AugmentConfig | None:
    """The on-device recipe, or ``None`` when ``augment.enabled`` is off. Resampling and
    truncation keep clips within ``data.max_frames``."""
    if not config.augment.enabled:
        return None
    fields = {k: v for k, v in config.augment.items() if k != "enabled"}
    for name in ("hand_block_mask", "other_block_mask"):
        fields[name] = BlockMask(**fields[name])
    if fields.get("max_length") is None:
        fields["max_length"] = config.data.max_frames
    return AugmentConfig(**fields)


def temperature(config: ml_collections.ConfigDict, step):
    """The sigmoid gate's temperature at ``step`` (traceable): geometric from
    ``temperature_start`` to ``temperature_end`` over the run."""
    start, end = config.gate.temperature_start, config.gate.temperature_end
    progress = jnp.minimum(jnp.asarray(step, jnp.float32) / max(config.total_steps - 1, 1), 1.0)
    return start * (end / start) ** progress


# --- library objects of a config -------------------------------------------------------------


def readers(config: ml_collections.ConfigDict) -> tuple[int, range]:
    """``(readers in all, this process's readers)``: the global batch is the concatenation of
    every reader's batch in reader order, and process ``p`` of ``n`` owns a contiguous run."""
    total = config.data.readers or jax.process_count()
    n, p = jax.process_count(), jax.process_index()
    if total % n or config.batch_size % total:
        raise ConfigError(
            f"config.data.readers={total} must divide among {n} processes and divide "
            f"config.batch_size={config.batch_size}"
        )
    share = total // n
    return total, range(p * share, (p + 1) * share)


def input_config(config: ml_collections.ConfigDict, preset: Preset) -> pipeline.InputConfig:
    """One reader's host pipeline: its share of the global batch. An alignments file
    (``data.alignments``, finetuning only) is checked against the training split here, so a
    wrong one fails before anything is compiled."""
    total, _ = readers(config)
    alignments = config.data.get("alignments", "")
    if alignments:
        try:
            pipeline.check_alignments(alignments, config.data.dir, config.data.train_split)
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"config.data.alignments: {e}") from None
    bucketed = not fit.is_none(str(config.data.buckets))
    if bucketed and config.data.bucket_window < 1:
        raise ConfigError(
            f"config.data.bucket_window={config.data.bucket_window}: batches sorted together "
            "must be at least 1 (1: no sorting), or set config.data.buckets=none"
        )
    try:
        return pipeline.InputConfig(
            batch_size=config.batch_size // total,
            max_frames=config.data.max_frames,
            preset=preset.name,
            long_clips=config.data.long_clips,
            shuffle_buffer=config.data.shuffle_buffer,
            seed=config.seed,
            alignments=alignments,
            sort_window=config.data.bucket_window if bucketed else 1,
            camera_aspect=(
                parse_aspect(str(config.data.camera_aspect)) if config.data.camera_aspect else None
            ),
        )
    except ValueError as e:
        raise ConfigError(f"config.data: {e}") from None


def eval_input_config(
    config: ml_collections.ConfigDict, train_input: pipeline.InputConfig
) -> pipeline.InputConfig:
    """Evaluation's host pipeline: one stream per process over its own files (not one per
    reader), so each process's batch is its share of the global batch,
    ``batch_size / process_count``, and the global batch divides over the devices as in
    training."""
    return dataclasses.replace(train_input, batch_size=config.batch_size // jax.process_count())


def bucket_bounds(config: ml_collections.ConfigDict, records: RecordSet) -> tuple[int, ...]:
    """The training lengths of ``config.data.buckets`` for this record set (ascending, the last
    ``data.max_frames``): :func:`aslx.input.fit.parse_buckets`, ``auto`` from the record set's
    clip lengths."""
    max_frames = config.data.max_frames
    try:
        auto = fit.default_buckets(records.meta["frames"], max_frames)
        return fit.parse_buckets(config.data.buckets, max_frames, auto)
    except ValueError as e:
        raise ConfigError(f"config.data.buckets: {e}") from None


def optimizer_for(config: ml_collections.ConfigDict, lr_multipliers: dict | None = None):
    """``(tx, schedule)``: AdamW with clipping and the configured schedule."""
    schedule = optimizer.schedule(
        config.schedule, config.lr, config.warmup_steps, config.total_steps, config.end_lr
    )
    tx = optimizer.adamw(
        schedule,
        b1=config.b1,
        b2=config.b2,
        weight_decay=config.weight_decay,
        clip_norm=config.clip_norm,
        lr_multipliers=lr_multipliers,
    )
    return tx, schedule
