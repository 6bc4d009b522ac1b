"""Augmentation transforms: pure functions of one sample and their drawn parameters.

A *sample* is one example of a batch from :mod:`aslx.input.pipeline` (no batch axis):

=================  ==================  =======================================================
key                shape               meaning
=================  ==================  =======================================================
landmarks          [T, L, 3] float32   points; 0 wherever ``landmark_mask`` is 0
landmark_mask      [T, L] bool         point detected and frame real
frame_mask         [T] bool            real frames, always a prefix ``[0, n)``
labels             [S] int32           label ids, :data:`~aslx.vocab.LABEL_PAD` past the label
label_mask         [S] bool            real label positions, a prefix ``[0, m)``
alignment          [T] int32           optional: label position each frame shows, -1 for none
=================  ==================  =======================================================

Each transform here is deterministic given its parameters (angles, masks, scales …); the recipe
(:mod:`aslx.augment.recipe`) draws those from a key. That split lets the tests feed the same
parameters to the slow NumPy reference (``tests/augment_reference.py``). Shapes never change:
frames that stop being real are masked, never removed. Every transform keeps the invariants:
masked points are 0, padding frames have no valid points, missing points stay missing.

``groups`` are ``(start, size)`` slices of the landmark axis (a preset's groups). A transform
that is not applied gets neutral parameters (scale 1, no flip, no hidden frames), which leave
the sample exactly as it was.
"""

from __future__ import annotations

import jax.numpy as jnp

from aslx import ctc_frames
from aslx.landmarks import preprocess
from aslx.vocab import LABEL_PAD

Sample = dict[str, jnp.ndarray]

#: A resampled point is kept where its interpolated mask is at least 1/2. Exact ties (a valid
#: and a missing neighbour at equal distance) are kept; the margin absorbs float32 rounding of
#: the source position, so the rule does not flip with how the position was computed.
KEEP_THRESHOLD = 0.5 - 1e-4
SNAP = 1e-4


def num_frames(sample: Sample) -> jnp.ndarray:
    return sample["frame_mask"].sum()


def num_labels(sample: Sample) -> jnp.ndarray:
    return sample["label_mask"].sum()


def _clean(sample: Sample) -> Sample:
    """Re-establishes the invariants: points only on real frames, 0 where masked."""
    mask = sample["landmark_mask"] & sample["frame_mask"][:, None]
    return sample | {
        "landmarks": jnp.where(mask[..., None], sample["landmarks"], 0.0),
        "landmark_mask": mask,
    }


# --- whole-clip transforms ------------------------------------------------------------------


def hand_motion(sample: Sample, hands) -> jnp.ndarray:
    """``[frames]``: how far the hands move around each frame, the mean distance (x and y) the
    points of a hand shown in the frame and both its neighbours travel from the frame before to
    the one after, the smaller over ``hands`` (landmark slices); ``inf`` where no hand is shown
    three frames running."""
    points, mask = sample["landmarks"], sample["landmark_mask"].astype(bool)
    real = sample["frame_mask"].astype(bool)
    per_hand = []
    for s in hands:
        shown = mask[:, s].all(-1) & real
        step = jnp.linalg.norm(points[2:, s, :2] - points[:-2, s, :2], axis=-1).mean(-1)
        around = shown[:-2] & shown[1:-1] & shown[2:]
        inner = jnp.where(around, step, jnp.inf)
        per_hand.append(jnp.concatenate([jnp.array([jnp.inf]), inner, jnp.array([jnp.inf])]))
    return jnp.stack(per_hand).min(0)


def held_frames(sample: Sample, hands) -> jnp.ndarray:
    """``[frames]`` bool: where the sign is held, the frames whose :func:`hand_motion` is finite
    and at most its median over those frames (the stiller half); none when no hand is shown
    three frames running."""
    motion = hand_motion(sample, hands)
    finite = jnp.isfinite(motion)
    return finite & (motion <= jnp.nanmedian(jnp.where(finite, motion, jnp.nan)))


