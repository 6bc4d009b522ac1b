"""Per-group normalisation of landmark clips, with the validity mask kept beside the points.

MediaPipe gives x and y as fractions of the image width and height. Phone videos are portrait
(width / height ≈ 0.5269), so a step of 0.01 in y is 1.9 times longer than 0.01 in x. Geometry
(rotation, shear, distances) is only right after undoing that: :func:`correct_aspect`
multiplies y by :data:`ASPECT_Y`, and must come before any rotation.

:func:`normalize_groups` then centres each landmark group (hand, pose, lips …) on the mean of
its detected points over the whole clip and divides by the largest |x| or |y| of those points,
so each group spans about [-1, 1] whatever its size on screen. Missing points become 0 *and*
keep mask 0: a zero coordinate never stands for "missing" on its own.

All functions are pure ``jax.numpy`` on static shapes, so they run inside ``jit`` on device and
vectorise with ``vmap``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

#: Multiply normalised y by this to undo the portrait aspect ratio (1 / 0.5268970670149133),
#: estimated from Kaggle asl-fingerspelling hands.
ASPECT_Y = 1.8979039030629028


def correct_aspect(points: jnp.ndarray, y_scale: float = ASPECT_Y) -> jnp.ndarray:
    """Scales y by ``y_scale``. ``points``: ``[..., 3]`` (x, y, z)."""
    return points * jnp.asarray([1.0, y_scale, 1.0], points.dtype)


def normalize_groups(
    points: jnp.ndarray,
    mask: jnp.ndarray,
    group_sizes: Sequence[int],
    eps: float = 1e-6,
) -> jnp.ndarray:
    """Centres and scales each landmark group over the whole clip.

    Args:
      points: ``[frames, landmarks, 3]``; values where ``mask`` is 0 are ignored (NaN is fine).
      mask: ``[frames, landmarks]`` bool or 0/1, 1 where the point was detected and the frame
        is real (padding frames have 0).
      group_sizes: sizes of the consecutive groups; they must add up to ``landmarks``.
      eps: a group whose largest |x| or |y| is at most this (a single point) becomes all 0.

    Returns:
      ``[frames, landmarks, 3]`` float32: per group, ``(p - mean) / max(|x|, |y|)`` over its
      detected points, 0 where ``mask`` is 0. A group never detected stays all 0.
    """
    if sum(group_sizes) != points.shape[-2]:
        raise ValueError(f"group sizes {tuple(group_sizes)} do not add up to {points.shape[-2]}")
    bounds = np.cumsum((0, *group_sizes))
    valid = mask.astype(bool)[..., None]
    points = jnp.where(valid, points.astype(jnp.float32), 0.0)

    def per_group(values, reduce):
        """``[L, …]`` → ``[G, …]`` over each group's landmarks (static slices of small arrays)."""
        return jnp.stack([reduce(values[a:b], axis=0) for a, b in zip(bounds, bounds[1:])])

    def per_landmark(values):
        """``[G, …]`` → ``[L, …]``, each group's value repeated over its landmarks. Slices and
        broadcasts, not a gather: the TFLite converter refuses gathers in graphs whose frame
        count is dynamic (:mod:`aslx.export.tflite`)."""
        return jnp.concatenate(
            [
                jnp.broadcast_to(values[g : g + 1], (size, *values.shape[1:]))
                for g, size in enumerate(group_sizes)
            ]
        )

    # Reduce over frames first: the big [T, L, 3] array is read once per statistic.
    sums = per_group(points.sum(axis=0), jnp.sum)  # [G, 3]
    counts = per_group(valid.sum(axis=0, dtype=jnp.float32), jnp.sum)  # [G, 1]
    mean = per_landmark(sums / jnp.maximum(counts, 1))  # [L, 3]
    centred = jnp.where(valid, points - mean, 0.0)
    xy = lax.slice_in_dim(centred, 0, 2, axis=-1)  # a slice, not a gather (see per_landmark)
    extent = per_group(jnp.abs(xy).max(axis=(0, 2)), jnp.max)  # [G]
    # A group without extent (one point) becomes 0; dividing rounding residue by a floor would
    # blow it up instead.
    scale = per_landmark(jnp.where(extent > eps, extent, jnp.inf))
    return centred / scale[:, None]
