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
      eps: floor of the scale, so a group detected as a single point does not divide by 0.

    Returns:
      ``[frames, landmarks, 3]`` float32: per group, ``(p - mean) / max(|x|, |y|)`` over its
      detected points, 0 where ``mask`` is 0. A group never detected stays all 0.
    """
    if sum(group_sizes) != points.shape[-2]:
        raise ValueError(f"group sizes {tuple(group_sizes)} do not add up to {points.shape[-2]}")
    points = points.astype(jnp.float32)
    valid = mask.astype(bool)[..., None]
    points = jnp.where(valid, points, 0.0)
    out, start = [], 0
    for size in group_sizes:
        p = points[:, start : start + size]
        v = valid[:, start : start + size]
        count = jnp.maximum(v.sum(axis=(0, 1)), 1)
        centred = jnp.where(v, p - p.sum(axis=(0, 1)) / count, 0.0)
        scale = jnp.maximum(jnp.abs(centred[..., :2]).max(), eps)
        out.append(centred / scale)
        start += size
    return jnp.concatenate(out, axis=1)
