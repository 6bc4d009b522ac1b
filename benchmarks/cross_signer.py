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

and, with ``--seeds N`` (3; 0 skips it), whether Data2vec pretraining pays across signers:
the tiny encoder pretrained on the pooled clips of every signer, labels unused
(``configs/cross_signer_pretrain.py``), then the recipe finetuned from it and from scratch with
all the labels and with a tenth of them (every tenth clip of each train source;
``mp_holistic_35signs``' tenth is ``real_data.py``'s), ``N`` seeds each, paired by seed and
scored on the val signers (each run's checkpoint chosen on them, as the recipe's).

The two models are scored on every clip of ``xsigner/labelled_val_f16.npz`` (589 clips of 41 signers
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
pretrain_gain_cross_signer     ``{all_labels, few_labels}``: each ``gain`` (pretrained − scratch
                               val-signer top-1, the mean over seeds), ``stderr`` (of the
                               paired gaps; ``None`` with one seed), ``seeds``,
                               ``scratch_top1``, ``pretrained_top1`` (per seed), ``clips``
pretrain_workdir               the pretraining run (``--config.init_from`` reads it)
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
from aslx.records.metadata import RecordSet  # noqa: E402
from aslx.run import results as results_lib  # noqa: E402
from benchmarks import harness, real_data  # noqa: E402
from configs import cross_signer, cross_signer_pretrain, isolated_tiny  # noqa: E402

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
#: The pretraining pool's sources (``configs/cross_signer_pretrain.py`` says why these).
PRETRAIN_SOURCES = (
    (None, None),
    ("train", "labelled_train_f16.npz"),
    ("train", "unlabelled_f16.npz"),
)
#: The few-label finetunes keep every this many clips of each train source.
FEW_LABEL_EVERY = 10
#: Camera width / height of every source (``configs/cross_signer.py`` says why).
CAMERA_ASPECT = 4 / 3
#: Clips of each file a ``--smoke`` run reads.
SMOKE_CLIPS = 12
CONFUSIONS = 10


def archive_rows(src: Path, out: Path, rows: slice) -> Path:
    """The clips ``rows`` of archive ``src`` (every array kept) in ``out``, written once."""
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with np.load(src) as archive:
            arrays = {k: archive[k] if k == "classes" else archive[k][rows] for k in archive}
        np.savez(out, **arrays)
    return out


def source_file(args, name: str | None, every: int = 1) -> Path:
    """The archive a source reads (its first :data:`SMOKE_CLIPS` with ``--smoke``), every
    ``every``-th clip of it (``--data``'s archive whole: its clips keep their numbers)."""
    src = args.data / harness.ARCHIVE if name is None else args.xsigner / name
    if name is None or (every == 1 and not harness.smoke()):
        return src
    end = SMOKE_CLIPS if harness.smoke() else None
    return archive_rows(src, args.workdir / "data" / f"every{every}" / name, slice(0, end, every))


def ingest_once(args, name: str, sources, every: int = 1, boundaries=None) -> Path:
    """The record set ``WORKDIR/name`` of ``sources`` (``(split, file)`` pairs as
    :data:`SOURCES`; every ``every``-th clip of each ``xsigner`` file), ingested once.
    ``boundaries``: the split of ``--data``'s clip numbers (default its own; a ``--smoke`` run
    keeps only :data:`benchmarks.real_data.SMOKE_SPLITS`)."""
    out = args.workdir / name
    if not (out / "metadata.json").is_file():
        specs = [
            writer.SourceSpec(source_file(args, file, every if split == "train" else 1), split)
            for split, file in sources
        ]
        if harness.smoke():
            boundaries = real_data.clip_boundaries(real_data.SMOKE_SPLITS)
        writer.ingest(
            "npz",
            specs,
            out,
            num_shards=4,
            overwrite=True,
            camera_aspect=CAMERA_ASPECT,
            reader_options={"boundaries": boundaries} if boundaries else {},
            progress=not harness.smoke(),
        )
    return out


def recipe_records(args) -> Path:
    """The record set of ``configs/cross_signer.py``."""
    return ingest_once(args, "records", SOURCES)


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


def pretrain_gain(args, recipe: Path) -> dict:
    """Pretrains on the pooled clips, then finetunes the recipe from it and from scratch with
    all and with a tenth of the labels, ``args.seeds`` seeds each (the scratch run of
    ``args.seed`` with all labels is ``recipe``); the module docstring's keys."""
    from pretrain.train import train as pretrain

    pool = ingest_once(args, "records_pretrain", PRETRAIN_SOURCES)
    config = cross_signer_pretrain.get_config()
    config.data.dir = str(pool)
    config.seed = args.seed
    pretrained = args.workdir / "pretrain"
    pretrain_result = real_data.run(config, pretrained, pretrain)
    few = ingest_once(
        args, "records_few", SOURCES, FEW_LABEL_EVERY, real_data.few_label_boundaries()
    )
    labels = {"all_labels": recipe_records(args), "few_labels": few}
    gains = {}
    for name, records in labels.items():
        top1 = {"scratch": [], "pretrained": []}
        for seed in range(args.seeds):
            for start, scores_of_start in top1.items():
                config = cross_signer.get_config()
                config.update(seed=seed, init_from=str(pretrained) if start == "pretrained" else "")
                config.data.dir = str(records)
                workdir = args.workdir / f"{name}_{start}_seed{seed}"
                if (name, start, seed) == ("all_labels", "scratch", args.seed):
                    workdir = recipe
                result = real_data.run(config, workdir)
                scores_of_start.append(result[f"{cross_signer.VAL_SIGNERS}/top1"])
        gain, stderr = real_data.paired_gain(top1["pretrained"], top1["scratch"])
        gains[name] = {
            "gain": gain,
            "stderr": stderr,
            "seeds": list(range(args.seeds)),
            "scratch_top1": top1["scratch"],
            "pretrained_top1": top1["pretrained"],
            "clips": RecordSet(records).splits.get("train", 0),
        }
    return {
        "pretrain_gain_cross_signer": gains,
        "pretrain_workdir": str(pretrained),
        "pretrain_steps": pretrain_result["steps"],
        "pretrain_clips": RecordSet(pool).splits.get("train", 0),
    }


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
    parser.add_argument("--seed", type=int, default=0, help="both recipes' seed (0)")
    harness.add_seeds_argument(
        parser, 3, "seeds of each pretraining-gain arm (3; 0 skips pretraining)", 0
    )
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2
    clips = val_clips(args)
    result = {"val_signers_clips": len(clips), "val_signers": len({c.group for c in clips})}
    runs = train_both(args)
    for prefix, workdir in runs.items():
        result |= {prefix + k: v for k, v in scores(workdir, clips).items()}
    if args.seeds > 0:
        result |= pretrain_gain(args, runs[""])
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
    for name, gain in result.get("pretrain_gain_cross_signer", {}).items():
        stderr = "" if gain["stderr"] is None else f" ± {gain['stderr']:.3f}"
        print(f"pretraining gain, {name.replace('_', ' ')}: {gain['gain']:+.3f}{stderr}")
    harness.write_json(args.json, result | {"device": harness.device()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
