"""What the finetuning program reaches on real landmarks (``mp_holistic_35signs``), on a CPU.

    python benchmarks/real_data.py --task isolated --json runs/bench/isolated.json
    python benchmarks/real_data.py --task spelling --json runs/bench/spelling.json
    python benchmarks/real_data.py --task joint_gate --json runs/bench/joint_gate.json
    python benchmarks/real_data.py --task pretrain_gain --json runs/bench/pretrain_gain.json

Every run uses the data's fixed split: it trains on ``train``, picks the checkpoint (and raw or
EMA weights) on ``val`` and scores ``test`` once at the end; nothing is tuned on test.

* ``isolated``: 35-class classification of the 30-frame clips (``configs/isolated_tiny.py``);
  ``test_accuracy`` is top-1.
* ``spelling``: CTC over characters on words spelled by joining real letter clips of one split
  (``--format npz-spelled``: 2,000 train, 200 val, 400 test words of 3–7 letters), both hands
  and the upper-body pose (``hands_pose``; ``configs/bench/spelling.py``);
  ``test_normalized_levenshtein`` is the Kaggle metric.
* ``joint_gate``: the isolated task on all 543 landmarks, once without a gate and once with a
  hard-concrete joint gate and its L0 penalty (``configs/bench/joint_gate.py``); reports the
  landmarks the gate keeps and both test accuracies.
* ``pretrain_gain``: Data2vec pretraining of the tiny encoder on the train split's 1,470 clips
  (30 frames each, labels unused; every class, so both the letters spelling needs and the word
  signs of the isolated task; ``configs/bench/few_label_pretrain.py``), then both tasks
  finetuned with 10 % of the training labels (clips 5, 15, 25 and 35 of each class,
  :data:`LABELLED_CLIPS`; 200 words spelled from them; ``configs/bench/few_label.py``), from
  the pretrained encoder and from scratch. Each start gets its own peak
  learning rate, the better on val of :data:`FINETUNE_LRS` with seed 0; then ``--seeds``
  finetunes at that rate (seeds 0, 1, …: initialisation of new layers, augmentation, batch
  order) are each scored on test once. The JSON's ``*_test_*`` fields are their mean
  (``*_per_seed`` lists them), and ``{task}_test_gain`` ± ``{task}_test_gain_stderr`` is
  pretrained minus scratch, paired by seed (:func:`paired_gain`). Seeds move the test scores
  by up to 6 points (isolated) and 9 (spelling) on this data, more than the gains measured.
  Each task's encoder is pretrained reading the landmarks as its finetunes do: isolated on
  the group frame (``configs.bench.few_label.group_frame_preprocessing``, six to seven points
  more on val than the body frame with four labelled clips a class), spelling on the body frame
  (the group frame loses it ten points and more).

Every recipe is a file in ``configs/`` whose docstring has the command that trains it alone.
The records are written once under ``--workdir`` (default ``runs/real_data``) and reused; each
training run gets its own sub-folder, and an existing one is resumed, so delete it to retrain.

``--smoke`` runs a task in seconds to show the script works (``benchmarks/harness.py``): every
training two steps of one 32-wide block, on two train clips, one val and one test clip of each
class (:data:`SMOKE_SPLITS`), one finetuning rate, under ``WORKDIR/smoke``:

    python benchmarks/real_data.py --task pretrain_gain --smoke --seeds 1 --json /tmp/gain.json
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

from absl import logging  # noqa: E402

from aslx.decoding import evaluate as evaluate_lib  # noqa: E402
from aslx.formats import npz  # noqa: E402
from aslx.records import writer as ingest_lib  # noqa: E402
from aslx.training.loop import completed  # noqa: E402
from benchmarks import harness  # noqa: E402
from configs import isolated_tiny  # noqa: E402
from configs.bench import few_label, few_label_pretrain, joint_gate, spelling  # noqa: E402
from configs.bench import spelling_model as spelling_model_recipe  # noqa: E402
from finetune.train import train  # noqa: E402

TASKS = ("isolated", "spelling", "joint_gate", "pretrain_gain")

#: 10 % of the training labels: every tenth train clip of each class keeps its split, the other
#: train clips are set aside (``unused``); val and test are the fixed ones. A systematic sample
#: and not the first clips: in 32 of the 35 classes this signer uses one hand for clips 0–29 and
#: the other for 30–59 (all of val and test), so labels from clips 0–3 alone would measure
#: transfer to the unseen hand rather than learning from few labels.
LABELLED_CLIPS = (5, 15, 25, 35)


def few_label_boundaries(labelled=LABELLED_CLIPS) -> tuple:
    """:data:`aslx.formats.npz.SPLIT_BOUNDARIES` with only the ``labelled`` clip numbers of the
    train split left in ``train``, the rest of it ``unused``."""
    (train_end, train), *others = npz.SPLIT_BOUNDARIES
    boundaries = []
    for clip in sorted(labelled):
        boundaries += [(clip, "unused"), (clip + 1, train)]
    return (*boundaries, (train_end, "unused"), *others)


def clip_boundaries(splits: dict[int, str]) -> tuple:
    """Split boundaries (:func:`aslx.formats.npz.split_of`) that put each clip number of
    ``splits`` in its split and every other clip in ``unused``."""
    boundaries = []
    for clip in sorted(splits):
        boundaries += [(clip, "unused"), (clip + 1, splits[clip])]
    return (*boundaries, (None, "unused"))


FEW_LABELS = few_label_boundaries()
RECORDS = {
    # kind: (format, stored preset, reader options)
    "signs": ("npz", "full543", {}),
    "spelled": ("npz-spelled", "hands_pose", {}),
    "signs_10pct": ("npz", "hands_pose", {"boundaries": FEW_LABELS}),
    "spelled_10pct": (
        "npz-spelled",
        "hands_pose",
        {"boundaries": FEW_LABELS, "words": {"train": 200, "val": 200, "test": 400}},
    ),
}
#: The clips a ``--smoke`` run reads, whatever the kind: two train clips, one val and one test
#: clip of each class (clip numbers, as ``seq_id`` counts them).
SMOKE_SPLITS = {5: "train", 15: "train", 42: "val", 48: "test"}
#: Spelled words per split in a ``--smoke`` run.
SMOKE_WORDS = {"train": 16, "val": 8, "test": 8}


def records(kind: str, data: Path, workdir: Path) -> Path:
    """The record set of ``kind`` (a key of :data:`RECORDS`), ingested once (with
    ``--smoke``, from the clips of :data:`SMOKE_SPLITS` only)."""
    out = workdir / f"records_{kind}"
    if not (out / "metadata.json").is_file():
        fmt, preset, options = RECORDS[kind]
        if harness.smoke():
            options = options | {"boundaries": clip_boundaries(SMOKE_SPLITS)}
            if fmt == "npz-spelled":
                options["words"] = SMOKE_WORDS
        ingest_lib.ingest(
            fmt,
            data / harness.ARCHIVE,
            out,
            preset=preset,
            num_shards=4,
            overwrite=True,
            reader_options=options,
            progress=not harness.smoke(),
        )
    return out


def with_records(config, record_dir: Path):
    """``config`` reading the record set in ``record_dir``; returns ``config``."""
    config.data.dir = str(record_dir)
    return config


def spelling_model(size: str, steps: int, data: Path, workdir: Path) -> Path:
    """The workdir of ``configs/bench/spelling_model.py`` for ``size`` trained ``steps`` steps
    (validation words only), trained once under ``workdir`` and reused: the model the
    inference and decoding benchmarks measure."""
    config = spelling_model_recipe.get_config(f"{size},{steps}")
    out = workdir / f"inference_{size}_{steps}"
    run(with_records(config, records("spelled", data, workdir)), out)
    return out


def run(config, workdir: Path, trainer=train) -> dict:
    """``trainer(config, workdir)``'s results (the finetuning program's by default; with
    ``--smoke``, of the config cut by :func:`benchmarks.harness.tiny_run`); a run stopped by a
    preemption notice ends the script (:func:`aslx.training.loop.completed`)."""
    logging.set_verbosity(logging.WARNING)
    if harness.smoke():
        config = harness.tiny_run(config.copy_and_resolve_references())
    return completed(trainer(config, str(workdir)), workdir)


#: Peak finetuning learning rates tried for each start in ``pretrain_gain``; val chooses.
FINETUNE_LRS = (2e-3, 1e-3)


def few_label_run(config, lr: float, seed: int, workdir: Path, tag: str, rows: list) -> dict:
    """One finetune of ``config`` at peak rate ``lr`` with ``seed``, in
    ``workdir/{tag}_lr{lr}[_seed{seed}]``; appends ``(label, result)`` to ``rows``."""
    config = config.copy_and_resolve_references()
    config.update(lr=lr, seed=seed)
    result = run(config, workdir / (f"{tag}_lr{lr:g}" + (f"_seed{seed}" if seed else "")))
    rows.append((f"{tag.replace('_', ', ')}, lr {lr:g}, seed {seed}", result))
    return result


def paired_gain(pretrained: list[float], scratch: list[float]) -> tuple[float, float | None]:
    """The mean of the per-seed gaps ``pretrained[s] − scratch[s]`` and its standard error
    ``stdev(gaps) / √n`` (``None`` with one seed).

    A seed draws the same new-layer initialisation, augmentation and batch order for both
    starts, so runs of one seed are a pair and the gaps are compared, not the two means.
    """
    if len(pretrained) != len(scratch) or not scratch:
        raise ValueError(f"need the same seeds for both starts, got {pretrained} and {scratch}")
    gaps = [p - s for p, s in zip(pretrained, scratch)]
    stderr = statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else None
    return statistics.fmean(gaps), stderr


def pretrain_gain(args) -> tuple[dict, list]:
    """For each task, pretrain on the unlabelled clips as the task's finetune reads them (one
    encoder per preprocessing, shared by the tasks that have it;
    ``configs/bench/few_label_pretrain.py``), then finetune with 10 % of the labels
    (``configs/bench/few_label.py``) from it and from scratch, each start at the learning rate
    of :data:`FINETUNE_LRS` that does best on val (with ``--smoke``, the first only), with
    ``args.seeds`` seeds."""
    from pretrain.train import train as pretrain

    logging.set_verbosity(logging.WARNING)
    out: dict = {}
    rows = []
    tasks = (
        ("isolated", "signs_10pct", "top1", "test_accuracy"),
        ("spelling", "spelled_10pct", "normalized_levenshtein", "test_normalized_levenshtein"),
    )
    rates = FINETUNE_LRS[:1] if harness.smoke() else FINETUNE_LRS
    for name, kind, metric, field in tasks:
        finetune_config = with_records(
            few_label.get_config(name), records(kind, args.data, args.workdir)
        )
        frame = finetune_config.data.normalization
        pretrained_dir = args.workdir / f"pretrain_tiny_clips_{frame}"
        config = with_records(
            few_label_pretrain.get_config(name), records("signs", args.data, args.workdir)
        )
        pretrained = run(config, pretrained_dir, pretrain)
        out |= {
            "pretrain_steps": config.total_steps,
            "pretrain_frames": config.data.max_frames,
            "pretrain_target_kind": config.data2vec.target_kind,
            f"{name}_normalization": frame,
            f"{name}_pretrain_minutes": pretrained["seconds"] / 60,
        }
        tests_by_start = {}
        for start in ("scratch", "pretrained"):
            init_from = str(pretrained_dir) if start == "pretrained" else ""
            config = finetune_config.copy_and_resolve_references()
            config.update(init_from=init_from)
            tag = f"{name}_10pct_{start}"
            first = {lr: few_label_run(config, lr, 0, args.workdir, tag, rows) for lr in rates}
            lr = max(rates, key=lambda lr: first[lr][f"val/{metric}"])
            seeds = [first[lr]]
            seeds += [
                few_label_run(config, lr, s, args.workdir, tag, rows) for s in range(1, args.seeds)
            ]
            tests = tests_by_start[start] = [r[f"test/{metric}"] for r in seeds]
            out[f"{start}_{field}"] = statistics.fmean(tests)
            out[f"{start}_{field}_per_seed"] = tests
            vals = [r[f"val/{metric}"] for r in seeds]
            out[f"{start}_{name}_val_{metric}"] = statistics.fmean(vals)
            out[f"{start}_{name}_lr"] = lr
        gain, stderr = paired_gain(tests_by_start["pretrained"], tests_by_start["scratch"])
        out[f"{name}_test_gain"], out[f"{name}_test_gain_stderr"] = gain, stderr
    return out, rows


def task_result(args) -> tuple[dict, list]:
    """Runs ``args.task``: its JSON fields and its ``(label, result)`` rows."""
    if args.task == "isolated":
        config = with_records(isolated_tiny.get_config(), records("signs", args.data, args.workdir))
        result = run(config, args.workdir / "isolated")
        out = {"test_accuracy": result["test/top1"], "val_accuracy": result["val/top1"]}
        rows = [("isolated, hands_pose, tiny", result)]
    elif args.task == "spelling":
        config = with_records(spelling.get_config(), records("spelled", args.data, args.workdir))
        result = run(config, args.workdir / "spelling")
        out = {
            "test_normalized_levenshtein": result["test/normalized_levenshtein"],
            "val_normalized_levenshtein": result["val/normalized_levenshtein"],
        }
        rows = [("spelling, hands_pose, tiny", result)]
    elif args.task == "pretrain_gain":
        return pretrain_gain(args)
    else:
        record_dir = records("signs", args.data, args.workdir)
        ungated = run(
            with_records(joint_gate.get_config("ungated"), record_dir),
            args.workdir / "full543_ungated",
        )
        gated = run(
            with_records(joint_gate.get_config("gated"), record_dir),
            args.workdir / "full543_gated",
        )
        out = {
            "landmarks_total": 543,
            "landmarks_kept": int(gated["gate_kept"]),
            "ungated_test_accuracy": ungated["test/top1"],
            "gated_test_accuracy": gated["test/top1"],
        }
        rows = [("full543, no gate", ungated), ("full543, hard-concrete gate", gated)]
    return out, rows


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--task", required=True, choices=TASKS)
    harness.add_data_arguments(parser)
    harness.add_seeds_argument(
        parser, 5, "pretrain_gain: finetunes per start at its chosen rate, averaged (default 5)", 1
    )
    args = harness.parse_args(parser, argv)
    if harness.data_missing(args):
        return 2
    out, rows = task_result(args)
    out = {"task": args.task} | out
    out["runs"] = {name: result for name, result in rows}
    # Training minutes as the run recorded them: a reused workdir keeps its own figure.
    table = []
    for name, result in rows:
        scores = "  ".join(
            f"{k} {v:.4f}"
            for k, v in result.items()
            if k.count("/") == 1
            and not k.endswith(("_raw", "_ema"))
            and not evaluate_lib.is_count(k)
        )
        table.append((name, result["steps"], f"{result['seconds'] / 60:.1f}", scores))
    print()
    harness.print_table(("run", "steps", "minutes", "scores (selected weights)"), table, "lrrl")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    harness.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
