"""The synthetic scene: signers, the timing of a clip, and rendering it to MediaPipe landmarks.

:func:`make_clip` draws one clip of a signer (:func:`make_signer`) spelling a phrase with the
hand of :mod:`aslx.synthetic.hand`: letters held for a few frames and joined by eased
transitions, the wrist drifting, the body and the lips following, a random camera, detection
jitter and dropped detections; then the metric body frame is projected onto a portrait image
(see :mod:`aslx.synthetic` for the geometry). ``[frames, 543, 3]``, image fractions, NaN where
a point is not detected.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aslx.landmarks import layouts
from aslx.synthetic.hand import (
    DEG,
    I_ROW,
    J_PATH,
    LETTER_JOINTS,
    LETTER_ORIENTATIONS,
    NUM_JOINTS,
    PALM_TO_CAMERA,
    RELAXED_ROW,
    SYMBOLS,
    Z_PATH,
    euler,
    hand_frame,
    hand_points,
    rotation_matrices,
)

# --- camera and timing -------------------------------------------------------------------------

#: Width / height of the (portrait phone) image the landmarks are normalised by.
IMAGE_ASPECT = 0.527
#: Metres of the signer's body plane that span the image width at camera scale 1.
FIELD_WIDTH_M = 0.55
#: Frame rate the motion frequencies assume.
FPS = 30.0
#: Bounds on the number of frames of one clip.
MIN_FRAMES, MAX_FRAMES = 20, 200
#: Characters a synthetic phrase may hold.
PHRASE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz ")

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
_RESTING_FRAME = hand_frame((0.1, 1, -0.2), (1, 0, -0.2))  # hanging, palm to the thigh

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
        "letter_style": rng.normal(0.0, 4.0 * DEG, size=LETTER_JOINTS.shape),
        "orientation_style": rng.normal(0.0, 5.0 * DEG, size=LETTER_ORIENTATIONS.shape),
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
    keys.add(RELAXED_ROW, [0.0, 0.12, 0.05], rng.integers(0, 6), rng.uniform(2, 4) * slow, -1, 0)
    slide = np.zeros(3)
    for position, char in enumerate(phrase):
        hold = rng.uniform(2, 6) * slow
        move = rng.uniform(2, 4) * slow
        if char == " ":
            keys.add(RELAXED_ROW, [0.0, 0.08, 0.03], rng.uniform(2, 4) * slow, move, position, 2)
            continue
        # A doubled letter is signed twice with a small slide toward the signing side, which
        # also keeps the two instances apart for CTC.
        doubled = position > 0 and phrase[position - 1] == char
        slide = slide + [-0.025, 0.0, 0.0] if doubled else np.zeros(3)
        row = SYMBOLS.index(char)
        stroke = 2 * slow
        # (table row, wrist offset, hold, move, fewest held frames) of each key of the letter;
        # only the last key of a letter is held for long.
        if char == "j":
            parts = [
                (I_ROW, J_PATH[0], 1, stroke, 0),
                (I_ROW, J_PATH[1], 0, stroke, 0),
                (row, J_PATH[2], hold, move, 2),
            ]
        elif char == "z":
            parts = [
                (row, corner, 1 if i == 0 else 0, stroke, 0) for i, corner in enumerate(Z_PATH)
            ]
            parts[-1] = (row, Z_PATH[-1], hold, move, 2)
        else:
            parts = [(row, np.zeros(3), hold, move, 2)]
        for part_row, offset, part_hold, part_move, min_hold in parts:
            keys.add(part_row, slide + offset, part_hold, part_move, position, min_hold)
    keys.add(RELAXED_ROW, [0.0, 0.12, 0.05], rng.integers(0, 6), 0, -1, 0)
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


@dataclasses.dataclass(frozen=True)
class _Timeline:
    """Per frame of a clip: the key pose it leaves (or holds), the one it moves to, and how far.

    Attributes:
      key: ``[frames]`` index of the key the frame holds or leaves.
      following: ``[frames]`` index of the key it moves toward (the last key follows itself).
      moving: ``[frames]`` bool, the frame is a transition rather than a hold.
      ease: ``[frames, 1]`` eased progress from ``key`` to ``following`` in [0, 1), 0 when held.
    """

    key: np.ndarray
    following: np.ndarray
    moving: np.ndarray
    ease: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.key)

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """``[frames, n]`` values of each frame from ``values [keys, n]`` of each key."""
        return values[self.key] + self.ease * (values[self.following] - values[self.key])


def _timeline(keys: _Keys) -> _Timeline:
    """Lays the keys out frame by frame (:func:`_frame_counts` gives their whole-frame
    durations); transitions ease in and out so the hand never jumps."""
    holds, moves = _frame_counts(keys)
    num_keys = len(holds)
    frames = int(holds.sum() + moves.sum())
    key = np.repeat(np.arange(num_keys), holds + moves)
    local = np.arange(frames) - np.repeat(np.cumsum(holds + moves) - holds - moves, holds + moves)
    moving = local >= holds[key]
    progress = np.where(moving, (local - holds[key] + 1) / (moves[key] + 1), 0.0)
    ease = (progress * progress * (3 - 2 * progress))[:, None]  # smoothstep: ease in and out
    following = np.minimum(key + 1, num_keys - 1)
    return _Timeline(key=key, following=following, moving=moving, ease=ease)


def _hand_pose(
    rng: np.random.Generator, keys: _Keys, timeline: _Timeline, signer: Signer
) -> tuple[np.ndarray, np.ndarray]:
    """(joint angles ``[frames, NUM_JOINTS]``, wrist rotation vectors ``[frames, 3]``), radians.

    Key poses are the letter table plus this signer's habits, then a per-clip and a
    per-instance jitter (the strokes of one j or z share their letter's jitter, as they are
    one letter); between keys the pose is interpolated, and a slow tremor runs throughout.
    """
    rows = np.array(keys.rows)
    _, instance = np.unique(np.array(keys.tokens), return_inverse=True)
    clip_joint_offset = rng.normal(0.0, 2.0 * DEG, size=NUM_JOINTS)
    instance_joints = rng.normal(0.0, 3.5 * DEG, size=(instance.max() + 1, NUM_JOINTS))
    instance_turn = rng.normal(0.0, 4.0 * DEG, size=(instance.max() + 1, 3))
    key_joints = (
        LETTER_JOINTS[rows]
        + signer.letter_style[rows]
        + clip_joint_offset
        + instance_joints[instance]
    )
    key_turns = LETTER_ORIENTATIONS[rows] + signer.orientation_style[rows] + instance_turn[instance]
    tremor = _smooth_noise(rng, timeline.frames, NUM_JOINTS, (0.4, 1.5)) * 1.5 * DEG
    joints = timeline.interpolate(key_joints) + tremor
    wobble = _smooth_noise(rng, timeline.frames, 3, (0.5, 2.0)) * 2.0 * DEG
    turns = timeline.interpolate(key_turns) + wobble
    return joints, turns


def _wrist_path(
    rng: np.random.Generator, keys: _Keys, timeline: _Timeline, signer: Signer
) -> tuple[np.ndarray, np.ndarray]:
    """(signing wrist ``[frames, 3]``, whole-body shift ``[frames, 3]``), metres, body frame.

    The wrist follows the keys' offsets (strokes of j and z, slides of doubled letters), drifts
    toward the signing side over the phrase (as fingerspelling does) and sways a little; the
    body shifts slowly under it all, and the rest of the scene shares that shift.
    """
    frames = timeline.frames
    drift = np.outer(np.linspace(0, 1, frames), [-rng.uniform(0.0, 0.08), rng.normal(0, 0.01), 0])
    sway = _smooth_noise(rng, frames, 3, (0.6, 2.0)) * rng.uniform(0.002, 0.006)
    body_shift = _smooth_noise(rng, frames, 3, (1.5, 4.0)) * 0.004
    wrist = (
        _SIGNING_WRIST * signer.body_scale
        + signer.signing_offset
        + timeline.interpolate(np.stack(keys.paths))
        + drift
        + sway
        + body_shift
    )
    return wrist, body_shift


def _place_hand(
    wrist: np.ndarray, joints: np.ndarray, turns: np.ndarray, hand_scale: np.ndarray
) -> np.ndarray:
    """The signing hand ``[frames, 21, 3]``, metres, body frame: the posed hand
    (``joints [frames, NUM_JOINTS]``) turned by ``turns [frames, 3]`` from palm-to-camera and
    put at ``wrist [frames, 3]``."""
    rotations = PALM_TO_CAMERA @ rotation_matrices(turns)
    hand_local = hand_points(joints, hand_scale)
    return wrist[:, None, :] + hand_local @ rotations.transpose(0, 2, 1)


def _resting_hand(rng: np.random.Generator, signer: Signer, body_shift: np.ndarray) -> np.ndarray:
    """The resting hand ``[frames, 21, 3]``, metres, body frame: relaxed and hanging at the hip,
    moving only with the body (``body_shift [frames, 3]``). It is posed as a right hand at the
    mirrored place and then mirrored, so one hand model serves both sides."""
    rest_joints = LETTER_JOINTS[RELAXED_ROW] + rng.normal(0, 5 * DEG, size=NUM_JOINTS)
    rest_wrist = _RESTING_WRIST * signer.body_scale + rng.normal(0, 0.02, size=3)
    resting = rest_wrist + hand_points(rest_joints, signer.hand_scale) @ _RESTING_FRAME.T
    return resting * [-1.0, 1.0, 1.0] + body_shift[:, None]


@dataclasses.dataclass(frozen=True)
class _Scene:
    """The points of one clip in the signer's body frame, metres, before the camera.

    Attributes:
      pose: ``[frames, 33, 3]`` MediaPipe pose points.
      lips: ``[frames, 40, 3]`` in the order of :data:`_LIP_INDICES`.
      head_centre: ``[frames, 3]``, the depth origin of the face (MediaPipe's face depth is
        relative to the head, not the hips).
      hand: ``[frames, 21, 3]`` the signing hand.
      resting: ``[frames, 21, 3]`` the other hand.
    """

    pose: np.ndarray
    lips: np.ndarray
    head_centre: np.ndarray
    hand: np.ndarray
    resting: np.ndarray


def _turn_head(
    rng: np.random.Generator, body_scale: float, pose: np.ndarray, body_shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pose ``[frames, 33, 3]`` with its head points turned, lips ``[frames, 40, 3]``, head
    centre ``[frames, 3]``), metres, body frame.

    The head holds a random turn and wobbles slowly about it; the mouth opens and closes by up
    to 1 cm and the lips turn with the head. ``pose`` is not changed.
    """
    frames = len(body_shift)
    head_turn = rotation_matrices(
        rng.normal(0, 4 * DEG, size=3) + _smooth_noise(rng, frames, 3, (1.0, 3.0)) * 2 * DEG
    )
    head_centre = _HEAD_CENTRE * body_scale + body_shift
    mouth_open = np.clip(_smooth_noise(rng, frames, 1, (0.3, 1.2)), 0, None) * 0.010
    lips = (_MOUTH_CENTRE - _HEAD_CENTRE) * body_scale + _LIP_POINTS
    lips = np.broadcast_to(lips, (frames, 40, 3)).copy()
    lips[..., 1] += _LIP_OPENING * mouth_open
    head = np.concatenate([pose[:, _HEAD_POINTS] - head_centre[:, None], lips], axis=1)
    head = head_centre[:, None] + head @ head_turn.transpose(0, 2, 1)
    pose = pose.copy()
    pose[:, _HEAD_POINTS] = head[:, : len(_HEAD_POINTS)]
    return pose, head[:, len(_HEAD_POINTS) :], head_centre


