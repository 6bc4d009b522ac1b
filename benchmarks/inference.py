"""Per-clip inference: the exported TFLite graph against the jitted JAX model, on a CPU.

    python benchmarks/inference.py --json runs/bench/inference.json

For each size (tiny, small) a spelling model is finetuned on the real-letter spelled words of
``mp_holistic_35signs`` (the ``spelling`` recipe of ``benchmarks/real_data.py``, shortened by
``--tiny-steps`` / ``--small-steps``; an existing run under ``--workdir`` is reused; on a CPU
the small model gets too few steps to spell, so its decode agreement says little), exported
with float16 weights, and both the TFLite file and the JAX model predict every validation word
one clip at a time, as an app would:

* ``tflite_ms``, ``jax_ms``: median milliseconds per clip (raw columns in, decoded text out; JAX
  pads the fitted clip to the model's ``max_frames`` and runs the jitted forward, compiled once);
* ``tflite_bytes``: size of ``model.tflite``;
* ``decode_agreement``: share of clips whose greedy decodes are identical (the TFLite graph
  decodes in-graph; JAX decodes on the host);
* ``max_rel_logit_error``: over all clips, ``max |tflite − jax| / max |jax|`` of the per-frame
  log-probabilities;
* ``val_normalized_levenshtein``: how well the measured model spells.

``--model WORKDIR`` (repeatable) measures finished CTC runs of your own instead of training the
sizes; each result is keyed by the workdir's name.

Nothing here is tuned on test: the clips are the validation words.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from aslx import files  # noqa: E402
from aslx.export.predictor import Predictor  # noqa: E402
from aslx.formats import spelled  # noqa: E402
from aslx.run import results as results_lib  # noqa: E402
from benchmarks import real_data  # noqa: E402

SIZES = ("tiny", "small")


def timed(fn, clips) -> tuple[list, float]:
    """Outputs of ``fn`` on every clip and the median milliseconds per clip (after one
    warm-up call, so JAX's compilation is not counted)."""
    fn(clips[0])
    outputs, times = [], []
    for clip in clips:
        start = time.perf_counter()
        outputs.append(fn(clip))
        times.append((time.perf_counter() - start) * 1e3)
    return outputs, statistics.median(times)


def measure(workdir: Path, clips: list[np.ndarray], out: Path) -> dict:
    from aslx.export import tflite

    written = tflite.export(workdir, out, quantize="float16")
    graph, model = Predictor(out), Predictor(workdir)
    graph_predictions, tflite_ms = timed(graph, clips)
    jax_predictions, jax_ms = timed(model, clips)
    agree = [g.ids == j.ids for g, j in zip(graph_predictions, jax_predictions)]
    errors = []
    for clip in clips:
        reference = model.log_probs(clip)
        errors.append(np.abs(graph.log_probs(clip) - reference).max() / np.abs(reference).max())
    run = results_lib.read(workdir)
    return {
        "tflite_ms": tflite_ms,
        "jax_ms": jax_ms,
        "tflite_bytes": written["bytes"],
        "decode_agreement": float(np.mean(agree)),
        "max_rel_logit_error": float(np.max(errors)),
        "clips": len(clips),
        "workdir": str(workdir),
        "finetune_steps": run["steps"],
        # How well the measured model spells: agreement on an all-blank model is no test.
        "val_normalized_levenshtein": run["val/normalized_levenshtein"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    real_data.add_data_arguments(parser)
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
        "--model",
        type=Path,
        action="append",
        default=[],
        help="a finished CTC finetuning workdir to measure instead of training --sizes "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    archive = args.data / "landmarks_f16.npz"
    if not archive.is_file():
        print(f"error: {archive} not found (--data)", file=sys.stderr)
        return 2
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
        results[workdir.name] = measure(workdir, clips, args.workdir / f"export_{workdir.name}")
    for size in [] if args.model else args.sizes:
        workdir = real_data.spelling_model(size, steps[size], args.data, args.workdir)
        results[size] = measure(workdir, clips, args.workdir / f"export_{size}")
    width = max(6, *map(len, results))
    print(f"\n{'model':<{width}}{'tflite ms':>10}{'jax ms':>8}{'MB':>7}{'agree':>7}{'rel err':>10}")
    for name, r in results.items():
        print(
            f"{name:<{width}}{r['tflite_ms']:>10.2f}{r['jax_ms']:>8.2f}"
            f"{r['tflite_bytes'] / 1e6:>7.2f}{r['decode_agreement']:>7.3f}"
            f"{r['max_rel_logit_error']:>10.2e}"
        )
    files.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
