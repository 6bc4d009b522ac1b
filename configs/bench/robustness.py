"""The three isolated models of ``benchmarks/robustness.py`` (``arg``: ``default``, ``baseline``
or ``mask_channel``), scored there on shifted copies of the val and test clips.

    python benchmarks/robustness.py --json runs/bench/robustness.json

writes the records (``mp_holistic_35signs`` with this webcam's camera aspect, 1.48) and trains
each, e.g.

    python -m finetune.main --config configs/bench/robustness.py:baseline \\
        --workdir runs/real_data/robustness_isolated_baseline_model

* ``default``: the isolated recipe (``configs/isolated_tiny.py``) as it is: the library's
  preprocessing (body frame, groups divided by their size, resting-hand rule, the records'
  camera aspect), the recipe's still-clip, resting-hand and camera-aspect augmentation and the
  stem's edge padding.
* ``baseline``: the preprocessing before them
  (:func:`configs.bench.few_label.group_frame_preprocessing`), no still clips, resting hands or
  aspect jitter, and the stem's zero padding (the recipe's batch of 64).
* ``mask_channel``: the default with the detection mask as a channel (``data.mask_channel``),
  to decide on val whether it earns its place.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from configs import isolated_tiny
from configs.bench.few_label import group_frame_preprocessing

#: Every ``arg`` this recipe takes (the first is the default); tests/test_configs.py runs each.
ARGS = ("default", "baseline", "mask_channel")


def get_config(arg: str | None = None):
    variant = arg or ARGS[0]
    if variant not in ARGS:
        raise ValueError(f"configs/bench/robustness.py: arg {arg!r} is not one of {ARGS}")
    c = isolated_tiny.get_config()
    c.data.dir = "runs/real_data/records_signs_camera"
    if variant == "baseline":
        group_frame_preprocessing(c)
        c.augment.still_clip_p = 0.0
        c.model.stem_padding = "zeros"
        c.augment.camera_aspect_p = 0.0
        c.augment.resting_hand_p = 0.0
    elif variant == "mask_channel":
        c.data.mask_channel = True
    return c
