"""Isolated signs of people the model never saw: the one-signer recipe against the recipe for
new signers, scored side by side on the val signers of ``xsigner``.

    python benchmarks/cross_signer.py --json runs/bench/cross_signer.json \\
        --workdir runs/cross_signer
    python -m aslx.predict --model runs/cross_signer/recipe \\
        ../shared/data/xsigner/labelled_val_f16.npz

Two models, trained in one run:

* ``baseline_``: the one-signer recipe (``configs/isolated_tiny.py``) on
  ``mp_holistic_35signs`` alone, the model whose accuracy on its own signer the other
  benchmarks report;
* the recipe for new signers (``configs/cross_signer.py``): the same signer plus the train
  signers of ``xsigner`` (labelled clips and one-hand letter photos), its checkpoint chosen on
  the val signers.

Both are scored on every clip of ``xsigner/labelled_val_f16.npz`` (589 clips of 41 signers
neither model trained on) through :class:`aslx.export.predictor.Predictor`, as
``python -m aslx.predict`` reads them, and on ``mp_holistic_35signs``' test split (the one
signer; ``in_signer_test_top1``, from each run's ``results.json``). Nothing is tuned on that
test split nor on the held-out third group of signers, which this project never sees.

The JSON (each key also with the ``baseline_`` prefix for the one-signer model):

=============================  ==============================================================
key                            meaning
=============================  ==============================================================
workdir                        the trained run (``python -m aslx.predict --model`` reads it)
val_signers_top1, _top5        accuracy over the val signers' clips
val_signers_macro              the mean over classes of each class's top-1
val_signers_letters_top1       top-1 over the clips of single letters, ``_words_top1`` the rest
per_class_top1                 ``{class: [top-1, clips]}``
per_signer_top1                ``{signer: [top-1, clips]}`` (a signer is a repository)
confusions                     the most frequent ``[true, predicted, clips]``
in_signer_test_top1            ``mp_holistic_35signs`` test top-1 (must stay ≥ 0.98)
=============================  ==============================================================

``--smoke`` runs it in seconds on a few clips of each file (``benchmarks/harness.py``).
"""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import numpy as np  # noqa: E402

from aslx.export.predictor import Predictor  # noqa: E402
from aslx.formats import Clip, npz  # noqa: E402
from aslx.records import writer  # noqa: E402
from aslx.run import results as results_lib  # noqa: E402
from benchmarks import harness, real_data  # noqa: E402
from configs import cross_signer, isolated_tiny  # noqa: E402

DEFAULT_XSIGNER = harness.ROOT.parent / "shared" / "data" / "xsigner"
#: The recipe's sources: (split, file of ``--xsigner``); ``None``: ``--data``'s archive, which
#: keeps its own train / val / test split.
SOURCES = (
    (None, None),
    ("train", "labelled_train_f16.npz"),
    ("train", "handsonly_train_f16.npz"),
    (cross_signer.VAL_SIGNERS, "labelled_val_f16.npz"),
)
VAL_FILE = "labelled_val_f16.npz"
#: Camera width / height of every source (``configs/cross_signer.py`` says why).
CAMERA_ASPECT = 4 / 3
#: Clips of each file a ``--smoke`` run reads.
SMOKE_CLIPS = 12
CONFUSIONS = 10


def smoke_slice(src: Path, out: Path) -> Path:
    """The first :data:`SMOKE_CLIPS` clips of archive ``src`` (every array kept) in ``out``."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with np.load(src) as archive:
            arrays = {
                k: archive[k] if k == "classes" else archive[k][:SMOKE_CLIPS] for k in archive
            }
        np.savez(out, **arrays)
    return out


def source_file(args, name: str | None) -> Path:
    """The archive a source reads (a small slice of it with ``--smoke``)."""
    src = args.data / harness.ARCHIVE if name is None else args.xsigner / name
    if harness.smoke() and name is not None:
        return smoke_slice(src, args.workdir / "data" / name)
    return src


def recipe_records(args) -> Path:
    """The record set of ``configs/cross_signer.py``, ingested once under ``--workdir``."""
    out = args.workdir / "records"
    if not (out / "metadata.json").is_file():
        specs = [writer.SourceSpec(source_file(args, name), split) for split, name in SOURCES]
        options = {}
        if harness.smoke():
            options = {"boundaries": real_data.clip_boundaries(real_data.SMOKE_SPLITS)}
        writer.ingest(
            "npz",
            specs,
            out,
            num_shards=4,
            overwrite=True,
            camera_aspect=CAMERA_ASPECT,
            reader_options=options,
            progress=not harness.smoke(),
        )
    return out


def val_clips(args) -> list[Clip]:
    """The val signers' clips, read as ``python -m aslx.predict`` reads the file."""
    return [c for c in npz.read(source_file(args, VAL_FILE)) if isinstance(c, Clip)]


