"""Data2vec 2.0 pretraining of the Small encoder (24 × 256) on an accelerator.

    python -m pretrain.main --config configs/pretrain_small.py --workdir runs/pretrain_small \\
        --config.data.dir=RECORDS

The design brief's constants: 8 masks of ratio 0.5, blocks of 5, a 4-layer 256-wide decoder
(kernel 7), targets = mean of the last 6 blocks, EMA 0.999 → 0.99999 over 100 k steps.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.pretrain()
    c.data.max_frames = 384
    c.model.size = "small"
    c.model.compute_dtype = "bfloat16"
    # Remat: recompute each block: 8 masked copies per clip make activations 8× larger (43 GB at
    # batch 256 × 384) (python benchmarks/train_step.py --compile-only).
    c.model.remat = "full"
    c.batch_size = 256
    c.total_steps = 200_000
    c.warmup_steps = 5_000
    c.lr = 5e-4
    c.checkpoint_every = 2_000
    c.log_every = 100
    return c
