"""Print what the input pipeline makes of a record set.

    python -m aslx.stats --data runs/demo/records --preset kaggle75 --max-frames 128

Clip counts, clip lengths, label lengths, how often each landmark group is detected, how much
of each batch is padding (at ``max_frames`` and in the ``auto`` length buckets), and the
pipeline's throughput on this machine (:mod:`aslx.input.summary`).
"""

from __future__ import annotations

import sys

from aslx import cli
from aslx.input import pipeline, summary
from aslx.records.metadata import RecordSet


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("python -m aslx.stats", __doc__)
    parser.add_argument("--data", required=True, help="record set folder (from aslx.ingest)")
    parser.add_argument("--preset", default=None, help="landmark preset (default: the records')")
    parser.add_argument("--max-frames", type=int, default=128, help="static frame count T")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="stream seed")
    args = parser.parse_args(argv)
    config = pipeline.InputConfig(
        batch_size=args.batch_size,
        max_frames=args.max_frames,
        preset=args.preset,
        seed=args.seed,
    )
    print(summary.format_summary(summary.summarize(RecordSet(args.data), config), args.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
