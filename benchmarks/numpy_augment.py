"""The augmentation recipe in NumPy, one sample at a time but vectorised within the sample.

This is the fair host-side baseline for ``benchmarks/augment.py``: how a host worker process
augments when written with care. Every step is a handful of whole-array operations on the
sample (one interpolation over all landmarks and axes at once, one batch of rotation matrices
for every group and frame); nothing loops over frames or landmarks in Python. Its own code
stays its own (a host worker's), except the rules the library defines once: how many frames CTC
needs to emit a label comes from :mod:`aslx.ctc_frames`. The slow, obvious oracle of the tests
(``tests/augment_reference.py``) checks it: given the same parameters this module gives the
same outputs to float32 rounding, and :func:`draw` takes the same random draws as the
oracle's ``draw`` (``tests/test_numpy_augment.py``).

Samples are dicts of NumPy arrays without a batch axis, as in :mod:`aslx.augment.transforms`:
``landmarks [T, L, 3]`` float32 (normalised image units; after :func:`normalize` each group
spans about [-1, 1]), ``landmark_mask [T, L]`` bool, ``frame_mask [T]`` bool, ``labels [S]``
int32, ``label_mask [S]`` bool and optionally ``alignment [T]`` int32. Angles are radians.

Inside :func:`apply` the coordinates are held channel-first, ``points [3, T, L]``: NumPy is
several times slower broadcasting a ``[T, L]`` mask over a trailing axis of 3 than over a
leading one, and masking is most of what the recipe does. The step functions below take and
return samples in that internal layout (``points`` instead of ``landmarks``). Heavy arrays stay
float32; small per-frame or per-group quantities (source times, group means, affine maps) are
float64.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable

import numpy as np

from aslx import ctc_frames
from aslx.augment.recipe import AugmentConfig, noise_rows
from aslx.augment.transforms import KEEP_THRESHOLD
from aslx.landmarks.normalize import ASPECT_Y
from aslx.landmarks.presets import Preset
from aslx.vocab import LABEL_PAD

Sample = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Tables:
    """Per-preset index tables, built once: the preset computes some of them with Python loops
    over landmarks, which would otherwise run for every sample."""

    group_sizes: np.ndarray  # [G]
    group_starts: np.ndarray  # [G] first landmark of each group
    group_ids: np.ndarray  # [L] group of each landmark
    permutation: np.ndarray  # [L] mirror partner of each landmark
    flip_units: np.ndarray  # [G] groups that must flip together share a unit


@functools.lru_cache(maxsize=16)
def tables(preset: Preset) -> Tables:
    """The index tables of ``preset`` (cached per preset)."""
    sizes = np.asarray(preset.group_sizes)
    return Tables(
        group_sizes=sizes,
        group_starts=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        group_ids=np.asarray(preset.group_ids),
        permutation=np.asarray(preset.mirror_permutation()),
        flip_units=np.asarray(preset.flip_units()),
    )


def to_internal(sample: Sample) -> Sample:
    """``landmarks [T, L, 3]`` → ``points [3, T, L]`` (a copy); other keys pass through."""
    s = {k: np.asarray(v) for k, v in sample.items() if k != "landmarks"}
    s["points"] = np.ascontiguousarray(np.asarray(sample["landmarks"]).transpose(2, 0, 1))
    return s


def from_internal(s: Sample, keys: Iterable[str]) -> Sample:
    """``points [3, T, L]`` → ``landmarks [T, L, 3]``, the keys in the order of ``keys``."""
    points = s["points"]
    landmarks = np.empty((*points.shape[1:], 3), np.float32)
    # One channel at a time: a plain transposing copy is about 4× slower.
    for axis in range(3):
        landmarks[..., axis] = points[axis]
    return {k: landmarks if k == "landmarks" else s[k] for k in keys}


def _clean(s: Sample) -> Sample:
    """Points only on real frames, exactly 0 where masked."""
    mask = s["landmark_mask"] & s["frame_mask"][:, None]
    # Points are finite here (the input's missing points are 0, or normalize has masked them),
    # so a product does what np.where would, several times faster.
    return s | {"landmark_mask": mask, "points": s["points"] * mask.astype(np.float32)}


# --- whole-clip steps ------------------------------------------------------------------------


def normalize(s: Sample, t: Tables, y_scale: float = ASPECT_Y) -> Sample:
    """Aspect correction (y times ``y_scale``), then each group centred on the mean of its
    detected points over the clip and divided by their largest |x| or |y|.

    ``points [3, T, L]`` → ``[3, T, L]`` float32, 0 where masked; a group with no detected
    point (or a single distinct one) becomes all 0.
    """
    mask = s["landmark_mask"]
    aspect = np.array([1, y_scale, 1], np.float32)[:, None, None]
    # np.where, not a product: missing points may hold anything in the input, NaN included.
    points = np.where(mask, s["points"] * aspect, np.float32(0))
    # Sums over frames in float64: float32 accumulation over hundreds of frames would drift.
    sums = np.add.reduceat(points.sum(axis=1, dtype=np.float64), t.group_starts, axis=1)
    counts = np.add.reduceat(mask.sum(axis=0), t.group_starts)
    means = (sums / np.maximum(counts, 1)).astype(np.float32)  # [3, G]
    centred = points - means[:, None, t.group_ids]
    radius = np.where(mask, np.maximum(np.abs(centred[0]), np.abs(centred[1])), 0).max(axis=0)
    extent = np.maximum.reduceat(radius, t.group_starts)  # [G]
    inverse = np.where(extent > 1e-6, 1 / np.maximum(extent, 1e-6), 0).astype(np.float32)
    return s | {"points": centred * (mask * inverse[t.group_ids])}


def horizontal_flip(s: Sample, flip: np.ndarray, t: Tables) -> Sample:
    """Mirrors the groups where ``flip [G]``: x → −x, and each slot takes its mirror partner's
    point (left and right hands swap, pose and lip points swap with their partners)."""
    on = np.asarray(flip, bool)[t.group_ids]  # [L]
    if not on.any():
        return s
    source = np.where(on, t.permutation, np.arange(len(on)))
    points = s["points"][:, :, source]
    points[0] *= np.where(on, np.float32(-1), np.float32(1))
    return s | {"points": points, "landmark_mask": s["landmark_mask"][:, source]}


def _reversed_prefix(x: np.ndarray, length: int) -> np.ndarray:
    out = x.copy()
    out[:length] = x[:length][::-1]
    return out


def resample(s: Sample, scale: float, flip: bool = False) -> Sample:
    """Speed change: ``n`` real frames become ``clip(round(n · scale), 1, T)``; with ``flip`` the
    clip also plays backwards (its label reversed). New frame ``i`` reads source time
    ``i (n − 1) / (n' − 1)`` (frames) by linear interpolation; points and their mask
    interpolate together, a point is kept where the interpolated mask reaches
    :data:`KEEP_THRESHOLD`, and its coordinates are the mask-weighted mean of its neighbours.
    """
    frames = len(s["frame_mask"])
    n = int(s["frame_mask"].sum())
    if n == 0:
        return s
    m = int(s["label_mask"].sum())
    out = dict(s)
    if flip:
        out["labels"] = _reversed_prefix(s["labels"], m)
    n_new = int(np.clip(np.round(np.float32(n) * np.float32(scale)), 1, frames))
    source = np.arange(n_new) * (n - 1) / max(n_new - 1, 1)  # float64 [n']
    if flip:
        source = (n - 1) - source
    lo = np.floor(source).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    w = (source - lo).astype(np.float32)[:, None]  # [n', 1]
    present = s["landmark_mask"].astype(np.float32)
    weight_lo, weight_hi = present[lo] * (1 - w), present[hi] * w  # [n', L]
    den = weight_lo + weight_hi
    keep = den >= KEEP_THRESHOLD
    # Dividing the [n', L] weights by their sum, not the [3, n', L] sums, saves a full pass.
    inverse = np.where(keep, 1 / np.maximum(den, np.float32(1e-6)), np.float32(0))
    weight_lo *= inverse
    weight_hi *= inverse
    points = np.zeros_like(s["points"])
    new = points[:, :n_new]
    np.multiply(s["points"][:, lo], weight_lo, out=new)
    new += s["points"][:, hi] * weight_hi
    mask = np.zeros_like(s["landmark_mask"])
    mask[:n_new] = keep
    out |= {"points": points, "landmark_mask": mask, "frame_mask": np.arange(frames) < n_new}
    if "alignment" in s:
        alignment = np.full(frames, -1, s["alignment"].dtype)
        alignment[:n_new] = s["alignment"][np.floor(source + 0.5).astype(np.intp)]  # half up
        if flip:
            alignment = np.where(alignment >= 0, m - 1 - alignment, -1)
        out["alignment"] = alignment
    return out


def truncate(s: Sample, length: int) -> Sample:
    """Keeps at most the first ``length`` frames."""
    out = _clean(s | {"frame_mask": s["frame_mask"] & (np.arange(len(s["frame_mask"])) < length)})
    if "alignment" in s:
        out["alignment"] = np.where(out["frame_mask"], s["alignment"], -1)
    return out


def align_ctc_label(s: Sample) -> Sample:
    """Keeps the longest label prefix CTC can emit in the real frames (the library's rule,
    :func:`aslx.ctc_frames.fitting_prefix`); the rest becomes :data:`LABEL_PAD`."""
    labels, label_mask = s["labels"], s["label_mask"]
    kept = ctc_frames.fitting_prefix(labels, int(s["frame_mask"].sum()), label_mask)
    keep = np.arange(len(labels)) < kept
    out = s | {"label_mask": keep, "labels": np.where(keep, labels, LABEL_PAD)}
    if "alignment" in s:
        out["alignment"] = np.where(s["alignment"] < kept, s["alignment"], -1)
    return out


# --- masking and noise -------------------------------------------------------------------------


def block_cover(starts: np.ndarray, block_size: int) -> np.ndarray:
    """``[T]`` bool: frames inside a block of ``block_size`` frames starting where ``starts``."""
    return np.convolve(starts.astype(np.int32), np.ones(block_size, np.int32))[: len(starts)] > 0


def frame_block_mask(s: Sample, hidden: np.ndarray) -> Sample:
    """Hides the points where ``hidden [T, L]``."""
    return _clean(s | {"landmark_mask": s["landmark_mask"] & ~hidden})


def frame_noise(s: Sample, frames: np.ndarray, noise: np.ndarray, stdev: float) -> Sample:
    """Adds ``stdev · noise`` to the detected points of the frames where ``frames [T]``; row
    ``k`` of ``noise [K, L, 3]`` goes to the ``k``-th noisy frame, later ones get none."""
    rows = np.flatnonzero(frames)[: len(noise)]
    if len(rows) == 0:
        return s
    add = (stdev * noise[: len(rows)]).astype(np.float32).transpose(2, 0, 1)  # [3, k, L]
    points = s["points"].copy()
    points[:, rows] += np.where(s["landmark_mask"][rows], add, np.float32(0))
    return s | {"points": points}


def feature_mask(s: Sample, dropped: np.ndarray) -> Sample:
    """Makes the landmarks where ``dropped [L]`` missing in every frame."""
    return _clean(s | {"landmark_mask": s["landmark_mask"] & ~dropped[None, :]})


# --- spatial ------------------------------------------------------------------------------------


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """``[..., 3]`` angles about x, y, z (radians) → ``[..., 3, 3]`` matrices ``Rz Ry Rx``,
    written out in closed form so a whole batch of them is a few elementwise operations."""
    cx, cy, cz = np.moveaxis(np.cos(angles), -1, 0)
    sx, sy, sz = np.moveaxis(np.sin(angles), -1, 0)
    rows = [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def frame_affines(
    frames: int,
    n: int,
    rotate: np.ndarray,
    angles: np.ndarray,
    centres: np.ndarray,
    shear: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One affine map ``p ↦ A p + b`` per group and frame, float64.

    Args:
      frames: T. n: real frames; the rotation reaches its end values at frame ``n − 1``.
      rotate: ``[G]`` bool. angles, centres: ``[G, 2, 3]`` (radians; normalised units) at the
        first and last real frame, moving linearly between.
      shear: ``[G, 2]`` (x += shear[0]·y, y += shear[1]·x, both from the unsheared values).
      scale: ``[G, 1]``. shift: ``[G, 3]`` (normalised units).

    Returns:
      ``A [G, T, 3, 3]`` and ``b [G, T, 3]``: rotation about the frame's centre ``c``, then
      shear and scale ``S``, then shift; as ``R (p − c) + c`` comes first, ``A = S R`` and
      ``b = S (c − R c) + shift``.
    """
    w = np.minimum(np.arange(frames) / max(n - 1, 1), 1.0)[None, :, None]  # [1, T, 1]
    on = np.asarray(rotate, bool)[:, None, None]
    angles_t = np.where(on, (1 - w) * angles[:, :1] + w * angles[:, 1:], 0.0)  # [G, T, 3]
    centres_t = np.where(on, (1 - w) * centres[:, :1] + w * centres[:, 1:], 0.0)
    r = rotation_matrices(angles_t)  # [G, T, 3, 3]
    offset = centres_t - (r * centres_t[..., None, :]).sum(axis=-1)  # c − R c, [G, T, 3]
    # S written out: batched 3 × 3 matmuls cost NumPy a loop step per matrix.
    sx, sy, k = shear[:, 0, None, None], shear[:, 1, None, None], np.reshape(scale, (-1, 1, 1))

    def sheared(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
        return [(x + sx * y) * k, (y + sy * x) * k, z * k]

    a = np.stack(sheared(r[..., 0, :], r[..., 1, :], r[..., 2, :]), axis=-2)
    b = np.concatenate(sheared(offset[..., 0:1], offset[..., 1:2], offset[..., 2:3]), axis=-1)
    return a, b + shift[:, None, :]


def spatial(
    s: Sample,
    t: Tables,
    rotate: np.ndarray,
    angles: np.ndarray,
    centres: np.ndarray,
    shear: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
) -> Sample:
    """Per group: interpolated rotation, shear, scale and shift (:func:`frame_affines`), as one
    batched ``[T, 3, 3] @ [T, 3, size]`` product per group on ``points [3, T, L]``."""
    frames = len(s["frame_mask"])
    a, b = frame_affines(
        frames, int(s["frame_mask"].sum()), rotate, angles, centres, shear, scale, shift
    )
    a, b = a.astype(np.float32), b.astype(np.float32)[..., None]
    points = np.empty_like(s["points"])
    # Frame-major views, so each group is one batched matmul over frames. A loop over the few
    # groups beats gathering a map per landmark: that gather alone moves 9 × T × L numbers.
    source, target = s["points"].transpose(1, 0, 2), points.transpose(1, 0, 2)
    for g, (start, size) in enumerate(zip(t.group_starts, t.group_sizes)):
        target[..., start : start + size] = a[g] @ source[..., start : start + size] + b[g]
    return _clean(s | {"points": points})


# --- the recipe ----------------------------------------------------------------------------------


def apply(sample: Sample, params: dict, config: AugmentConfig, preset: Preset) -> Sample:
    """The recipe on one sample (``landmarks [T, L, 3]``, no batch axis) with the given
    parameters (those of :func:`draw` or of the tests' oracle). Returns a new
    sample with the same keys, shapes and dtypes; the input is not modified."""
    t = tables(preset)
    p = {k: np.asarray(v) for k, v in params.items()}
    s = to_internal(sample)
    if config.normalize:
        s = normalize(s, t)
    s = horizontal_flip(s, p["flip"], t)
    s = resample(s, float(p["resample_scale"]), bool(p["time_flip"]))
    if config.max_length is not None:
        s = truncate(s, config.max_length)
    if config.align_ctc_label:
        s = align_ctc_label(s)
    s = frame_block_mask(s, p["hidden"])
    s = frame_noise(s, p["noise_frames"], p["noise"], config.frame_noise_stdev)
    s = feature_mask(s, p["dropped"])
    s = spatial(s, t, p["rotate"], p["angles"], p["centres"], p["shear"], p["scale"], p["shift"])
    return from_internal(s, sample.keys())


def draw(rng: np.random.Generator, config: AugmentConfig, preset: Preset, frames: int) -> dict:
    """Random parameters for one sample of ``frames`` frames.

    Takes exactly the draws of the tests' oracle (``tests/augment_reference.py``), in the
    same order, so the same generator state gives the same parameters (and leaves the same
    state behind).
    """
    t = tables(preset)
    g, lm = len(t.group_sizes), int(t.group_sizes.sum())
    covered = np.zeros((g, frames), bool)
    # A loop over the few groups, not frames: a group's block starts are drawn only when its
    # block mask fires, and the draws must keep the oracle's order.
    for i, name in enumerate(preset.group_names):
        block = config.block_mask_of(name)
        if rng.random() < block.p:
            starts = rng.random(frames) < block.start_probability()
            covered[i] = block_cover(starts, block.block_size)
    params = {"time_flip": rng.random() < config.time_flip_p}
    resampled = rng.random() < config.resample_p
    limit = config.resample_limit
    params["resample_scale"] = 1 + rng.uniform(-limit, limit) if resampled else 1.0
    params["hidden"] = np.repeat(covered, t.group_sizes, axis=0).T  # [T, L]
    noisy = rng.random() < config.frame_noise_p
    params["noise_frames"] = noisy & (rng.random(frames) < config.frame_noise_ratio)
    params["noise"] = rng.standard_normal((noise_rows(config, frames), lm, 3))
    masked = rng.random() < config.feature_mask_p
    params["dropped"] = masked & (rng.random(lm) < config.feature_mask_ratio)
    params["flip"] = (rng.random(g) < config.flip_p)[t.flip_units]
    params["rotate"] = rng.random(g) < config.rotation_p
    params["angles"] = rng.uniform(-config.rotation_angle, config.rotation_angle, (g, 2, 3))
    params["centres"] = config.rotation_centre_stdev * rng.standard_normal((g, 2, 3))
    params["shear"] = rng.uniform(-config.shear_limit, config.shear_limit, (g, 2))
    params["scale"] = 1 + rng.uniform(-config.scale_limit, config.scale_limit, (g, 1))
    params["shift"] = config.shift_stdev * rng.standard_normal((g, 3))
    return params


def augment(
    rng: np.random.Generator, sample: Sample, config: AugmentConfig, preset: Preset
) -> Sample:
    """Draws parameters and applies the recipe: what one host worker does per sample."""
    return apply(sample, draw(rng, config, preset, len(sample["frame_mask"])), config, preset)
