"""Shifted copies of landmark test clips: the same signs as another camera, signer or recorder
would have captured them.

Every function takes and returns clips in the canonical Kaggle asl-signs layout, ``X [clips,
frames, 543, 3]`` float32: x and y are fractions of the image width and height (y grows
downwards), z is roughly in units of the image width, and a landmark whose three coordinates
are exactly zero is *missing* (the convention of the packed archives, where recorders write
zeros for undetected parts). The groups are face 0–467, left hand 468–488, pose 489–521 and
right hand 522–542 (:mod:`aslx.landmarks.layouts`); hands are named from the signer's point of
view, as MediaPipe names them.

Two rules hold for every shift: a missing landmark stays all zeros, and a present landmark
never becomes all zeros (should a transform land one exactly on ``(0, 0, 0)``, its x is nudged
by :data:`NUDGE`). Inputs are never modified; outputs are new float32 arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from aslx.augment import transforms
from aslx.landmarks import layouts

NUM_LANDMARKS = layouts.NUM_LANDMARKS
LEFT_HAND = layouts.group_slice("left_hand")
RIGHT_HAND = layouts.group_slice("right_hand")
HAND_SLOTS = (LEFT_HAND, RIGHT_HAND)  # index 0 = left slot, 1 = right slot
LEFT_SHOULDER = layouts.canonical_index("pose", 11)
RIGHT_SHOULDER = layouts.canonical_index("pose", 12)
SLOT_SHOULDERS = (LEFT_SHOULDER, RIGHT_SHOULDER)

#: Where a resting hand's lowest point sits (y, image-height fraction): the bottom of the frame.
REST_Y = 0.98
#: Resting-hand centre x when the clip never shows the shoulder on the slot's side. A camera
#: facing the signer shows the signer's left on the image's right, so the left slot goes right.
FALLBACK_REST_X = (0.75, 0.25)
#: Added to x of a present landmark that a transform put exactly on (0, 0, 0), so that it is
#: not read as missing. A millionth of the image width is far below MediaPipe's jitter.
NUDGE = 1e-6


def detected(X: np.ndarray) -> np.ndarray:
    """``[clips, frames, 543]`` bool: True where a landmark of ``X [clips, frames, 543, 3]`` is
    present, i.e. any of its three coordinates is non-zero."""
    return np.any(np.asarray(X) != 0, axis=-1)


def _as_clips(X: np.ndarray) -> np.ndarray:
    """``X`` as a float32 ``[clips, frames, 543, 3]`` array (a view when it already is one)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4 or X.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected [clips, frames, {NUM_LANDMARKS}, 3] clips, got {X.shape}")
    return X


