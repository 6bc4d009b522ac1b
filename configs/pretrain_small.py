"""Data2vec 2.0 pretraining of the Small encoder (24 × 256) on an accelerator.

    python -m pretrain.main --config configs/pretrain_small.py --workdir runs/pretrain_small \\
        --config.data.dir=RECORDS

The design brief's constants: 8 masks of ratio 0.5, blocks of 5, targets = mean of the last 6
blocks, EMA 0.999 → 0.99999 over 100 k steps; data2vec 2.0's collapse stop after 5,000 steps.

Targets (``data2vec.target_kind``): ``ffn``, each block's MLP output before the residual add,
as data2vec 2.0 regresses. The evidence is thin and says so: on the tiny encoder (2 blocks),
1,000 pretraining steps on mp_holistic_35signs then spelling finetuned at 2e-3 scored val
0.6225 with ``ffn`` against 0.5843 with ``residual`` (docs/benchmarks-log.md, "2026-11-27 —
Data2vec's own targets, on the clips"); in a 2-block encoder the residual stream is mostly the
stem's projection, which the decoder can interpolate. At 24 blocks that argument weakens;
Small has not been compared on a GPU yet (``benchmarks/device_check.sh`` runs the comparison
when one is lent). The decoder is data2vec 2.0's light one: 4 blocks, 256 wide, kernel 7, 16
groups, input dropout 0.1.

Meant for: a v5e-8 (one host, 8 chips) or one GPU (``python -m aslx.aot --config
configs/pretrain_small.py --topology v5e-8`` compiles it for the slice first).
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.pretrain()
    c.data.max_frames = 384
    c.model.size = "small"
    c.data2vec.target_kind = "ffn"  # see the docstring for the evidence
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
