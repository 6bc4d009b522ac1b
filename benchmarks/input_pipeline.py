"""Input pipeline throughput: record files -> padded NumPy batches, on this machine's CPU.

    python benchmarks/input_pipeline.py --json runs/bench/input_pipeline.json

Makes a synthetic fingerspelling set (clearly synthetic: procedural hands, see
``aslx.synthetic``), ingests it with every point kept (``full543``), and times the
training stream for each preset: decode, dominant-hand selection, fitting into ``max_frames``,
masking, padding and batching. With ``--data`` present (``mp_holistic_35signs``, in
``../shared/data`` by default; ``--data ''`` skips it) it also times the real clips. Prints a
table and writes JSON whose top level holds the headline row (``kaggle75``, synthetic):
``sequences_per_s``, ``max_frames``, ``batch_size``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

from aslx import synthetic  # noqa: E402
from aslx.input import pipeline  # noqa: E402
from aslx.records import writer  # noqa: E402
from benchmarks import harness  # noqa: E402


def measure(records: Path, split: str, config: pipeline.InputConfig, batches: int) -> float:
    """Sequences per second over ``batches`` batches, after two warm-up batches."""
    iterator = pipeline.train_batches(records, split, config, process_index=0, process_count=1)
    for _ in range(2):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * config.batch_size / (time.perf_counter() - start)


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--phrases", type=int, default=512, help="synthetic phrases (default 512)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--max-frames", type=int, default=384, help="static frames (default 384)")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per row")
    parser.add_argument(
        "--data",
        default=str(harness.DEFAULT_DATA),
        help=f"the folder of mp_holistic_35signs' {harness.ARCHIVE}, also timed where it is "
        "('' for none; default ../shared/data/mp_holistic_35signs)",
    )
    args = harness.parse_args(parser, argv)
    real_npz = Path(args.data) / harness.ARCHIVE if args.data else None

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meta = synthetic.record_set(tmp, num_phrases=args.phrases, num_shards=8)
        sets = [("synthetic", tmp / "records", "train", args.max_frames, meta["frames"]["mean"])]
        if real_npz and real_npz.is_file():
            real = writer.ingest("npz", real_npz, tmp / "real", num_shards=8, progress=False)
            sets.append(("mp_holistic_35signs", tmp / "real", "train", 32, real["frames"]["mean"]))
        for data, records, split, max_frames, mean_frames in sets:
            for preset in ("kaggle75", "hands_pose", "full543"):
                config = pipeline.InputConfig(
                    batch_size=args.batch_size,
                    max_frames=max_frames,
                    preset=preset,
                    shuffle_buffer=256,
                )
                rows.append(
                    {
                        "data": data,
                        "preset": preset,
                        "max_frames": max_frames,
                        "mean_clip_frames": mean_frames,
                        "batch_size": args.batch_size,
                        "sequences_per_s": round(measure(records, split, config, args.batches), 1),
                    }
                )

    table = [
        (r["data"], r["preset"], r["max_frames"], f"{r['mean_clip_frames']:.0f}", r["batch_size"])
        + (f"{r['sequences_per_s']:.1f}",)
        for r in rows
    ]
    harness.print_table(("data", "preset", "T", "clip", "batch", "seq/s"), table, "llrrrr")
    headline = rows[0]
    result = {
        "sequences_per_s": headline["sequences_per_s"],
        "max_frames": headline["max_frames"],
        "batch_size": headline["batch_size"],
        "preset": headline["preset"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "rows": rows,
    }
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
