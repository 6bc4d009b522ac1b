"""The isolated task on all 543 landmarks, with and without a hard-concrete joint gate: the
``joint_gate`` task of ``benchmarks/real_data.py``.

    python benchmarks/real_data.py --task joint_gate --json runs/bench/joint_gate.json

writes the records and runs both (``arg``: ``gated``, the default, or ``ungated``):

    python -m finetune.main --config configs/bench/joint_gate.py:gated \\
        --workdir runs/real_data/full543_gated

The isolated recipe (``configs/isolated_tiny.py``) reading ``full543``; the gated model learns
one keep-logit per landmark (started at 2.0, 20 times the learning rate) with an L0 penalty of
2e-3, chosen on val: 0.01 kept 16 landmarks (val top-1 0.976); 0.002 keeps more.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from configs import isolated_tiny

#: Every ``arg`` this recipe takes (the first is the default); tests/test_configs.py runs each.
ARGS = ("gated", "ungated")


def get_config(arg: str | None = None):
    variant = arg or ARGS[0]
    if variant not in ARGS:
        raise ValueError(f"configs/bench/joint_gate.py: arg {arg!r} is not one of {ARGS}")
    c = isolated_tiny.get_config()
    c.data.dir = "runs/real_data/records_signs"
    c.data.preset = "full543"
    if variant == "gated":
        c.model.gate = "hard_concrete"
        c.model.gate_init = 2.0
        c.gate.l0_weight = 2e-3
        c.gate.lr_multiplier = 20.0
    return c
