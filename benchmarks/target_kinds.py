"""Which Data2vec target a recipe should regress, judged where it matters: downstream.

    python benchmarks/target_kinds.py --model small --dtype bfloat16 --json P   # a GPU
    python benchmarks/target_kinds.py --model tiny --pretrain-steps 30 --finetune-steps 30 \\
        --phrases 96 --batch 8 --json P                                          # a CPU run
    python benchmarks/target_kinds.py --model tiny --smoke --phrases 24 --json P  # it runs

``target_kind='ffn'`` regresses each block's MLP output before the residual add (data2vec
2.0); ``'residual'`` the residual stream after the block. On the tiny encoder (2 blocks) ``ffn``
won on real data (docs/benchmarks-log.md, "2026-11-27 — Data2vec's own targets, on the
clips"), where the residual stream is mostly the stem's projection of the input; whether that
holds at 24 blocks is what this measures.

On a synthetic fingerspelling record set (``aslx.synthetic``, ``--phrases`` phrases, written
once under ``--workdir``), the model's pretraining recipe (``configs/pretrain_<model>.py``)
runs ``--pretrain-steps`` steps with each target kind; then its finetuning recipe
(``configs/finetune_<model>.py``) runs ``--finetune-steps`` steps from each encoder and from
scratch, same seed, and each is scored on the val split (normalized Levenshtein, higher is
better). Synthetic hands are not signers: the figures rank the two kinds as starting points
for this encoder, they do not say how much pretraining gains on real data
(``benchmarks/real_data.py --task pretrain_gain``).

Prints a table and writes ``{"model", "pretrain_steps", "finetune_steps", "scratch_val",
"ffn_val", "residual_val", "ffn_gain", "residual_gain", "pretrain_seconds": {kind: s}}``
(``*_gain``: minus scratch).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

from aslx import synthetic  # noqa: E402
from aslx.training.loop import completed  # noqa: E402
from benchmarks import harness  # noqa: E402

KINDS = ("ffn", "residual")
METRIC = "val/normalized_levenshtein"


def quiet(*args, **kwargs) -> None:
    pass


def recipe(args: argparse.Namespace, kind: str):
    """``configs/{kind}_{model}.py`` (``kind``: ``pretrain`` or ``finetune``) with the
    benchmark's compute dtype and frames, augmentation on: the recipe
    ``benchmarks/train_step.py`` times."""
    config = importlib.import_module(f"configs.{kind}_{args.model}").get_config()
    config.model.compute_dtype = args.dtype
    config.augment.enabled = True
    config.data.max_frames = args.frames
    return config


def short_run(config, records: Path, steps: int, batch: int) -> None:
    """``config`` cut to a short run on ``records``: ``steps`` steps, one checkpoint and one
    evaluation at the end, a tenth of the steps to warm up (with ``--smoke``, cut further by
    :func:`benchmarks.harness.tiny_run`)."""
    config.data.dir = str(records)
    config.batch_size = batch
    config.total_steps = steps
    config.warmup_steps = max(1, steps // 10)
    config.log_every = max(1, steps // 5)
    config.checkpoint_every = steps
    if "eval_every" in config:
        config.eval_every = steps
    if harness.smoke():
        harness.tiny_run(config)


def pretrain(args, records: Path, kind: str, workdir: Path) -> dict:
    from pretrain.train import train

    config = recipe(args, "pretrain")
    short_run(config, records, args.pretrain_steps, args.batch)
    config.data2vec.target_kind = kind
    config.collapse_after = args.pretrain_steps  # a run this short is all warm-up
    return completed(train(config, str(workdir), print_fn=quiet), workdir)


def finetune(args, records: Path, init_from: Path | None, workdir: Path) -> float:
    from finetune.train import train

    config = recipe(args, "finetune")
    short_run(config, records, args.finetune_steps, args.batch)
    config.init_from = str(init_from) if init_from else ""
    config.data.test_split = ""
    return float(completed(train(config, str(workdir), print_fn=quiet), workdir)[METRIC])


def measure(args: argparse.Namespace) -> dict:
    """Every run of the comparison (records written once, in ``--workdir`` or a temporary
    folder): the JSON's fields."""
    with tempfile.TemporaryDirectory() as scratch_dir:
        base = Path(args.workdir) if args.workdir else Path(scratch_dir)
        if not (base / "records" / "metadata.json").is_file():
            synthetic.record_set(base, num_phrases=args.phrases, val_fraction=0.2, num_shards=4)
        records = base / "records"
        result = {
            "model": args.model,
            "pretrain_steps": args.pretrain_steps,
            "finetune_steps": args.finetune_steps,
            "pretrain_seconds": {},
        }
        result["scratch_val"] = finetune(args, records, None, base / "finetune_scratch")
        print(f"scratch: val normalized Levenshtein {result['scratch_val']:.4f}")
        for kind in KINDS:
            pretrained = pretrain(args, records, kind, base / f"pretrain_{kind}")
            result["pretrain_seconds"][kind] = pretrained["seconds"]
            score = finetune(args, records, base / f"pretrain_{kind}", base / f"finetune_{kind}")
            result[f"{kind}_val"] = score
            result[f"{kind}_gain"] = score - result["scratch_val"]
            print(f"{kind}: val normalized Levenshtein {score:.4f}")
    return result


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="small", help="tiny, small or large (small)")
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16 (float32)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of every run (64)")
    parser.add_argument("--frames", type=int, default=128, help="max_frames (128)")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="each kind (300)")
    parser.add_argument("--finetune-steps", type=int, default=300, help="each start (300)")
    parser.add_argument("--phrases", type=int, default=600, help="synthetic phrases (600)")
    parser.add_argument("--workdir", default=None, help="runs' folder (default: a temporary)")
    harness.add_smoke_argument(parser)
    args = harness.parse_args(parser, argv)
    if min(args.batch, args.frames, args.pretrain_steps, args.finetune_steps, args.phrases) < 1:
        print("error: every count must be at least 1", file=sys.stderr)
        return 2

    result = measure(args)

    steps = f"{args.pretrain_steps} pretraining + {args.finetune_steps} finetuning steps"
    print(f"\n{args.model}, {steps}")
    rows = [("scratch", f"{result['scratch_val']:.4f}", "")]
    rows += [(k, f"{result[f'{k}_val']:.4f}", f"{result[f'{k}_gain']:+.4f}") for k in KINDS]
    harness.print_table(("start", "val NL", "gain"), rows)
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
