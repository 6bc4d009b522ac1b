"""What a finetuned model's joint gate learned: which landmarks it keeps, and what they are worth.

    python -m aslx.report joints --workdir runs/gated --out runs/gated/joints [--split val]

Reads a finetuning workdir whose model has a joint gate (``model.gate`` ``sigmoid`` or
``hard_concrete``) and writes into ``--out``:

* ``keep_probabilities.csv``: one row per input landmark: its slot in the preset, canonical
  index and name, body part, keep-logit, keep probability (the gate's own
  ``keep_probabilities``, at the run's final temperature) and whether the evaluation mask keeps
  it (logit above the model's ``gate_eval_threshold``, 0 unless the run set it).
* ``<body part>.png``: one picture per group of the preset (plus ``lips.png`` from the face
  group's 40 lip points when the preset has a whole face): every landmark at its typical
  position, coloured by keep probability, kept points outlined. The positions are the mean
  shape of the group over up to ``--template-clips`` clips of the split, each frame aligned
  (shifted, turned, scaled) onto one reference first; a point never detected takes its mirror
  partner's position mirrored (the left hand from right hands), else it is not drawn.
* ``top_k.png``: the ``--top`` landmarks with the highest keep probability.
* ``accuracy_vs_kept.csv`` and ``.png``: the model's score on ``--split`` when only the top-K
  landmarks by keep-logit are kept (K = 10, 25, 50, 100, capped at the number of landmarks),
  with every landmark open (``all``) and with the gate as learned (``learned``). Top-K is made
  by overwriting the keep-logits (the K highest at +10, the rest at −10, either side of any
  threshold): the rest of the model is untouched.

The console names the kept count at the run's threshold and at the other common one (0, or the
hard-concrete gate's non-zero threshold log(−γ/ζ) ≈ −2.40, :mod:`aslx.model.gate`), and how
many landmarks sit between the two: those are what the choice of threshold decides.

The weights are those the run's ``results.json`` scored: its ``best_step`` checkpoint and its
``selected_weights`` (raw or EMA); without a ``results.json``, the latest checkpoint's EMA
weights when it has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aslx.model import gate as gate_lib
from aslx.report.gate_figures import draw_part, draw_top, write_accuracy, write_keep_csv
from aslx.report.gated_run import check_split, evaluate_logits, load_run, settings, split_batches
from aslx.report.positions import body_parts, mean_positions


def threshold_line(logits: np.ndarray, threshold: float) -> str:
    """The kept counts at ``threshold`` and at the other common threshold (0, or
    :data:`~aslx.model.gate.NONZERO_THRESHOLD` when ``threshold`` is 0), and how many
    keep-logits lie between them (in ``(low, high]``)."""
    other = gate_lib.NONZERO_THRESHOLD if threshold == 0 else 0.0
    low, high = sorted((threshold, other))
    between = int(((logits > low) & (logits <= high)).sum())
    counts = ", ".join(
        f"{int(gate_lib.kept(logits, t).sum())} at logit > {t:.2f}"
        + (" (this model's)" if t == threshold else "")
        for t in (threshold, other)
    )
    return f"kept {counts}; {between} landmarks lie between the two thresholds"


def add_arguments(parser) -> None:
    parser.add_argument("--workdir", required=True, help="finetuning workdir of a gated model")
    parser.add_argument("--out", required=True, help="folder for the CSV and PNG files")
    parser.add_argument("--split", default="val", help="split scored (default val)")
    parser.add_argument("--top", type=int, default=30, help="landmarks in top_k.png (default 30)")
    parser.add_argument(
        "--data", default=None, help="record set (default: the run's config.json data.dir)"
    )
    parser.add_argument(
        "--template-clips",
        type=int,
        default=256,
        help="clips averaged for the landmark positions in the pictures (default 256)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")


def run(args) -> int:
    from aslx.decoding import evaluate as evaluate_lib

    if args.top < 1 or args.template_clips < 1 or args.batch_size < 1:
        raise ValueError("--top, --template-clips and --batch-size must be at least 1")
    gated = load_run(args.workdir)
    records = args.data or gated.config.get("data", {}).get("dir", "")
    if not records:
        raise ValueError(f"{args.workdir}: config.json names no data.dir; pass --data RECORDS")
    check_split(records, args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = gated.preset
    probabilities = gated.keep_probabilities()
    kept = gated.kept
    written = [out / "keep_probabilities.csv"]
    write_keep_csv(written[-1], gated, probabilities)

    positions = mean_positions(
        split_batches(gated, records, args.split, args.batch_size), preset, args.template_clips
    )
    parts = body_parts(preset)
    for name, slots in parts:
        written.append(out / f"{name}.png")
        draw_part(written[-1], name, slots, gated, probabilities, positions)
    written.append(out / "top_k.png")
    draw_top(written[-1], gated, probabilities, args.top)

    metric, mode = evaluate_lib.primary_metric(gated.task, gated.vocab)
    rows = []
    for setting, logits in settings(gated.logits):
        scores = evaluate_logits(gated, logits, records, args.split, batch_size=args.batch_size)
        rows.append(
            {"setting": setting, "kept": int(gate_lib.kept(logits, gated.threshold).sum())} | scores
        )
    written += [out / "accuracy_vs_kept.csv", out / "accuracy_vs_kept.png"]
    write_accuracy(written[-2], written[-1], rows, metric, mode, args.split)

    step = f"step {gated.step}" if gated.step is not None else "latest step"
    print(
        f"{gated.workdir}: {gated.gate_kind} gate, {preset.name}, {gated.weights} weights of "
        f"{step}; {int(kept.sum())}/{preset.num_landmarks} landmarks kept"
    )
    print("  " + threshold_line(gated.logits, gated.threshold))
    for name, slots in parts:
        inside = " (within face)" if name == "lips" and "lips" not in preset.group_names else ""
        count = f"{int(kept[slots].sum())}/{slots.size}"
        print(
            f"  {name:<12} {count:>9} kept  mean keep probability "
            f"{probabilities[slots].mean():.3f}{inside}"
        )
    names = [k for k in rows[0] if k not in ("setting", "kept")]
    widths = [max(len(n), 8) for n in names]
    print(f"{args.split} scores when keeping the top-K landmarks by keep-logit:")
    print(
        f"  {'setting':<10} {'kept':>5}  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths))
    )
    for r in rows:
        values = "  ".join(
            f"{r[n]:>{w}d}" if isinstance(r[n], int) else f"{r[n]:>{w}.4f}"
            for n, w in zip(names, widths)
        )
        print(f"  {r['setting']:<10} {r['kept']:>5}  {values}")
    print(f"wrote {len(written)} files to {out}")
    return 0
