"""Fingerspelling CTC with the tiny model on a CPU: the demo's recipe.

    python -m finetune.main --config configs/finetune_tiny.py --workdir runs/finetune_tiny \\
        --config.data.dir=runs/demo/records

Two 64-wide blocks, kaggle75 points, 128 frames, the full on-device augmentation recipe.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.finetune()
    c.data.dir = "runs/demo/records"
    c.data.preset = "kaggle75"
    c.data.max_frames = 128
    c.model.size = "tiny"
    c.batch_size = 32
    c.total_steps = 1500
    c.warmup_steps = 100
    c.lr = 2e-3
    c.eval_every = 500
    c.checkpoint_every = 500
    return c
