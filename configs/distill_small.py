"""Distil a finetuned Large teacher into a Small student (CTC + 10 · KD on a separate head).

    python -m finetune.main --config configs/distill_small.py --workdir runs/distill_small \\
        --config.data.dir=RECORDS --config.teacher.workdir=runs/finetune_large

or, from an exported teacher (``python -m aslx.export --format weights``), with
``--config.teacher.weights=large.safetensors`` instead of ``teacher.workdir``.

The recipe of ``configs/finetune_small.py`` plus the teacher: it runs frozen inside the step on
the same augmented batch, and the student's separate distillation head learns its per-frame
argmax.

Meant for: a v5e-8 (one host, 8 chips) or one GPU. Compiled for v5e-8 ahead of time with a
Large teacher (``python -m aslx.aot --config configs/distill_small.py --topology v5e-8
--teacher large``): figures in BENCHMARKS.md.
"""

from configs import finetune_small


def get_config(arg: str | None = None):
    c = finetune_small.get_config(arg)
    c.teacher.kd_weight = 10.0
    return c
