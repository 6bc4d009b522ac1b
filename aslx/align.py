"""Align every clip's label to its frames with a trained CTC model (Viterbi forced alignment),
for temporal CutMix.

    python -m aslx.align --workdir runs/finetune_small --data runs/records \\
        --out runs/records_train_alignments.npz
    python -m finetune.main --config configs/finetune_small.py --workdir runs/cutmix \\
        --config.data.dir=runs/records \\
        --config.data.alignments=runs/records_train_alignments.npz

The model (``--workdir``, a finetuning run with ``task='ctc'``; its chosen checkpoint and raw or
EMA weights) reads each clip of ``--split`` as it was trained to, by its model card
(:mod:`aslx.run.reader`): its preset, its ``max_frames``, and a longer clip fitted by its
``long_clips`` (``resample``: evenly spaced frames, the whole label in the clip; ``truncate``:
the first ``max_frames``, paired with the clip's label as training paired them). The
most probable CTC path of the clip's label through the model's log-probabilities
(:mod:`aslx.decoding.viterbi`) gives each frame the label position it shows, or -1 on a blank.

The file (``--out``, written atomically) maps each ``clip_id`` to an int32 array over the
frames **stored in the record**, before any fitting: a stored frame takes the position of the
fitted frame it was kept as, or of the nearest kept one when the clip was longer than
``max_frames`` (past a truncated clip's first ``max_frames``, the last of them). A training
pipeline then fits these arrays with the same gather as the landmarks, so it may use another
``max_frames``, ``long_clips`` or preset than the aligning model (with fewer frames, a label
held for one frame may lose its frame; CutMix copes). The file also records
which record set and split it belongs to; training refuses it for any other.

Every clip of the split gets an entry. A clip whose label is too long for its fitted frames
(one frame per label plus a blank between equal neighbours) is aligned on the longest label
prefix that fits, the labels training keeps too, and is listed in the summary; a clip without a
label is all -1.
"""

from __future__ import annotations

import argparse
import sys

from aslx import cli
from aslx.decoding.align_records import DEFAULT_BATCH, align_records, summary_text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m aslx.align", __doc__)
    parser.add_argument(
        "--workdir", required=True, help="a finetuning workdir of a CTC model (task 'ctc')"
    )
    parser.add_argument(
        "--data", required=True, help="a record set written by python -m aslx.ingest"
    )
    parser.add_argument(
        "--out", required=True, help="the alignments file to write (.npz; replaced if it exists)"
    )
    parser.add_argument("--split", default="train", help="split to align (default train)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"clips per forward pass (default {DEFAULT_BATCH})",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from absl import logging

    # Orbax notes at WARNING that it opens the checkpoints read-only: true, and not news.
    logging.set_verbosity(logging.ERROR)
    summary = align_records(
        args.workdir,
        args.data,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(summary_text(summary, args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