def _body(
    rng: np.random.Generator,
    signer: Signer,
    body_shift: np.ndarray,
    wrist: np.ndarray,
    hand: np.ndarray,
    resting: np.ndarray,
) -> _Scene:
    """The whole scene around the hands (``[frames, 21, 3]``, signing wrist ``[frames, 3]``):
    the body template shifted with the body, the head turning, the signing arm following the
    hand."""
    pose = _POSE_TEMPLATE * signer.body_scale + body_shift[:, None]
    pose, lips, head_centre = _turn_head(rng, signer.body_scale, pose, body_shift)
    shoulder = pose[:, _POSE["RIGHT_SHOULDER"]]
    pose[:, _POSE["RIGHT_ELBOW"]] = _arm_elbows(shoulder, wrist)
    # MediaPipe's pose puts its hand points near the wrist and the knuckles.
    for side, points_of_hand in (("RIGHT", hand), ("LEFT", resting)):
        for name, hand_index in (("WRIST", 0), ("PINKY", 17), ("INDEX", 5), ("THUMB", 2)):
            pose[:, _POSE[f"{side}_{name}"]] = points_of_hand[:, hand_index]
    return _Scene(pose=pose, lips=lips, head_centre=head_centre, hand=hand, resting=resting)


def _detection_jitter(rng: np.random.Generator, scene: _Scene) -> _Scene:
    """The scene with detection jitter: 2–4 mm per point per frame, the same for the whole clip
    (pose estimates are noisier, lips steadier)."""
    jitter = rng.uniform(0.002, 0.004)
    hand = scene.hand + rng.normal(0, jitter, size=scene.hand.shape)
    resting = scene.resting + rng.normal(0, jitter, size=scene.resting.shape)
    pose = scene.pose + rng.normal(0, 1.5 * jitter, size=scene.pose.shape)
    lips = scene.lips + rng.normal(0, 0.5 * jitter, size=scene.lips.shape)
    return dataclasses.replace(scene, pose=pose, lips=lips, hand=hand, resting=resting)