def still_clip(
    sample: Sample,
    on: jnp.ndarray,
    frame: jnp.ndarray,
    length: jnp.ndarray,
    shows=None,
) -> Sample:
    """A photo of the sign held still, when ``on``: one real frame repeated for
    ``1 + ⌊length · n⌋`` frames (``length`` in [0, 1), ``n`` the real frames), the rest
    padding. The frame is number ``⌊frame · m⌋`` (``frame`` in [0, 1)) of the ``m`` candidate
    frames: those that show a point of the landmark slots ``shows`` (the hands: a photo of a
    sign shows the hand that signs) and, of these, the :func:`held_frames`
    (a photo is taken while the sign is held; in a clip the hand first comes into view,
    showing other shapes on its way); all real frames when none shows a hand or ``shows`` is
    ``None``. The labels stay: classification only (a still clip shows one sign, never a CTC
    phrase)."""
    n = num_frames(sample)
    real = sample["frame_mask"].astype(bool)
    mask = sample["landmark_mask"].astype(bool)
    candidates = real
    if shows:
        showing = real & jnp.stack([mask[:, s].any(-1) for s in shows]).any(0)
        candidates = jnp.where(showing.any(), showing, real)
        steady = candidates & held_frames(sample, shows)
        candidates = jnp.where(steady.any(), steady, candidates)
    m = candidates.sum()
    k = jnp.minimum(jnp.floor(frame * m).astype(jnp.int32), jnp.maximum(m - 1, 0))
    index = jnp.argmax(jnp.cumsum(candidates) > k)  # the k-th candidate frame
    keep = jnp.minimum(1 + jnp.floor(length * n).astype(jnp.int32), n)
    t = sample["frame_mask"].shape[0]
    held = {
        "landmarks": jnp.broadcast_to(sample["landmarks"][index], sample["landmarks"].shape),
        "landmark_mask": jnp.broadcast_to(mask[index], mask.shape),
        "frame_mask": (jnp.arange(t) < keep) & (n > 0),
    }
    return _clean(sample | {k: jnp.where(on, v, sample[k]) for k, v in held.items()})


#: Parent of each of a hand's 21 MediaPipe points (the wrist, 0, has none): the thumb and
#: the four fingers each hang from the wrist by a palm bone, then run knuckle to tip.
HAND_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
#: Bones of a hand: ``(parent, child)`` for every point but the wrist, in :data:`HAND_PARENTS`
#: order (child k − 1 is bone k − 1).
HAND_BONES = tuple((parent, child) for child, parent in enumerate(HAND_PARENTS) if parent >= 0)


def hand_slices(preset) -> list[slice]:
    """The landmark slices of the preset's 21-point hand groups."""
    return [s for (name, _), s in zip(preset.groups, preset.group_slices()) if "hand" in name]


def scale_bones(sample: Sample, preset, factors: jnp.ndarray) -> Sample:
    """Each hand's bones (:data:`HAND_BONES`) lengthened by ``factors [hands, 20]`` (1 leaves
    a bone as it is), the wrist fixed: a child point moves with its parent and then along its
    own bone, ``p'_child = p'_parent + f · (p_child − p_parent)``. A point whose parent is
    missing keeps its place. Another signer's finger and palm proportions; raw coordinates."""
    points, mask = sample["landmarks"], sample["landmark_mask"].astype(bool)
    for h, hand in enumerate(hand_slices(preset)):
        p, m = points[:, hand], mask[:, hand]
        new = [p[:, 0]]
        for child, parent in enumerate(HAND_PARENTS[1:], start=1):
            moved = new[parent] + factors[h, child - 1] * (p[:, child] - p[:, parent])
            new.append(jnp.where((m[:, parent] & m[:, child])[:, None], moved, p[:, child]))
        points = points.at[:, hand].set(jnp.stack(new, axis=1))
    return _clean(sample | {"landmarks": points})


def scale_hands(sample: Sample, preset, factors: jnp.ndarray) -> Sample:
    """Each hand scaled about its wrist by ``factors [hands]`` in every frame: hand size
    relative to the body. Raw coordinates."""
    points = sample["landmarks"]
    for h, hand in enumerate(hand_slices(preset)):
        p = points[:, hand]
        points = points.at[:, hand].set(p[:, :1] + factors[h] * (p - p[:, :1]))
    return _clean(sample | {"landmarks": points})


