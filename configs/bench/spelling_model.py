"""The spelling model the inference and decoding benchmarks measure: the ``spelling`` recipe
(``configs/bench/spelling.py``) at a size and a step count, scored on validation words only.

    python benchmarks/inference.py --json runs/bench/inference.json
    python benchmarks/decode.py --json runs/bench/decode.json

train it once under their ``--workdir`` (``inference_{size}_{steps}``) and reuse it; alone:

    python -m finetune.main --config configs/bench/spelling_model.py:small,150 \\
        --workdir runs/real_data/inference_small_150

``arg`` is ``SIZE`` or ``SIZE,STEPS`` (``tiny``: 3,000 steps by default, the recipe's; ``small``:
150, what a CPU affords: enough for latency, size and logit error, too few to spell). The
warm-up is at most a fifth of the steps; one checkpoint and one evaluation at the end. Small
trains with batches of 8 at a peak rate of 5e-4.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from configs.bench import spelling

#: Every ``arg`` this recipe takes (the first is the default); tests/test_configs.py runs each.
ARGS = ("tiny", "small", "tiny,3000", "small,150")
#: Steps of each size when ``arg`` names none.
DEFAULT_STEPS = {"tiny": 3000, "small": 150}


def get_config(arg: str | None = None):
    size, _, steps = (arg or ARGS[0]).partition(",")
    if size not in DEFAULT_STEPS:
        raise ValueError(
            f"configs/bench/spelling_model.py: size {size!r} in {arg!r} is not one of "
            f"{sorted(DEFAULT_STEPS)}; pass SIZE or SIZE,STEPS"
        )
    steps = int(steps) if steps else DEFAULT_STEPS[size]
    c = spelling.get_config()
    c.model.size = size
    c.total_steps = steps
    c.warmup_steps = min(c.warmup_steps, steps // 5)
    c.eval_every = steps
    c.checkpoint_every = steps
    c.data.test_split = ""  # measured on validation words only
    if size == "small":
        c.batch_size = 8
        c.lr = 5e-4
    return c
