"""Export a trained model: its weights for other runs, or one TFLite graph for devices.

    python -m aslx.export --workdir runs/finetune_small --format weights --out small.safetensors
    python -m aslx.export --workdir runs/finetune_small --format tflite --out runs/export/small

``--format weights`` writes the parameters (raw or EMA, ``--weights``) with the model config
and vocabulary in one safetensors file (:mod:`aslx.export.weights`); finetuning takes it as
``--config.init_from=FILE`` or ``--config.teacher.weights=FILE``.

``--format tflite`` writes ``model.tflite`` and ``inference_args.json`` into the ``--out``
folder (:mod:`aslx.export.tflite`): raw Kaggle columns of any number of frames in, the decoded
text or the class scores out, with one fixed-length signature per ``--buckets`` length below
``--max-frames`` (and one for ``--max-frames``; by default the lengths the run trained at, its
model card's ``buckets``). A clip longer than ``--max-frames`` is fitted by the run's own rule
(its card's ``long_clips``: evenly spaced frames, or the first ones). float16 weights by default;
``--quantize dynamic_int8`` stores int8 weights with no calibration; ``--quantize int8``
calibrates on ``--representative`` clips (any input ``python -m aslx.predict`` reads).
"""

from __future__ import annotations

import argparse
import itertools
import sys

from absl import logging

from aslx import cli, files
from aslx.formats import detect
from aslx.formats.clip import Clip
from aslx.input import fit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from aslx.export import tflite

    parser = cli.parser("python -m aslx.export", __doc__)
    parser.add_argument("--workdir", required=True, help="a training workdir (or weights file)")
    parser.add_argument("--format", required=True, choices=["weights", "tflite"])
    parser.add_argument(
        "--out", required=True, help="weights: the file to write; tflite: the folder to write"
    )
    parser.add_argument(
        "--weights",
        default="selected",
        choices=["selected", "raw", "ema"],
        help="weights: which parameters (default: the ones the run chose on its eval split)",
    )
    parser.add_argument(
        "--quantize",
        default="float16",
        choices=tflite.QUANTIZATIONS,
        help="tflite: how weights are stored: float16 (default), dynamic_int8 (int8 weights, "
        "float activations), int8 (weights and activations, calibrated on --representative) "
        "or float32",
    )
    parser.add_argument(
        "--representative",
        default="",
        help="tflite int8: clips to calibrate on (a parquet, .npz, .pose file or folder)",
    )
    parser.add_argument(
        "--representative-clips",
        type=int,
        default=200,
        help="tflite int8: clips taken from --representative (default 200)",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="tflite: frames the encoder sees at most; a longer clip is fitted as the run "
        "trained (its long_clips: evenly spaced frames, or the first ones) (default: the run's "
        "data.max_frames; 0: all)",
    )
    parser.add_argument(
        "--buckets",
        default=fit.DEFAULT_BUCKETS,
        help="tflite: the fixed-length signatures, as config.data.buckets writes them: 'auto' "
        "(default: the lengths the run trained at), 'none' (--max-frames only) or ascending "
        "frame counts up to --max-frames like 64,128,256 (--max-frames is added); a clip runs "
        "on the smallest that holds it",
    )
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 0:
        parser.error(f"--max-frames {args.max_frames}: a frame count, or 0 for no limit")
    try:
        # Checked against the vocabulary now, against the run's max_frames once its card is read.
        fit.parse_buckets(args.buckets, args.max_frames or 0)
    except ValueError as e:
        parser.error(f"--buckets {args.buckets!r}: {str(e).partition(': ')[2]}")
    return args


def _representative(path: str, count: int) -> list:
    """Up to ``count`` clips ``[frames, 543, 3]`` of ``path`` with at least one frame."""
    clips = (c for c in detect.read_path(path) if isinstance(c, Clip) and c.num_frames)
    return [c.landmarks for c in itertools.islice(clips, count)]


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Orbax warns through absl on every read-only checkpoint open; a user here reads results.
    logging.set_verbosity(logging.ERROR)
    # A read-only or full destination fails here, not after minutes of conversion.
    files.check_writable(args.out if args.format == "tflite" else files.path(args.out).parent)
    if args.format == "weights":
        from aslx.export import weights

        path = weights.export_weights(args.workdir, args.out, args.weights)
        print(f"wrote {path} ({files.path(path).stat().length / 2**20:.1f} MiB)")
        return 0
    from aslx.export import tflite

    if args.weights != "selected":
        raise ValueError(
            "--weights applies to --format weights; a TFLite export takes the run's chosen "
            "weights (export a weights file first to pick others)"
        )
    representative = None
    if args.representative:
        representative = _representative(args.representative, args.representative_clips)
    written = tflite.export(
        args.workdir,
        args.out,
        quantize=args.quantize,
        max_frames=args.max_frames,
        representative=representative,
        buckets=args.buckets,
    )
    print(
        f"wrote {written['model']} ({written['bytes'] / 1e6:.2f} MB, {args.quantize} weights) "
        f"and {written['args']}\npredict with: python -m aslx.predict --model {args.out} INPUT"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
