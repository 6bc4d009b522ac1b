"""Compile time against depth: the small model's real train step at 2 and at 24 blocks.

    python benchmarks/compile.py --json runs/bench/compile.json
    python benchmarks/compile.py --model tiny --shallow 1 --deep 2 --frames 8 --no-augment \\
        --json P  # seconds

Both steps are ``benchmarks/train_step.py``'s (the finetuning recipe's model, augmentation,
EMA and guard) at the small width (256, 4 heads), batch 8 × 128 frames, compiled one after the
other in one process on abstract shapes. The blocks run under ``lax.scan``, so XLA compiles
one block whatever the depth: the ratio should stay near 1 (an unrolled loop grew about 3 s per
block on a 2-core CPU). Prints a table and writes ``{"depth_2_s", "depth_24_s", "ratio"}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import harness, train_step  # noqa: E402


def compile_seconds(
    model: str, layers: int, batch: int, frames: int, augment: bool = True
) -> float:
    """Seconds to lower and compile the ``model`` recipe's step at ``layers`` blocks."""
    step, init_state, _ = train_step.build(
        model, "ctc", "float32", augment, 1, frames, layers=layers
    )
    data = train_step.make_batch(np.random.default_rng(0), batch, frames, 75, 60)
    return train_step.compile_step(step, init_state, data)[1]


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument(
        "--model", choices=["tiny", "small", "large"], default="small", help="width (small)"
    )
    parser.add_argument("--shallow", type=int, default=2, help="blocks of the shallow model")
    parser.add_argument("--deep", type=int, default=24, help="blocks of the deep model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument(
        "--no-augment",
        action="store_true",
        help="compile the step without the augmentation recipe (a quicker check of the depth "
        "ratio; the recipe's step is the default)",
    )
    args = harness.parse_args(parser, argv)
    augment = not args.no_augment
    shallow = compile_seconds(args.model, args.shallow, args.batch, args.frames, augment)
    deep = compile_seconds(args.model, args.deep, args.batch, args.frames, augment)
    result = {
        f"depth_{args.shallow}_s": shallow,
        f"depth_{args.deep}_s": deep,
        "ratio": deep / shallow,
        "batch": args.batch,
        "frames": args.frames,
        "model": args.model,
        "augment": augment,
        "device": harness.device(),
    }
    print(f"{'blocks':>6}  {'compile s':>9}")
    print(f"{args.shallow:>6}  {shallow:>9.1f}")
    print(f"{args.deep:>6}  {deep:>9.1f}")
    print(f"ratio {result['ratio']:.2f} ({result['device']})")
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
