"""The body frame, the resting-hand rule and the camera aspect (aslx.landmarks.normalize,
aslx.landmarks.hands, ingest's camera_aspect)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aslx.augment import recipe, transforms
from aslx.landmarks import hands, layouts, preprocess, presets
from aslx.landmarks import normalize as normalize_lib
from aslx.landmarks.normalize import DEFAULT_CAMERA_ASPECT, Normalization, parse_aspect

PRESET = presets.HANDS_POSE
LEFT, RIGHT = (PRESET.group_slices()[g] for g in PRESET.hand_groups)
BODY = Normalization(camera_aspect=1.5)


def hand_shape(rng, size=0.08) -> np.ndarray:
    """``[21, 3]`` points of a hand about the origin, ``size`` wide (image units)."""
    return rng.normal(0, size / 3, (21, 3)).astype(np.float32)


def signing_clip(rng, frames: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A hands_pose clip in image fractions: the pose, the right hand moving near the face,
    the left hand missing. ``(points [T, 51, 3], mask [T, 51])``."""
    points = np.zeros((frames, PRESET.num_landmarks, 3), np.float32)
    mask = np.zeros((frames, PRESET.num_landmarks), bool)
    pose = PRESET.group_slices()[2]
    # nose, shoulders (L, R), elbows, wrists, hips: a body facing the camera
    body = np.array(
        [[0.5, 0.35], [0.62, 0.5], [0.38, 0.5], [0.66, 0.7], [0.34, 0.7], [0.64, 0.85],
         [0.36, 0.55], [0.58, 0.95], [0.42, 0.95]],
        np.float32,
    )  # fmt: skip
    points[:, pose, :2] = body + rng.normal(0, 0.002, (frames, 9, 2))
    mask[:, pose] = True
    shape = hand_shape(rng)
    path = np.linspace([0.38, 0.42], [0.44, 0.36], frames)  # right hand moves by the face
    points[:, RIGHT] = shape + np.concatenate([path, np.zeros((frames, 1))], 1)[:, None]
    points[:, RIGHT] += rng.normal(0, 0.004, (frames, 21, 3))
    mask[:, RIGHT] = True
    return points, mask


def with_resting_left_hand(rng, points, mask):
    points, mask = points.copy(), mask.copy()
    still = hand_shape(rng) + np.array([0.7, 0.93, 0.0], np.float32)  # low, under the left side
    points[:, LEFT] = still
    mask[:, LEFT] = True
    return points, mask


def normalized(points, mask, normalization=BODY) -> np.ndarray:
    batch = {
        "landmarks": jnp.asarray(points)[None],
        "landmark_mask": jnp.asarray(mask)[None],
        "frame_mask": jnp.ones((1, len(points)), bool),
    }
    fn = jax.jit(preprocess.normalize_batch, static_argnums=(1, 2))
    return np.asarray(fn(batch, PRESET, normalization)["landmarks"][0])


@pytest.mark.parametrize("frame", ["body", "group"])
@pytest.mark.parametrize("scale, shift", [(0.5, (0.2, 0.1)), (1.7, (-0.3, 0.05))])
def test_moving_or_scaling_the_whole_body_leaves_the_input_unchanged(frame, scale, shift):
    points, mask = signing_clip(np.random.default_rng(0))
    moved = points * scale + np.array([*shift, 0.0], np.float32)
    moved[..., 2] = points[..., 2] * scale  # z is in image-width units: it scales too
    normalization = dataclasses.replace(BODY, frame=frame)
    want = normalized(points, mask, normalization)
    assert want.shape[-1] == normalization.landmark_channels
    np.testing.assert_allclose(normalized(moved, mask, normalization), want, atol=2e-4)


def test_the_body_frame_keeps_where_the_hand_is_and_the_group_frame_does_not():
    rng = np.random.default_rng(1)
    points, mask = signing_clip(rng)
    lower = points.copy()
    lower[:, RIGHT, 1] += 0.3  # the same hand, lower on the body
    for frame, differs in (("body", True), ("group", False)):
        normalization = dataclasses.replace(BODY, frame=frame)
        a, b = normalized(points, mask, normalization), normalized(lower, mask, normalization)
        np.testing.assert_allclose(a[:, RIGHT, :3], b[:, RIGHT, :3], atol=1e-4)  # local shape
        assert (np.abs(a - b).max() > 0.1) == differs


