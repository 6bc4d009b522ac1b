"""A straightforward NumPy version of the augmentation recipe, one sample at a time: the tests'
oracle.

This is the slow, obvious reference the tests compare every on-device transform with
(``np.interp`` for resampling, explicit rotation matrices frame by frame, the CTC frame rule
counted label by label). It lives beside the tests, not in the library, and is not a speed
baseline: ``benchmarks/augment.py`` measures the jitted recipe against a host path vectorised
within each sample (``benchmarks/numpy_augment.py``), the way a careful host worker augments.
It takes the same parameters as :func:`aslx.augment.recipe.apply` (see
:func:`aslx.augment.recipe.draw`), or draws its own with :func:`draw`.
"""

from __future__ import annotations

import math

import numpy as np

from aslx.augment.recipe import AugmentConfig, noise_rows
from aslx.augment.transforms import KEEP_THRESHOLD
from aslx.landmarks.normalize import ASPECT_Y
from aslx.landmarks.presets import Preset
from aslx.vocab import LABEL_PAD


def _clean(s: dict) -> dict:
    s["landmark_mask"] = s["landmark_mask"] & s["frame_mask"][:, None]
    s["landmarks"] = np.where(s["landmark_mask"][..., None], s["landmarks"], 0.0).astype(np.float32)
    return s


def normalize(s: dict, group_sizes, y_scale: float = ASPECT_Y) -> dict:
    points = s["landmarks"].astype(np.float64) * np.array([1.0, y_scale, 1.0])
    out = np.zeros_like(points)
    start = 0
    for size in group_sizes:
        p = points[:, start : start + size]
        m = s["landmark_mask"][:, start : start + size]
        if m.any():
            centred = p - p[m].mean(axis=0)
            extent = np.abs(centred[m][:, :2]).max()
            scale = extent if extent > 1e-6 else np.inf
            out[:, start : start + size] = np.where(m[..., None], centred / scale, 0.0)
        start += size
    s["landmarks"] = out.astype(np.float32)
    return s


def time_flip(s: dict, flip: bool) -> dict:
    if not flip:
        return s
    n, m = int(s["frame_mask"].sum()), int(s["label_mask"].sum())
    for key in ("landmarks", "landmark_mask"):
        s[key] = s[key].copy()
        s[key][:n] = s[key][:n][::-1]
    s["labels"] = s["labels"].copy()
    s["labels"][:m] = s["labels"][:m][::-1]
    if "alignment" in s:
        a = s["alignment"].copy()
        a[:n] = a[:n][::-1]
        s["alignment"] = np.where(a >= 0, m - 1 - a, a)
    return s


def resample(s: dict, scale: float, flip: bool = False) -> dict:
    t = len(s["frame_mask"])
    n = int(s["frame_mask"].sum())
    if n == 0:
        return s
    if flip:  # the labels; frames are read backwards below
        m = int(s["label_mask"].sum())
        s["labels"] = s["labels"].copy()
        s["labels"][:m] = s["labels"][:m][::-1]
    n_new = int(np.clip(np.round(np.float32(n) * np.float32(scale)), 1, t))
    source = np.arange(n_new) * (n - 1) / max(n_new - 1, 1)
    if flip:
        source = (n - 1) - source
    frames = np.arange(n)
    points = np.zeros_like(s["landmarks"])
    mask = np.zeros_like(s["landmark_mask"])
    for landmark in range(points.shape[1]):
        m = s["landmark_mask"][:n, landmark].astype(np.float64)
        den = np.interp(source, frames, m)
        keep = den >= KEEP_THRESHOLD
        mask[:n_new, landmark] = keep
        for axis in range(3):
            num = np.interp(source, frames, s["landmarks"][:n, landmark, axis] * m)
            points[:n_new, landmark, axis] = np.where(keep, num / np.maximum(den, 1e-6), 0.0)
    s["landmarks"], s["landmark_mask"] = points, mask
    s["frame_mask"] = np.arange(t) < n_new
    if "alignment" in s:
        alignment = np.full(t, -1, s["alignment"].dtype)
        alignment[:n_new] = s["alignment"][np.floor(source + 0.5).astype(int)]  # half up
        if flip:
            alignment = np.where(alignment >= 0, int(s["label_mask"].sum()) - 1 - alignment, -1)
        s["alignment"] = alignment
    return s


def truncate(s: dict, length: int) -> dict:
    s["frame_mask"] = s["frame_mask"] & (np.arange(len(s["frame_mask"])) < length)
    if "alignment" in s:
        s["alignment"] = np.where(s["frame_mask"], s["alignment"], -1)
    return _clean(s)


def align_ctc_label(s: dict) -> dict:
    n = int(s["frame_mask"].sum())
    labels = [int(x) for x, keep in zip(s["labels"], s["label_mask"]) if keep]
    kept = 0
    for k in range(1, len(labels) + 1):
        prefix = labels[:k]
        needed = len(prefix) + sum(a == b for a, b in zip(prefix, prefix[1:]))
        if needed <= n:
            kept = k
    s["label_mask"] = np.arange(len(s["labels"])) < kept
    s["labels"] = np.where(s["label_mask"], s["labels"], LABEL_PAD)
    if "alignment" in s:
        s["alignment"] = np.where(s["alignment"] < kept, s["alignment"], -1)
    return s


def block_cover(starts: np.ndarray, block_size: int) -> np.ndarray:
    cover = np.zeros(len(starts), bool)
    for i in np.flatnonzero(starts):
        cover[i : i + block_size] = True
    return cover