def reframe(sample: Sample, zoom: jnp.ndarray, shift: jnp.ndarray) -> Sample:
    """The camera zoomed by ``zoom`` about the image centre and moved by ``shift [2]`` (image
    fractions): x, y → ``0.5 + zoom · (p − 0.5) + shift``, z → ``zoom · z``. Points that leave
    the image ([0, 1] in x and y) are lost, as a real camera would lose them; points already
    outside it stay (MediaPipe places body points beyond the frame, and evaluation sees them:
    dropping them from every training clip, the neutral draw included, made a model that
    scored 0.13 on the clips it is evaluated on)."""
    points = sample["landmarks"]

    def in_image(xy):
        return jnp.all((xy >= 0) & (xy <= 1), axis=-1)

    xy = 0.5 + zoom * (points[..., :2] - 0.5) + shift
    lost = in_image(points[..., :2]) & ~in_image(xy)
    moved = jnp.concatenate([xy, zoom * points[..., 2:]], axis=-1)
    mask = sample["landmark_mask"].astype(bool)
    return _clean(sample | {"landmarks": moved, "landmark_mask": mask & ~lost})


#: Where an inserted resting hand's lowest point sits (image height fractions).
RESTING_HAND_BOTTOM = 0.98


def insert_resting_hand(
    sample: Sample, preset, on: jnp.ndarray, frame: jnp.ndarray, offset: jnp.ndarray
) -> Sample:
    """A second hand resting in view, when ``on`` and the clip shows one hand only: the
    signing hand's shape at real frame ``⌊frame · n⌋``, mirrored, held still in the empty hand
    slot, under that side's shoulder (its clip mean x, moved by ``offset [2]``, image
    fractions), its lowest point at :data:`RESTING_HAND_BOTTOM` + ``offset[1]``. Raw image
    coordinates, before normalisation; a preset without both hands is left as it is."""
    if preset.hand_groups is None or preset.shoulder_slots is None:
        return sample
    points, mask = sample["landmarks"], sample["landmark_mask"].astype(bool)
    slices = [preset.group_slices()[g] for g in preset.hand_groups]
    present = [mask[:, s].any() for s in slices]
    n = num_frames(sample)
    index = jnp.minimum(jnp.floor(frame * n).astype(jnp.int32), jnp.maximum(n - 1, 0))
    real = sample["frame_mask"][:, None]
    for target, source in ((0, 1), (1, 0)):
        shape = points[index, slices[source]]  # [21, 3]
        seen = mask[index, slices[source]]  # [21]
        xs = jnp.where(seen, shape[:, 0], jnp.nan)
        shape = shape.at[:, 0].set(jnp.nanmax(xs) + jnp.nanmin(xs) - shape[:, 0])  # mirrored
        shoulder = preset.shoulder_slots[target]
        seen_shoulder = mask[:, shoulder]
        x = jnp.where(seen_shoulder, points[:, shoulder, 0], 0.0).sum() / jnp.maximum(
            seen_shoulder.sum(), 1
        )
        lowest = jnp.nanmax(jnp.where(seen, shape[:, 1], jnp.nan))
        centre = jnp.nanmean(jnp.where(seen, shape[:, 0], jnp.nan))
        placed = shape + jnp.stack(
            [x - centre + offset[0], RESTING_HAND_BOTTOM + offset[1] - lowest, 0.0]
        )
        insert = on & present[source] & ~present[target] & seen.any() & seen_shoulder.any()
        new_points = jnp.broadcast_to(placed, (points.shape[0], *placed.shape))
        new_mask = jnp.broadcast_to(seen, (points.shape[0], seen.shape[0])) & real
        points = points.at[:, slices[target]].set(
            jnp.where(
                insert, jnp.where(new_mask[..., None], new_points, 0.0), points[:, slices[target]]
            )
        )
        mask = mask.at[:, slices[target]].set(jnp.where(insert, new_mask, mask[:, slices[target]]))
    return _clean(sample | {"landmarks": points, "landmark_mask": mask})


def camera_aspect_jitter(sample: Sample, y_factor: jnp.ndarray) -> Sample:
    """Raw y scaled by ``y_factor`` (about the image centre): the signer seen by a camera whose
    width / height differs from the record set's by ``1 / y_factor``."""
    points = sample["landmarks"]
    y = (points[..., 1] - 0.5) * y_factor + 0.5
    return _clean(sample | {"landmarks": points.at[..., 1].set(y)})


