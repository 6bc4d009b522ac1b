"""Fingerspelling (CTC) of words spelled from real letter clips: the ``spelling`` task of
``benchmarks/real_data.py``.

    python benchmarks/real_data.py --task spelling --json runs/bench/spelling.json

writes the records (``npz-spelled`` words of ``mp_holistic_35signs``: 2,000 train, 200 val and
400 test words of 3–7 letters, both hands and the upper-body pose) and runs

    python -m finetune.main --config configs/bench/spelling.py --workdir runs/real_data/spelling

The tiny recipe (``configs/finetune_tiny.py``) on 128 frames for 3,000 steps: the checkpoint
(and raw or EMA weights) chosen on val, test scored once at the end.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from configs import finetune_tiny


def get_config(arg: str | None = None):
    c = finetune_tiny.get_config()
    c.data.dir = "runs/real_data/records_spelled"
    c.data.test_split = "test"
    # Both hands and the arms: this recorder often loses the signing hand for whole letters,
    # and the pose's wrists, elbows and finger points still carry them.
    c.data.preset = "hands_pose"
    c.data.max_frames = 128  # words of 90–210 frames keep 128 evenly spaced frames
    c.total_steps = 3000
    c.augment.time_flip_p = 0.0  # j and z are motions: played backwards they are other signs
    c.log_every = 250
    return c