def frame_block_mask(s: dict, hidden: np.ndarray) -> dict:
    s["landmark_mask"] = s["landmark_mask"] & ~hidden
    return _clean(s)


def frame_noise(s: dict, frames: np.ndarray, noise: np.ndarray, stdev: float) -> dict:
    points = s["landmarks"].copy()
    for slot, t in enumerate(np.flatnonzero(frames)[: len(noise)]):
        valid = s["landmark_mask"][t]
        points[t, valid] += stdev * noise[slot, valid]
    s["landmarks"] = points
    return s


def feature_mask(s: dict, dropped: np.ndarray) -> dict:
    s["landmark_mask"] = s["landmark_mask"] & ~dropped[None, :]
    return _clean(s)


def horizontal_flip(s: dict, flip: np.ndarray, permutation, group_ids) -> dict:
    flip = np.asarray(flip)[np.asarray(group_ids)]
    mirrored = s["landmarks"][:, permutation] * np.array([-1.0, 1.0, 1.0], np.float32)
    s["landmarks"] = np.where(flip[None, :, None], mirrored, s["landmarks"])
    s["landmark_mask"] = np.where(
        flip[None, :], s["landmark_mask"][:, permutation], s["landmark_mask"]
    )
    return s


def rotation_matrix(ax: float, ay: float, az: float) -> np.ndarray:
    """``Rz @ Ry @ Rx`` from explicit elementary rotation matrices."""
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotate_points(points: np.ndarray, angles, centres, n: int) -> np.ndarray:
    out = points.astype(np.float64).copy()
    for t in range(points.shape[0]):
        w = min(t / max(n - 1, 1), 1.0)
        angle = (1 - w) * np.asarray(angles[0]) + w * np.asarray(angles[1])
        centre = (1 - w) * np.asarray(centres[0]) + w * np.asarray(centres[1])
        out[t] = (rotation_matrix(*angle) @ (points[t] - centre).T).T + centre
    return out


def affine_points(points: np.ndarray, shear, scale, shift) -> np.ndarray:
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    sheared = np.stack([x + shear[0] * y, y + shear[1] * x, z], -1)
    return sheared * np.asarray(scale) + np.asarray(shift)


def spatial(s: dict, group_sizes, rotate, angles, centres, shear, scale, shift) -> dict:
    n = int(s["frame_mask"].sum())
    points = s["landmarks"].copy()
    starts = np.cumsum((0, *group_sizes[:-1]))
    for g, (start, size) in enumerate(zip(starts, group_sizes)):
        p = points[:, start : start + size]
        if rotate[g]:
            p = rotate_points(p, angles[g], centres[g], n)
        points[:, start : start + size] = affine_points(p, shear[g], scale[g], shift[g])
    s["landmarks"] = points
    return _clean(s)


def apply(sample: dict, params: dict, config: AugmentConfig, preset: Preset) -> dict:
    """The recipe on one sample (NumPy arrays, no batch axis) with the given parameters."""
    s = {k: np.array(v) for k, v in sample.items()}
    p = {k: np.asarray(v) for k, v in params.items()}
    if config.normalize:
        s = normalize(s, preset.group_sizes)
    s = horizontal_flip(s, p["flip"], preset.mirror_permutation(), preset.group_ids)
    s = resample(s, float(p["resample_scale"]), bool(p["time_flip"]))
    if config.max_length is not None:
        s = truncate(s, config.max_length)
    if config.align_ctc_label:
        s = align_ctc_label(s)
    s = frame_block_mask(s, p["hidden"])
    s = frame_noise(s, p["noise_frames"], p["noise"], config.frame_noise_stdev)
    s = feature_mask(s, p["dropped"])
    return spatial(
        s,
        preset.group_sizes,
        p["rotate"],
        p["angles"],
        p["centres"],
        p["shear"],
        p["scale"],
        p["shift"],
    )


def draw(rng: np.random.Generator, config: AugmentConfig, preset: Preset, frames: int) -> dict:
    """Random parameters with the distributions of :func:`aslx.augment.recipe.draw`."""
    g, lm = len(preset.groups), preset.num_landmarks
    blocks = [config.block_mask_of(name) for name in preset.group_names]
    hidden = np.zeros((frames, lm), bool)
    start = 0
    for b, size in zip(blocks, preset.group_sizes):
        if rng.random() < b.p:
            cover = block_cover(rng.random(frames) < b.start_probability(), b.block_size)
            hidden[:, start : start + size] = cover[:, None]
        start += size
    limit = config.resample_limit
    units = preset.flip_units()
    return {
        "time_flip": rng.random() < config.time_flip_p,
        "resample_scale": 1 + rng.uniform(-limit, limit)
        if rng.random() < config.resample_p
        else 1.0,
        "hidden": hidden,
        "noise_frames": (rng.random() < config.frame_noise_p)
        & (rng.random(frames) < config.frame_noise_ratio),
        "noise": rng.standard_normal((noise_rows(config, frames), lm, 3)),
        "dropped": (rng.random() < config.feature_mask_p)
        & (rng.random(lm) < config.feature_mask_ratio),
        "flip": (rng.random(g) < config.flip_p)[units],
        "rotate": rng.random(g) < config.rotation_p,
        "angles": rng.uniform(-config.rotation_angle, config.rotation_angle, (g, 2, 3)),
        "centres": config.rotation_centre_stdev * rng.standard_normal((g, 2, 3)),
        "shear": rng.uniform(-config.shear_limit, config.shear_limit, (g, 2)),
        "scale": 1 + rng.uniform(-config.scale_limit, config.scale_limit, (g, 1)),
        "shift": config.shift_stdev * rng.standard_normal((g, 3)),
    }
