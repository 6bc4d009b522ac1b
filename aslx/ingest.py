"""Turn a raw landmark source into a record set.

    python -m aslx.ingest --format kaggle-signs --src ../shared/data/silfa_alphabet_parquet \\
        --out runs/silfa
    python -m aslx.ingest --format npz --src ../shared/data/mp_holistic_35signs/landmarks_f16.npz \\
        --src train=../shared/data/xsigner/labelled_train_f16.npz \\
        --src xval=../shared/data/xsigner/labelled_val_f16.npz --camera-aspect 4:3 --out runs/many

Formats: kaggle-fingerspelling, kaggle-signs, mp-data, pose, npz, npz-spelled (see
``aslx.formats``). The output folder gets sharded TFRecord files and ``metadata.json``; a summary
is printed at the end. Several ``--src`` of one format make one record set, each optionally
naming the split all its clips go to (``SPLIT=PATH``).
"""

from __future__ import annotations

import argparse
import sys

from aslx import cli
from aslx.formats import READERS
from aslx.landmarks import presets
from aslx.landmarks.normalize import parse_aspect
from aslx.records import writer as ingest_lib


def _replacement(text: str) -> tuple[str, str]:
    source, sep, target = text.partition("=")
    if not sep or len(source) != 1:
        raise argparse.ArgumentTypeError(
            f"expected CHAR=REPLACEMENT (e.g. A=a or '%='), got {text!r}"
        )
    return source, target


def _source(text: str) -> ingest_lib.SourceSpec:
    try:
        return ingest_lib.SourceSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _aspect(text: str) -> float:
    try:
        return parse_aspect(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m aslx.ingest", __doc__)
    parser.add_argument("--format", required=True, choices=sorted(READERS), help="source format")
    parser.add_argument(
        "--src",
        required=True,
        action="append",
        type=_source,
        metavar="[SPLIT=]PATH",
        help="source folder or file (repeatable: several sources of one format and one "
        "vocabulary make one record set); SPLIT= sends all its clips to that split, else the "
        "source's own split applies (train when it has none)",
    )
    parser.add_argument("--out", required=True, help="output folder for the record set")
    parser.add_argument(
        "--preset",
        default="full543",
        choices=sorted(presets.PRESETS),
        help="landmarks stored (default full543: the pipeline can select any preset later)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=ingest_lib.DEFAULT_SHARDS,
        help="shard files per split (default %(default)s). A training job of N hosts reads with "
        "N readers by default, each from its own files: it needs at least N training shards, "
        "and a multiple of N gives every host the same share",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="share of training signers (participant ids) moved to a val split (default 0)",
    )
    parser.add_argument(
        "--replace",
        type=_replacement,
        action="append",
        default=[],
        metavar="CHAR=REPL",
        help="map a character outside the vocabulary (repeatable; empty REPL drops it); "
        "clips with unmapped unknown characters are skipped",
    )
    parser.add_argument(
        "--camera-aspect",
        type=_aspect,
        default=None,
        metavar="W:H",
        help="the camera's width/height (16:9, 4:3, 1920x1080 or 1.778) for formats that do not "
        "record it; default: Kaggle's portrait phones (about 9:17), or what .pose headers say",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meta = ingest_lib.ingest(
        args.format,
        args.src,
        args.out,
        preset=args.preset,
        num_shards=args.shards,
        val_fraction=args.val_fraction,
        replacements=dict(args.replace),
        overwrite=args.overwrite,
        progress=not args.no_progress,
        camera_aspect=args.camera_aspect,
    )
    splits = ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
    print(
        f"wrote {meta['num_examples']} clips ({splits}), {meta['num_classes']} distinct labels, "
        f"{meta['layout']['num_landmarks']} landmarks ({meta['layout']['preset']}), "
        f"frames {meta['frames']['min']}–{meta['frames']['max']} (mean {meta['frames']['mean']}), "
        f"camera aspect {meta['camera_aspect']:.3f} ({meta['camera_aspect_from']}); "
        f"skipped {meta['num_skipped']} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
