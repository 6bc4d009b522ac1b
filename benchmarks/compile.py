"""Compile time against depth: the small model's real train step at 2 and at 24 blocks.

    python benchmarks/compile.py --json runs/bench/compile.json

Both steps are ``benchmarks/train_step.py``'s (the finetuning recipe's model, augmentation,
EMA and guard) at the small width (256, 4 heads), batch 8 × 128 frames, compiled one after the
other in one process on abstract shapes. The blocks run under ``lax.scan``, so XLA compiles
one block whatever the depth: the ratio should stay near 1 (an unrolled loop grew about 3 s per
block on a 2-core CPU). Prints a table and writes ``{"depth_2_s", "depth_24_s", "ratio"}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from aslx import files  # noqa: E402
from benchmarks import train_step  # noqa: E402


def compile_seconds(layers: int, batch: int, frames: int) -> float:
    step, init_state, _ = train_step.build(
        "small", "ctc", "float32", True, 1, frames, layers=layers
    )
    data = train_step.make_batch(np.random.default_rng(0), batch, frames, 75, 60)
    return train_step.compile_step(step, init_state, data)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shallow", type=int, default=2, help="blocks of the shallow model")
    parser.add_argument("--deep", type=int, default=24, help="blocks of the deep model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--json", required=True, help="where to write the result")
    args = parser.parse_args(argv)
    shallow = compile_seconds(args.shallow, args.batch, args.frames)
    deep = compile_seconds(args.deep, args.batch, args.frames)
    result = {
        f"depth_{args.shallow}_s": shallow,
        f"depth_{args.deep}_s": deep,
        "ratio": deep / shallow,
        "batch": args.batch,
        "frames": args.frames,
        "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}",
    }
    print(f"{'blocks':>6}  {'compile s':>9}")
    print(f"{args.shallow:>6}  {shallow:>9.1f}")
    print(f"{args.deep:>6}  {deep:>9.1f}")
    print(f"ratio {result['ratio']:.2f} ({result['device']})")
    files.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
