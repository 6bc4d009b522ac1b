"""Data2vec 2.0 pretraining of the Large encoder (24 × 1024) on a pod slice.

    python -m pretrain.main --config configs/pretrain_large.py --workdir /mnt/shared/pretrain \\
        --config.data.dir=RECORDS --config.distributed=True

Weights sharded over ``fsdp`` devices, bfloat16 compute, the design brief's constants.

Targets: ``ffn`` (data2vec 2.0's), chosen as for ``configs/pretrain_small.py`` (see its
docstring: screened on a 2-block encoder only; Large has not been compared).

Meant for: a v5e-256 slice (64 hosts × 4 chips; also v5p-128), ``fsdp`` 8. Compiled for both
ahead of time (``python -m aslx.aot --config configs/pretrain_large.py --topology v5e-256``):
the memory a chip, FLOPs and collectives are in BENCHMARKS.md.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.pretrain()
    c.data.max_frames = 384
    c.model.size = "large"
    # The weights, their moments and EMA split over 8 chips (an 8-chip group of the slice).
    c.fsdp = 8
    c.data2vec.target_kind = "ffn"  # see configs/pretrain_small.py for the evidence
    c.model.compute_dtype = "bfloat16"
    # Remat: recompute each block: 8 masked copies per clip (python benchmarks/train_step.py
    # --compile-only).
    c.model.remat = "full"
    c.batch_size = 512
    c.total_steps = 200_000
    c.warmup_steps = 10_000
    c.lr = 3e-4
    c.checkpoint_every = 1_000
    c.log_every = 100
    return c
