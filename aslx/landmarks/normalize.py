"""Normalisation of landmark clips into the model's input, with the validity mask kept beside.

**Camera aspect.** MediaPipe gives x and y as fractions of the image width and height, so on a
camera of width / height ``a`` a step of 0.01 in y is ``1 / a`` times a step of 0.01 in x.
Geometry (rotation, shear, distances) is only right after undoing that: :func:`correct_aspect`
multiplies y by ``1 / a`` and must come before any rotation. Each record set says its camera's
``a`` (``camera_aspect`` in ``metadata.json``, :mod:`aslx.records.metadata`); formats that do
not know it get :data:`DEFAULT_CAMERA_ASPECT`, Kaggle's portrait phone videos.

**Per-group frame** (``Normalization.frame = "group"``): each landmark group (hand, pose, lips
…) is centred on the mean of its detected points over the whole clip and divided by their
largest |x| or |y|, so each group spans about [-1, 1] whatever its size on screen
(:func:`normalize_groups`). A hand's place and size relative to the body are lost.

**Body frame** (``"body"``, the default): the same local shape per group, and beside it each
group's *placement* in the body's frame, ``[G, 4]`` per clip: its centre minus the shoulder
centre and its extent (by default its size, ``extent="frame"``), both in shoulder widths
(:func:`body_frame`, :func:`placements`). Local shape and placement together give back the
body-frame points exactly (``local · extent + centre``), so nothing is lost, and moving or
scaling the whole signer changes neither. Without shoulders in any frame the body frame falls
back to the clip's own: the centre and largest |x| or |y| of every detected point.

**Resting hands** (``drop_resting_hands``): a hand that the rule of
:func:`aslx.landmarks.hands.resting` calls resting (still beside a moving hand, or the lower of
two still ones) is hidden for the whole clip, as if it had not been detected.

**Mask channel** (``mask_channel``): one more channel per point, 1 where it was detected.

**The model's input** (:func:`model_input`): per point its local x, y, z, then the mask channel
when on, then (body frame) its group's placement, so ``[frames, landmarks, C]`` with ``C`` from
3 to 8 (:attr:`Normalization.landmark_channels`); every channel is 0 where the point is
missing. Repeating a group's placement on each of its points keeps the input one array per
point, which the joint gate, Data2vec's frame masking and the TFLite graph all take as it is.

Missing points become 0 *and* keep mask 0: a zero coordinate never stands for "missing" on its
own. All functions are pure ``jax.numpy`` on static shapes, so they run inside ``jit`` on device
and vectorise with ``vmap``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from aslx.landmarks import hands

#: Width / height of Kaggle's portrait phone videos (estimated from asl-fingerspelling hands):
#: the camera aspect of record sets whose format does not say it.
DEFAULT_CAMERA_ASPECT = 0.5268970670149133
#: Multiply normalised y by this to undo the portrait aspect ratio (1 / DEFAULT_CAMERA_ASPECT).
ASPECT_Y = 1.8979039030629028
FRAMES = ("group", "body")
EXTENTS = ("clip", "frame")
#: Channels of a group's placement: centre x, y, z and extent, in shoulder widths.
PLACEMENT_CHANNELS = 4


@dataclasses.dataclass(frozen=True)
class Normalization:
    """How landmarks become the model's input (see the module docstring).

    Attributes:
      frame: ``body`` (local shape plus placement in the body's frame) or ``group``.
      camera_aspect: the camera's width / height.
      drop_resting_hands: hide a resting second hand (:func:`aslx.landmarks.hands.resting`).
      mask_channel: add the detection mask as a fourth channel per point.
      extent: what a group's local shape is divided by (:func:`group_statistics`): ``clip``
        (its reach over the clip, motion included) or ``frame`` (its own size, as in one frame).
    """

    frame: str = "body"
    camera_aspect: float = DEFAULT_CAMERA_ASPECT
    drop_resting_hands: bool = True
    mask_channel: bool = False
    extent: str = "frame"

    def __post_init__(self):
        if self.extent not in EXTENTS:
            raise ValueError(f"normalization extent must be one of {EXTENTS}, not {self.extent!r}")
        if self.frame not in FRAMES:
            raise ValueError(f"normalization frame must be one of {FRAMES}, not {self.frame!r}")
        if not self.camera_aspect > 0:
            raise ValueError(
                f"camera_aspect must be a positive width / height, not {self.camera_aspect}"
            )

    @classmethod
    def per_group(cls, camera_aspect: float = DEFAULT_CAMERA_ASPECT) -> Normalization:
        """The preprocessing of models trained before the body frame: per-group frame divided
        by the clip's reach, no resting-hand rule, three channels."""
        return cls(
            frame="group", camera_aspect=camera_aspect, drop_resting_hands=False, extent="clip"
        )

    @property
    def y_scale(self) -> float:
        return y_scale(self.camera_aspect)

    @property
    def landmark_channels(self) -> int:
        """Channels per point of the model's input (:func:`model_input`)."""
        return 3 + self.mask_channel + (PLACEMENT_CHANNELS if self.frame == "body" else 0)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: dict | None) -> Normalization:
        """:meth:`to_json`'s form; ``None`` (a model card from before this field) is
        :meth:`per_group` with the portrait aspect, what those models were trained with."""
        if value is None:
            return cls.per_group()
        return cls(**value)


