"""Synthetic fingerspelling clips: procedurally generated landmarks, **not real data**.

``make demo`` and the tests need fingerspelling data that goes through the real ingest path
without downloading anything, so this module draws MediaPipe-Holistic-like landmark sequences
of made-up signers spelling made-up phrases, and writes them in the Kaggle asl-fingerspelling
layout (:func:`aslx.formats.kaggle_fingerspelling.write`). A model can learn to read them, but
not trivially: letters whose handshapes are close in ASL (a/e/m/n/s/t, u/v/r, g/h, i/j …) are
close here too, and the noise makes them confusable.

How a clip is made:

* **Hand.** A 21-point hand with MediaPipe's topology (:data:`~aslx.landmarks.layouts.HAND_BONES`)
  built by forward kinematics from 21 joint angles (per finger MCP flexion and abduction, PIP and
  DIP flexion; thumb CMC radial and palmar abduction, CMC twist, MCP and IP flexion) and a wrist
  orientation. Bone lengths are those of an adult hand (wrist → middle MCP 8.5 cm), scaled per
  signer.
* **Letters.** A hand-written table of joint angles and wrist orientations loosely following
  the ASL manual alphabet (:func:`letter_shape`); j and z add their wrist trajectories; a space
  is a short pause with the hand relaxed and lowered.
* **Signer and clip variation.** Hand size, body size, signing speed, handedness (about one
  signer in five signs with the left hand, so the hand lands in the ``left_hand`` columns,
  mirrored), each signer's own habitual version of every letter, and per-letter-instance joint
  jitter. Letters are held for a few frames and joined by eased transitions; the wrist drifts
  and sways; a random camera rotation, translation and scale applies to every point; every point
  gets Gaussian detection jitter; the signing hand is not detected in short runs of frames; the
  resting hand is sometimes detected.
* **Body.** All 33 pose points of an upper body facing the camera (legs below the image, y > 1,
  as MediaPipe reports them), the signing arm following the hand.
* **Face.** Only the 40 lip points (:data:`~aslx.landmarks.layouts.LIPS`) are generated, as a
  slightly moving mouth attached to the head. There is no face-mesh model here, so every other
  face point is NaN ("not detected"); models that use the lips and hands see the usual inputs.

Geometry is made in a metric body frame (metres; x toward the image right, y down, z away from
the camera; origin between the shoulders) and projected orthographically onto a portrait image
(width / height = :data:`IMAGE_ASPECT`): ``x = X / width_m``, ``y = Y / height_m`` with
``height_m = width_m / IMAGE_ASPECT``. As in MediaPipe, z is relative depth in x's units, taken
from the wrist for hands, the hip midpoint for the pose and the head centre for the lips.

Run ``python -m aslx.formats.synthetic --out DIR`` to write a synthetic data set.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aslx.formats import kaggle_fingerspelling
from aslx.landmarks import layouts
from aslx.vocab import KAGGLE_CHARACTERS

# --- camera and timing -------------------------------------------------------------------------

#: Width / height of the (portrait phone) image the landmarks are normalised by.
IMAGE_ASPECT = 0.527
#: Metres of the signer's body plane that span the image width at camera scale 1.
FIELD_WIDTH_M = 0.55
#: Frame rate the motion frequencies assume.
FPS = 30.0
#: Bounds on the number of frames of one clip.
MIN_FRAMES, MAX_FRAMES = 20, 200
#: Longest phrase :func:`random_phrase` draws.
MAX_PHRASE_LENGTH = 30
#: Characters a synthetic phrase may hold.
PHRASE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz ")

_DEG = np.pi / 180.0

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
_FINGER_FAN = np.array([5.0, 0.0, -5.0, -11.0]) * _DEG
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
_PALM_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def _hand_points(joints: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
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


def _rotation_matrices(rotvecs: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vectors ``[..., 3]`` (axis × angle, radians) → ``[..., 3, 3]``."""
    angle = np.linalg.norm(rotvecs, axis=-1)[..., None, None]
    axis = rotvecs / np.maximum(angle[..., 0], 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * (cross @ cross)


def _euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation about y (yaw), then x (pitch), then z (roll), radians → ``[3, 3]``."""
    return (
        _rotation_matrices(np.array([0.0, 0.0, roll]))
        @ _rotation_matrices(np.array([pitch, 0.0, 0.0]))
        @ _rotation_matrices(np.array([0.0, yaw, 0.0]))
    )


def _rotation_vector(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_rotation_matrices` for one matrix whose angle is well below 180°."""
    cos_angle = np.clip((np.trace(matrix) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array(
        [matrix[2, 1] - matrix[1, 2], matrix[0, 2] - matrix[2, 0], matrix[1, 0] - matrix[0, 1]]
    )
    return axis / np.linalg.norm(axis) * angle


def _hand_frame(fingers: Sequence[float], palm: Sequence[float]) -> np.ndarray:
    """Rotation ``[3, 3]`` from the hand-local frame to the body frame that points the fingers
    along ``fingers`` and the palm along the part of ``palm`` orthogonal to them."""
    distal = np.asarray(fingers, dtype=np.float64)
    distal /= np.linalg.norm(distal)
    volar = np.asarray(palm, dtype=np.float64)
    volar = volar - (volar @ distal) * distal
    volar /= np.linalg.norm(volar)
    return np.stack([np.cross(distal, volar), distal, volar], axis=1)  # columns: x, y, z


def _orientation(fingers: Sequence[float], palm: Sequence[float]) -> np.ndarray:
    """:func:`_hand_frame` as a rotation vector relative to :data:`_PALM_TO_CAMERA`."""
    relative = _PALM_TO_CAMERA.T @ _hand_frame(fingers, palm)
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
    joints = np.concatenate([fingers.reshape(-1), np.asarray(thumb, dtype=np.float64)]) * _DEG
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
_SYMBOLS = tuple(_LETTER_SHAPES)  # row order of the per-signer style tables
_LETTER_JOINTS = np.stack([joints for joints, _ in _LETTER_SHAPES.values()])
_LETTER_ORIENTATIONS = np.stack([rotvec for _, rotvec in _LETTER_SHAPES.values()])
_RELAXED_ROW = _SYMBOLS.index(" ")
_I_ROW = _SYMBOLS.index("i")

#: Where the wrist goes, relative to the letter's place, for the strokes of j and z (metres,
#: body frame). j starts as an i, dips and hooks toward the thumb side while the palm turns;
#: z traces a Z, drawn from the signer's left to right (right to left in the image).
_J_PATH = np.array([[0.0, -0.02, 0.0], [0.0, 0.03, -0.01], [0.03, 0.015, -0.02]])
_Z_PATH = np.array([[0.03, -0.03, 0.0], [-0.03, -0.03, 0.0], [0.03, 0.02, 0.0], [-0.03, 0.02, 0.0]])


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
    points = _hand_points(joints)
    if oriented:
        points = points @ (_PALM_TO_CAMERA @ _rotation_matrices(rotvec)).T
    return points


# --- the body --------------------------------------------------------------------------------
#
# A right-handed signer facing the camera, body frame, metres. The signer's left side is at +x
# (the image right). Signing-arm points (RIGHT_ELBOW … RIGHT_THUMB) are placeholders: they are
# computed from the hand every frame.

_POSE_TEMPLATE = np.array(
    [
        [0.0, -0.22, -0.10],  # NOSE
        [0.015, -0.255, -0.085], [0.033, -0.257, -0.08], [0.048, -0.255, -0.07],  # left eye
        [-0.015, -0.255, -0.085], [-0.033, -0.257, -0.08], [-0.048, -0.255, -0.07],  # right eye
        [0.075, -0.245, 0.0], [-0.075, -0.245, 0.0],  # ears
        [0.025, -0.185, -0.085], [-0.025, -0.185, -0.085],  # mouth corners
        [0.19, 0.0, 0.0], [-0.19, 0.0, 0.0],  # shoulders
        [0.23, 0.27, 0.02], [0.0, 0.0, 0.0],  # elbows
        [0.21, 0.50, -0.04], [0.0, 0.0, 0.0],  # wrists
        [0.22, 0.57, -0.04], [0.0, 0.0, 0.0],  # pinky
        [0.20, 0.58, -0.06], [0.0, 0.0, 0.0],  # index
        [0.19, 0.55, -0.06], [0.0, 0.0, 0.0],  # thumb
        [0.14, 0.52, 0.02], [-0.14, 0.52, 0.02],  # hips
        [0.13, 0.97, 0.0], [-0.13, 0.97, 0.0],  # knees
        [0.12, 1.40, 0.05], [-0.12, 1.40, 0.05],  # ankles
        [0.12, 1.45, 0.09], [-0.12, 1.45, 0.09],  # heels
        [0.13, 1.47, -0.07], [-0.13, 1.47, -0.07],  # foot index
    ]
)  # fmt: skip
_POSE = {name: i for i, name in enumerate(layouts.POSE_POINTS)}
_HEAD_POINTS = np.arange(11)  # nose … mouth corners move with the head
_HEAD_CENTRE = np.array([0.0, -0.245, 0.0])  # between the ears; the head turns about it
_MOUTH_CENTRE = np.array([0.0, -0.185, -0.09])
_UPPER_ARM, _FOREARM = 0.29, 0.26
#: Default wrist position of the signing hand: in front of the right shoulder, fingers reaching
#: to about chin height.
_SIGNING_WRIST = np.array([-0.12, -0.01, -0.30])
#: The wrist of the resting (non-signing) hand, mirrored onto the right side for the model.
_RESTING_WRIST = _POSE_TEMPLATE[_POSE["LEFT_WRIST"]] * np.array([-1.0, 1.0, 1.0])
_RESTING_FRAME = _hand_frame((0.1, 1, -0.2), (1, 0, -0.2))  # hanging, palm to the thigh

# The lips: MediaPipe's four lip contours, each listed from the signer's right mouth corner
# (image left) to the left one; the outer and inner corners are shared by upper and lower.
_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
_LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
_LIP_INDICES = np.array(_UPPER_OUTER + _LOWER_OUTER + _UPPER_INNER + _LOWER_INNER)
assert sorted(_LIP_INDICES.tolist()) == sorted(layouts.LIPS)


def _lip_template() -> tuple[np.ndarray, np.ndarray]:
    """(rest positions [40, 3] relative to the mouth centre, how far each point moves down per
    metre of mouth opening [40])."""
    corner_to_corner = np.linspace(-1.0, 1.0, 11)
    inside = corner_to_corner[1:-1]

    def contour(u, half_width, height, opening_share, depth_back):
        arch = (1 - u**2) ** 0.6
        points = np.stack([half_width * u, height * arch, depth_back * u**2 - 0.004 * arch], -1)
        return points, opening_share * arch

    parts = [
        contour(corner_to_corner, 0.025, -0.011, -0.1, 0.012),  # the jaw moves the lower lip
        contour(inside, 0.025, 0.013, 0.9, 0.012),
        contour(corner_to_corner, 0.020, -0.001, -0.1, 0.015),
        contour(inside, 0.020, 0.001, 0.9, 0.015),
    ]
    points = np.concatenate([p for p, _ in parts])
    points[:11, 1] += 0.0015 * np.exp(-((corner_to_corner / 0.15) ** 2))  # cupid's bow
    return points, np.concatenate([s for _, s in parts])


_LIP_POINTS, _LIP_OPENING = _lip_template()

# --- signers ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Signer:
    """Parameters of one synthetic signer, fixed across all their clips.

    Attributes:
      left_handed: signs with the left hand (landmarks in the ``left_hand`` columns, the whole
        scene mirrored).
      hand_scale: ``[5]`` length factors of thumb, index, middle, ring and pinky (about
        0.9–1.1, shared size times a per-finger ±3 %).
      body_scale: size of the body relative to the template (shoulders 0.38 m apart).
      speed: signing speed; holds and transitions last ``1 / speed`` times as long.
      letter_style: ``[27, NUM_JOINTS]`` radians, this signer's habitual deviation from the
        table for every letter and the space (a few degrees).
      orientation_style: ``[27, 3]`` rotation-vector offsets of the wrist per letter.
      signing_offset: ``[3]`` metres, where this signer holds the hand relative to the default.
    """

    left_handed: bool
    hand_scale: np.ndarray
    body_scale: float
    speed: float
    letter_style: np.ndarray
    orientation_style: np.ndarray
    signing_offset: np.ndarray


def make_signer(rng: np.random.Generator, *, left_handed: bool | None = None) -> Signer:
    """Draws a synthetic signer; about one in five is left-handed unless ``left_handed`` says."""
    if left_handed is None:
        left_handed = bool(rng.random() < 0.2)
    hand_scale = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, size=5)
    arrays = {
        "hand_scale": hand_scale,
        "letter_style": rng.normal(0.0, 4.0 * _DEG, size=_LETTER_JOINTS.shape),
        "orientation_style": rng.normal(0.0, 5.0 * _DEG, size=_LETTER_ORIENTATIONS.shape),
        "signing_offset": rng.normal(0.0, [0.025, 0.025, 0.03]),
    }
    for array in arrays.values():
        array.setflags(write=False)
    return Signer(
        left_handed=left_handed,
        body_scale=float(rng.uniform(0.9, 1.1)),
        speed=float(rng.uniform(0.75, 1.35)),
        **arrays,
    )


# --- timing of a clip ------------------------------------------------------------------------


@dataclasses.dataclass
class _Keys:
    """Key poses of a clip, in order, and how long each is held and then moved away from."""

    rows: list[int] = dataclasses.field(default_factory=list)  # letter table row
    paths: list[np.ndarray] = dataclasses.field(default_factory=list)  # [3] wrist offset
    holds: list[float] = dataclasses.field(default_factory=list)  # frames
    moves: list[float] = dataclasses.field(default_factory=list)  # frames to the next key
    tokens: list[int] = dataclasses.field(default_factory=list)  # phrase position, -1 = rest
    min_holds: list[int] = dataclasses.field(default_factory=list)

    def add(self, row, path, hold, move, token, min_hold):
        self.rows.append(row)
        self.paths.append(np.asarray(path, dtype=np.float64))
        self.holds.append(hold)
        self.moves.append(move)
        self.tokens.append(token)
        self.min_holds.append(min_hold)


def _keys(rng: np.random.Generator, phrase: str, speed: float) -> _Keys:
    """Lays the phrase out as key poses (rest, letters and their strokes, rest) with durations.

    Durations are in frames at signing speed 1, divided by ``speed``: letters are held 2–6
    frames and reached in 2–4; the strokes of j and z take 2 frames each.
    """
    keys = _Keys()
    slow = 1.0 / speed
    keys.add(_RELAXED_ROW, [0.0, 0.12, 0.05], rng.integers(0, 6), rng.uniform(2, 4) * slow, -1, 0)
    slide = np.zeros(3)
    for position, char in enumerate(phrase):
        hold = rng.uniform(2, 6) * slow
        move = rng.uniform(2, 4) * slow
        if char == " ":
            keys.add(_RELAXED_ROW, [0.0, 0.08, 0.03], rng.uniform(2, 4) * slow, move, position, 2)
            continue
        # A doubled letter is signed twice with a small slide toward the signing side, which
        # also keeps the two instances apart for CTC.
        doubled = position > 0 and phrase[position - 1] == char
        slide = slide + [-0.025, 0.0, 0.0] if doubled else np.zeros(3)
        row = _SYMBOLS.index(char)
        stroke = 2 * slow
        # (table row, wrist offset, hold, move, fewest held frames) of each key of the letter;
        # only the last key of a letter is held for long.
        if char == "j":
            parts = [
                (_I_ROW, _J_PATH[0], 1, stroke, 0),
                (_I_ROW, _J_PATH[1], 0, stroke, 0),
                (row, _J_PATH[2], hold, move, 2),
            ]
        elif char == "z":
            parts = [
                (row, corner, 1 if i == 0 else 0, stroke, 0) for i, corner in enumerate(_Z_PATH)
            ]
            parts[-1] = (row, _Z_PATH[-1], hold, move, 2)
        else:
            parts = [(row, np.zeros(3), hold, move, 2)]
        for part_row, offset, part_hold, part_move, min_hold in parts:
            keys.add(part_row, slide + offset, part_hold, part_move, position, min_hold)
    keys.add(_RELAXED_ROW, [0.0, 0.12, 0.05], rng.integers(0, 6), 0, -1, 0)
    return keys


def _frame_counts(keys: _Keys) -> tuple[np.ndarray, np.ndarray]:
    """Whole-frame (hold, move) durations of each key, squeezed or padded into the frame range.

    Every letter keeps at least two held frames, so a clip always has at least
    ``2 * len(phrase)`` frames: more than the ``len(phrase) + repeats`` that CTC needs.
    """
    min_holds = np.array(keys.min_holds)
    min_moves = np.array([1 if m > 0 else 0 for m in keys.moves])
    minimum = np.concatenate([min_holds, min_moves])
    if minimum.sum() > MAX_FRAMES:
        raise ValueError(f"the phrase needs more than {MAX_FRAMES} frames; spell a shorter one")
    wanted = np.maximum(np.round(np.concatenate([keys.holds, keys.moves])), minimum)
    if wanted.sum() > MAX_FRAMES:
        share = (MAX_FRAMES - minimum.sum()) / (wanted.sum() - minimum.sum())
        wanted = minimum + np.floor((wanted - minimum) * share)
    holds, moves = np.split(wanted.astype(np.int64), 2)
    shortfall = MIN_FRAMES - int(holds.sum() + moves.sum())
    if shortfall > 0:  # pad short clips with rest before and after the spelling
        holds[0] += shortfall // 2
        holds[-1] += shortfall - shortfall // 2
    return holds, moves


# --- one clip --------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, frames: int, size: int, period_s: tuple) -> np.ndarray:
    """``[frames, size]`` smooth wobble in [-1, 1]: two sinusoids of random period and phase."""
    t = np.arange(frames)[:, None] / FPS
    total = np.zeros((frames, size))
    for _ in range(2):
        period = rng.uniform(*period_s, size=size)
        total += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi, size=size))
    return total / 2


