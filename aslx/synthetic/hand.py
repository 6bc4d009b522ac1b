"""The synthetic hand: forward kinematics of a 21-point MediaPipe hand and the manual alphabet.

A hand with MediaPipe's topology (:data:`~aslx.landmarks.layouts.HAND_BONES`) is built from 21
joint angles (per finger MCP flexion and abduction, PIP and DIP flexion; thumb CMC radial and
palmar abduction, CMC twist, MCP and IP flexion) and a wrist orientation; bone lengths are an
adult hand's (wrist → middle MCP 8.5 cm), scaled per signer. A hand-written table of joint
angles and wrist orientations loosely follows the ASL manual alphabet (:func:`letter_shape`);
j and z add their wrist trajectories. Metres, in the hand's own frame; angles in radians
(tables in degrees × :data:`DEG`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Degrees in radians: the tables below are written in degrees.
DEG = np.pi / 180.0

# --- the hand model --------------------------------------------------------------------------
#
# Hand-local frame of a right hand, metres: origin at the wrist, x toward the thumb (radial),
# y along the fingers (distal), z out of the palm (volar). Finger flexion turns a finger from
# +y toward +z; abduction is positive toward the thumb.

#: MCP joint positions of index, middle, ring and pinky on a flat hand.
_FINGER_MCP = np.array(
    [[0.022, 0.080, 0.0], [0.002, 0.085, 0.0], [-0.016, 0.079, 0.0], [-0.031, 0.068, 0.0]]
)
#: Direction of each finger in the palm plane at zero abduction (a slight natural fan), radians.
_FINGER_FAN = np.array([5.0, 0.0, -5.0, -11.0]) * DEG
#: Proximal, middle and distal phalanx lengths of index, middle, ring, pinky.
_PHALANGES = np.array(
    [[0.039, 0.023, 0.020], [0.044, 0.027, 0.021], [0.041, 0.026, 0.021], [0.032, 0.019, 0.018]]
)
#: MediaPipe's THUMB_CMC point sits on the thumb side of the wrist, a little volar.
_THUMB_CMC = np.array([0.025, 0.025, 0.006])
#: Thumb metacarpal (CMC → MCP), proximal (MCP → IP) and distal (IP → tip) lengths.
_THUMB_BONES = np.array([0.038, 0.031, 0.026])

#: Joint-angle vector layout: 4 values per finger, then 5 for the thumb.
FINGER_JOINTS = ("mcp_flexion", "abduction", "pip_flexion", "dip_flexion")
THUMB_JOINTS = ("cmc_radial", "cmc_palmar", "cmc_twist", "mcp_flexion", "ip_flexion")
NUM_JOINTS = 4 * len(FINGER_JOINTS) + len(THUMB_JOINTS)  # 21
_THUMB = 4 * len(FINGER_JOINTS)  # first thumb entry

#: Body-frame rotation of a hand held up, palm to the camera: local x (thumb) → image right,
#: local y (fingers) → up (-y), local z (palm) → toward the camera (-z).
PALM_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def hand_points(joints: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Forward kinematics: joint angles ``[..., NUM_JOINTS]`` (radians) → ``[..., 21, 3]``.

    Points are in the hand-local frame (metres, see above) in MediaPipe order. ``scale`` is one
    factor for the whole hand or ``[5]`` factors for (thumb, index, middle, ring, pinky).
    """
    joints = np.asarray(joints, dtype=np.float64)
    batch = joints.shape[:-1]
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (5,))
    finger_scale = scale[1:, None]

    # Fingers: each is a planar chain in the plane of its palm direction and the palm normal.
    finger = joints[..., :_THUMB].reshape(*batch, 4, 4)
    mcp, abduction, pip, dip = np.moveaxis(finger, -1, 0)
    spread = _FINGER_FAN + abduction
    in_palm = np.stack([np.sin(spread), np.cos(spread), np.zeros_like(spread)], axis=-1)
    flexion = np.cumsum(np.stack([mcp, pip, dip], axis=-1), axis=-1)  # [..., 4, 3 segments]
    palm_normal = np.array([0.0, 0.0, 1.0])
    bent_in = np.sin(flexion)[..., None] * palm_normal
    segment_dirs = np.cos(flexion)[..., None] * in_palm[..., None, :] + bent_in
    lengths = (_PHALANGES * finger_scale)[..., None]
    knuckles = _FINGER_MCP * finger_scale
    chain = np.cumsum(lengths * segment_dirs, axis=-2) + knuckles[:, None, :]
    knuckles = np.broadcast_to(knuckles, (*batch, 4, 3))
    fingers = np.concatenate([knuckles[..., None, :], chain], axis=-2)  # [..., 4, 4, 3]

    # Thumb: the metacarpal leaves the CMC at radial (in the palm plane, from +y toward +x) and
    # palmar (out of the palm plane) abduction; MCP and IP then flex in a plane turned by twist
    # about the metacarpal, from "across the palm" (twist 0) toward "in front of it" (opposition).
    radial, palmar, twist, thumb_mcp, thumb_ip = np.moveaxis(joints[..., _THUMB:], -1, 0)
    cos_p, sin_p, cos_r, sin_r = np.cos(palmar), np.sin(palmar), np.cos(radial), np.sin(radial)
    metacarpal = np.stack([cos_p * sin_r, cos_p * cos_r, sin_p], axis=-1)
    across = np.stack([-cos_r, sin_r, np.zeros_like(radial)], axis=-1)
    volar = np.stack([-sin_p * sin_r, -sin_p * cos_r, cos_p], axis=-1)
    bend = np.cos(twist)[..., None] * across + np.sin(twist)[..., None] * volar
    thumb_flexion = np.stack([np.zeros_like(thumb_mcp), thumb_mcp, thumb_mcp + thumb_ip], -1)
    thumb_dirs = (
        np.cos(thumb_flexion)[..., None] * metacarpal[..., None, :]
        + np.sin(thumb_flexion)[..., None] * bend[..., None, :]
    )
    cmc = _THUMB_CMC * scale[0]
    thumb = np.cumsum(_THUMB_BONES[:, None] * scale[0] * thumb_dirs, axis=-2) + cmc
    thumb = np.concatenate([np.broadcast_to(cmc, (*batch, 1, 3)), thumb], axis=-2)

    wrist = np.zeros((*batch, 1, 3))
    return np.concatenate([wrist, thumb, fingers.reshape(*batch, 16, 3)], axis=-2)


