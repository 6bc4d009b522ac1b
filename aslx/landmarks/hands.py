"""Which hand signs: the resting-hand rule.

A signer's second hand often rests in view (on a desk, at the bottom of a webcam's frame) while
the other signs. Per-group normalisation would turn it into a full-size hand shape, so the
model would read a still, meaningless hand as part of the sign. :func:`resting` tells such a
hand from the base hand of a two-handed sign by three measures per clip, all in shoulder widths
(:func:`aslx.landmarks.normalize.body_frame`) and independent of the frame rate:

* **stillness**: the root-mean-square distance of the hand's detected points from their own
  clip-wide mean positions (:func:`motion`); below :data:`STILL` it neither moves nor changes
  shape. On ``mp_holistic_35signs`` (train and val clips) the signing hand's value is at least
  0.038 and the still base hand of *name* at least 0.042; a hand held perfectly still is 0.
* **height**: it is lower than the other hand (larger y);
* **distance**: its centre is at least :data:`APART` from the other hand's (the base hand of
  *name* stays within 0.62 of the hand that taps it).

A hand is resting only when both hands are detected and all three hold. The functions take the
array module ``xp`` (``numpy`` or ``jax.numpy``), so the host and the device apply one rule.
"""

from __future__ import annotations

#: Largest :func:`motion` of a resting hand (shoulder widths).
STILL = 0.02
#: Smallest distance between the two hands' centres when one rests (shoulder widths).
APART = 0.75


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
    counts = valid.sum(0)  # [21, 1]
    means = xy.sum(0) / xp.maximum(counts, 1)  # [21, 2] per point
    total = xp.maximum(counts.sum(), 1)
    centre = (means * counts).sum(0) / total
    spread = xp.where(valid, (xy - means) ** 2, 0.0).sum() / total
    return centre, xp.sqrt(spread) / width, counts.sum() > 0


def motion(xp, points, mask, width):
    """Root-mean-square distance of the detected points from their clip-wide means, in
    ``width`` units (see :func:`summary`)."""
    return summary(xp, points, mask, width)[1]


def resting(xp, left, right, width):
    """``(left_rests, right_rests)`` booleans for two hands' ``(points, mask)`` pairs
    (:func:`summary`'s arguments) in a body frame of ``width``."""
    (lc, lm, lp), (rc, rm, rp) = summary(xp, *left, width), summary(xp, *right, width)
    apart = xp.sqrt(((lc - rc) ** 2).sum()) / width >= APART
    both = lp & rp & apart
    return both & (lm < STILL) & (lc[1] > rc[1]), both & (rm < STILL) & (rc[1] > lc[1])