@dataclasses.dataclass(frozen=True)
class _Camera:
    """One rotation, scale and shift of the whole scene, then the projection onto the image.

    Attributes:
      rotation: ``[3, 3]`` applied to body-frame points.
      scale: zoom; at 1, :data:`FIELD_WIDTH_M` metres span the image width.
      centre: ``[2]`` image fractions where the body-frame origin lands.
      mirror: ``[3]`` factors, x flipped for a left-handed signer.
    """

    rotation: np.ndarray
    scale: float
    centre: np.ndarray
    mirror: np.ndarray

    def project(self, points: np.ndarray, depth_origin: np.ndarray) -> np.ndarray:
        """``points [frames, n, 3]`` (metres, body frame) as ``[frames, n, 3]`` image fractions
        of the width (x) and height (y), z in x's units relative to ``depth_origin [frames, 3]``
        (as MediaPipe gives depth relative to the hips, wrist or head)."""
        points = (points * self.mirror) @ self.rotation.T
        origin = (depth_origin * self.mirror) @ self.rotation.T
        width_m = FIELD_WIDTH_M / self.scale
        return np.stack(
            [
                self.centre[0] + points[..., 0] / width_m,
                self.centre[1] + points[..., 1] / (width_m / IMAGE_ASPECT),
                (points[..., 2] - origin[..., None, 2]) / width_m,
            ],
            axis=-1,
        )


