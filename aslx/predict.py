"""Predict the sign, or the spelled text, of raw landmark clips.

    python -m aslx.predict --model runs/export/spelling INPUT.parquet
    python -m aslx.predict --model runs/finetune_tiny ../shared/data/pose_files/some.pose

``--model`` is an exported TFLite model (``model.tflite``, or the folder holding it with
``inference_args.json``, from ``python -m aslx.export --format tflite``) or a training workdir
(its chosen weights, run with JAX). Both take the same path from raw points to the answer, so
they give the same predictions.

Each INPUT is a ``.parquet`` file (Kaggle asl-fingerspelling or asl-signs layout), a ``.pose``
file, an ``.npz`` archive of clips, a folder of ``.pose`` files or an ``MP_Data`` folder
(:mod:`aslx.formats.detect`). One line per clip: its id, its frame count and the predicted
text, or for a classifier the top 5 classes with their probabilities. Clips shorter than every
clip the model was trained on (a single photo, say) are predicted too, with one warning per run
on stderr: such predictions are less reliable. An unreadable input or clip (a damaged file,
impossible coordinates) is named on stderr and skipped; the others are still predicted, and
the command ends with the count and exit status 1.

The model normalises with the camera aspect it was trained with (``inference_args.json``'s
``camera_aspect``); ``--camera-aspect`` says the clips' camera when it differs (``.pose`` files
say their own).
"""

from __future__ import annotations

import argparse
import itertools
import sys

from absl import logging

from aslx import cli
from aslx.export.predictor import NonFiniteOutput, Prediction, Predictor
from aslx.formats import detect
from aslx.formats.clip import FormatError, Skipped
from aslx.landmarks.normalize import parse_aspect


def format_prediction(prediction: Prediction, predictor: Predictor) -> str:
    if predictor.task != "classification":
        return repr(prediction.text)
    return "  ".join(
        f"{predictor.vocab.decode([i])} {p:.3f}" for i, p in zip(prediction.ids, prediction.scores)
    )


def _aspect(text: str) -> float:
    try:
        return parse_aspect(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m aslx.predict", __doc__)
    parser.add_argument(
        "--model",
        required=True,
        help="exported model (model.tflite or its folder), a training workdir, or an exported "
        "weights file (.safetensors)",
    )
    parser.add_argument("inputs", nargs="+", help="parquet, .pose, .npz files or folders")
    parser.add_argument(
        "--limit", type=int, default=0, help="predict at most this many clips per input (0: all)"
    )
    parser.add_argument(
        "--beam",
        type=int,
        default=0,
        help="CTC models: prefix beam search with this many prefixes (0 or 1: greedy, the "
        "best path; default 0)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TFLite models: interpreter threads (default 0: the cores this process may use)",
    )
    parser.add_argument(
        "--camera-aspect",
        type=_aspect,
        default=None,
        metavar="W:H",
        help="width/height of the camera the clips come from (16:9, 1920x1080 or 1.778); "
        "default: the camera the model was trained on (.pose files say their own)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: 0 (all cores) or more")
    if args.beam < 0:
        parser.error(f"--beam {args.beam}: a width of 0 or more")
    return args


def predict_inputs(args: argparse.Namespace, predictor: Predictor) -> int:
    """Prints one line per clip of ``args.inputs``; 1 when any input or clip was skipped."""
    failed = short = 0
    for source in args.inputs:
        try:
            clips = detect.read_path(source)
            if args.limit:
                clips = itertools.islice(clips, args.limit)
            for clip in clips:
                if isinstance(clip, Skipped):
                    print(f"{clip}", file=sys.stderr)
                    failed += 1
                    continue
                if clip.num_frames == 0:
                    print(f"skipped {clip.clip_id}: no frames", file=sys.stderr)
                    failed += 1
                    continue
                if clip.num_frames < predictor.min_train_frames:
                    if not short:
                        print(
                            f"warning: {clip.clip_id} has {clip.num_frames} frames, fewer than "
                            f"the {predictor.min_train_frames} of every clip the model was "
                            "trained on; its prediction is less reliable (said once per run; "
                            "each line gives its clip's frames)",
                            file=sys.stderr,
                        )
                    short += 1
                try:
                    answer = predictor(clip.landmarks, args.camera_aspect or clip.camera_aspect)
                except NonFiniteOutput as e:
                    print(f"skipped {clip.clip_id}: {e}", file=sys.stderr)
                    failed += 1
                    continue
                line = format_prediction(answer, predictor)
                print(f"{clip.clip_id}\t{clip.num_frames} frames\t{line}")
        except FormatError as e:  # this input is unreadable: say so, go on with the next
            print(f"skipped {e}", file=sys.stderr)
            failed += 1
    if short > 1:
        print(
            f"warning: {short} clips had fewer than {predictor.min_train_frames} frames",
            file=sys.stderr,
        )
    if failed:
        print(
            f"error: {failed} input{'s' if failed > 1 else ''} or clips could not be read "
            "(each named above); the rest were predicted",
            file=sys.stderr,
        )
    return 1 if failed else 0


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Orbax warns through absl on every read-only checkpoint open; a user here reads results.
    logging.set_verbosity(logging.ERROR)
    try:
        predictor = Predictor(args.model, beam=args.beam, num_threads=args.threads or None)
    except cli.USER_ERRORS as e:
        return cli.fail(e, f"--model {args.model}: ")
    with predictor:  # its TFLite interpreter freed before the process ends
        return predict_inputs(args, predictor)


if __name__ == "__main__":
    sys.exit(main())