def _flip_labels(sample: Sample, flip: jnp.ndarray | bool) -> jnp.ndarray:
    """The labels, their real positions reversed when ``flip``."""
    m = num_labels(sample)
    k = jnp.arange(sample["label_mask"].shape[0])
    return sample["labels"][jnp.where((k < m) & flip, m - 1 - k, k)]


def time_flip(sample: Sample, flip: jnp.ndarray | bool = True) -> Sample:
    """Plays the clip backwards when ``flip``: real frames reversed, and the label with them."""
    t = sample["frame_mask"].shape[0]
    n, m = num_frames(sample), num_labels(sample)
    i = jnp.arange(t)
    frame_source = jnp.where((i < n) & flip, n - 1 - i, i)
    out = sample | {
        "landmarks": sample["landmarks"][frame_source],
        "landmark_mask": sample["landmark_mask"][frame_source],
        "labels": _flip_labels(sample, flip),
    }
    if "alignment" in sample:
        a = sample["alignment"][frame_source]
        out["alignment"] = jnp.where(flip & (a >= 0), m - 1 - a, a)
    return out


def resample(sample: Sample, scale: jnp.ndarray, flip: jnp.ndarray | bool = False) -> Sample:
    """Changes the clip's speed: ``n`` real frames become ``round(n · scale)`` (at most ``T``);
    with ``flip`` it also plays the clip backwards (:func:`time_flip`, in the same pass).

    New frame ``i`` reads source time ``i (n − 1) / (n' − 1)``, interpolating linearly between
    the two nearest frames. Points and their mask are interpolated together: a point is kept
    where the interpolated mask is at least 1/2, and its coordinates are the mask-weighted
    interpolation (so a missing neighbour never drags a point towards 0).
    """
    t = sample["frame_mask"].shape[0]
    n = num_frames(sample)
    n_new = jnp.where(n > 0, jnp.clip(jnp.round(n * scale), 1, t), 0).astype(jnp.int32)
    i = jnp.arange(t)
    last = jnp.maximum(n - 1, 0)
    source = jnp.clip(i * last / jnp.maximum(n_new - 1, 1), 0, last)
    source = jnp.where(flip, last - source, source)
    # Compiled division may land a hair off an integer; SNAP puts it back, so equal lengths are
    # exactly the identity (real fractions are at least 1 / (T - 1) away from integers).
    lo = jnp.floor(source + SNAP).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, last)
    w = source - lo
    w = jnp.where(w > SNAP, w, 0.0)[:, None]
    m = sample["landmark_mask"].astype(jnp.float32)
    weight_lo, weight_hi = m[lo] * (1 - w), m[hi] * w
    den = weight_lo + weight_hi
    num = (
        sample["landmarks"][lo] * weight_lo[..., None]
        + sample["landmarks"][hi] * weight_hi[..., None]
    )
    frame_mask = i < n_new
    keep = (den >= KEEP_THRESHOLD) & frame_mask[:, None]
    out = sample | {
        "landmarks": jnp.where(keep[..., None], num / jnp.maximum(den, 1e-6)[..., None], 0.0),
        "landmark_mask": keep,
        "frame_mask": frame_mask,
    }
    out["labels"] = _flip_labels(sample, flip)
    if "alignment" in sample:
        nearest = jnp.minimum(lo + (w[:, 0] > 0.5 - SNAP), last)
        a = sample["alignment"][nearest]
        m = num_labels(sample)
        a = jnp.where(flip & (a >= 0), m - 1 - a, a)
        out["alignment"] = jnp.where(frame_mask, a, -1)
    return out


def truncate(sample: Sample, length: int) -> Sample:
    """Keeps at most the first ``length`` frames."""
    frame_mask = sample["frame_mask"] & (jnp.arange(sample["frame_mask"].shape[0]) < length)
    out = _clean(sample | {"frame_mask": frame_mask})
    if "alignment" in sample:
        out["alignment"] = jnp.where(frame_mask, sample["alignment"], -1)
    return out


def align_ctc_label(sample: Sample) -> Sample:
    """Keeps the longest label prefix CTC can emit in the real frames: one frame per label plus
    one between equal neighbours. Labels past it become padding."""
    labels, label_mask = sample["labels"], sample["label_mask"]
    keep = ctc_frames.fitting_mask(labels, num_frames(sample), label_mask)
    out = sample | {"labels": jnp.where(keep, labels, LABEL_PAD), "label_mask": keep}
    if "alignment" in sample:
        a = sample["alignment"]
        out["alignment"] = jnp.where(a < keep.sum(), a, -1)
    return out


