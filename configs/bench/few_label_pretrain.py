"""Data2vec pretraining for ``benchmarks/real_data.py --task pretrain_gain``: the tiny encoder on
the train split's 1,470 unlabelled clips, reading the landmarks as the few-label finetunes of
``arg`` do (``configs/bench/few_label.py``: ``isolated``, the default, or ``spelling``;
:data:`aslx.training.config.PREPROCESSING_FIELDS`).

    python benchmarks/real_data.py --task pretrain_gain --json runs/bench/pretrain_gain.json

writes the records and pretrains once per preprocessing (``pretrain_tiny_clips_{group,body}``):

    python -m pretrain.main --config configs/bench/few_label_pretrain.py:isolated \\
        --workdir runs/real_data/pretrain_tiny_clips_group

Four fifths of each 32-frame clip hidden, the kept frames in blocks of 3 (the design's 0.5 in
blocks of 5 hides gaps of a few frames in a clip of one held hand shape), for 1,000 steps: the
variant with the largest gain over scratch on val, summed over both tasks and three finetuning
seeds (docs/benchmarks-log.md, "2026-11-30 — four fifths of each clip hidden, in blocks of 3").
Targets from the residual stream (``target_kind='residual'``): with data2vec 2.0's light
decoder, isolated finetunes from it scored val 0.862 / 0.914 (seeds 0, 1) against
0.867 / 0.886 with the MLP outputs on the body frame (docs/benchmarks-log.md, "2026-12-04 —
four screens on val, then residual-stream targets"), and 0.948 / 0.962 against 0.938 / 0.948
on the group frame; there 500 and 3,000 steps scored 0.943 / 0.952 and 0.933 / 0.948
(docs/benchmarks-log.md, "2026-12-04 — the group frame for the isolated half, one encoder per
preprocessing").

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from aslx.training import config as config_lib
from configs import pretrain_tiny
from configs.bench import few_label

#: Every ``arg`` this recipe takes (the first is the default); tests/test_configs.py runs each.
ARGS = few_label.ARGS


def get_config(arg: str | None = None):
    if (arg or ARGS[0]) not in ARGS:
        raise ValueError(f"configs/bench/few_label_pretrain.py: arg {arg!r} is not one of {ARGS}")
    finetune = few_label.get_config(arg)
    c = pretrain_tiny.get_config()
    c.data.dir = "runs/real_data/records_signs"
    for field in config_lib.PREPROCESSING_FIELDS:
        c.data[field] = finetune.data[field]
    c.data.max_frames = 32
    c.data2vec.mask_ratio = 0.8
    c.data2vec.block_length = 3
    c.data2vec.target_kind = "residual"
    c.batch_size = 16
    c.total_steps = 1000
    c.log_every = 250
    return c