def _finish(out: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Enforces the missing-point rules on a transformed array, in place, and returns it:
    missing landmarks (``present`` False) back to zeros, present ones off ``(0, 0, 0)``."""
    out[~present] = 0.0
    landed_on_zero = present & ~detected(out)
    out[landed_on_zero, 0] = NUDGE
    return out


def reproject(X: np.ndarray, source_aspect: float, target_aspect: float) -> np.ndarray:
    """The same scene seen by a camera with another sensor shape, ``X [clips, frames, 543, 3]``
    → same shape.

    Aspects are width / height. A wider target keeps the height and adds width on both sides:
    ``x' = 0.5 + (x - 0.5)·s/t`` and ``z' = z·s/t`` (z is in width units), y unchanged. A taller
    target keeps the width and adds height above and below: ``y' = 0.5 + (y - 0.5)·t/s``, x and
    z unchanged. In pixels either way the scene is only translated, never stretched.
    """
    X = _as_clips(X)
    if not (source_aspect > 0 and target_aspect > 0):
        raise ValueError(f"aspects must be positive, got {source_aspect} and {target_aspect}")
    present = detected(X)
    out = X.copy()
    if target_aspect > source_aspect:
        ratio = source_aspect / target_aspect
        out[..., 0] = 0.5 + (X[..., 0] - 0.5) * ratio
        out[..., 2] = X[..., 2] * ratio
    elif target_aspect < source_aspect:
        out[..., 1] = 0.5 + (X[..., 1] - 0.5) * (target_aspect / source_aspect)
    return _finish(out, present)


def zoom(X: np.ndarray, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The camera zoomed about the image centre and moved, ``X [clips, frames, 543, 3]`` → same
    shape.

    ``x' = 0.5 + factor·(x - 0.5) + dx``, ``y' = 0.5 + factor·(y - 0.5) + dy`` and
    ``z' = factor·z``: a factor below 1 zooms out (the signer looks smaller), ``offset =
    (dx, dy)`` moves the signer across the image, in image fractions.
    """
    X = _as_clips(X)
    if not factor > 0:
        raise ValueError(f"zoom factor must be positive, got {factor}")
    dx, dy = offset
    present = detected(X)
    out = np.empty_like(X)
    out[..., 0] = 0.5 + factor * (X[..., 0] - 0.5) + dx
    out[..., 1] = 0.5 + factor * (X[..., 1] - 0.5) + dy
    out[..., 2] = factor * X[..., 2]
    return _finish(out, present)


def mirror(X: np.ndarray) -> np.ndarray:
    """A mirrored (left-handed) signer, ``X [clips, frames, 543, 3]`` → same shape.

    ``x' = 1 - x`` with y and z unchanged, and every landmark moves to the slot of its mirror
    partner (:func:`aslx.landmarks.layouts.mirror_partners`): left hand ↔ right hand, LEFT_/
    RIGHT_ pose points and the lip points swap; face-mesh points off the lips keep their slot.
    """
    X = _as_clips(X)
    partner = layouts.mirror_partners()
    # The partner map is an involution, so gathering from the partners is the same as
    # scattering each landmark to its partner's slot (fancy indexing copies).
    out = X[:, :, partner]
    present = detected(out)
    out[..., 0] = 1.0 - out[..., 0]
    return _finish(out, present)


def _hand_frames(present: np.ndarray) -> np.ndarray:
    """``[clips, frames, 2]`` bool: whether the left / right hand shows at all in each frame."""
    return np.stack([present[:, :, LEFT_HAND].any(-1), present[:, :, RIGHT_HAND].any(-1)], axis=-1)


def _per_clip(rule, X: np.ndarray, empty) -> np.ndarray:
    """An augmentation rule of one sample and the hand slots, ``rule(sample, hands) ->
    [frames]``, on each clip of ``X [clips, frames, 543, 3]`` (vmapped), a point present where
    :func:`detected`; ``empty`` for every frame of clips under three frames long."""
    X = _as_clips(X)
    clips, frames = X.shape[:2]
    if frames < 3:
        return np.full((clips, frames), empty)

    def one(points, present):
        sample = {
            "landmarks": points,
            "landmark_mask": present,
            "frame_mask": np.ones(frames, bool),
        }
        return rule(sample, HAND_SLOTS)

    return np.asarray(jax.vmap(one)(jnp.asarray(X), jnp.asarray(detected(X))))


def hand_motion(X: np.ndarray) -> np.ndarray:
    """``[clips, frames]`` how far the hands move around each frame: the augmentation's own
    rule (:func:`aslx.augment.transforms.hand_motion`) on each clip of
    ``X [clips, frames, 543, 3]``, a point present where :func:`detected` (MediaPipe detects a
    hand's 21 points together). ``inf`` where no hand is shown in three frames running."""
    return _per_clip(transforms.hand_motion, X, np.float32(np.inf))


def still_frame(X: np.ndarray) -> np.ndarray:
    """One frame of each clip, as a photograph of the held sign would give,
    ``X [clips, frames, 543, 3]`` → ``[clips, 1, 543, 3]``.

    The frame is the stillest (:func:`hand_motion`; the earliest of equals): a photo is taken
    while the sign is held. The middle frame is not: in ``mp_holistic_35signs`` the hand
    comes into view around frame 10 and is held from about frame 17 of 30, so frame 15 shows a
    hand on its way in 38 % of the train split's static-letter clips (its shape further than
    0.5 from the clip's median shape, against 0.18 for the held frames). Without three
    frames running that show a hand, the middle one of the frames showing a hand, else the
    middle frame.
    """
    X = _as_clips(X)
    clips, frames = X.shape[:2]
    if frames == 0:
        raise ValueError("still_frame needs clips with at least one frame")
    motion = hand_motion(X)
    shown = _hand_frames(detected(X)).any(-1)  # [clips, frames]
    fallback = [np.flatnonzero(s)[s.sum() // 2] if s.any() else frames // 2 for s in shown]
    chosen = np.where(np.isfinite(motion).any(1), np.argmin(motion, axis=1), fallback)
    return X[np.arange(clips), chosen][:, None].copy()


def held_frames(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frame where a clip's sign is held, each as a one-frame clip: ``X [clips, frames,
    543, 3]`` → ``([n, 1, 543, 3], clip index [n])``.

    Held: the still-clip augmentation's own rule (:func:`aslx.augment.transforms.held_frames`,
    the stiller half of the frames with a finite :func:`hand_motion`). Where
    :func:`still_frame` gives one photo per clip, this gives about half of each clip's hand
    frames: the same question asked of some ten times more photos, so a score on it varies far
    less with which frame happens to be stillest.
    """
    X = _as_clips(X)
    clip, frame = np.nonzero(_per_clip(transforms.held_frames, X, False))
    return X[clip, frame][:, None].copy(), clip


def frame_rate(X: np.ndarray, factor: float) -> np.ndarray:
    """The clip recorded at another frame rate, ``X [clips, frames, 543, 3]`` → ``[clips,
    frames', 543, 3]``.

    ``factor = 0.5`` keeps every other frame (``frames' = ceil(frames / 2)``). ``factor = 2``
    gives ``frames' = 2·frames - 1``: frame ``2k`` is original ``k`` and frame ``2k + 1`` lies
    halfway between originals ``k`` and ``k + 1``, per landmark the average where both are
    present, a copy of whichever one is present otherwise, missing when neither is. Any other
    factor raises ``ValueError``.
    """
    X = _as_clips(X)
    if factor == 0.5:
        return X[:, ::2].copy()
    if factor != 2:
        raise ValueError(f"frame_rate supports factors 0.5 and 2, got {factor}")
    clips, frames = X.shape[:2]
    if frames == 0:
        return X.copy()
    present = detected(X)
    before, after = X[:, :-1], X[:, 1:]
    has_before, has_after = present[:, :-1, :, None], present[:, 1:, :, None]
    between = np.where(
        has_before & has_after,
        (before + after) * np.float32(0.5),
        np.where(has_before, before, after),  # `after` is all zeros when it is missing too
    )
    out = np.empty((clips, 2 * frames - 1, NUM_LANDMARKS, 3), dtype=np.float32)
    out[:, ::2] = X
    out[:, 1::2] = between
    out_present = np.empty(out.shape[:-1], dtype=bool)
    out_present[:, ::2] = present
    out_present[:, 1::2] = (has_before | has_after)[..., 0]
    # Only an average of two present points can land on (0, 0, 0); copies never do.
    return _finish(out, out_present)


def _shoulder_stats(X: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per clip of ``X [clips, frames, 543, 3]``: the shoulder width ``[clips]`` (x, y distance
    between pose points 11 and 12, mean over the frames where both are detected) and the mean
    x of each shoulder ``[clips, 2]`` (left, right; over the frames where it is detected). NaN
    where a clip has no such frame. float64."""

    def mean_over(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        count = mask.sum(1)
        total = np.where(mask, values, 0.0).sum(1)
        mean = np.full(total.shape, np.nan)
        np.divide(total, count, out=mean, where=count > 0)
        return mean

    left = X[:, :, LEFT_SHOULDER, :2].astype(np.float64)
    right = X[:, :, RIGHT_SHOULDER, :2].astype(np.float64)
    has_left, has_right = present[:, :, LEFT_SHOULDER], present[:, :, RIGHT_SHOULDER]
    width = mean_over(np.linalg.norm(left - right, axis=-1), has_left & has_right)
    shoulder_x = np.stack(
        [mean_over(left[..., 0], has_left), mean_over(right[..., 0], has_right)], axis=-1
    )
    return width, shoulder_x


def resting_hand(
    X: np.ndarray, donors: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A still hand resting at the bottom of the frame in place of each clip's weaker hand.

    ``X [clips, frames, 543, 3]`` → (the new clips, same shape; ``slots [clips]`` int32, 0 when
    the left hand slot got the resting hand, 1 the right). The slot is the hand detected in
    fewer frames (ties: left). Its 21 points, in every frame, become one fully detected hand of
    the same slot from ``donors`` (clips in the same layout; donor clip and frame drawn
    uniformly with ``rng``, one draw per clip in order), scaled in x, y about its mean by the
    ratio of the target clip's shoulder width to the donor clip's (1 when either lacks
    shoulders), then moved so that its mean x is the target clip's mean x of the shoulder on
    the slot's side (pose 11 for the left slot, 12 for the right; 0.75 / 0.25 when that
    shoulder is never detected) and its lowest point sits at ``y = 0.98``. The donor's z is
    kept as it is. Every other landmark is left unchanged.
    """
    X = _as_clips(X)
    donors = _as_clips(donors)
    present = detected(X)
    donor_present = detected(donors)

    counts = _hand_frames(present).sum(1)  # [clips, 2]
    slots = (counts[:, 1] < counts[:, 0]).astype(np.int32)

    pools = [np.argwhere(donor_present[:, :, hand].all(-1)) for hand in HAND_SLOTS]
    for slot in np.unique(slots):
        if len(pools[slot]) == 0:
            side = ("left", "right")[slot]
            raise ValueError(f"no donor frame shows a fully detected {side} hand")

    width, shoulder_x = _shoulder_stats(X, present)
    donor_width, _ = _shoulder_stats(donors, donor_present)

    out = X.copy()
    new_present = present.copy()
    for clip, slot in enumerate(slots):
        hand = HAND_SLOTS[slot]
        donor_clip, donor_frame = pools[slot][rng.integers(len(pools[slot]))]
        points = donors[donor_clip, donor_frame, hand].astype(np.float64)  # [21, 3]

        target, source = width[clip], donor_width[donor_clip]
        # A zero or unknown width says nothing about the signer's size: keep the donor's.
        scale = target / source if target > 0 and source > 0 else 1.0
        centre = points[:, :2].mean(0)
        points[:, :2] = centre + (points[:, :2] - centre) * scale

        rest_x = shoulder_x[clip, slot]
        if not np.isfinite(rest_x):
            rest_x = FALLBACK_REST_X[slot]
        points[:, 0] += rest_x - centre[0]
        points[:, 1] += REST_Y - points[:, 1].max()  # y grows downwards: the max is the lowest
        out[clip, :, hand] = points.astype(np.float32)
        # Every resting-hand point is present, whatever its slot held before.
        new_present[clip, :, hand] = True
    return _finish(out, new_present), slots