def test_adding_a_resting_hand_leaves_the_signing_hand_unchanged():
    rng = np.random.default_rng(2)
    points, mask = signing_clip(rng)
    rested, rested_mask = with_resting_left_hand(rng, points, mask)
    clean, shifted = normalized(points, mask), normalized(rested, rested_mask)
    np.testing.assert_allclose(shifted, clean, atol=1e-5)  # dropped: the whole input is the same
    assert not shifted[:, LEFT].any()
    # Without the rule the resting hand is seen, the signing hand's features still unchanged.
    keep = dataclasses.replace(BODY, drop_resting_hands=False)
    seen = normalized(rested, rested_mask, keep)
    np.testing.assert_allclose(seen[:, RIGHT], normalized(points, mask, keep)[:, RIGHT], atol=1e-5)
    assert np.abs(seen[:, LEFT]).max() > 0.1


def _rule(points, mask, xp=np):
    width = 0.24  # the constructed clip's shoulder width (0.62 − 0.38)
    as_xp = lambda a: xp.asarray(a)  # noqa: E731
    return tuple(
        bool(r)
        for r in hands.resting(
            xp,
            (as_xp(points[:, LEFT]), as_xp(mask[:, LEFT])),
            (as_xp(points[:, RIGHT]), as_xp(mask[:, RIGHT])),
            width,
        )
    )


def test_the_rule_calls_the_still_hand_beside_a_moving_one_resting():
    rng = np.random.default_rng(3)
    points, mask = signing_clip(rng)
    rested, rested_mask = with_resting_left_hand(rng, points, mask)
    assert _rule(rested, rested_mask) == (True, False)
    assert _rule(rested, rested_mask, jnp) == (True, False)  # one rule on host and device
    assert _rule(points, mask) == (False, False)  # one hand: it signs
    # Swapped roles: the left hand signs (mirrored clip), the right one rests.
    mirrored = points.copy()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    mirrored_rest = rested.copy()
    mirrored_rest[..., 0] = 1 - mirrored_rest[..., 0]
    swap = lambda a: np.concatenate([a[:, RIGHT], a[:, LEFT], a[:, 42:]], 1)  # noqa: E731
    assert _rule(swap(mirrored_rest), swap(rested_mask)) == (False, True)


def test_a_base_hand_that_lives_or_a_moving_low_hand_is_kept():
    rng = np.random.default_rng(4)
    points, mask = signing_clip(rng)
    base, base_mask = points.copy(), mask.copy()
    # A base hand under the signing one, held but alive: the body sways it by about a tenth of
    # a shoulder width, as the base hand of "name" moves in mp_holistic_35signs.
    sway = rng.normal(0, 0.012, (len(points), 1, 3)).astype(np.float32)
    base[:, LEFT] = hand_shape(rng) + np.array([0.45, 0.5, 0.0], np.float32) + sway
    base_mask[:, LEFT] = True
    assert _rule(base, base_mask) == (False, False)
    moving, moving_mask = with_resting_left_hand(rng, points, mask)
    moving[:, LEFT, 0] += np.linspace(0, 0.1, len(points))[:, None]  # low, but it moves
    assert _rule(moving, moving_mask) == (False, False)


def test_in_a_photo_both_hands_are_still_and_the_lower_one_rests():
    rng = np.random.default_rng(9)
    points, mask = signing_clip(rng, frames=1)
    rested, rested_mask = with_resting_left_hand(rng, points, mask)
    assert _rule(rested, rested_mask) == (True, False)
    high = rested.copy()
    high[:, LEFT, 1] -= 0.7  # now the left hand is the higher one
    assert _rule(high, rested_mask) == (False, True)


def test_a_preset_without_shoulders_falls_back_to_the_clip_frame():
    """full543 minus the pose would have no shoulders: the frame of all points still makes the
    input invariant to moving and scaling the signer."""
    preset = presets.Preset("hands", (PRESET.groups[0], PRESET.groups[1]))
    assert preset.shoulder_slots is None
    points, mask = signing_clip(np.random.default_rng(5))
    points, mask = points[:, :42], mask[:, :42]
    fn = jax.jit(
        lambda p, m: preprocess.normalize({"landmarks": p, "landmark_mask": m}, preset, BODY)
    )
    a = fn(points, mask)
    b = fn(points * 0.5 + 0.2, mask)
    np.testing.assert_allclose(np.asarray(a["placement"]), np.asarray(b["placement"]), atol=1e-5)


