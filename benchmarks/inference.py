"""Per-clip inference: the exported TFLite graph against the jitted JAX model, on a CPU.

    python benchmarks/inference.py --json runs/bench/inference.json
    python benchmarks/inference.py --smoke --tiny-steps 2 --sizes tiny --clips 3 \
        --timing-clips 2 --json /tmp/inference.json   # seconds: it runs

For each size (tiny, small) a spelling model is finetuned on the real-letter spelled words of
``mp_holistic_35signs`` (``configs/bench/spelling_model.py``: the ``spelling`` recipe of
``benchmarks/real_data.py``, shortened by ``--tiny-steps`` / ``--small-steps``; ``--smoke``
cuts it to a one-block model; an existing run under ``--workdir`` is reused; on a CPU
the small model gets too few steps to spell, so its decode agreement says little), exported
with float16 weights and ``max_frames`` 384 (signatures of 64, 128, 256 and 384 frames), and
both the TFLite file (``ai_edge_litert``, XNNPACK, one thread per core) and the JAX model
(jitted, the clip padded to the same bucket) predict one clip at a time, as an app would:

* ``tflite_ms``, ``jax_ms``, ``tflite_over_jax``: per clip length (64, 128, 256, 384 frames:
  validation words resampled to that many frames), median milliseconds per clip (raw columns in,
  decoded text out; compilation and the first call not counted) and their ratio; the two run
  in turn on each clip, so a busy machine slows both alike;
* ``val_tflite_ms``, ``val_jax_ms``: the same on the validation words as recorded;
* ``tflite_bytes``: size of ``model.tflite``; ``export_seconds``: the conversion's time;
* ``decode_agreement``: share of validation words whose greedy decodes are identical (the
  TFLite graph decodes in-graph; JAX decodes on the host);
* ``max_rel_logit_error``: over all validation words, ``max |tflite − jax| / max |jax|`` of the
  per-frame log-probabilities;
* ``val_normalized_levenshtein``: how well the measured model spells.

``--model WORKDIR`` (repeatable) measures finished CTC runs of your own instead of training the
sizes; each result is keyed by the workdir's name.

Nothing here is tuned on test: the clips are the validation words.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import numpy as np  # noqa: E402

from aslx.export.predictor import Predictor  # noqa: E402
from aslx.formats import spelled  # noqa: E402
from aslx.run import results as results_lib  # noqa: E402
from benchmarks import harness, real_data  # noqa: E402

SIZES = ("tiny", "small")


#: Frames the exported graph fits clips to, and the clip lengths measured (its buckets).
MAX_FRAMES = 384
LENGTHS = (64, 128, 256, 384)


def resampled(clip: np.ndarray, frames: int) -> np.ndarray:
    """``clip [T, ...]`` at exactly ``frames`` frames: frame ``floor(i · T / frames)`` for each
    ``i`` (repeats frames when stretching, evenly spaced ones when shrinking)."""
    return clip[(np.arange(frames) * len(clip)) // frames]


def timed_side_by_side(fns, clips) -> tuple[list[list], list[float]]:
    """Each of ``fns`` on every clip, in turn clip by clip (after one warm-up call each, so
    compilation is not counted): their outputs and median milliseconds per clip."""
    for fn in fns:
        fn(clips[0])
    outputs, times = [[] for _ in fns], [[] for _ in fns]
    for clip in clips:
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            outputs[i].append(fn(clip))
            times[i].append((time.perf_counter() - start) * 1e3)
    return outputs, [statistics.median(t) for t in times]


def measure(workdir: Path, clips: list[np.ndarray], out: Path, timing_clips: int) -> dict:
    from aslx.export import tflite

    start = time.perf_counter()
    # The measured lengths are the signatures, whatever lengths the run trained at.
    written = tflite.export(
        workdir, out, quantize="float16", max_frames=MAX_FRAMES, buckets=LENGTHS
    )
    export_seconds = time.perf_counter() - start
    graph = Predictor(out)
    model = Predictor(workdir, max_frames=MAX_FRAMES, buckets=LENGTHS)
    (graph_predictions, jax_predictions), (val_tflite_ms, val_jax_ms) = timed_side_by_side(
        (graph, model), clips
    )
    agree = [g.ids == j.ids for g, j in zip(graph_predictions, jax_predictions)]
    errors = []
    for clip in clips:
        reference = model.log_probs(clip)
        errors.append(np.abs(graph.log_probs(clip) - reference).max() / np.abs(reference).max())
    tflite_ms, jax_ms = {}, {}
    for frames in LENGTHS:
        stretched = [resampled(c, frames) for c in clips[:timing_clips]]
        _, (tflite_ms[frames], jax_ms[frames]) = timed_side_by_side((graph, model), stretched)
        print(
            f"{workdir.name}: {frames} frames, tflite {tflite_ms[frames]:.1f} ms, "
            f"jax {jax_ms[frames]:.1f} ms",
            flush=True,
        )
    run = results_lib.read(workdir)
    return {
        "tflite_ms": tflite_ms,
        "jax_ms": jax_ms,
        "tflite_over_jax": {f: tflite_ms[f] / jax_ms[f] for f in LENGTHS},
        "val_tflite_ms": val_tflite_ms,
        "val_jax_ms": val_jax_ms,
        "tflite_bytes": written["bytes"],
        "export_seconds": export_seconds,
        "decode_agreement": float(np.mean(agree)),
        "max_rel_logit_error": float(np.max(errors)),
        "clips": len(clips),
        "timing_clips": len(clips[:timing_clips]),
        "tflite_threads": tflite.default_threads(),
        "workdir": str(workdir),
        "finetune_steps": run["steps"],
        # How well the measured model spells: agreement on an all-blank model is no test.
        "val_normalized_levenshtein": run["val/normalized_levenshtein"],
    }


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    harness.add_data_arguments(parser)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--tiny-steps", type=int, default=3000, help="finetuning steps, tiny")
    parser.add_argument(
        "--small-steps",
        type=int,
        default=150,
        help="finetuning steps, small (a CPU affords few: enough for latency, size and logit "
        "error; its decodes mean little until it has learned to spell)",
    )
    parser.add_argument("--clips", type=int, default=200, help="validation words measured")
    parser.add_argument(
        "--timing-clips",
        type=int,
        default=20,
        help="validation words timed at each clip length (default 20)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="a finished CTC finetuning workdir to measure instead of training --sizes "
        "(repeatable)",
    )
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2
    archive = args.data / harness.ARCHIVE
    words = spelled.read(archive, words={"val": args.clips})
    clips = [w.landmarks for w in words]
    steps = {"tiny": args.tiny_steps, "small": args.small_steps}
    results = {}
    for workdir in args.model:
        if not results_lib.read(workdir):
            print(
                f"error: {workdir}: no {results_lib.RESULTS_FILE}, not a finished run (--model)",
                file=sys.stderr,
            )
            return 2
        results[workdir.name] = measure(
            workdir, clips, args.workdir / f"export_{workdir.name}", args.timing_clips
        )
    for size in [] if args.model else args.sizes:
        workdir = real_data.spelling_model(size, steps[size], args.data, args.workdir)
        results[size] = measure(workdir, clips, args.workdir / f"export_{size}", args.timing_clips)
    rows = []
    for name, r in results.items():
        ratios = [
            f"{r['tflite_ms'][f]:.1f}/{r['jax_ms'][f]:.1f}={r['tflite_over_jax'][f]:.2f}"
            for f in LENGTHS
        ]
        errors = (f"{r['decode_agreement']:.3f}", f"{r['max_rel_logit_error']:.2e}")
        rows.append((name, f"{r['tflite_bytes'] / 1e6:.2f}", *errors, *ratios))
    print()
    header = ("model", "MB", "agree", "rel err", *(f"tflite/jax {f}" for f in LENGTHS))
    harness.print_table(header, rows)
    harness.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
