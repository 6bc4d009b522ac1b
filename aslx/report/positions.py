"""Where to draw each landmark: every group's mean shape over a split's clips, each frame
aligned (shifted, turned, scaled) onto one reference first, and the body parts of a preset."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aslx.landmarks import layouts, presets
from aslx.landmarks.normalize import ASPECT_Y

# --- where to draw each landmark -------------------------------------------------------------


class _GroupMean:
    """Running mean shape of one landmark group, each frame aligned onto a reference first.

    Points are complex numbers ``x + iy``, so a 2-D similarity (rotation and scale, no
    reflection) is one complex factor. A frame is aligned by the least-squares factor that
    maps its points onto the reference frame's (over the points both have), which keeps the
    shape of a hand sharp where plain image positions would smear it over every place and
    orientation it took. The reference is the first frame seen; its own pose is undone at the
    end (the mean is turned and scaled back by the average alignment), so the picture is upright
    the way the clips are.
    """

    def __init__(self, size: int):
        self.reference: np.ndarray | None = None  # [size] complex, NaN where not seen
        self.total = np.zeros(size, np.complex128)
        self.count = np.zeros(size)
        self.turns = 0j  # sum of the alignment factors' unit directions
        self.scales = 0.0  # sum of their magnitudes
        self.frames = 0

    def add(self, points: np.ndarray, mask: np.ndarray) -> None:
        """Adds frames: ``points [F, size]`` complex, ``mask [F, size]`` bool."""
        if self.reference is None:
            first = np.flatnonzero(mask.any(-1))
            if not first.size:
                return
            f = first[0]
            self.reference = np.where(mask[f], points[f], np.nan)
        known = ~np.isnan(self.reference)
        common = mask & known  # [F, size]
        enough = common.sum(-1) >= 3  # a similarity needs two points; three for any check
        points, mask, common = points[enough], mask[enough], common[enough]
        if not len(points):
            return
        w = common.astype(np.float64)
        n = w.sum(-1, keepdims=True)
        reference = np.nan_to_num(self.reference)
        centre = (points * w).sum(-1, keepdims=True) / n
        target = (reference * w).sum(-1, keepdims=True) / n
        a = (points - centre) * w
        b = (reference - target) * w
        factor = (np.conj(a) * b).sum(-1, keepdims=True) / np.maximum(
            (np.abs(a) ** 2).sum(-1, keepdims=True), 1e-12
        )
        aligned = (points - centre) * factor + target
        self.total += (aligned * mask).sum(0)
        self.count += mask.sum(0)
        magnitude = np.abs(factor[:, 0])
        self.turns += (factor[:, 0] / np.maximum(magnitude, 1e-12)).sum()
        self.scales += magnitude.sum()
        self.frames += len(points)

    def mean(self) -> np.ndarray:
        """``[size, 2]`` mean (x, y) about the group's centre, NaN for points never seen."""
        seen = self.count > 0
        out = np.full((self.count.size, 2), np.nan)
        if not seen.any() or not self.frames:
            return out
        shape = self.total[seen] / self.count[seen]
        shape = shape - shape.mean()
        # Undo the reference frame's pose: the factor maps a frame onto the reference, so the
        # average frame is the reference divided by the average factor.
        turn = self.turns / max(abs(self.turns), 1e-12)
        shape = shape / (turn * max(self.scales / self.frames, 1e-12))
        out[seen] = np.stack([shape.real, shape.imag], -1)
        return out


def mean_positions(batches: Iterable[dict], preset: presets.Preset, max_clips: int) -> np.ndarray:
    """``[num_landmarks, 2]`` typical (x, y) of each landmark about its group's centre, from up
    to ``max_clips`` clips of ``batches`` (y corrected for the portrait aspect); see
    :class:`_GroupMean`. A point never detected takes its mirror partner's position mirrored
    (a left hand drawn from the right hands), else stays NaN.
    """
    starts = np.cumsum((0,) + preset.group_sizes)
    groups = [_GroupMean(size) for size in preset.group_sizes]
    clips = 0
    for batch in batches:
        take = np.flatnonzero(batch["example_mask"].astype(bool))[: max_clips - clips]
        if not take.size:
            break
        xy = batch["landmarks"][take][..., :2].astype(np.float64)
        points = (xy[..., 0] + 1j * xy[..., 1] * ASPECT_Y).reshape(-1, preset.num_landmarks)
        mask = batch["landmark_mask"][take] & batch["frame_mask"][take][..., None]
        mask = mask.reshape(-1, preset.num_landmarks)
        for g, group in enumerate(groups):
            part = slice(starts[g], starts[g + 1])
            group.add(points[:, part], mask[:, part])
        clips += take.size
        if clips >= max_clips:
            break
    positions = np.concatenate([group.mean() for group in groups])
    partner = preset.mirror_permutation()
    missing = np.isnan(positions).any(-1) & ~np.isnan(positions[partner]).any(-1)
    positions[missing] = positions[partner[missing]] * [-1.0, 1.0]
    return positions


def body_parts(preset: presets.Preset) -> list[tuple[str, np.ndarray]]:
    """``(name, slots)`` of every body part drawn: the preset's groups, plus ``lips`` (the face
    group's lip points) when the preset has a whole face but no lips group of its own."""
    parts = []
    start = 0
    for name, size in zip(preset.group_names, preset.group_sizes):
        parts.append((name, np.arange(start, start + size)))
        start += size
    if "face" in preset.group_names and "lips" not in preset.group_names:
        lips = {layouts.canonical_index("face", i) for i in layouts.LIPS}
        slots = np.flatnonzero(np.isin(preset.indices, list(lips)))
        if slots.size:
            parts.append(("lips", slots))
    return parts


def short_name(name: str) -> str:
    """``'left_hand_WRIST'`` → ``'WRIST'``: the point's name without its canonical group."""
    for group, _ in layouts.GROUPS:
        if name.startswith(group + "_"):
            return name[len(group) + 1 :]
    return name