def _runs(rng: np.random.Generator, frames: int, fraction: float, max_run: int) -> np.ndarray:
    """``[frames]`` bool: runs of 1…``max_run`` frames covering about ``fraction`` of them (runs
    may touch, making longer ones, but never cover more than the fraction)."""
    mask = np.zeros(frames, dtype=bool)
    target = round(fraction * frames)
    for _ in range(4 * frames):
        left = target - int(mask.sum())
        if left <= 0:
            break
        start = rng.integers(frames)
        mask[start : start + min(int(rng.integers(1, max_run + 1)), left)] = True
    return mask


def _arm_elbows(shoulder: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """Two-bone IK: elbow positions ``[frames, 3]`` for the given wrists, bending down and out."""
    reach = wrist - shoulder
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    along = reach / distance
    distance = np.clip(distance, abs(_UPPER_ARM - _FOREARM) + 1e-3, _UPPER_ARM + _FOREARM - 1e-3)
    to_elbow = (distance**2 + _UPPER_ARM**2 - _FOREARM**2) / (2 * distance)
    height = np.sqrt(np.maximum(_UPPER_ARM**2 - to_elbow**2, 0.0))
    pole = np.array([-0.4, 1.0, 0.2])  # elbows hang down, a little out and back
    pole = pole - (along @ pole)[:, None] * along
    pole /= np.linalg.norm(pole, axis=-1, keepdims=True)
    return shoulder + to_elbow * along + height * pole


def make_clip(rng: np.random.Generator, phrase: str, signer: Signer) -> np.ndarray:
    """One synthetic clip of ``signer`` fingerspelling ``phrase``.

    Args:
      rng: source of all randomness of this clip (camera, jitter, timing, dropouts).
      phrase: lower-case letters a–z and spaces, non-empty.
      signer: from :func:`make_signer`.

    Returns:
      ``[frames, 543, 3]`` float32 landmarks in the canonical layout, normalised image
      coordinates (x, y in [0, 1] for points inside the image; z relative depth in x's units),
      NaN for points not detected: the hand in dropped frames, the resting hand when not shown,
      and all face points except the lips. ``MIN_FRAMES <= frames <= MAX_FRAMES`` and
      ``frames >= 2 * len(phrase)``.
    """
    if not phrase or set(phrase) - PHRASE_CHARACTERS:
        raise ValueError(f"synthetic phrases hold only a–z and spaces, got {phrase!r}")

    # Timeline: per frame, the key it leaves, the key it goes to and the eased progress.
    keys = _keys(rng, phrase, signer.speed)
    holds, moves = _frame_counts(keys)
    num_keys = len(holds)
    frames = int(holds.sum() + moves.sum())
    key = np.repeat(np.arange(num_keys), holds + moves)
    local = np.arange(frames) - np.repeat(np.cumsum(holds + moves) - holds - moves, holds + moves)
    moving = local >= holds[key]
    progress = np.where(moving, (local - holds[key] + 1) / (moves[key] + 1), 0.0)
    ease = (progress * progress * (3 - 2 * progress))[:, None]  # smoothstep: ease in and out
    following = np.minimum(key + 1, num_keys - 1)

    # Key poses: the letter table, this signer's habits, then a per-clip and a per-instance
    # jitter (strokes of one j or z share their letter's jitter).
    rows = np.array(keys.rows)
    tokens = np.array(keys.tokens)
    _, instance = np.unique(tokens, return_inverse=True)
    clip_joint_offset = rng.normal(0.0, 2.0 * _DEG, size=NUM_JOINTS)
    instance_joints = rng.normal(0.0, 3.5 * _DEG, size=(instance.max() + 1, NUM_JOINTS))
    instance_turn = rng.normal(0.0, 4.0 * _DEG, size=(instance.max() + 1, 3))
    key_joints = (
        _LETTER_JOINTS[rows]
        + signer.letter_style[rows]
        + clip_joint_offset
        + instance_joints[instance]
    )
    key_turns = (
        _LETTER_ORIENTATIONS[rows] + signer.orientation_style[rows] + instance_turn[instance]
    )
    key_paths = np.stack(keys.paths)

    def interpolate(values):
        return values[key] + ease * (values[following] - values[key])

    tremor = _smooth_noise(rng, frames, NUM_JOINTS, (0.4, 1.5)) * 1.5 * _DEG
    joints = interpolate(key_joints) + tremor
    turns = interpolate(key_turns) + _smooth_noise(rng, frames, 3, (0.5, 2.0)) * 2.0 * _DEG

    # Signing hand in the body frame. The hand drifts toward the signing side over the phrase
    # (as fingerspelling does) and sways a little.
    drift = np.outer(np.linspace(0, 1, frames), [-rng.uniform(0.0, 0.08), rng.normal(0, 0.01), 0])
    sway = _smooth_noise(rng, frames, 3, (0.6, 2.0)) * rng.uniform(0.002, 0.006)
    body_shift = _smooth_noise(rng, frames, 3, (1.5, 4.0)) * 0.004
    wrist = (
        _SIGNING_WRIST * signer.body_scale
        + signer.signing_offset
        + interpolate(key_paths)
        + drift
        + sway
        + body_shift
    )
    rotations = _PALM_TO_CAMERA @ _rotation_matrices(turns)
    hand_local = _hand_points(joints, signer.hand_scale)
    hand = wrist[:, None, :] + hand_local @ rotations.transpose(0, 2, 1)

    # Resting hand, hanging at the hip (a right hand at the mirrored place, mirrored below).
    rest_joints = _LETTER_JOINTS[_RELAXED_ROW] + rng.normal(0, 5 * _DEG, size=NUM_JOINTS)
    rest_wrist = _RESTING_WRIST * signer.body_scale + rng.normal(0, 0.02, size=3)
    resting = rest_wrist + _hand_points(rest_joints, signer.hand_scale) @ _RESTING_FRAME.T
    resting = resting * [-1.0, 1.0, 1.0] + body_shift[:, None]

    # Body: the template, the head turning slowly, the signing arm following the hand.
    pose = _POSE_TEMPLATE * signer.body_scale + body_shift[:, None]
    head_turn = _rotation_matrices(
        rng.normal(0, 4 * _DEG, size=3) + _smooth_noise(rng, frames, 3, (1.0, 3.0)) * 2 * _DEG
    )
    head_centre = _HEAD_CENTRE * signer.body_scale + body_shift
    mouth_open = np.clip(_smooth_noise(rng, frames, 1, (0.3, 1.2)), 0, None) * 0.010
    lips = (_MOUTH_CENTRE - _HEAD_CENTRE) * signer.body_scale + _LIP_POINTS
    lips = np.broadcast_to(lips, (frames, 40, 3)).copy()
    lips[..., 1] += _LIP_OPENING * mouth_open
    head = np.concatenate([pose[:, _HEAD_POINTS] - head_centre[:, None], lips], axis=1)
    head = head_centre[:, None] + head @ head_turn.transpose(0, 2, 1)
    pose = pose.copy()
    pose[:, _HEAD_POINTS] = head[:, : len(_HEAD_POINTS)]
    lips = head[:, len(_HEAD_POINTS) :]
    shoulder = pose[:, _POSE["RIGHT_SHOULDER"]]
    pose[:, _POSE["RIGHT_ELBOW"]] = _arm_elbows(shoulder, wrist)
    # MediaPipe's pose puts its hand points near the wrist and the knuckles.
    for side, hand_points in (("RIGHT", hand), ("LEFT", resting)):
        for name, hand_index in (("WRIST", 0), ("PINKY", 17), ("INDEX", 5), ("THUMB", 2)):
            pose[:, _POSE[f"{side}_{name}"]] = hand_points[:, hand_index]

    # Detection jitter, 2–4 mm per point per frame (pose estimates are noisier, lips steadier).
    jitter = rng.uniform(0.002, 0.004)
    hand = hand + rng.normal(0, jitter, size=hand.shape)
    resting = resting + rng.normal(0, jitter, size=resting.shape)
    pose = pose + rng.normal(0, 1.5 * jitter, size=pose.shape)
    lips = lips + rng.normal(0, 0.5 * jitter, size=lips.shape)

    # Camera: one rotation, scale and shift of the whole scene, then the projection.
    camera = _euler(*rng.uniform(-15, 15, size=3) * _DEG)
    scale = rng.uniform(0.85, 1.15)
    centre = np.array([0.5, 0.5]) + rng.uniform(-0.06, 0.06, size=2)
    mirror = np.array([-1.0 if signer.left_handed else 1.0, 1.0, 1.0])

    def project(points, depth_origin):
        points = (points * mirror) @ camera.T
        origin = (depth_origin * mirror) @ camera.T
        width_m = FIELD_WIDTH_M / scale
        return np.stack(
            [
                centre[0] + points[..., 0] / width_m,
                centre[1] + points[..., 1] / (width_m / IMAGE_ASPECT),
                (points[..., 2] - origin[..., None, 2]) / width_m,
            ],
            axis=-1,
        )

    hips = (pose[:, _POSE["LEFT_HIP"]] + pose[:, _POSE["RIGHT_HIP"]]) / 2
    out = np.full((frames, layouts.NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    pose_xyz = project(pose, hips)
    signing_slot, resting_slot = "right_hand", "left_hand"
    if signer.left_handed:  # the mirrored scene swaps the signer's sides and their names
        pose_xyz = _swap(pose_xyz, layouts.POSE_MIRROR_PAIRS)
        signing_slot, resting_slot = resting_slot, signing_slot
    out[:, layouts.group_slice("pose")] = pose_xyz
    lips_xyz = project(lips, head_centre)
    if signer.left_handed:
        lips_xyz = _swap(lips_xyz, _LIP_MIRROR_PAIRS)
    out[:, layouts.OFFSETS["face"] + _LIP_INDICES] = lips_xyz

    # The signing hand is missed in runs of 1–4 frames, but each letter keeps a seen frame.
    dropped = _runs(rng, frames, rng.uniform(0.05, 0.15), max_run=4)
    held_letter = ~moving & (tokens[key] >= 0)
    letter_of_frame = np.where(held_letter, tokens[key], len(phrase))
    seen = np.bincount(letter_of_frame[held_letter & ~dropped], minlength=len(phrase) + 1)
    held_frames = np.flatnonzero(held_letter)
    letters, first = np.unique(letter_of_frame[held_frames], return_index=True)
    dropped[held_frames[first[seen[letters] == 0]]] = False
    hand_xyz = project(hand, hand[:, 0])
    hand_xyz[dropped] = np.nan
    out[:, layouts.group_slice(signing_slot)] = hand_xyz

    # The resting hand is usually out of view or missed; sometimes it is found for a while.
    if rng.random() < 0.3:
        resting_xyz = project(resting, resting[:, 0])
        resting_xyz[~_runs(rng, frames, rng.uniform(0.1, 0.4), max_run=frames // 3 + 1)] = np.nan
        out[:, layouts.group_slice(resting_slot)] = resting_xyz
    return out


def _lip_mirror_pairs() -> np.ndarray:
    """Pairs of positions in :data:`_LIP_INDICES` that swap when the face is mirrored."""
    where = {int(index): i for i, index in enumerate(_LIP_INDICES)}
    return np.array([(where[a], where[b]) for a, b in layouts.LIPS_MIRROR_PAIRS])


_LIP_MIRROR_PAIRS = _lip_mirror_pairs()


def _swap(points: np.ndarray, pairs) -> np.ndarray:
    """``points [..., n, 3]`` with the points of each (a, b) pair exchanged."""
    pairs = np.asarray(pairs)
    swapped = points.copy()
    swapped[..., pairs[:, 0], :] = points[..., pairs[:, 1], :]
    swapped[..., pairs[:, 1], :] = points[..., pairs[:, 0], :]
    return swapped


# --- phrases ---------------------------------------------------------------------------------

#: Made-up vocabulary of the synthetic phrases: common short words, names, places and street
#: names, letters only (the real data set spells addresses, names and web addresses).
WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(  # in order, without repeats
        """
        oak pine elm maple cedar birch willow cherry walnut spruce aspen hickory poplar laurel
        magnolia holly ivy hazel juniper cypress sycamore linden alder chestnut acorn meadow
        street road lane drive court avenue way place circle boulevard terrace trail parkway
        highway square ridge crossing point row path loop alley plaza park view hill hills
        lake river creek brook spring springs bay harbor shore beach island valley canyon mesa
        forest woods grove field fields farm ranch garden gardens orchard vineyard mill bridge
        north south east west main market church school college station union center central
        old new first second third fourth fifth sixth seventh tenth high low upper lower
        king queen prince duke bishop royal grand liberty freedom victory pioneer frontier
        john mary james anna lee kim smith brown jones miller davis garcia wilson moore taylor
        thomas white harris martin clark lewis walker young allen wright scott green baker adams
        nelson hill campbell mitchell roberts carter phillips evans turner torres parker collins
        edwards stewart morris murphy cook rogers morgan cooper peterson reed bailey bell kelly
        howard ward cox diaz richardson wood watson brooks bennett gray james hughes price
        sanders myers long ross foster jenkins perry powell russell sullivan fisher henderson
        boston denver austin dallas seattle chicago portland phoenix miami atlanta houston
        tucson omaha tulsa fresno reno salem dover helena boise albany newark buffalo orlando
        tampa raleigh memphis nashville detroit toledo akron dayton madison lincoln jackson
        hello world good morning night happy birthday thank you please sorry welcome home
        coffee tea water apple banana orange lemon grape melon berry bread cheese pizza pasta
        soup salad cookie cake candy honey sugar salt pepper rice bean corn potato tomato
        music movie book story paper letter phone email office store shop bank hotel hospital
        library museum theater airport harbor city town village county state country
        blue red yellow purple pink black silver golden brown violet amber ruby jade
        cat dog horse bird fish bear wolf fox deer rabbit eagle hawk owl duck goose swan
        sun moon star sky cloud rain snow wind storm summer winter autumn fall dawn dusk
        big small little quick slow bright dark warm cold soft loud quiet fresh sweet wild
        friend family mother father sister brother baby child teacher doctor nurse driver
        read write sign spell learn play sing dance walk run swim drive fly cook bake
        love hope peace joy dream light fire stone iron glass steel wood gold
        sunset sunrise rainbow thunder lightning mountain ocean desert prairie glacier
        """.split()
    )
)


def random_phrase(rng: np.random.Generator) -> str:
    """A synthetic phrase of 1–3 words from :data:`WORDS`, at most MAX_PHRASE_LENGTH long."""
    count = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
    while True:
        phrase = " ".join(WORDS[i] for i in rng.integers(len(WORDS), size=count))
        if len(phrase) <= MAX_PHRASE_LENGTH:
            return phrase
        count = max(1, count - 1)


# --- a data set --------------------------------------------------------------------------------

#: Sequence ids of a synthetic data set are FIRST_SEQUENCE_ID, FIRST_SEQUENCE_ID + 1, …
FIRST_SEQUENCE_ID = 1_000_000


@dataclasses.dataclass(frozen=True)
class Summary:
    """What :func:`write_dataset` wrote."""

    phrases: int
    frames: int
    files: int
    signers: int


def synthetic_phrases(
    *, num_phrases: int, num_signers: int = 8, seed: int = 0
) -> Iterator[tuple[int, int, str, np.ndarray]]:
    """Yields ``(sequence_id, participant_id, phrase, landmarks [frames, 543, 3])`` of a
    synthetic data set, deterministically for a seed.

    Signer ``k`` is left-handed when ``k % 5 == 4`` (one signer in five, and at least one from
    five signers on). Phrases are spread evenly over the signers in a seeded random order.
    Each signer and each phrase has its own random stream, so phrase ``i`` does not depend on
    how many phrases are drawn.
    """
    if num_phrases < 0 or num_signers < 1:
        raise ValueError("num_phrases must be >= 0 and num_signers >= 1")
    signers = [
        make_signer(np.random.default_rng([seed, 0, k]), left_handed=k % 5 == 4)
        for k in range(num_signers)
    ]
    participants = np.random.default_rng([seed, 1]).permutation(
        np.arange(num_phrases) % num_signers
    )
    for i, participant in enumerate(participants):
        rng = np.random.default_rng([seed, 2, i])
        phrase = random_phrase(rng)
        landmarks = make_clip(rng, phrase, signers[participant])
        yield FIRST_SEQUENCE_ID + i, int(participant), phrase, landmarks


def write_dataset(
    out: str | os.PathLike,
    *,
    num_phrases: int,
    num_signers: int = 8,
    seed: int = 0,
    phrases_per_file: int = 100,
    progress: bool = False,
) -> Summary:
    """:func:`generate`, also saying what it wrote; ``progress`` shows a progress bar."""
    counts = {"frames": 0}

    def counted():
        for item in synthetic_phrases(num_phrases=num_phrases, num_signers=num_signers, seed=seed):
            counts["frames"] += len(item[3])
            yield item

    items = tqdm(
        counted(),
        total=num_phrases,
        desc="synthetic phrases",
        unit="phrase",
        disable=None if progress else True,  # None: only on a terminal
    )
    kaggle_fingerspelling.write(
        out,
        items,
        vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)},
        phrases_per_file=phrases_per_file,
    )
    return Summary(
        phrases=num_phrases,
        frames=counts["frames"],
        files=-(-num_phrases // phrases_per_file),
        signers=num_signers,
    )


def generate(
    out: str | os.PathLike,
    *,
    num_phrases: int,
    num_signers: int = 8,
    seed: int = 0,
    phrases_per_file: int = 100,
) -> None:
    """Writes a synthetic fingerspelling data set in the Kaggle asl-fingerspelling layout.

    ``out`` gets ``train.csv``, ``character_to_prediction_index.json`` (the 59 Kaggle
    characters) and ``train_landmarks/<file_id>.parquet`` files of ``phrases_per_file`` phrases
    each; participant ids are signer indices ``0 … num_signers - 1``, sequence ids are unique
    integers from :data:`FIRST_SEQUENCE_ID`. The same arguments give byte-identical files.
    """
    write_dataset(
        out,
        num_phrases=num_phrases,
        num_signers=num_signers,
        seed=seed,
        phrases_per_file=phrases_per_file,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aslx.formats.synthetic",
        description="Write a SYNTHETIC fingerspelling data set (procedurally generated "
        "landmarks, not real signing) in the Kaggle asl-fingerspelling layout.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        required=True,
        help="folder to write the synthetic data set into",
    )
    parser.add_argument(
        "--phrases",
        type=int,
        metavar="N",
        default=500,
        help="number of synthetic phrases (default: 500)",
    )
    parser.add_argument(
        "--signers",
        type=int,
        metavar="K",
        default=8,
        help="number of synthetic signers (default: 8)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        default=0,
        help="random seed; the same seed writes the same files",
    )
    args = parser.parse_args(argv)
    if args.phrases < 1 or args.signers < 1:
        parser.error("--phrases and --signers must be at least 1")
    summary = write_dataset(
        args.out,
        num_phrases=args.phrases,
        num_signers=args.signers,
        seed=args.seed,
        progress=True,
    )
    files = f"{summary.files} parquet file{'' if summary.files == 1 else 's'}"
    print(
        f"wrote {summary.phrases} synthetic phrases ({summary.frames} frames, "
        f"{summary.signers} signers) to {args.out}: {files}, train.csv, "
        f"{kaggle_fingerspelling.VOCABULARY_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
