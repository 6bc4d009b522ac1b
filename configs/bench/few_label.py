"""The finetunes of ``benchmarks/real_data.py --task pretrain_gain``: both tasks with 10 % of
the training labels (``arg``: ``isolated``, the default, or ``spelling``), 1,500 steps, from a
pretrained encoder (``--config.init_from``) or from scratch.

    python benchmarks/real_data.py --task pretrain_gain --json runs/bench/pretrain_gain.json

writes the few-label records and runs each start at each rate and seed, e.g.

    python -m finetune.main --config configs/bench/few_label.py:isolated \\
        --workdir runs/real_data/isolated_10pct_scratch_lr0.002 --config.lr=2e-3

* ``isolated``: the isolated recipe (``configs/isolated_tiny.py``) without the still-frame
  changes of 2026-12-04 (batch 32, still clips 0.2, the stem's zero padding), with
  :func:`group_frame_preprocessing`. The still-frame changes serve a photo of a static letter,
  not the question of pretraining; keeping them out keeps the benchmark's figures comparable
  across its attempts and its 24 finetunes half as costly. The body frame costs four labelled
  clips a class six to seven points: few-label scratch scored isolated val 0.886 / 0.900
  (seeds 0, 1) with it and 0.962 / 0.952 with the group frame, and the pretrained start
  0.862 / 0.914 against 0.948 / 0.962 (docs/benchmarks-log.md, "2026-12-04 — the group frame
  for the isolated half, one encoder per preprocessing").
* ``spelling``: the spelling recipe (``configs/bench/spelling.py``), on the body frame: with
  the group frame its few-label scratch scored val 0.822 and 0.006 (seeds 0, 1) against 0.922
  and 0.869.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from aslx.landmarks.normalize import DEFAULT_CAMERA_ASPECT
from configs import isolated_tiny
from configs.bench import spelling

#: Every ``arg`` this recipe takes (the first is the default); tests/test_configs.py runs each.
ARGS = ("isolated", "spelling")


def group_frame_preprocessing(config):
    """``config`` with the preprocessing before the body frame (until 2026-11-30): each
    landmark group centred and divided by its reach over the clip, no placement channels, no
    resting-hand rule, the portrait camera aspect for every record set. Returns ``config``."""
    config.data.normalization = "group"
    config.data.group_extent = "clip"
    config.data.drop_resting_hands = False
    config.data.camera_aspect = str(DEFAULT_CAMERA_ASPECT)
    return config


def get_config(arg: str | None = None):
    task = arg or ARGS[0]
    if task == "isolated":
        c = group_frame_preprocessing(isolated_tiny.get_config())
        c.data.dir = "runs/real_data/records_signs_10pct"
        c.batch_size = 32
        c.augment.still_clip_p = 0.2
        c.model.stem_padding = "zeros"
    elif task == "spelling":
        c = spelling.get_config()
        c.data.dir = "runs/real_data/records_spelled_10pct"
    else:
        raise ValueError(f"configs/bench/few_label.py: arg {arg!r} is not one of {ARGS}")
    c.total_steps = 1500
    return c
