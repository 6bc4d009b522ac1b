"""Write a SYNTHETIC fingerspelling data set (procedurally generated landmarks, not real
signing) in the Kaggle asl-fingerspelling layout.

    python -m aslx.synthetic --out runs/demo/raw --phrases 400 --signers 10 --seed 0
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aslx import cli
from aslx.formats import kaggle_fingerspelling
from aslx.synthetic.dataset import generate


@cli.command
def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("python -m aslx.synthetic", __doc__)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        required=True,
        help="folder to write the synthetic data set into",
    )
    parser.add_argument(
        "--phrases",
        type=int,
        metavar="N",
        default=500,
        help="number of synthetic phrases (default: 500)",
    )
    parser.add_argument(
        "--signers",
        type=int,
        metavar="K",
        default=8,
        help="number of synthetic signers (default: 8)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        default=0,
        help="random seed; the same seed writes the same files",
    )
    args = parser.parse_args(argv)
    if args.phrases < 1 or args.signers < 1:
        parser.error("--phrases and --signers must be at least 1")
    summary = generate(
        args.out,
        num_phrases=args.phrases,
        num_signers=args.signers,
        seed=args.seed,
        progress=True,
    )
    files = f"{summary.files} parquet file{'' if summary.files == 1 else 's'}"
    print(
        f"wrote {summary.phrases} synthetic phrases ({summary.frames} frames, "
        f"{summary.signers} signers) to {args.out}: {files}, train.csv, "
        f"{kaggle_fingerspelling.VOCABULARY_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