# --- masking and noise -----------------------------------------------------------------------


def block_cover(starts: jnp.ndarray, block_size: int) -> jnp.ndarray:
    """``[T]``: frames inside a block of ``block_size`` frames that starts where ``starts``."""
    counts = jnp.cumsum(starts.astype(jnp.int32), axis=-1)
    pad = jnp.zeros((*counts.shape[:-1], block_size), jnp.int32)
    before = jnp.concatenate([pad, counts], axis=-1)[..., : counts.shape[-1]]
    return counts - before > 0


def frame_block_mask(sample: Sample, hidden: jnp.ndarray) -> Sample:
    """Hides points where ``hidden [T, L]`` (built per group from :func:`block_cover`)."""
    return _clean(sample | {"landmark_mask": sample["landmark_mask"] & ~hidden})


def frame_noise(sample: Sample, frames: jnp.ndarray, noise: jnp.ndarray, stdev: float) -> Sample:
    """Adds ``stdev · noise`` to the points of the frames where ``frames [T]``.

    ``noise [K, L, 3]`` holds one row per noisy frame, in frame order (drawing ``K`` rows, not
    ``T``, keeps random-number generation cheap); noisy frames past the ``K``-th get none.
    """
    slot = jnp.cumsum(frames) - 1
    use = frames & (slot < noise.shape[0])
    rows = noise.reshape(noise.shape[0], -1)  # gather whole rows, not single numbers
    per_frame = rows[jnp.clip(slot, 0, noise.shape[0] - 1)].reshape(-1, *noise.shape[1:])
    add = use[:, None, None] & sample["landmark_mask"][..., None]
    return sample | {"landmarks": sample["landmarks"] + jnp.where(add, stdev * per_frame, 0.0)}


def feature_mask(sample: Sample, dropped: jnp.ndarray) -> Sample:
    """Makes the landmarks where ``dropped [L]`` missing in every frame."""
    return _clean(sample | {"landmark_mask": sample["landmark_mask"] & ~dropped[None, :]})


# --- spatial transforms (after normalisation: groups are centred) ---------------------------


def horizontal_flip(
    sample: Sample, flip: jnp.ndarray, permutation, group_ids, group_permutation=None
) -> Sample:
    """Mirrors the landmarks of the groups where ``flip [G]``: x → −x, and each slot takes its
    mirror partner's point (``permutation [L]``, from the preset: left and right hands swap,
    pose and lip points swap with their partners). A body-frame ``placement [G, 4]`` mirrors
    with them: its centre's x changes sign and partner groups swap (``group_permutation
    [G]``)."""
    points = preprocess.permute(sample["landmarks"], permutation, axis=1) * jnp.asarray(
        [-1.0, 1.0, 1.0]
    )
    mask = preprocess.permute(sample["landmark_mask"], permutation, axis=1)
    out = sample | {
        "landmarks": jnp.where(
            flip[jnp.asarray(group_ids)][None, :, None], points, sample["landmarks"]
        ),
        "landmark_mask": jnp.where(
            flip[jnp.asarray(group_ids)][None, :], mask, sample["landmark_mask"]
        ),
    }
    if "placement" in sample:
        placed = preprocess.permute(sample["placement"], group_permutation, axis=0)
        placed = placed * jnp.asarray([-1.0, 1.0, 1.0, 1.0])
        out["placement"] = jnp.where(flip[:, None], placed, sample["placement"])
    return out


def rotation_matrices(angles: jnp.ndarray) -> jnp.ndarray:
    """``[..., 3]`` angles (about x, y, z, radians) → ``[..., 3, 3]`` matrices ``Rz Ry Rx``."""
    a, b, c = angles[..., 0], angles[..., 1], angles[..., 2]
    ca, sa, cb, sb, cc, sc = jnp.cos(a), jnp.sin(a), jnp.cos(b), jnp.sin(b), jnp.cos(c), jnp.sin(c)
    one, zero = jnp.ones_like(a), jnp.zeros_like(a)
    rx = jnp.stack([one, zero, zero, zero, ca, -sa, zero, sa, ca], -1)
    ry = jnp.stack([cb, zero, sb, zero, one, zero, -sb, zero, cb], -1)
    rz = jnp.stack([cc, -sc, zero, sc, cc, zero, zero, zero, one], -1)
    shape = (*angles.shape[:-1], 3, 3)
    return rz.reshape(shape) @ ry.reshape(shape) @ rx.reshape(shape)