def test_the_flip_mirrors_the_placement_with_the_points():
    points, mask = signing_clip(np.random.default_rng(6))
    sample = {"landmarks": jnp.asarray(points), "landmark_mask": jnp.asarray(mask)}
    normal = preprocess.normalize(sample, PRESET, BODY)
    flip = jnp.ones(len(PRESET.groups), bool)
    args = (PRESET.mirror_permutation(), PRESET.group_ids, PRESET.group_mirror_permutation())
    flipped = transforms.horizontal_flip(normal, flip, *args)
    left, right = PRESET.hand_groups
    np.testing.assert_allclose(
        flipped["placement"][left], normal["placement"][right] * jnp.array([-1, 1, 1, 1])
    )
    twice = transforms.horizontal_flip(flipped, flip, *args)
    np.testing.assert_allclose(twice["placement"], normal["placement"])


def test_still_clip_holds_one_frame():
    points, mask = signing_clip(np.random.default_rng(7), frames=10)
    sample = {
        "landmarks": jnp.asarray(points),
        "landmark_mask": jnp.asarray(mask),
        "frame_mask": jnp.arange(10) < 8,
    }
    held = transforms.still_clip(sample, jnp.asarray(True), jnp.asarray(0.5), jnp.asarray(0.3))
    assert int(held["frame_mask"].sum()) == 1 + int(0.3 * 8)
    np.testing.assert_array_equal(np.asarray(held["landmarks"][:3]), np.stack([points[4]] * 3))
    assert not np.asarray(held["landmarks"][3:]).any()
    off = transforms.still_clip(sample, jnp.asarray(False), jnp.asarray(0.5), jnp.asarray(0.3))
    np.testing.assert_array_equal(np.asarray(off["frame_mask"]), np.asarray(sample["frame_mask"]))


@pytest.mark.parametrize(
    "text, value", [("16:9", 16 / 9), ("1920x1080", 16 / 9), ("1.5", 1.5), ("3/4", 0.75)]
)
def test_parse_aspect(text, value):
    assert parse_aspect(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["wide", "16:0", "0", "100"])
def test_parse_aspect_refuses_what_is_not_a_camera(text):
    with pytest.raises(ValueError, match="camera aspect"):
        parse_aspect(text)


def test_camera_aspect_round_trips_from_ingest_to_the_export(tmp_path, capsys):
    """``--camera-aspect`` → metadata.json → the run's normalisation → model card →
    inference_args.json."""
    from aslx import ingest as ingest_cli
    from aslx.export import tflite
    from aslx.model import model as model_lib
    from aslx.model.config import ModelConfig
    from aslx.records.metadata import RecordSet
    from aslx.run.card import ModelCard
    from aslx.run.reader import InferenceModel
    from aslx.run.source import TrainedModel
    from aslx.training import config as config_lib
    from aslx.vocab import ClassVocab

    rng = np.random.default_rng(8)
    X = np.zeros((3, 6, layouts.NUM_LANDMARKS, 3), np.float32)
    X[..., layouts.group_slice("right_hand"), :] = rng.random((3, 6, 21, 3)) + 0.1
    src = tmp_path / "clips.npz"
    np.savez(src, X=X, y=np.array([0, 1, 0]), classes=np.array(["a", "b"]))
    assert ingest_cli.main(
        ["--format", "npz", "--src", str(src), "--out", str(tmp_path / "rec"),
         "--camera-aspect", "16:9", "--no-progress"]
    ) == 0  # fmt: skip
    assert "camera aspect 1.778 (--camera-aspect)" in capsys.readouterr().out
    meta = json.loads((tmp_path / "rec" / "metadata.json").read_text())
    assert meta["camera_aspect"] == pytest.approx(16 / 9)
    records = RecordSet(tmp_path / "rec")
    config = config_lib.finetune()
    normalization = config_lib.normalization(config, records)
    assert normalization.camera_aspect == pytest.approx(16 / 9)
    config.data.camera_aspect = "4:3"  # the config overrides the records
    assert config_lib.normalization(config, records).camera_aspect == pytest.approx(4 / 3)

    model = ModelConfig(
        num_landmarks=51, landmark_channels=normalization.landmark_channels, num_layers=1,
        dim=16, num_heads=2, ctc_vocab=0, num_classes=2,
    )  # fmt: skip
    card = ModelCard(
        model=model, vocab=ClassVocab(("a", "b")), preset="hands_pose", task="classification",
        max_frames=8, normalization=normalization, train_frames=records.frame_summary(),
    )  # fmt: skip
    again = ModelCard.from_json(json.loads(json.dumps(card.to_json())), "model.json")
    assert again.normalization == normalization and again.train_frames == {"min": 6, "mean": 6.0}
    graphdef, params = model_lib.create(model)
    trained = TrainedModel(again, graphdef, params, "raw", None)
    args = tflite.inference_args(InferenceModel.of(trained))
    assert args["aslx"]["max_frames"] == 8
    assert args["aslx"]["camera_aspect"] == pytest.approx(16 / 9)
    assert Normalization.from_json(args["aslx"]["normalization"]) == normalization