def _draw_camera(rng: np.random.Generator, left_handed: bool) -> _Camera:
    """A random camera: ±15° about each axis, ±15 % zoom, the centre shifted by up to 6 %."""
    rotation = euler(*rng.uniform(-15, 15, size=3) * DEG)
    scale = rng.uniform(0.85, 1.15)
    centre = np.array([0.5, 0.5]) + rng.uniform(-0.06, 0.06, size=2)
    mirror = np.array([-1.0 if left_handed else 1.0, 1.0, 1.0])
    return _Camera(rotation=rotation, scale=scale, centre=centre, mirror=mirror)


def _dropped_frames(
    rng: np.random.Generator, timeline: _Timeline, tokens: np.ndarray, phrase_length: int
) -> np.ndarray:
    """``[frames]`` bool, frames whose signing hand is missed: runs of 1–4 frames over 5–15 % of
    the clip. Every letter (``tokens [keys]``, phrase positions, -1 for rest) keeps at least one
    held frame seen, so every character of the label is shown at least once."""
    dropped = _runs(rng, timeline.frames, rng.uniform(0.05, 0.15), max_run=4)
    token = tokens[timeline.key]
    held_letter = ~timeline.moving & (token >= 0)
    letter_of_frame = np.where(held_letter, token, phrase_length)
    seen = np.bincount(letter_of_frame[held_letter & ~dropped], minlength=phrase_length + 1)
    held_frames = np.flatnonzero(held_letter)
    letters, first = np.unique(letter_of_frame[held_frames], return_index=True)
    dropped[held_frames[first[seen[letters] == 0]]] = False
    return dropped


