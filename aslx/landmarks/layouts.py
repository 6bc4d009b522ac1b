"""Landmark layouts: where each MediaPipe Holistic point sits in every format aslx reads.

aslx has one *canonical* layout, the Kaggle asl-signs long order of 543 points::

    face        0 – 467   (468 face-mesh points)
    left_hand 468 – 488   (21 hand points)
    pose      489 – 521   (33 body points)
    right_hand 522 – 542  (21 hand points)

Every reader converts its format into ``[frames, 543, 3]`` float32 arrays in this order, with
NaN for points that were not detected. This module holds the index maps from the other layouts
into the canonical one:

* Kaggle asl-fingerspelling *wide* layout: one row per frame, columns ``x_face_0`` …
  ``x_right_hand_20`` then the same for ``y_`` and ``z_`` (:func:`wide_columns`).
* The MediaPipe per-frame vector of the common tutorials (1662 floats): pose 33 × (x, y, z,
  visibility), face 468 × 3, left hand 21 × 3, right hand 21 × 3 (:data:`MP_VECTOR_SIZE`,
  :func:`mp_vector_to_canonical`).
* pose-format Holistic components, addressed by component and point name
  (:func:`holistic_component_slots`).

Hands are named from the signer's point of view, as MediaPipe names them.
"""

from __future__ import annotations

import numpy as np

# --- the canonical (Kaggle asl-signs) order ------------------------------------------------

#: (group name, number of points) in canonical order.
GROUPS: tuple[tuple[str, int], ...] = (
    ("face", 468),
    ("left_hand", 21),
    ("pose", 33),
    ("right_hand", 21),
)
NUM_LANDMARKS = 543


def _offsets() -> dict[str, int]:
    offsets, start = {}, 0
    for name, size in GROUPS:
        offsets[name] = start
        start += size
    return offsets


#: First canonical index of each group.
OFFSETS: dict[str, int] = _offsets()
GROUP_SIZES: dict[str, int] = dict(GROUPS)


def group_slice(group: str) -> slice:
    """Canonical index range of one group, e.g. ``group_slice('left_hand') == slice(468, 489)``."""
    if group not in OFFSETS:
        raise KeyError(f"unknown landmark group {group!r}; known: {sorted(OFFSETS)}")
    return slice(OFFSETS[group], OFFSETS[group] + GROUP_SIZES[group])


def canonical_index(group: str, index: int) -> int:
    """Canonical index of point ``index`` of ``group`` (``canonical_index('pose', 0) == 489``)."""
    if not 0 <= index < GROUP_SIZES[group]:
        raise IndexError(f"{group} has {GROUP_SIZES[group]} points, not index {index}")
    return OFFSETS[group] + index


# --- point names -----------------------------------------------------------------------------

HAND_POINTS: tuple[str, ...] = (
    "WRIST",
    "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)  # fmt: skip

#: Bones of the MediaPipe hand as (parent, child) pairs of hand point indices.
HAND_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip

POSE_POINTS: tuple[str, ...] = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT",
    "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST",
    "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB",
    "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
    "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)  # fmt: skip

#: Pose points that swap places when the image is mirrored (LEFT_x <-> RIGHT_x).
POSE_MIRROR_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, POSE_POINTS.index("RIGHT_" + name[len("LEFT_") :]))
    for i, name in enumerate(POSE_POINTS)
    if name.startswith("LEFT_")
) + ((9, 10),)  # MOUTH_LEFT <-> MOUTH_RIGHT

#: The 40 lip points of the face mesh used by the strongest fingerspelling models.
LIPS: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
    267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip

#: Lip points that swap places when the face is mirrored; 0, 13, 14 and 17 lie on the midline.
#: Read off MediaPipe's lip contours (upper/lower, outer/inner), which are symmetric.
LIPS_MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (61, 291), (185, 409), (40, 270), (39, 269), (37, 267),  # upper outer
    (146, 375), (91, 321), (181, 405), (84, 314),  # lower outer
    (78, 308), (191, 415), (80, 310), (81, 311), (82, 312),  # upper inner
    (95, 324), (88, 318), (178, 402), (87, 317),  # lower inner
)  # fmt: skip


