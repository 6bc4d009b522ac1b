"""Fingerspelling CTC with the Large model (24 × 1024, ≈ 303 M parameters): the teacher.

    python -m finetune.main --config configs/finetune_large.py --workdir runs/finetune_large \\
        --config.data.dir=RECORDS [--config.init_from=PRETRAIN_WORKDIR] [--config.fsdp=8]

Weights sharded over ``fsdp`` devices, bfloat16 compute.

Meant for: a v5e-64 slice (16 hosts × 4 chips). Compiled for it ahead of time (``python -m
aslx.aot --config configs/finetune_large.py --topology v5e-64``): figures in BENCHMARKS.md.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.finetune()
    c.data.preset = "kaggle75"
    c.data.max_frames = 384
    c.model.size = "large"
    c.model.compute_dtype = "bfloat16"
    # Remat: recompute each block: 14 GB at batch 64 × 384 frames (136 GB without) (python
    # benchmarks/train_step.py --compile-only).
    c.model.remat = "full"
    c.batch_size = 256
    c.total_steps = 60_000
    c.warmup_steps = 3_000
    c.lr = 3e-4
    c.eval_every = 2_000
    c.checkpoint_every = 1_000
    c.log_every = 100
    c.decode_beam = 8
    return c