def _resting_seen(rng: np.random.Generator, frames: int) -> np.ndarray | None:
    """``[frames]`` bool, frames the resting hand is detected in; None when it is in none.

    The resting hand is usually out of view or missed; in about 30 % of clips it is found for a
    while (runs covering 10–40 % of the frames).
    """
    if rng.random() < 0.3:
        return _runs(rng, frames, rng.uniform(0.1, 0.4), max_run=frames // 3 + 1)
    return None


def _landmarks(
    scene: _Scene,
    camera: _Camera,
    left_handed: bool,
    dropped: np.ndarray,
    resting_seen: np.ndarray | None,
) -> np.ndarray:
    """The scene through the camera as ``[frames, 543, 3]`` float32 canonical landmarks, NaN
    where not detected (see :func:`make_clip`)."""
    frames = len(scene.pose)
    hips = (scene.pose[:, _POSE["LEFT_HIP"]] + scene.pose[:, _POSE["RIGHT_HIP"]]) / 2
    out = np.full((frames, layouts.NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    pose_xyz = camera.project(scene.pose, hips)
    signing_slot, resting_slot = "right_hand", "left_hand"
    if left_handed:  # the mirrored scene swaps the signer's sides and their names
        pose_xyz = _swap(pose_xyz, layouts.POSE_MIRROR_PAIRS)
        signing_slot, resting_slot = resting_slot, signing_slot
    out[:, layouts.group_slice("pose")] = pose_xyz
    lips_xyz = camera.project(scene.lips, scene.head_centre)
    if left_handed:
        lips_xyz = _swap(lips_xyz, _LIP_MIRROR_PAIRS)
    out[:, layouts.OFFSETS["face"] + _LIP_INDICES] = lips_xyz
    hand_xyz = camera.project(scene.hand, scene.hand[:, 0])
    hand_xyz[dropped] = np.nan
    out[:, layouts.group_slice(signing_slot)] = hand_xyz
    if resting_seen is not None:
        resting_xyz = camera.project(scene.resting, scene.resting[:, 0])
        resting_xyz[~resting_seen] = np.nan
        out[:, layouts.group_slice(resting_slot)] = resting_xyz
    return out


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
    # The draws happen in this order, stage by stage; clips of a seed depend on it.
    keys = _keys(rng, phrase, signer.speed)
    timeline = _timeline(keys)
    joints, turns = _hand_pose(rng, keys, timeline, signer)
    wrist, body_shift = _wrist_path(rng, keys, timeline, signer)
    hand = _place_hand(wrist, joints, turns, signer.hand_scale)
    resting = _resting_hand(rng, signer, body_shift)
    scene = _body(rng, signer, body_shift, wrist, hand, resting)
    scene = _detection_jitter(rng, scene)
    camera = _draw_camera(rng, signer.left_handed)
    dropped = _dropped_frames(rng, timeline, np.array(keys.tokens), len(phrase))
    resting_seen = _resting_seen(rng, timeline.frames)
    return _landmarks(scene, camera, signer.left_handed, dropped, resting_seen)


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
