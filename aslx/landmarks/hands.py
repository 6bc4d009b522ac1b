"""Which hand signs and which rests.

A signer's second hand often rests in view (on a desk, at the bottom of a webcam's frame) while
the other signs. Per-group normalisation would turn it into a full-size hand shape, so the
model would read a still, meaningless hand as part of the sign. :func:`resting` tells such a
hand from the base hand of a two-handed sign by its **stillness**: the root-mean-square distance
of its detected points from their own clip-wide mean positions, in shoulder widths
(:func:`summary`, :func:`aslx.landmarks.normalize.body_frame`), which does not depend on the
frame rate. Below :data:`STILL` a hand neither moves nor changes shape. On
``mp_holistic_35signs`` (train and val clips) the signing hand's value is at least 0.038 and
the base hand of *name*, which the other hand taps, at least 0.042: a living hand that takes
part in a sign moves with the body. A hand put down and held still is below 0.02.

A hand is resting when both hands are detected, it is still, and the other hand moves; when
both are still (a photo) the lower one rests. Height and distance from the other hand alone do
not separate a resting hand from a base hand on a webcam whose frame ends at the chest (the
signing hand of *name* is lower than a hand resting at the frame's bottom edge). A hand seen in
a single frame has no motion, so beside a moving hand it counts as resting: on the train and
val clips of ``mp_holistic_35signs`` the rule hides 76 hands of 1,680 clips, 74 of them such
one-frame flashes of the detector.

**Which hand signs** (:func:`left_signs`, the dominant hand of ``kaggle75``): the one that
moves more, then the one nearer the face; a hand never detected never signs.

The functions take the array module ``xp`` (``numpy`` or ``jax.numpy``), so the host and the
device apply one rule.
"""

from __future__ import annotations

#: Largest motion (:func:`summary`) of a resting hand (shoulder widths).
STILL = 0.02
#: Weight of the distance to the face (shoulder widths) against motion in
#: :func:`left_signs`: it decides between hands that move alike (a photo, two still hands).
FACE_WEIGHT = 0.01


def summary(xp, points, mask, width):
    """``(centre [2], motion [], present [])`` of one hand over a clip.

    Args:
      xp: ``numpy`` or ``jax.numpy``.
      points: ``[frames, 21, 3]`` aspect-corrected points (anything where ``mask`` is 0).
      mask: ``[frames, 21]``, true where detected (and the frame real).
      width: the body frame's width (shoulder widths are the unit of ``motion``).
    """
    valid = mask[..., None]
    xy = xp.where(valid, points[..., :2], 0.0)
    counts = xp.sum(valid, axis=0)  # [21, 1]
    means = xp.sum(xy, axis=0) / xp.maximum(counts, 1)  # [21, 2] per point
    total = xp.maximum(xp.sum(counts), 1)
    centre = xp.sum(means * counts, axis=0) / total
    spread = xp.sum(xp.where(valid, (xy - means) ** 2, 0.0)) / total
    return centre, xp.sqrt(spread) / width, xp.sum(counts) > 0


def resting(xp, left, right, width):
    """``(left_rests, right_rests)`` booleans for two hands' ``(points, mask)`` pairs
    (:func:`summary`'s arguments) in a body frame of ``width``: both detected, this one
    still, and the other one moving or, both still (a photo), this one the lower."""
    (lc, lm, lp), (rc, rm, rp) = summary(xp, *left, width), summary(xp, *right, width)
    both = lp & rp
    left_still, right_still = lm < STILL, rm < STILL
    left_lower = lc[1] > rc[1]
    return (
        both & left_still & (~right_still | left_lower),
        both & right_still & (~left_still | ~left_lower),
    )


def shoulder_frame(xp, left, right):
    """``(centre [3], width [], found [])`` of two shoulders' ``(points [T, 3], mask [T])``:
    the mean of their midpoint and of their x-y distance over the frames where both are
    detected; ``found`` is false when no frame has both (or they coincide), and the caller
    chooses its own fallback."""
    both = left[1] & right[1]
    count = xp.maximum(xp.sum(both), 1)
    a = xp.where(both[:, None], left[0], 0.0)
    b = xp.where(both[:, None], right[0], 0.0)
    centre = xp.sum((a + b) / 2, axis=0) / count
    width = xp.sum(xp.sqrt(xp.sum((a - b)[:, :2] ** 2, axis=-1))) / count
    return centre, width, xp.any(both) & (width > 0)


def left_signs(xp, left, right, shoulders, face):
    """True when the left hand is the one that signs (a dominant-hand preset mirrors it).

    Each hand scores its motion (:func:`summary`) minus :data:`FACE_WEIGHT` times its distance
    to the face (the mean of the detected ``face`` points, else the shoulder centre), both in
    shoulder widths; a hand never detected scores −∞, and a tie keeps the right hand. So the
    hand that moves wins, a resting hand loses to any signing one, and between hands that move
    alike the one nearer the face wins.

    ``left``, ``right``: hands' ``(points [T, 21, 3], mask [T, 21])``; ``shoulders``: the two
    shoulders' ``(points [T, 3], mask [T])``; ``face``: ``(points [T, F, 3], mask [T, F])``;
    all aspect-corrected.
    """
    centre, width, found = shoulder_frame(xp, *shoulders)
    # Without shoulders: the image centre, distances in image widths.
    centre, width = xp.where(found, centre[:2], 0.5), xp.where(found, width, 1.0)
    face_mask = face[1][..., None]
    seen = xp.sum(face_mask)
    face_xy = xp.sum(xp.where(face_mask, face[0][..., :2], 0.0), axis=(0, 1)) / xp.maximum(seen, 1)
    face_xy = xp.where(seen > 0, face_xy, centre)

    def score(hand):
        at, moves, present = summary(xp, *hand, width)
        near = xp.sqrt(xp.sum((at - face_xy) ** 2)) / width
        return xp.where(present, moves - FACE_WEIGHT * near, -xp.inf)

    return score(left) > score(right)