def y_scale(camera_aspect: float) -> float:
    """What y is multiplied by for a camera of width / height ``camera_aspect``: its height /
    width (exactly :data:`ASPECT_Y` for the portrait default)."""
    return ASPECT_Y if camera_aspect == DEFAULT_CAMERA_ASPECT else 1.0 / camera_aspect


def parse_aspect(text: str) -> float:
    """``"16:9"``, ``"1.777"`` or ``"1920x1080"`` → width / height; ``ValueError`` otherwise."""
    for separator in (":", "x", "/"):
        if separator in text:
            width, _, height = text.partition(separator)
            break
    else:
        width, height = text, "1"
    try:
        value = float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"camera aspect {text!r}: give width/height as 16:9, 1920x1080 or 1.778"
        ) from None
    if not 0.1 <= value <= 10:
        raise ValueError(f"camera aspect {text!r} = {value:.3g} is not a camera's width/height")
    return value


def correct_aspect(points: jnp.ndarray, y_scale: float = ASPECT_Y) -> jnp.ndarray:
    """Scales y by ``y_scale`` (the camera's height / width). ``points``: ``[..., 3]``."""
    return points * jnp.asarray([1.0, y_scale, 1.0], points.dtype)


def _per_group(values, bounds, reduce):
    """``[L, …]`` → ``[G, …]`` over each group's landmarks (static slices of small arrays)."""
    return jnp.stack([reduce(values[a:b], axis=0) for a, b in zip(bounds, bounds[1:])])


def per_landmark(values: jnp.ndarray, group_sizes: Sequence[int]) -> jnp.ndarray:
    """``[G, …]`` → ``[L, …]``, each group's value repeated over its landmarks. Slices and
    broadcasts, not a gather: the TFLite converter refuses gathers in graphs whose frame count
    is dynamic (:mod:`aslx.export.tflite`)."""
    return jnp.concatenate(
        [
            jnp.broadcast_to(values[g : g + 1], (size, *values.shape[1:]))
            for g, size in enumerate(group_sizes)
        ]
    )


