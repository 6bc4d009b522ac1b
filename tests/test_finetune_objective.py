"""The finetuning objective adds exactly its terms: task + kd_weight · KD + l0_weight · E[L0]."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from aslx.landmarks import presets
from aslx.model import config as config_lib
from aslx.model import model as model_lib
from aslx.objectives import finetune

PRESET = presets.get("hands_pose")


def batch(seed=0, b=3, t=12, s=4):
    rng = np.random.default_rng(seed)
    lengths = np.array([12, 9, 6])
    frame_mask = np.arange(t)[None] < lengths[:, None]
    landmark_mask = frame_mask[..., None] & (rng.random((b, t, PRESET.num_landmarks)) > 0.1)
    points = rng.uniform(0.2, 0.8, (b, t, PRESET.num_landmarks, 3)).astype(np.float32)
    return {
        "landmarks": np.where(landmark_mask[..., None], points, 0.0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
        "labels": rng.integers(0, 5, (b, s)).astype(np.int32),
        "label_mask": np.arange(s)[None] < np.array([[3], [2], [1]]),
        "example_mask": np.ones(b, bool),
    }


def loss_of(model_config, objective, frozen=None, teacher_graphdef=None):
    graphdef, params = model_lib.create(model_config, seed=0)
    loss_fn = finetune.make_loss(graphdef, objective, teacher_graphdef)
    return loss_fn(params, batch(), jax.random.key(3), 10, frozen)


@pytest.mark.parametrize("gate", ["sigmoid", "hard_concrete"])
def test_l0_term_is_the_weighted_sum_of_keep_probabilities(gate):
    model_config = config_lib.sized(
        "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=6, gate=gate, gate_init=0.5
    )
    base = finetune.Objective("ctc", PRESET, None, blank_id=5, l0_weight=0.0)
    weighted = finetune.Objective("ctc", PRESET, None, blank_id=5, l0_weight=0.25)
    loss0, aux0 = loss_of(model_config, base)
    loss1, aux1 = loss_of(model_config, weighted)
    assert float(aux0["task_loss"]) == pytest.approx(float(aux1["task_loss"]))
    assert float(loss1 - loss0) == pytest.approx(0.25 * float(aux1["gate/expected_l0"]), rel=1e-5)
    assert float(aux1["gate/kept"]) == PRESET.num_landmarks  # logits 0.5 > 0: all open
    assert float(aux1["gate/pruning_ratio"]) == 0.0


def test_distillation_adds_the_weighted_kd_loss():
    teacher_config = config_lib.sized("tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=6)
    teacher_graphdef, teacher_params = model_lib.create(teacher_config, seed=5)
    student_config = config_lib.sized(
        "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=6, distill_vocab=6
    )
    objective = finetune.Objective("ctc", PRESET, None, blank_id=5, kd_weight=10.0)
    loss, aux = loss_of(student_config, objective, teacher_params, teacher_graphdef)
    assert float(aux["kd_loss"]) > 0
    assert float(loss) == pytest.approx(float(aux["task_loss"] + 10.0 * aux["kd_loss"]), rel=1e-6)


def test_classification_reads_the_first_label():
    model_config = config_lib.sized(
        "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=0, num_classes=5
    )
    objective = finetune.Objective("classification", PRESET, None, blank_id=None)
    loss, aux = loss_of(model_config, objective)
    assert np.isfinite(float(loss)) and float(loss) == float(aux["task_loss"])


def test_a_clip_without_a_label_is_left_out_of_the_classification_loss():
    """An unlabelled clip in a classification batch changes nothing: the loss is the mean over
    the labelled ones (label smoothing would otherwise pull it toward a uniform target)."""
    model_config = config_lib.sized(
        "tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=0, num_classes=5
    )
    objective = finetune.Objective(
        "classification", PRESET, None, blank_id=None, label_smoothing=0.1
    )
    graphdef, params = model_lib.create(model_config, seed=0)
    loss_fn = finetune.make_loss(graphdef, objective)
    full = batch()
    unlabelled = dict(full, label_mask=full["label_mask"].copy(), labels=full["labels"].copy())
    unlabelled["label_mask"][2] = False
    unlabelled["labels"][2] = -1
    dropped = dict(full, example_mask=np.array([True, True, False]))
    key = jax.random.key(3)
    with_unlabelled, _ = loss_fn(params, unlabelled, key, 10, None)
    without, _ = loss_fn(params, dropped, key, 10, None)
    assert float(with_unlabelled) == pytest.approx(float(without), rel=1e-6)
    assert float(with_unlabelled) != pytest.approx(float(loss_fn(params, full, key, 10, None)[0]))


def test_no_caller_can_leave_the_blank_to_a_default():
    with pytest.raises(TypeError, match="blank_id"):
        finetune.Objective("ctc", PRESET, None)  # no blank_id
    with pytest.raises(ValueError, match="needs blank_id"):
        finetune.Objective("ctc", PRESET, None, blank_id=None)
    with pytest.raises(ValueError, match="kd_average"):
        finetune.Objective("ctc", PRESET, None, blank_id=5, kd_average="clips")


def test_a_label_too_long_for_its_frames_is_cut_to_what_fits_and_counted_without_augmentation():
    """Augmentation off: the label of clip 2 (4 labels, 2 of them repeats, in 3 frames) keeps
    its longest prefix that fits, as AlignCTCLabel cuts it, instead of costing ~1e5."""
    model_config = config_lib.sized("tiny", num_landmarks=PRESET.num_landmarks, ctc_vocab=6)
    objective = finetune.Objective("ctc", PRESET, None, blank_id=5)
    long = batch()
    long["frame_mask"][2, 3:] = False
    long["labels"][2] = [1, 1, 2, 2]  # needs 6 frames; [1, 1] needs 3
    long["label_mask"][2] = True
    fitted = {k: v.copy() for k, v in long.items()}
    fitted["label_mask"][2] = [True, True, False, False]
    graphdef, params = model_lib.create(model_config, seed=0)
    loss_fn = jax.jit(
        lambda b: finetune.make_loss(graphdef, objective)(params, b, jax.random.key(3), 10)
    )
    (loss, aux), (want, want_aux) = loss_fn(long), loss_fn(fitted)
    assert float(aux["labels_cut"]) == 1.0 and float(want_aux["labels_cut"]) == 0.0
    assert float(loss) == pytest.approx(float(want), rel=1e-6) and float(loss) < 100
    long["example_mask"][2] = False  # a padding example is not counted
    assert float(loss_fn(long)[1]["labels_cut"]) == 0.0
