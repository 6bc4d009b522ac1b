"""Distil a finetuned Large teacher into a Small student (CTC + 10 · KD on a separate head).

    python -m finetune.main --config configs/distill_small.py --workdir runs/distill_small \\
        --config.data.dir=RECORDS --config.teacher.workdir=runs/finetune_large

or, from an exported teacher (``python -m aslx.export --format weights``), with
``--config.teacher.weights=large.safetensors`` instead of ``teacher.workdir``.

The recipe of ``configs/finetune_small.py`` plus the teacher: it runs frozen inside the step on
the same augmented batch, and the student's separate distillation head learns its per-frame
argmax.
"""

from configs import finetune_small


def get_config(arg: str | None = None):
    c = finetune_small.get_config(arg)
    c.teacher.kd_weight = 10.0
    return c
