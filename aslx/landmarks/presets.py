"""Selection presets: which canonical landmarks a model sees, grouped for per-group processing.

A preset is a named list of landmark groups, each a list of canonical indices
(:mod:`aslx.landmarks.layouts`). Groups matter downstream: normalisation and the spatial
augmentations treat each group on its own.

============  ======  ============================================================================
preset        points  groups
============  ======  ============================================================================
kaggle75      75      hand 21 (the dominant hand, mirrored to the right) + pose 14 (points 11–24:
                      shoulders, elbows, wrists, hand points, hips) + lips 40. The input of the
                      strongest Kaggle fingerspelling models.
hands_pose    51      left_hand 21 + right_hand 21 + pose 9 (nose, shoulders, elbows, wrists,
                      hips): both hands and the upper body, as in TSLFormer-style models.
full543       543     face 468 + left_hand 21 + pose 33 + right_hand 21: everything, in canonical
                      order (for the joint gate, which learns what to keep).
============  ======  ============================================================================

**Dominant hand.** ``kaggle75`` keeps one hand: the one that signs, judged from motion and
distance to the face (:func:`aslx.landmarks.hands.left_signs`; ties go to the right hand), not
from how often each hand was detected. When that is the left hand, the whole clip is mirrored
so every signer looks right-handed: x becomes ``1 - x``, the left hand fills the hand slots,
and pose and lip points swap with their mirror partners (the slot of LEFT_SHOULDER gets the
right shoulder), exactly what MediaPipe would report on a mirrored video.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aslx.landmarks import hands, layouts, normalize


@dataclasses.dataclass(frozen=True)
class Preset:
    """A selection of canonical landmarks.

    Attributes:
      name: preset name, as used in configs and ``metadata.json``.
      groups: ``(group name, canonical indices)`` pairs, in model input order.
      mirrored_groups: for presets that pick a dominant hand, the indices to take from a
        left-dominant clip *before* mirroring x (same group names and sizes); else ``None``.
    """

    name: str
    groups: tuple[tuple[str, tuple[int, ...]], ...]
    mirrored_groups: tuple[tuple[str, tuple[int, ...]], ...] | None = None

    def __post_init__(self):
        if self.mirrored_groups is not None:
            sizes = [(n, len(i)) for n, i in self.groups]
            if sizes != [(n, len(i)) for n, i in self.mirrored_groups]:
                raise ValueError(f"{self.name}: mirrored groups must match the groups")

    @property
    def picks_dominant_hand(self) -> bool:
        return self.mirrored_groups is not None

    @property
    def num_landmarks(self) -> int:
        return sum(len(i) for _, i in self.groups)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.groups)

    @property
    def group_sizes(self) -> tuple[int, ...]:
        return tuple(len(i) for _, i in self.groups)

    @property
    def indices(self) -> np.ndarray:
        """``[num_landmarks]`` canonical indices for a right-dominant (or any) clip."""
        return np.array([i for _, group in self.groups for i in group], np.int32)

    @property
    def mirrored_indices(self) -> np.ndarray:
        """``[num_landmarks]`` canonical indices for a left-dominant clip (then x -> 1 - x)."""
        if self.mirrored_groups is None:
            raise ValueError(f"preset {self.name} keeps both hands; it never mirrors")
        return np.array([i for _, group in self.mirrored_groups for i in group], np.int32)

    @property
    def group_ids(self) -> np.ndarray:
        """``[num_landmarks]`` index of the group each landmark belongs to."""
        return np.repeat(np.arange(len(self.groups)), self.group_sizes)

    @property
    def shoulder_slots(self) -> tuple[int, int] | None:
        """Slots of the left and right shoulders (the body frame's anchors), or ``None``."""
        position = {int(c): i for i, c in enumerate(self.indices)}
        pose = layouts.OFFSETS["pose"]
        left, right = position.get(pose + 11), position.get(pose + 12)
        return None if left is None or right is None else (left, right)

    @property
    def hand_groups(self) -> tuple[int, int] | None:
        """Group numbers of the left and right hand when the preset keeps both, else ``None``."""
        names = self.group_names
        if "left_hand" in names and "right_hand" in names:
            return names.index("left_hand"), names.index("right_hand")
        return None

    def group_slices(self) -> list[slice]:
        """Each group's slice of the landmark axis."""
        bounds = np.cumsum((0, *self.group_sizes))
        return [slice(int(a), int(b)) for a, b in zip(bounds, bounds[1:])]

    def group_mirror_permutation(self) -> np.ndarray:
        """``[num_groups]``: the group whose points land in each group when the image is
        mirrored (left and right hand swap; every other group keeps its own)."""
        ids = self.group_ids
        return np.array([ids[self.mirror_permutation()[s.start]] for s in self.group_slices()])

    def mirror_permutation(self) -> np.ndarray:
        """``[num_landmarks]``: for each slot, the slot whose point lands there when the image is
        mirrored (its left/right partner when the preset has it, else itself)."""
        position = {int(c): i for i, c in enumerate(self.indices)}
        partners = layouts.mirror_partners()
        return np.array([position.get(int(partners[c]), i) for i, c in enumerate(self.indices)])

    def flip_units(self) -> np.ndarray:
        """``[num_groups]`` unit id per group: groups that swap points when mirrored (left and
        right hand) share a unit and must flip together; every other group is its own unit."""
        unit = np.arange(len(self.groups))
        ids, permutation = self.group_ids, self.mirror_permutation()
        for a, b in zip(ids, ids[permutation]):
            low, high = sorted((unit[a], unit[b]))
            unit[unit == high] = low
        return unit

    def landmark_names(self) -> list[str]:
        names = layouts.landmark_names()
        return [names[i] for i in self.indices]

    def to_json(self) -> dict:
        return {
            "preset": self.name,
            "num_landmarks": self.num_landmarks,
            "groups": [{"name": n, "size": len(i)} for n, i in self.groups],
            "landmarks": self.landmark_names(),
        }


def _canonical(group: str, points) -> tuple[int, ...]:
    return tuple(layouts.canonical_index(group, p) for p in points)


def _partner(pairs: tuple[tuple[int, int], ...]) -> dict[int, int]:
    partner = {}
    for a, b in pairs:
        partner[a], partner[b] = b, a
    return partner


def _mirror(group: str, points, pairs) -> tuple[int, ...]:
    partner = _partner(pairs)
    return _canonical(group, [partner.get(p, p) for p in points])


_POSE_UPPER = tuple(range(11, 25))

KAGGLE75 = Preset(
    name="kaggle75",
    groups=(
        ("hand", _canonical("right_hand", range(21))),
        ("pose", _canonical("pose", _POSE_UPPER)),
        ("lips", _canonical("face", layouts.LIPS)),
    ),
    mirrored_groups=(
        ("hand", _canonical("left_hand", range(21))),
        ("pose", _mirror("pose", _POSE_UPPER, layouts.POSE_MIRROR_PAIRS)),
        ("lips", _mirror("face", layouts.LIPS, layouts.LIPS_MIRROR_PAIRS)),
    ),
)

HANDS_POSE = Preset(
    name="hands_pose",
    groups=(
        ("left_hand", _canonical("left_hand", range(21))),
        ("right_hand", _canonical("right_hand", range(21))),
        ("pose", _canonical("pose", (0, 11, 12, 13, 14, 15, 16, 23, 24))),
    ),
)

FULL543 = Preset(
    name="full543",
    groups=tuple(
        (name, tuple(range(layouts.OFFSETS[name], layouts.OFFSETS[name] + size)))
        for name, size in layouts.GROUPS
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (KAGGLE75, HANDS_POSE, FULL543)}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown landmark preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


_POSE = layouts.OFFSETS["pose"]
#: Canonical indices :func:`aslx.landmarks.hands.left_signs` reads, in its argument order: the
#: left hand, the right hand, the left and right shoulders, the lips.
SIGNING_HAND_POINTS: tuple[tuple[int, ...], ...] = (
    tuple(range(*layouts.group_slice("left_hand").indices(layouts.NUM_LANDMARKS))),
    tuple(range(*layouts.group_slice("right_hand").indices(layouts.NUM_LANDMARKS))),
    (_POSE + 11,),
    (_POSE + 12,),
    _canonical("face", layouts.LIPS),
)


def left_signs_in(xp, take) -> bool:
    """:func:`aslx.landmarks.hands.left_signs` on the :data:`SIGNING_HAND_POINTS` of a clip;
    ``take(indices) -> (points [T, n, 3], mask [T, n])`` reads them (aspect-corrected), each
    caller in its own way (NumPy indexing on the host, slices in the TFLite graph)."""
    left, right, left_shoulder, right_shoulder, lips = (take(i) for i in SIGNING_HAND_POINTS)
    shoulders = tuple((p[:, 0], m[:, 0]) for p, m in (left_shoulder, right_shoulder))
    return hands.left_signs(xp, left, right, shoulders, lips)


def left_is_dominant(points: np.ndarray, y_scale: float = normalize.ASPECT_Y) -> bool:
    """True when the left hand signs (:func:`aslx.landmarks.hands.left_signs`: the one that
    moves more, then the one nearer the face; ties keep the right) for ``[frames, 543, 3]``
    points; ``y_scale`` is the camera's height / width."""
    points = np.asarray(points, np.float32) * np.array([1.0, y_scale, 1.0], np.float32)
    mask = ~np.isnan(points).any(-1)
    points = np.where(mask[..., None], points, 0.0)
    return bool(left_signs_in(np, lambda i: (points[:, list(i)], mask[:, list(i)])))


def select(points: np.ndarray, preset: Preset, y_scale: float = normalize.ASPECT_Y) -> np.ndarray:
    """Selects (and, for a left-dominant clip, mirrors) a preset's points.

    Args:
      points: ``[frames, 543, 3]`` canonical landmarks, NaN where missing.
      preset: the selection.
      y_scale: the camera's height / width (the dominant hand is judged in true proportions).

    Returns:
      ``[frames, preset.num_landmarks, 3]``, NaN kept where missing.
    """
    if preset.picks_dominant_hand and left_is_dominant(points, y_scale):
        out = points[:, preset.mirrored_indices].copy()
        out[..., 0] = 1.0 - out[..., 0]
        return out
    return points[:, preset.indices]
