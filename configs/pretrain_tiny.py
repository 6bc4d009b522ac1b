"""Data2vec 2.0 pretraining of the tiny encoder on a CPU.

    python -m pretrain.main --config configs/pretrain_tiny.py --workdir runs/pretrain_tiny \\
        --config.data.dir=runs/demo/records

8 masks of ratio 0.5 per clip (blocks of 5 kept frames), a 2-layer 64-wide decoder, targets
from both blocks of the EMA teacher. Targets ``ffn`` (each block's MLP output): on this encoder
spelling finetuned from it scored val 0.6225, against 0.5843 with ``residual`` targets
(docs/benchmarks-log.md, "2026-11-27 — Data2vec's own targets, on the clips"). The collapse
stop watches from step 500 (data2vec 2.0's 5,000 is longer than this run).

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.pretrain()
    c.data.dir = "runs/demo/records"
    c.data.max_frames = 128
    c.model.size = "tiny"
    c.data2vec.top_k = 2  # the tiny encoder has 2 blocks
    c.data2vec.target_kind = "ffn"
    c.data2vec.decoder_layers = 2
    c.data2vec.decoder_dim = 64
    c.batch_size = 16
    c.total_steps = 2000
    c.warmup_steps = 100
    c.lr = 1e-3
    c.checkpoint_every = 500
    c.collapse_after = 500
    return c
