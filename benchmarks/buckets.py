"""Length buckets against padding every clip to ``max_frames``: real frames trained per second.

    python benchmarks/buckets.py --json runs/bench/buckets.json
    python benchmarks/buckets.py --smoke --phrases 24 --batch 4 --steps 2 --rounds 1 \\
        --max-frames 64 --json /tmp/buckets.json   # seconds: it runs

The tiny finetuning recipe (``configs/finetune_tiny.py``: model, augmentation, EMA, guard; the
step of ``benchmarks/train_step.py``) trains on a synthetic fingerspelling record set
(``aslx.synthetic``, ``--phrases`` phrases) at ``max_frames`` 384 (``--max-frames``), fed by
the training loop's own stream (:func:`aslx.training.loop.global_train_batches`) twice in one
process: ``data.buckets=none`` (every batch 384 frames) and ``data.buckets=auto`` (sorted
windows cut to the record set's bucket bounds). Every length is compiled before timing; then
both streams run ``--steps`` steps each, in interleaved rounds so both see the same machine
load. Throughput counts real (non-padding) frames, host pipeline included.

Prints a table and writes ``{"padded_frames_per_s", "bucketed_frames_per_s", "speedup",
"padding_share", "bucketed_padding_share", "bounds"}`` (``padding_share``: padding frames / all
frames of the padded stream). ``--smoke`` compiles a one-block step without augmentation
(``benchmarks/harness.py``); its figures mean nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import jax  # noqa: E402

from aslx import synthetic  # noqa: E402
from aslx.input import pipeline  # noqa: E402
from aslx.input.batch import device_batch  # noqa: E402
from aslx.landmarks import presets  # noqa: E402
from aslx.records.metadata import RecordSet  # noqa: E402
from aslx.training import config as config_lib  # noqa: E402
from aslx.training import loop  # noqa: E402
from benchmarks import harness, train_step  # noqa: E402
from configs import finetune_tiny  # noqa: E402

MAX_FRAMES = 384


def make_records(folder: Path, phrases: int) -> RecordSet:
    synthetic.record_set(folder, num_phrases=phrases, val_fraction=0.1, num_shards=4)
    return RecordSet(folder / "records")


def stream(records: RecordSet, batch: int, buckets: str, max_frames: int = MAX_FRAMES):
    """The training loop's stream of ``records`` (``data.buckets=buckets``) and its bounds."""
    config = finetune_tiny.get_config()
    config.data.max_frames = max_frames
    config.batch_size = batch
    config.data.dir = str(records.folder)
    config.data.buckets = buckets
    input_config = config_lib.input_config(config, presets.get(config.data.preset))
    bounds = config_lib.bucket_bounds(config, records)
    return loop.global_train_batches(config, records, input_config, 0), bounds


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--phrases", type=int, default=300, help="synthetic phrases (300)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (16)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per stream (40)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (4)")
    parser.add_argument(
        "--max-frames", type=int, default=MAX_FRAMES, help=f"frames of a padded clip ({MAX_FRAMES})"
    )
    harness.add_smoke_argument(parser)
    args = harness.parse_args(parser, argv)

    frames = args.max_frames
    with tempfile.TemporaryDirectory() as tmp:
        records = make_records(Path(tmp), args.phrases)
        # --smoke: one block, no augmentation (compiling the recipe's takes a CPU minutes).
        augment, layers = (False, 1) if args.smoke else (True, None)
        step, init_state, _ = train_step.build(
            "tiny", "ctc", "float32", augment, 1, frames, layers=layers
        )
        state = init_state()
        key = jax.random.key(0)
        padded, _ = stream(records, args.batch, "none", frames)
        bucketed, bounds = stream(records, args.batch, "auto", frames)
        first = device_batch(next(padded))  # clip ids are names, not device data
        for bound in bounds:  # compile every length before timing
            warm = jax.device_put(pipeline.trim_frames(first, bound))
            state, metrics = step(state, warm, key)
        jax.block_until_ready(metrics["loss"])

        totals = {"padded": [0.0, 0, 0], "bucketed": [0.0, 0, 0]}  # seconds, real, all frames
        per_round = max(args.steps // args.rounds, 1)
        for _ in range(args.rounds):
            for name, batches in (("padded", padded), ("bucketed", bucketed)):
                start = time.perf_counter()
                for _ in range(per_round):
                    batch = device_batch(next(batches))
                    state, metrics = step(state, jax.device_put(batch), key)
                    totals[name][1] += int(batch["frame_mask"].sum())
                    totals[name][2] += batch["frame_mask"].size
                jax.block_until_ready(metrics["loss"])
                totals[name][0] += time.perf_counter() - start

    rate = {name: real / seconds for name, (seconds, real, _) in totals.items()}
    result = {
        "padded_frames_per_s": rate["padded"],
        "bucketed_frames_per_s": rate["bucketed"],
        "speedup": rate["bucketed"] / rate["padded"],
        "padding_share": 1 - totals["padded"][1] / totals["padded"][2],
        "bucketed_padding_share": 1 - totals["bucketed"][1] / totals["bucketed"][2],
        "bounds": list(bounds),
        "steps": per_round * args.rounds,
        "batch": args.batch,
        "max_frames": frames,
        "device": harness.device(),
    }
    rows = [
        (name, f"{rate[name]:,.0f}", f"{result[share]:.1%}")
        for name, share in (("padded", "padding_share"), ("bucketed", "bucketed_padding_share"))
    ]
    harness.print_table(("stream", "real frames/s", "padding"), rows)
    print(f"speedup {result['speedup']:.2f}× (bounds {bounds}, {result['device']})")
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