def time_weights(frame_mask: jnp.ndarray) -> jnp.ndarray:
    """``[T]``: 0 at the first real frame, 1 at the last, linear between (clipped after)."""
    n = frame_mask.sum()
    return jnp.clip(jnp.arange(frame_mask.shape[0]) / jnp.maximum(n - 1, 1), 0, 1)


def frame_affines(weights, rotate, angles, centres, shear, scale, shift):
    """Per group and frame, the ``(A [G, T, 3, 3], b [G, T, 3])`` of ``p ↦ A p + b`` that
    rotates ``p`` about the frame's centre (where ``rotate``), then shears, scales and shifts.

    Rotation: angles ``[G, 2, 3]`` and centres ``[G, 2, 3]`` hold the values at the first and
    last real frame and move linearly between (``weights [T]``, :func:`time_weights`); each
    point turns in 3D (about x, then y, then z) around the centre: ``R_t (p − c_t) + c_t``.
    Then ``x += shear[0]·y``, ``y += shear[1]·x`` (from the unsheared values), ``p *= scale``,
    ``p += shift``. A group that is not rotated gets ``R = I`` and ``c = 0`` exactly.
    """
    w = weights[None, :, None]  # [1, T, 1]
    on = rotate[:, None, None]
    angles_t = jnp.where(on, (1 - w) * angles[:, :1] + w * angles[:, 1:], 0.0)  # [G, T, 3]
    centres_t = jnp.where(on, (1 - w) * centres[:, :1] + w * centres[:, 1:], 0.0)
    rotation = rotation_matrices(angles_t)  # [G, T, 3, 3]
    g = shear.shape[0]
    zero, one = jnp.zeros(g), jnp.ones(g)
    shear_matrix = jnp.stack(
        [one, shear[:, 0], zero, shear[:, 1], one, zero, zero, zero, one], -1
    ).reshape(g, 1, 3, 3)
    linear = jnp.broadcast_to(scale, (g, 3))[:, None, :, None] * shear_matrix  # [G, 1, 3, 3]
    a = linear @ rotation
    b = (linear @ (centres_t - (rotation @ centres_t[..., None])[..., 0])[..., None])[..., 0]
    return a, b + shift[:, None, :]


def spatial(sample: Sample, group_sizes, rotate, angles, centres, shear, scale, shift) -> Sample:
    """The spatial transforms of each group, as one affine map per group and frame
    (:func:`frame_affines`) applied in a single elementwise pass over ``[T, L, 3]``."""
    a, b = frame_affines(
        time_weights(sample["frame_mask"]), rotate, angles, centres, shear, scale, shift
    )
    pieces, start = [], 0
    for g, size in enumerate(group_sizes):
        p = sample["landmarks"][:, start : start + size]
        ag, bg = a[g][:, None], b[g][:, None]  # [T, 1, 3, 3], [T, 1, 3]
        pieces.append(
            jnp.stack(
                [
                    ag[..., i, 0] * p[..., 0]
                    + ag[..., i, 1] * p[..., 1]
                    + ag[..., i, 2] * p[..., 2]
                    + bg[..., i]
                    for i in range(3)
                ],
                -1,
            )
        )
        start += size
    return _clean(sample | {"landmarks": jnp.concatenate(pieces, axis=1)})


def interpolated_rotation(sample: Sample, group_sizes, rotate, angles, centres) -> Sample:
    """RandomInterpolatedRotation alone (see :func:`frame_affines`)."""
    g = len(group_sizes)
    return spatial(
        sample,
        group_sizes,
        rotate,
        angles,
        centres,
        jnp.zeros((g, 2)),
        jnp.ones((g, 1)),
        jnp.zeros((g, 3)),
    )


def affine(sample: Sample, group_sizes, shear, scale, shift) -> Sample:
    """RandomShear, RandomScale and RandomShift alone (see :func:`frame_affines`)."""
    g = len(group_sizes)
    off = jnp.zeros((g, 2, 3))
    return spatial(sample, group_sizes, jnp.zeros(g, bool), off, off, shear, scale, shift)
