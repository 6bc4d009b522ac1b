"""CTC prefix beam search: the batched JAX search against TensorFlow's C++ decoder and the NumPy
reference, on the same outputs of a trained tiny spelling model.

    python benchmarks/decode.py --json runs/bench/decode.json
    python benchmarks/decode.py --smoke --steps 2 --json /tmp/decode.json   # seconds: it runs

The model is ``configs/bench/spelling_model.py``, the ``spelling`` recipe of
``benchmarks/real_data.py`` (words spelled from real ``mp_holistic_35signs`` letter clips, tiny
encoder, ``hands_pose``), trained for ``--steps`` steps once and reused from ``--workdir``
(``inference.py`` measures the same one). Its
log-probabilities on the val split (200 words) are computed once; then both searches decode
them with beam ``--beam``, side by side in one run:

* ``python_ms_per_clip``: :func:`aslx.decoding.ctc.prefix_beam_search`, one clip at a time;
* ``batched_ms_per_clip``: :func:`aslx.decoding.ctc.batched_beam_search`, the whole split as
  one batch on the default device, compiled beforehand (the best of ``--repeats`` runs);
* ``tensorflow_ms_per_clip``: TensorFlow's C++ ``tf.nn.ctc_beam_search_decoder``, the peer's
  way, on the same batch; ``speedup_over_tensorflow`` and ``tensorflow_agreement`` beside it;
* ``speedup``: NumPy over batched; ``agreement``: the share of clips both decode alike;
  ``val_normalized_levenshtein`` and ``mean_labels_per_clip`` say the model really spells
  (1,500 steps leave this recipe emitting only blanks, on which any two searches agree).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import jax  # noqa: E402
import numpy as np  # noqa: E402

from aslx.decoding import ctc  # noqa: E402
from aslx.input import batch as batch_lib  # noqa: E402
from aslx.model import inference  # noqa: E402
from aslx.run import reader  # noqa: E402
from aslx.tf_cpu import tensorflow  # noqa: E402
from benchmarks import harness, real_data  # noqa: E402


def val_log_probs(workdir: Path, record_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``(log_probs [N, T, V], frame_mask [N, T], blank_id)`` of the trained model on val."""
    model = reader.load_for_inference(workdir)
    log_probs, masks = [], []
    for batch in model.eval_batches(record_dir, "val", 50, process_index=0, process_count=1):
        out = model.forward(model.params, batch_lib.device_batch(batch))
        real = batch["example_mask"].astype(bool)
        log_probs.append(np.asarray(out["log_probs"])[real])
        masks.append(batch["frame_mask"][real].astype(bool))
    return np.concatenate(log_probs), np.concatenate(masks), inference.ctc_layout(model.vocab)[1]


def tensorflow_beam_search(
    log_probs: np.ndarray, mask: np.ndarray, blank_id: int, beam: int
) -> tuple[list[list[int]], float]:
    """``(labellings, seconds)`` of ``tf.nn.ctc_beam_search_decoder`` (TensorFlow's C++ prefix
    beam search, no repeat merging across blanks: the same search) on the whole batch at once.
    Its blank is the last class, so the blank's column moves there and the labels map back."""
    tf = tensorflow()
    order = np.array([c for c in range(log_probs.shape[2]) if c != blank_id] + [blank_id])
    inputs = tf.constant(np.transpose(log_probs[:, :, order], (1, 0, 2)).astype(np.float32))
    lengths = tf.constant(mask.sum(1).astype(np.int32))
    started = time.perf_counter()
    decoded, _ = tf.nn.ctc_beam_search_decoder(inputs, lengths, beam_width=beam, top_paths=1)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    seconds = time.perf_counter() - started
    return [order[row[row >= 0]].tolist() for row in dense], seconds


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    harness.add_data_arguments(parser)
    parser.add_argument(
        "--steps", type=int, default=3000, help="training steps (default 3000, the recipe's)"
    )
    parser.add_argument("--beam", type=int, default=8, help="prefixes kept (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batched runs (default 3)")
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2

    workdir = real_data.spelling_model("tiny", args.steps, args.data, args.workdir)
    record_dir = real_data.records("spelled", args.data, args.workdir)
    trained = json.loads((workdir / "results.json").read_text())
    log_probs, mask, blank_id = val_log_probs(workdir, record_dir)
    clips = len(log_probs)

    started = time.perf_counter()
    reference = [
        ctc.prefix_beam_search(lp[m], blank_id, args.beam) for lp, m in zip(log_probs, mask)
    ]
    python_s = time.perf_counter() - started

    device_inputs = jax.device_put((log_probs.astype(np.float32), mask))
    search = lambda: jax.block_until_ready(  # noqa: E731
        ctc.batched_beam_search(*device_inputs, blank_id=blank_id, beam=args.beam)
    )
    search()  # compile
    batched_s = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        labels, lengths = search()
        batched_s = min(batched_s, time.perf_counter() - started)
    labels, lengths = jax.device_get((labels, lengths))
    batched = [row[:n].tolist() for row, n in zip(labels, lengths)]
    tensorflow, tensorflow_s = tensorflow_beam_search(log_probs, mask, blank_id, args.beam)
    for _ in range(args.repeats - 1):
        tensorflow_s = min(
            tensorflow_s, tensorflow_beam_search(log_probs, mask, blank_id, args.beam)[1]
        )

    result = {
        "clips": clips,
        "frames": int(log_probs.shape[1]),
        "symbols": int(log_probs.shape[2]),
        "beam": args.beam,
        "device": jax.devices()[0].device_kind,
        "python_ms_per_clip": python_s / clips * 1e3,
        "batched_ms_per_clip": batched_s / clips * 1e3,
        "speedup": python_s / batched_s,
        "agreement": float(np.mean([a == b for a, b in zip(reference, batched)])),
        # the peer's way: TensorFlow's C++ decoder on the same batch
        "tensorflow_ms_per_clip": tensorflow_s / clips * 1e3,
        "speedup_over_tensorflow": tensorflow_s / batched_s,
        "tensorflow_agreement": float(np.mean([a == b for a, b in zip(reference, tensorflow)])),
        # what the model is worth (a model that emits only blanks would agree trivially)
        "val_normalized_levenshtein": trained["val/normalized_levenshtein"],
        "mean_labels_per_clip": float(np.mean([len(b) for b in batched])),
    }
    header = (
        "clips", "beam", "python ms/clip", "tensorflow ms/clip", "batched ms/clip",
        "speedup", "over tensorflow", "agreement", "tensorflow agreement",
    )  # fmt: skip
    values = (
        f"{clips}",
        f"{args.beam}",
        f"{result['python_ms_per_clip']:.2f}",
        f"{result['tensorflow_ms_per_clip']:.2f}",
        f"{result['batched_ms_per_clip']:.3f}",
        f"{result['speedup']:.1f}",
        f"{result['speedup_over_tensorflow']:.1f}",
        f"{result['agreement']:.3f}",
        f"{result['tensorflow_agreement']:.3f}",
    )
    harness.print_table(header, [values], "r" * len(header))
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
