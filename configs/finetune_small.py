"""Fingerspelling CTC with the Small model (24 × 256, ≈ 19 M parameters) on an accelerator.

    python -m finetune.main --config configs/finetune_small.py --workdir runs/finetune_small \\
        --config.data.dir=RECORDS [--config.init_from=PRETRAIN_WORKDIR]

384 frames, bfloat16 compute, the 5th-place recipe's schedule (warm-up then cosine), EMA 0.993.

Meant for: a v5e-8 (one host, 8 chips) or one GPU. Compiled for v5e-8 ahead of time (``python
-m aslx.aot --config configs/finetune_small.py --topology v5e-8``): figures in BENCHMARKS.md.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.finetune()
    c.data.preset = "kaggle75"
    c.data.max_frames = 384
    c.model.size = "small"
    c.model.compute_dtype = "bfloat16"
    # Remat: keep the weight products, recompute attention: 28 GB at batch 256 × 384 frames (python
    # benchmarks/train_step.py --compile-only).
    c.model.remat = "dots_with_no_batch_dims_saveable"
    c.batch_size = 256
    c.total_steps = 60_000
    c.warmup_steps = 2_000
    c.lr = 1e-3
    c.eval_every = 2_000
    c.checkpoint_every = 2_000
    c.log_every = 100
    c.decode_beam = 8
    return c