def top1(hits: list[bool]) -> float:
    return float(np.mean(hits)) if hits else float("nan")


def scores(workdir: Path, clips: list[Clip]) -> dict:
    """The val-signer figures of the run in ``workdir`` (the module docstring's keys)."""
    predictor = Predictor(workdir)
    predicted = [predictor(clip.landmarks) for clip in clips]
    names = predictor.vocab.classes
    truth = [clip.label for clip in clips]
    best = [names[p.ids[0]] for p in predicted]
    hits = [t == b for t, b in zip(truth, best)]
    top5 = [t in {names[i] for i in p.ids[:5]} for t, p in zip(truth, predicted)]
    by_class, by_signer = collections.defaultdict(list), collections.defaultdict(list)
    for clip, hit in zip(clips, hits):
        by_class[clip.label].append(hit)
        by_signer[clip.group].append(hit)
    confusions = collections.Counter((t, b) for t, b in zip(truth, best) if t != b)
    results = results_lib.read(workdir)
    return {
        "workdir": str(workdir),
        "val_signers_top1": top1(hits),
        "val_signers_top5": top1(top5),
        "val_signers_macro": float(np.mean([top1(v) for v in by_class.values()])),
        "val_signers_letters_top1": top1([h for t, h in zip(truth, hits) if len(t) == 1]),
        "val_signers_words_top1": top1([h for t, h in zip(truth, hits) if len(t) > 1]),
        "per_class_top1": {k: [top1(v), len(v)] for k, v in sorted(by_class.items())},
        "per_signer_top1": {k: [top1(v), len(v)] for k, v in sorted(by_signer.items())},
        "confusions": [[t, b, n] for (t, b), n in confusions.most_common(CONFUSIONS)],
        "in_signer_test_top1": results.get("test/top1"),
    }


def train_both(args) -> dict[str, Path]:
    """Trains (or finds trained) the one-signer and the multi-signer recipe; their workdirs."""
    baseline = isolated_tiny.get_config()
    baseline.data.dir = str(real_data.records("signs", args.data, args.workdir))
    recipe = cross_signer.get_config()
    recipe.data.dir = str(recipe_records(args))
    runs = {"baseline_": args.workdir / "baseline", "": args.workdir / "recipe"}
    for workdir, config in zip(runs.values(), (baseline, recipe)):
        config.seed = args.seed
        real_data.run(config, workdir)
    return runs


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    harness.add_data_arguments(parser)
    parser.set_defaults(workdir=ROOT / "runs" / "cross_signer")
    parser.add_argument(
        "--xsigner",
        type=Path,
        default=DEFAULT_XSIGNER,
        help=f"the folder of xsigner's archives (default {DEFAULT_XSIGNER})",
    )
    parser.add_argument("--seed", type=int, default=0, help="both runs' seed (0)")
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2
    clips = val_clips(args)
    result = {"val_signers_clips": len(clips), "val_signers": len({c.group for c in clips})}
    for prefix, workdir in train_both(args).items():
        result |= {prefix + k: v for k, v in scores(workdir, clips).items()}
    keys = ("top1", "top5", "macro", "letters_top1", "words_top1")
    harness.print_table(
        ("model", *(f"val signers {k}" for k in keys), "in-signer test"),
        [
            (
                name,
                *(f"{result[f'{prefix}val_signers_{k}']:.3f}" for k in keys),
                f"{result[prefix + 'in_signer_test_top1'] or float('nan'):.3f}",
            )
            for name, prefix in (("one signer", "baseline_"), ("many signers", ""))
        ],
    )
    harness.write_json(args.json, result | {"device": harness.device()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
