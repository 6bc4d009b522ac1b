"""Preprocessing: what every reader of a trained model does to a clip before the model sees it.

Aspect correction, the resting-hand rule and per-group normalisation (the maths is in
:mod:`aslx.landmarks.normalize`) of one sample or a ``[B, …]`` batch. Training runs the same
steps as the first part of its augmentation recipe (:mod:`aslx.augment.recipe`); evaluation,
predict, alignment and the TFLite export run them alone. A *sample* is one clip of a batch:
``landmarks [T, L, 3]`` (image fractions, 0 where missing), ``landmark_mask [T, L]`` and
``frame_mask [T]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from aslx.landmarks import hands
from aslx.landmarks import normalize as normalize_lib
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset

Sample = dict[str, jnp.ndarray]


def normalize(sample: Sample, preset, normalization: Normalization | None = None) -> Sample:
    """Aspect correction, the resting-hand rule, then per-group centring and scaling
    (:mod:`aslx.landmarks.normalize`); in the body frame also ``placement [G, 4]``. The
    landmark mask loses a dropped resting hand. ``normalization`` ``None`` is
    :meth:`Normalization.per_group`."""
    normalization = normalization or Normalization.per_group()
    sizes = preset.group_sizes
    points = normalize_lib.correct_aspect(sample["landmarks"], normalization.y_scale)
    mask = sample["landmark_mask"].astype(bool)
    body = normalization.frame == "body"
    pair = preset.hand_groups if normalization.drop_resting_hands else None
    if body or pair:
        centre, width = normalize_lib.body_frame(points, mask, preset.shoulder_slots)
    if pair:
        slices = preset.group_slices()
        left, right = ((points[:, slices[g]], mask[:, slices[g]]) for g in pair)
        rests = dict(zip(pair, hands.resting(jnp, left, right, width)))
        dropped = jnp.stack([rests.get(g, jnp.asarray(False)) for g in range(len(sizes))])
        mask = mask & ~normalize_lib.per_landmark(dropped, sizes)[None]
    statistics = normalize_lib.group_statistics(points, mask, sizes, normalization.extent)
    out = sample | {
        "landmarks": normalize_lib.normalize_groups(points, mask, sizes, statistics=statistics),
        "landmark_mask": mask,
    }
    if body:
        present = jnp.stack([mask[:, s].any() for s in preset.group_slices()])
        out["placement"] = normalize_lib.placements(statistics, centre, width, present)
    return out


def model_input(sample: Sample, preset: Preset, normalization: Normalization) -> jnp.ndarray:
    """``[T, L, C]``: the model's input of a normalised sample (:func:`normalize`): the
    normalised points with, in the body frame, each group's placement; a sample without one
    (augmentation run with ``AugmentConfig.normalize`` off) gets zeros."""
    if normalization.frame == "body" and "placement" not in sample:
        sample = sample | {"placement": jnp.zeros((len(preset.groups), 4))}
    return normalize_lib.model_input(sample, preset, normalization)


def normalize_batch(
    batch: dict, preset: Preset, normalization: Normalization | None = None
) -> dict:
    """What evaluation and inference see: the recipe's first step (aspect correction, the
    resting-hand rule, normalisation) alone, deterministic, on a ``[B, …]`` batch;
    ``landmarks`` becomes the model's input ``[B, T, L, C]``."""
    normalization = normalization or Normalization.per_group()
    sample = {k: batch[k] for k in ("landmarks", "landmark_mask", "frame_mask")}

    def one(sample):
        normalized = normalize(sample, preset, normalization)
        return normalized | {"landmarks": model_input(normalized, preset, normalization)}

    normalized = jax.vmap(one)(sample)
    return batch | {k: normalized[k] for k in ("landmarks", "landmark_mask")}


def permute(x: jnp.ndarray, permutation, axis: int) -> jnp.ndarray:
    """``x`` reordered along ``axis`` by a static ``permutation`` (or any fixed selection of
    indices: ``jnp.take(x, permutation, axis)``), as a concatenation of its contiguous runs:
    XLA fuses slices and concatenations, where a gather would force the producer's whole
    computation (random noise included) to be redone per read; and the TFLite converter
    refuses gathers in a graph whose frame count is dynamic (:mod:`aslx.export.tflite`)."""
    permutation = [int(i) for i in permutation]
    runs, start = [], 0
    for i in range(1, len(permutation) + 1):
        if i == len(permutation) or permutation[i] != permutation[i - 1] + 1:
            runs.append((permutation[start], permutation[i - 1] + 1))
            start = i
    slices = [jax.lax.slice_in_dim(x, a, b, axis=axis) for a, b in runs]
    return jnp.concatenate(slices, axis=axis) if len(slices) > 1 else slices[0]