def group_statistics(
    points: jnp.ndarray,
    mask: jnp.ndarray,
    group_sizes: Sequence[int],
    extent: str = "clip",
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Each group's clip-wide centre and extent.

    Args:
      points: ``[frames, landmarks, 3]``; values where ``mask`` is 0 are ignored (NaN is fine).
      mask: ``[frames, landmarks]``, 1 where detected and the frame is real.
      group_sizes: sizes of the consecutive groups; they must add up to ``landmarks``.
      extent: ``clip``: the largest |x| or |y| of the group's detected points about its clip
        centre (the reach of its motion included); ``frame``: the mean over the frames that
        show the group of its largest |x| or |y| about that frame's own centre (its size, the
        same in one frame as in a whole clip).

    Returns:
      ``mean [G, 3]`` of the group's detected points (0 when it has none) and ``extent [G]``.
    """
    if sum(group_sizes) != points.shape[-2]:
        raise ValueError(f"group sizes {tuple(group_sizes)} do not add up to {points.shape[-2]}")
    bounds = np.cumsum((0, *group_sizes))
    valid = mask.astype(bool)[..., None]
    points = jnp.where(valid, points.astype(jnp.float32), 0.0)
    # Reduce over frames first: the big [T, L, 3] array is read once per statistic.
    sums = _per_group(points.sum(axis=0), bounds, jnp.sum)  # [G, 3]
    counts = _per_group(valid.sum(axis=0, dtype=jnp.float32), bounds, jnp.sum)  # [G, 1]
    mean = sums / jnp.maximum(counts, 1)
    if extent == "frame":
        by_frame = jnp.swapaxes(points, 0, 1)  # [L, T, 3]
        seen = jnp.swapaxes(valid, 0, 1)
        frame_counts = _per_group(seen.astype(jnp.float32), bounds, jnp.sum)  # [G, T, 1]
        frame_means = _per_group(by_frame, bounds, jnp.sum) / jnp.maximum(frame_counts, 1)
        centred = jnp.where(seen, by_frame - per_landmark(frame_means, group_sizes), 0.0)
        reach = _per_group(jnp.abs(centred[..., :2]).max(axis=-1), bounds, jnp.max)  # [G, T]
        shown = frame_counts[..., 0] > 0
        sizes = (reach * shown).sum(-1) / jnp.maximum(shown.sum(-1), 1)
        return mean, sizes
    centred = jnp.where(valid, points - per_landmark(mean, group_sizes), 0.0)
    xy = lax.slice_in_dim(centred, 0, 2, axis=-1)  # a slice, not a gather (see per_landmark)
    return mean, _per_group(jnp.abs(xy).max(axis=(0, 2)), bounds, jnp.max)  # [G]


def normalize_groups(
    points: jnp.ndarray,
    mask: jnp.ndarray,
    group_sizes: Sequence[int],
    eps: float = 1e-6,
    statistics: tuple[jnp.ndarray, jnp.ndarray] | None = None,
) -> jnp.ndarray:
    """Centres and scales each landmark group over the whole clip.

    Args:
      points: ``[frames, landmarks, 3]``; values where ``mask`` is 0 are ignored (NaN is fine).
      mask: ``[frames, landmarks]`` bool or 0/1, 1 where the point was detected and the frame
        is real (padding frames have 0).
      group_sizes: sizes of the consecutive groups; they must add up to ``landmarks``.
      eps: a group whose largest |x| or |y| is at most this (a single point) becomes all 0.
      statistics: :func:`group_statistics` of these points, when the caller has them.

    Returns:
      ``[frames, landmarks, 3]`` float32: per group, ``(p - mean) / max(|x|, |y|)`` over its
      detected points, 0 where ``mask`` is 0. A group never detected stays all 0.
    """
    mean, extent = statistics or group_statistics(points, mask, group_sizes)
    valid = mask.astype(bool)[..., None]
    centred = jnp.where(valid, points.astype(jnp.float32) - per_landmark(mean, group_sizes), 0.0)
    # A group without extent (one point) becomes 0; dividing rounding residue by a floor would
    # blow it up instead.
    scale = per_landmark(jnp.where(extent > eps, extent, jnp.inf), group_sizes)
    return centred / scale[:, None]


def body_frame(
    points: jnp.ndarray, mask: jnp.ndarray, shoulders: tuple[int, int] | None
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The body's frame of one clip: ``(centre [3], width [])``.

    The centre is the mean of the shoulders' midpoint and the width the mean x-y distance
    between them, over the frames where both are detected. A clip without such a frame (or a
    preset without shoulders, ``shoulders=None``) falls back to the centre of all its detected
    points and their largest |x| or |y| about it, so the frame still moves and scales with the
    signer. ``points`` ``[frames, landmarks, 3]`` (aspect corrected), ``mask`` ``[frames,
    landmarks]``.
    """
    (mean,), (extent,) = group_statistics(points, mask, (points.shape[-2],))
    fallback_width = jnp.where(extent > 0, extent, 1.0)
    if shoulders is None:
        return mean, fallback_width
    valid = mask.astype(bool)
    points = points.astype(jnp.float32)
    centre, width, found = hands.shoulder_frame(
        jnp, *((points[:, s], valid[:, s]) for s in shoulders)
    )
    return jnp.where(found, centre, mean), jnp.where(found, width, fallback_width)


def placements(
    statistics: tuple[jnp.ndarray, jnp.ndarray],
    centre: jnp.ndarray,
    width: jnp.ndarray,
    present: jnp.ndarray,
) -> jnp.ndarray:
    """``[G, 4]``: each group's centre minus the body centre and its extent, in body widths
    (:func:`body_frame`); all 0 for a group that is not ``present [G]``."""
    mean, extent = statistics
    placed = jnp.concatenate([(mean - centre) / width, (extent / width)[:, None]], axis=-1)
    return jnp.where(present[:, None], placed, 0.0)


def model_input(sample: dict, preset, normalization: Normalization) -> jnp.ndarray:
    """``[frames, landmarks, C]``: the normalised points of one sample (``landmarks`` and
    ``landmark_mask`` as the augmentation leaves them, plus ``placement [G, 4]`` in the body
    frame), with the channels of :attr:`Normalization.landmark_channels`."""
    mask = sample["landmark_mask"].astype(bool)[..., None]
    parts = [sample["landmarks"]]
    if normalization.mask_channel:
        parts.append(mask.astype(jnp.float32))
    if normalization.frame == "body":
        placed = per_landmark(sample["placement"], preset.group_sizes)[None]  # [1, L, 4]
        parts.append(jnp.broadcast_to(placed, (*mask.shape[:2], PLACEMENT_CHANNELS)))
    joined = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    return jnp.where(mask, joined, 0.0)