def rotation_matrices(rotvecs: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vectors ``[..., 3]`` (axis × angle, radians) → ``[..., 3, 3]``."""
    angle = np.linalg.norm(rotvecs, axis=-1)[..., None, None]
    axis = rotvecs / np.maximum(angle[..., 0], 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * (cross @ cross)


def euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation about y (yaw), then x (pitch), then z (roll), radians → ``[3, 3]``."""
    return (
        rotation_matrices(np.array([0.0, 0.0, roll]))
        @ rotation_matrices(np.array([pitch, 0.0, 0.0]))
        @ rotation_matrices(np.array([0.0, yaw, 0.0]))
    )


def _rotation_vector(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_matrices` for one matrix whose angle is well below 180°."""
    cos_angle = np.clip((np.trace(matrix) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array(
        [matrix[2, 1] - matrix[1, 2], matrix[0, 2] - matrix[2, 0], matrix[1, 0] - matrix[0, 1]]
    )
    return axis / np.linalg.norm(axis) * angle


def hand_frame(fingers: Sequence[float], palm: Sequence[float]) -> np.ndarray:
    """Rotation ``[3, 3]`` from the hand-local frame to the body frame that points the fingers
    along ``fingers`` and the palm along the part of ``palm`` orthogonal to them."""
    distal = np.asarray(fingers, dtype=np.float64)
    distal /= np.linalg.norm(distal)
    volar = np.asarray(palm, dtype=np.float64)
    volar = volar - (volar @ distal) * distal
    volar /= np.linalg.norm(volar)
    return np.stack([np.cross(distal, volar), distal, volar], axis=1)  # columns: x, y, z


def _orientation(fingers: Sequence[float], palm: Sequence[float]) -> np.ndarray:
    """:func:`hand_frame` as a rotation vector relative to :data:`PALM_TO_CAMERA`."""
    relative = PALM_TO_CAMERA.T @ hand_frame(fingers, palm)
    # Linear interpolation between rotation vectors (used for transitions) is only sensible
    # away from 180°, where the vector flips; every table entry stays well clear of it.
    if np.trace(relative) < -0.9:
        raise ValueError(f"orientation fingers={fingers} palm={palm} is too close to 180°")
    return _rotation_vector(relative)


# --- the manual alphabet ---------------------------------------------------------------------
#
# Finger states are (MCP flexion, abduction, PIP flexion, DIP flexion) and thumb states
# (CMC radial, CMC palmar, CMC twist, MCP flexion, IP flexion), in degrees. The a/e/m/n/s/t
# group differ mostly by where the thumb sits, u/v/r by the spread of two fingers, g/h by
# one finger; that is what makes them confusable once noise is added.

_STRAIGHT = (0, 0, 0, 0)
_FIST = (90, 0, 100, 60)
_DRAPED = (85, 0, 75, 25)  # m/n/t: fingers folded down over the thumb
_BENT = (55, 0, 100, 75)  # e: fingertips curled down onto the thumb
_CURVED = (25, 0, 35, 20)  # c
_ROUND = (45, 0, 55, 35)  # o, and the closed fingers of d
_HOOK = (10, 0, 85, 55)  # x
_RELAXED = (20, 0, 25, 10)

# Thumb states were fitted so the tip lands where it belongs (beside the index for a, on the
# ring finger for u/v, under the fingertips for e, on the index tip for f …).
_THUMB_SIDE = (56, 0, 44, 59, 64)  # a: beside the curled index
_THUMB_ACROSS = (-4, 15, 65, 42, 44)  # s, i, j: across the front of the fingers
_THUMB_UNDER = (10, 0, 30, 71, 71)  # e: tucked under the fingertips
_THUMB_M = (-13, 0, 40, 46, 42)  # m: out between ring and pinky
_THUMB_N = (1, 4, 44, 45, 44)  # n: out between middle and ring
_THUMB_T = (23, 4, 43, 49, 58)  # t: out between index and middle
_THUMB_PALM = (8, 0, 12, 67, 65)  # b: folded across the palm
_THUMB_O = (-4, 33, 63, 10, 16)  # tip meets the index and middle tips
_THUMB_D = (-16, 40, 64, 2, 4)  # tip meets the middle tip
_THUMB_F = (10, 25, 66, 18, 31)  # tip meets the index tip
_THUMB_C = (31, 19, 44, 40, 41)  # opposite the index tip, a C's gap away
_THUMB_OUT = (80, 10, 0, 0, 0)  # l, y: straight out to the side
_THUMB_K = (15, 6, 21, 42, 31)  # k, p: on the middle finger, between it and the index
_THUMB_PARALLEL = (27, 9, 7, 31, 29)  # g, q: alongside the index
_THUMB_OVER = (-14, 15, 51, 42, 40)  # h, r, u, v, x, z: holding the ring finger down
_THUMB_W = (-29, 9, 45, 44, 43)  # w: holding the pinky down
_THUMB_RELAXED = (30, 20, 30, 10, 10)

# Wrist orientations (fingers, palm) in the body frame: x image right, y down, z away.
_UP = ((0, -1, 0), (0, 0, -1))  # fingers up, palm to the camera
_SIDEWAYS = ((0, -1, -0.15), (0.85, 0, -0.5))  # palm turned toward the signer's left
_HALF_TURNED = ((0, -1, -0.1), (0.6, 0, -0.8))
_POINT_SIDE = ((1, 0, -0.3), (0, 0.3, 1))  # g, h: fingers to the signer's left, palm in
_POINT_DOWN_FORWARD = ((0, 0.5, -0.85), (0, 0.85, 0.5))  # p
_POINT_DOWN = ((0.2, 0.85, -0.45), (0, 0.45, 0.85))  # q
_J_END = ((0.25, -0.9, 0), (0.85, 0, 0.4))  # after the J hook: palm turned toward the body
_FORWARD_UP = ((0, -0.9, -0.45), (0, 0, -1))  # z: index tilted toward the camera
_RELAXED_ORIENTATION = ((0.2, -0.8, -0.4), (0.9, 0, -0.3))


def _shape(
    index: Sequence[float],
    middle: Sequence[float],
    ring: Sequence[float],
    pinky: Sequence[float],
    thumb: Sequence[float],
    orientation: tuple[Sequence[float], Sequence[float]] = _UP,
    spread: Sequence[float] = (0, 0, 0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """(joint angles [NUM_JOINTS] radians, orientation rotation vector [3])."""
    fingers = np.array([index, middle, ring, pinky], dtype=np.float64)
    fingers[:, 1] += spread
    joints = np.concatenate([fingers.reshape(-1), np.asarray(thumb, dtype=np.float64)]) * DEG
    return joints, _orientation(*orientation)


_TOGETHER = (-4, 0, 3, 7)  # closes the natural fan of the fingers
_SPREAD = (8, -2, -10, -16)

_LETTER_SHAPES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "a": _shape(_FIST, _FIST, _FIST, _FIST, _THUMB_SIDE),
    "b": _shape(_STRAIGHT, _STRAIGHT, _STRAIGHT, _STRAIGHT, _THUMB_PALM, spread=_TOGETHER),
    "c": _shape(_CURVED, _CURVED, _CURVED, _CURVED, _THUMB_C, _SIDEWAYS, spread=_TOGETHER),
    "d": _shape(_STRAIGHT, _ROUND, _ROUND, _ROUND, _THUMB_D),
    "e": _shape(_BENT, _BENT, _BENT, _BENT, _THUMB_UNDER, spread=_TOGETHER),
    "f": _shape((45, 0, 55, 30), _STRAIGHT, _STRAIGHT, _STRAIGHT, _THUMB_F, spread=_SPREAD),
    "g": _shape(_STRAIGHT, _FIST, _FIST, _FIST, _THUMB_PARALLEL, _POINT_SIDE),
    "h": _shape(_STRAIGHT, _STRAIGHT, _FIST, _FIST, _THUMB_OVER, _POINT_SIDE, spread=_TOGETHER),
    "i": _shape(_FIST, _FIST, _FIST, _STRAIGHT, _THUMB_ACROSS),
    "j": _shape(_FIST, _FIST, _FIST, _STRAIGHT, _THUMB_ACROSS, _J_END),
    "k": _shape(_STRAIGHT, (50, -3, 0, 0), _FIST, _FIST, _THUMB_K),
    "l": _shape(_STRAIGHT, _FIST, _FIST, _FIST, _THUMB_OUT),
    "m": _shape(_DRAPED, _DRAPED, _DRAPED, _FIST, _THUMB_M),
    "n": _shape(_DRAPED, _DRAPED, _FIST, _FIST, _THUMB_N),
    "o": _shape(_ROUND, _ROUND, _ROUND, _ROUND, _THUMB_O, _HALF_TURNED, spread=_TOGETHER),
    "p": _shape(_STRAIGHT, (50, -3, 0, 0), _FIST, _FIST, _THUMB_K, _POINT_DOWN_FORWARD),
    "q": _shape(_STRAIGHT, _FIST, _FIST, _FIST, _THUMB_PARALLEL, _POINT_DOWN),
    "r": _shape((12, -16, 0, 0), (0, 12, 0, 0), _FIST, _FIST, _THUMB_OVER),
    "s": _shape(_FIST, _FIST, _FIST, _FIST, _THUMB_ACROSS),
    "t": _shape((90, 0, 85, 30), _FIST, _FIST, _FIST, _THUMB_T),
    "u": _shape(_STRAIGHT, _STRAIGHT, _FIST, _FIST, _THUMB_OVER, spread=_TOGETHER),
    "v": _shape(_STRAIGHT, _STRAIGHT, _FIST, _FIST, _THUMB_OVER, spread=(12, -12, 0, 0)),
    "w": _shape(_STRAIGHT, _STRAIGHT, _STRAIGHT, _FIST, _THUMB_W, spread=_SPREAD),
    "x": _shape(_HOOK, _FIST, _FIST, _FIST, _THUMB_OVER, _HALF_TURNED),
    "y": _shape(_FIST, _FIST, _FIST, _STRAIGHT, _THUMB_OUT, spread=(0, 0, 0, -12)),
    "z": _shape(_STRAIGHT, _FIST, _FIST, _FIST, _THUMB_OVER, _FORWARD_UP),
    " ": _shape(_RELAXED, _RELAXED, _RELAXED, _RELAXED, _THUMB_RELAXED, _RELAXED_ORIENTATION),
}
SYMBOLS = tuple(_LETTER_SHAPES)  # row order of the per-signer style tables
LETTER_JOINTS = np.stack([joints for joints, _ in _LETTER_SHAPES.values()])
LETTER_ORIENTATIONS = np.stack([rotvec for _, rotvec in _LETTER_SHAPES.values()])
RELAXED_ROW = SYMBOLS.index(" ")
I_ROW = SYMBOLS.index("i")

#: Where the wrist goes, relative to the letter's place, for the strokes of j and z (metres,
#: body frame). j starts as an i, dips and hooks toward the thumb side while the palm turns;
#: z traces a Z, drawn from the signer's left to right (right to left in the image).
J_PATH = np.array([[0.0, -0.02, 0.0], [0.0, 0.03, -0.01], [0.03, 0.015, -0.02]])
Z_PATH = np.array([[0.03, -0.03, 0.0], [-0.03, -0.03, 0.0], [0.03, 0.02, 0.0], [-0.03, 0.02, 0.0]])


def letter_shape(letter: str, *, oriented: bool = True) -> np.ndarray:
    """The canonical (noise-free) synthetic hand of one letter, ``[21, 3]`` float64 metres.

    MediaPipe hand order, wrist at the origin, reference hand size. With ``oriented`` (the
    default) the letter's wrist orientation is applied and the axes are the body frame (x image
    right, y down, z away from the camera), so letters that share a handshape and differ by
    orientation (k/p, and g/q nearly) differ here too; without it the points are in the
    hand-local frame (x toward the thumb, y along the fingers, z out of the palm). j and z are
    shown at rest (j at the end of its hook); their motion is not included. ``' '`` gives the
    relaxed hand of a pause.
    """
    if letter not in _LETTER_SHAPES:
        raise KeyError(f"no synthetic hand shape for {letter!r}; letters a–z and ' ' have one")
    joints, rotvec = _LETTER_SHAPES[letter]
    points = hand_points(joints)
    if oriented:
        points = points @ (PALM_TO_CAMERA @ rotation_matrices(rotvec)).T
    return points