def test_a_record_set_or_card_from_before_the_field_reads_as_portrait(tmp_path):
    from aslx.run.card import ModelCard

    assert Normalization.from_json(None) == Normalization.per_group(DEFAULT_CAMERA_ASPECT)
    card = {
        "model": {"num_landmarks": 51, "num_layers": 1, "dim": 16, "num_heads": 2},
        "vocab": {"kind": "classes", "classes": ["a"]},
        "preset": "hands_pose",
        "task": "classification",
        "max_frames": 8,
    }
    read = ModelCard.from_json(card, "old/model.json")
    assert read.normalization.frame == "group" and read.model.landmark_channels == 3


def test_the_pose_reader_records_its_camera(shared_data, tmp_path):
    pytest.importorskip("pose_format")
    from aslx.records import writer

    meta = writer.ingest("pose", shared_data / "pose_files", tmp_path / "pose", progress=False)
    assert meta["camera_aspect_from"] == "reader"
    assert 0.3 < meta["camera_aspect"] < 3


def test_the_inserted_resting_hand_is_still_low_mirrored_and_the_rule_drops_it():
    rng = np.random.default_rng(10)
    points, mask = signing_clip(rng)
    sample = {
        "landmarks": jnp.asarray(points),
        "landmark_mask": jnp.asarray(mask),
        "frame_mask": jnp.ones(len(points), bool),
    }
    offset = jnp.array([0.02, -0.01])
    fn = jax.jit(
        lambda s, on: transforms.insert_resting_hand(s, PRESET, on, jnp.asarray(0.5), offset)
    )
    got = {k: np.asarray(v) for k, v in fn(sample, jnp.asarray(True)).items()}
    assert got["landmark_mask"][:, LEFT].all()
    np.testing.assert_array_equal(got["landmarks"][:, RIGHT], points[:, RIGHT])
    hand = got["landmarks"][:, LEFT]
    np.testing.assert_array_equal(hand, np.broadcast_to(hand[0], hand.shape))  # held still
    assert hand[0, :, 1].max() == pytest.approx(0.97, abs=1e-6)
    left_shoulder = points[:, PRESET.shoulder_slots[0], 0].mean()
    assert hand[0, :, 0].mean() == pytest.approx(left_shoulder + 0.02, abs=1e-5)
    source = points[len(points) // 2, RIGHT, 0]
    np.testing.assert_allclose(  # mirrored: the x offsets from the centre change sign
        hand[0, :, 0] - hand[0, :, 0].mean(), -(source - source.mean()), atol=1e-5
    )
    assert _rule(got["landmarks"], got["landmark_mask"]) == (True, False)
    off = fn(sample, jnp.asarray(False))
    np.testing.assert_array_equal(np.asarray(off["landmarks"]), points)


def _sample(points, mask):
    return {
        "landmarks": jnp.asarray(points),
        "landmark_mask": jnp.asarray(mask),
        "frame_mask": jnp.ones(len(points), bool),
    }


def test_bone_scaling_lengthens_each_bone_by_its_factor_and_keeps_the_wrist():
    rng = np.random.default_rng(12)
    points, mask = signing_clip(rng, frames=3)
    mask[:, LEFT] = True
    points[:, LEFT] = hand_shape(rng) + 0.6
    factors = rng.uniform(0.8, 1.2, (2, len(transforms.HAND_BONES))).astype(np.float32)
    got = np.asarray(
        transforms.scale_bones(_sample(points, mask), PRESET, jnp.asarray(factors))["landmarks"]
    )
    for h, hand in enumerate((LEFT, RIGHT)):
        before, after = points[:, hand], got[:, hand]
        np.testing.assert_allclose(after[:, 0], before[:, 0])  # the wrist stays
        for b, (parent, child) in enumerate(transforms.HAND_BONES):
            want = factors[h, b] * np.linalg.norm(before[:, child] - before[:, parent], axis=-1)
            got_length = np.linalg.norm(after[:, child] - after[:, parent], axis=-1)
            np.testing.assert_allclose(got_length, want, rtol=1e-4)
    np.testing.assert_array_equal(got[:, 42:], points[:, 42:])  # the pose is untouched


def test_hand_scaling_is_about_the_wrist_and_reframing_loses_what_leaves_the_image():
    points, mask = signing_clip(np.random.default_rng(13), frames=4)
    sample = _sample(points, mask)
    bigger = np.asarray(transforms.scale_hands(sample, PRESET, jnp.array([1.0, 1.5]))["landmarks"])
    right = points[:, RIGHT]
    np.testing.assert_allclose(
        bigger[:, RIGHT], right[:, :1] + 1.5 * (right - right[:, :1]), atol=1e-6
    )
    below = PRESET.group_slices()[2].start  # a body point MediaPipe places below the frame
    points[0, below, :2] = (0.5, 1.2)
    sample = _sample(points, mask)
    moved = transforms.reframe(sample, jnp.asarray(2.0), jnp.array([0.3, 0.0]))
    xy = 0.5 + 2.0 * (points[..., :2] - 0.5) + np.array([0.3, 0.0])
    in_image = lambda p: np.all((p >= 0) & (p <= 1), axis=-1)  # noqa: E731
    kept = mask & ~(in_image(points[..., :2]) & ~in_image(xy))
    assert 0 < kept.sum() < mask.sum()  # the zoom crops some points, not all
    assert kept[0, below] and not in_image(xy[0, below])  # outside before: kept, as evaluated
    np.testing.assert_array_equal(np.asarray(moved["landmark_mask"]), kept)
    np.testing.assert_allclose(np.asarray(moved["landmarks"])[kept][:, :2], xy[kept], atol=1e-6)
    # The neutral draw (no zoom, no shift) keeps every point, those outside the image too.
    same = transforms.reframe(sample, jnp.asarray(1.0), jnp.zeros(2))
    np.testing.assert_array_equal(np.asarray(same["landmark_mask"]), mask)


def test_the_recipe_with_every_signer_and_camera_step_keeps_its_invariants():
    config = recipe.AugmentConfig(
        still_clip_p=1.0, resting_hand_p=1.0, bone_scale_p=1.0, hand_scale_p=1.0,
        camera_aspect_p=1.0, reframe_p=1.0,
    )  # fmt: skip
    points, mask = signing_clip(np.random.default_rng(14), frames=16)
    batch = {
        "landmarks": jnp.asarray(points)[None].repeat(4, 0),
        "landmark_mask": jnp.asarray(mask)[None].repeat(4, 0),
        "frame_mask": jnp.ones((4, 16), bool),
        "labels": jnp.zeros((4, 1), jnp.int32),
        "label_mask": jnp.ones((4, 1), bool),
    }
    fn = jax.jit(recipe.augment_batch, static_argnums=(2, 3, 4))
    out = fn(jax.random.key(0), batch, config, PRESET, BODY)
    x = np.asarray(out["landmarks"])
    assert x.shape == (4, 16, 51, BODY.landmark_channels) and np.isfinite(x).all()
    assert not x[~np.asarray(out["landmark_mask"])].any()  # missing points are all 0
    lengths = np.asarray(out["frame_mask"]).sum(1)
    assert (lengths < 16).any()  # still clips: one frame held, the rest padding
    again = fn(jax.random.key(0), batch, config, PRESET, BODY)
    np.testing.assert_array_equal(np.asarray(again["landmarks"]), x)  # a pure function of the key


def test_frame_extent_is_the_mean_size_of_each_frame_and_ignores_motion():
    rng = np.random.default_rng(15)
    points = rng.random((5, 6, 3)).astype(np.float32)
    mask = rng.random((5, 6)) > 0.2
    _, extent = normalize_lib.group_statistics(
        jnp.asarray(points), jnp.asarray(mask), (2, 4), "frame"
    )
    for g, group in enumerate((slice(0, 2), slice(2, 6))):
        sizes = [
            np.abs(q[:, :2] - q.mean(0)[:2]).max()
            for q in (points[t, group][mask[t, group]] for t in range(5))
            if len(q)
        ]
        assert float(extent[g]) == pytest.approx(np.mean(sizes), rel=1e-5)
    # A hand that only moves has the size of any one of its frames: a photo of it matches.
    shape = hand_shape(rng)
    moving = shape + np.linspace([0, 0, 0], [0.4, 0.2, 0], 8)[:, None].astype(np.float32)
    seen = np.ones((8, 21), bool)
    whole = normalize_lib.group_statistics(jnp.asarray(moving), jnp.asarray(seen), (21,), "frame")
    one = normalize_lib.group_statistics(
        jnp.asarray(moving[:1]), jnp.asarray(seen[:1]), (21,), "frame"
    )
    clip = normalize_lib.group_statistics(jnp.asarray(moving), jnp.asarray(seen), (21,), "clip")
    assert float(whole[1][0]) == pytest.approx(float(one[1][0]), rel=1e-5)
    assert float(clip[1][0]) > 1.5 * float(one[1][0])  # the clip's reach includes the motion


def test_a_still_clip_holds_a_frame_that_shows_a_hand():
    points, mask = signing_clip(np.random.default_rng(16), frames=10)
    mask[:, RIGHT] = False
    mask[[2, 7], RIGHT] = True  # the hand is seen in two frames only
    sample = _sample(points, mask)
    hands_only = transforms.hand_slices(PRESET)
    for frame, want in ((0.0, 2), (0.49, 2), (0.5, 7), (0.99, 7)):
        held = transforms.still_clip(
            sample, jnp.asarray(True), jnp.asarray(frame), jnp.asarray(0.0), hands_only
        )
        assert int(held["frame_mask"].sum()) == 1
        np.testing.assert_array_equal(np.asarray(held["landmark_mask"][0]), mask[want])


def test_a_still_clip_holds_a_frame_where_the_hand_is_held():
    points, mask = signing_clip(np.random.default_rng(17), frames=12)
    mask[:, LEFT] = False
    # the hand sweeps in over frames 0-5, then is held (6-11) with a small tremor
    lift = np.array([0.3, 0.25, 0.2, 0.15, 0.1, 0.05] + [0.0] * 6, np.float32)
    points[:, RIGHT, 1] += lift[:, None]
    points[6:, RIGHT, :2] += np.random.default_rng(1).normal(0, 1e-4, (6, 21, 2))
    sample = _sample(points, mask)
    motion = np.asarray(transforms.hand_motion(sample, transforms.hand_slices(PRESET)))
    assert np.isinf(motion[[0, -1]]).all() and motion[7] < motion[2]
    chosen = set()
    for frame in np.linspace(0, 0.99, 12):
        held = transforms.still_clip(
            sample,
            jnp.asarray(True),
            jnp.asarray(frame),
            jnp.asarray(0.0),
            transforms.hand_slices(PRESET),
        )
        pick = [
            t
            for t in range(12)
            if np.array_equal(held["landmarks"][0], points[t] * mask[t][:, None])
        ]
        chosen.update(pick)
    assert chosen and chosen <= set(range(5, 12)), chosen


@pytest.mark.parametrize("broken", ["wide", 0, -1.5, True, None])
def test_a_broken_camera_aspect_in_metadata_is_one_line_naming_the_file(tmp_path, broken):
    from aslx.records import writer
    from aslx.records.metadata import RecordSet

    X = np.zeros((2, 4, layouts.NUM_LANDMARKS, 3), np.float32)
    X[..., layouts.group_slice("right_hand"), :] = 0.5
    np.savez(tmp_path / "c.npz", X=X, y=np.array([0, 0]), classes=np.array(["a"]))
    writer.ingest("npz", tmp_path / "c.npz", tmp_path / "rec", progress=False)
    path = tmp_path / "rec" / "metadata.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(meta | {"camera_aspect": broken}))
    with pytest.raises(ValueError, match=r"metadata\.json: camera_aspect .* re-ingest"):
        _ = RecordSet(tmp_path / "rec").camera_aspect
