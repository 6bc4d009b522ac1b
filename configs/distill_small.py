"""Distil a finetuned Large teacher into a Small student (CTC + 10 · KD on a separate head).

    python -m finetune.main --config configs/distill_small.py --workdir runs/distill_small \\
        --config.data.dir=RECORDS --config.teacher.workdir=runs/finetune_large

The teacher runs frozen inside the step on the same augmented batch; the student's separate
distillation head learns its per-frame argmax.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.finetune()
    c.data.preset = "kaggle75"
    c.data.max_frames = 384
    c.model.size = "small"
    c.model.compute_dtype = "bfloat16"
    c.batch_size = 256
    c.total_steps = 60_000
    c.warmup_steps = 2_000
    c.lr = 1e-3
    c.teacher.kd_weight = 10.0
    c.eval_every = 2_000
    c.checkpoint_every = 2_000
    c.log_every = 100
    c.decode_beam = 8
    return c