def mirror_partners() -> np.ndarray:
    """``[543]``: the canonical index each point becomes in a mirrored image.

    Hands swap (left_hand_k <-> right_hand_k), pose points swap with their LEFT/RIGHT partner,
    lip points with their mirror partner; every other point (midline points, and face-mesh
    points off the lips, for which no symmetry table is kept here) maps to itself.
    """
    partner = np.arange(NUM_LANDMARKS)
    groups = [
        ("left_hand", "right_hand", [(k, k) for k in range(21)]),
        ("pose", "pose", POSE_MIRROR_PAIRS),
        ("face", "face", LIPS_MIRROR_PAIRS),
    ]
    pairs = [
        (canonical_index(ga, a), canonical_index(gb, b)) for ga, gb, ab in groups for a, b in ab
    ]
    for a, b in pairs:
        partner[a], partner[b] = b, a
    return partner


def landmark_names() -> tuple[str, ...]:
    """Names of the 543 canonical points: ``'face_13'``, ``'left_hand_WRIST'``, ``'pose_NOSE'`` …"""
    names = [f"face_{i}" for i in range(468)]
    names += [f"left_hand_{p}" for p in HAND_POINTS]
    names += [f"pose_{p}" for p in POSE_POINTS]
    names += [f"right_hand_{p}" for p in HAND_POINTS]
    return tuple(names)


# --- Kaggle asl-fingerspelling wide layout --------------------------------------------------


def wide_columns() -> list[str]:
    """The 1629 coordinate columns of a Kaggle asl-fingerspelling parquet file, in file order.

    All ``x_`` columns (face, left hand, pose, right hand), then all ``y_``, then all ``z_``.
    Column ``j`` of coordinate block ``c`` holds canonical point ``j`` (so
    ``array.reshape(frames, 3, 543).transpose(0, 2, 1)`` gives the canonical layout).
    """
    return [f"{axis}_{group}_{i}" for axis in "xyz" for group, size in GROUPS for i in range(size)]


# --- MediaPipe per-frame vector (1662 floats) ------------------------------------------------

MP_VECTOR_SIZE = 33 * 4 + 468 * 3 + 21 * 3 + 21 * 3  # 1662


def mp_vector_to_canonical(vectors: np.ndarray) -> np.ndarray:
    """Converts ``[frames, 1662]`` MediaPipe tutorial vectors to ``[frames, 543, 3]``.

    The vector is pose 33 × (x, y, z, visibility) | face 468 × 3 | left hand 21 × 3 | right hand
    21 × 3. The recorder writes zeros for an undetected part; those become NaN here. Pose
    visibility is dropped.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != MP_VECTOR_SIZE:
        raise ValueError(f"expected [frames, {MP_VECTOR_SIZE}] vectors, got shape {vectors.shape}")
    frames = vectors.shape[0]
    pose = vectors[:, : 33 * 4].reshape(frames, 33, 4)[..., :3]
    rest = vectors[:, 33 * 4 :].reshape(frames, 468 + 21 + 21, 3)
    out = np.concatenate([rest[:, :468], rest[:, 468:489], pose, rest[:, 489:]], axis=1)
    return zeros_to_nan(out)


def zeros_to_nan(points: np.ndarray) -> np.ndarray:
    """Marks points whose three coordinates are exactly zero as missing (NaN).

    Recorders that write zeros for undetected parts give (0, 0, 0), a place no real detection
    lands on, so the rule is safe; a real point at the image corner still has a nonzero z.
    """
    points = np.array(points, dtype=np.float32, copy=True)
    points[np.all(points == 0, axis=-1)] = np.nan
    return points


# --- pose-format Holistic components ---------------------------------------------------------

#: pose-format component name -> canonical group.
HOLISTIC_COMPONENTS: dict[str, str] = {
    "FACE_LANDMARKS": "face",
    "LEFT_HAND_LANDMARKS": "left_hand",
    "POSE_LANDMARKS": "pose",
    "RIGHT_HAND_LANDMARKS": "right_hand",
}


def holistic_component_slots(component: str, point_names: list[str]) -> list[int | None]:
    """Canonical index of each point of a pose-format Holistic component, ``None`` to drop it.

    Face points are named by their mesh index (``'13'``); the reduced Holistic keeps a subset
    of them and refined meshes add 10 iris points (468–477), which the canonical layout drops.
    Hand and pose points are named as in :data:`HAND_POINTS` / :data:`POSE_POINTS`.
    """
    group = HOLISTIC_COMPONENTS[component]
    slots: list[int | None] = []
    for name in point_names:
        if group == "face":
            index = int(name)
            slots.append(canonical_index("face", index) if index < 468 else None)
        else:
            names = POSE_POINTS if group == "pose" else HAND_POINTS
            if name not in names:
                raise ValueError(f"{component} has an unknown point {name!r}")
            slots.append(canonical_index(group, names.index(name)))
    return slots
