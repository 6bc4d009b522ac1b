"""The joints report's files: the keep-probability table, a picture per body part, the top
landmarks, and the score against the number of landmarks kept."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from aslx.landmarks import layouts
from aslx.report.gated_run import GatedRun
from aslx.report.positions import short_name

#: Groups with at most this many points get their point names written beside them.
LABELLED_GROUP_SIZE = 33


# --- writing -----------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_keep_csv(path: Path, run: GatedRun, probabilities: np.ndarray) -> None:
    preset, logits, kept = run.preset, run.logits, run.kept
    names = preset.landmark_names()
    groups = np.asarray(preset.group_names)[preset.group_ids]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["index", "canonical_index", "name", "group", "logit", "keep_probability", "kept"]
        )
        for i in range(preset.num_landmarks):
            writer.writerow(
                [
                    i,
                    int(preset.indices[i]),
                    names[i],
                    groups[i],
                    f"{logits[i]:.6g}",
                    f"{probabilities[i]:.6g}",
                    int(kept[i]),
                ]
            )


def draw_part(
    path: Path,
    name: str,
    slots: np.ndarray,
    run: GatedRun,
    probabilities: np.ndarray,
    positions: np.ndarray,
) -> None:
    """One body part: its points at their mean positions, coloured by keep probability."""
    plt = _pyplot()
    kept = run.kept[slots]
    xy = positions[slots]
    seen = ~np.isnan(xy).any(-1)
    fig, ax = plt.subplots(figsize=(6, 6))
    if slots.size == 21 and "hand" in name and seen.all():
        for a, b in layouts.HAND_BONES:
            ax.plot(*xy[[a, b]].T, color="0.8", linewidth=1, zorder=1)
    size = 12 if slots.size > 100 else 60
    dots = ax.scatter(
        xy[seen, 0],
        xy[seen, 1],
        c=probabilities[slots][seen],
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        s=size,
        edgecolors=np.where(kept[seen], "black", "none").tolist(),
        linewidths=0.8,
        zorder=2,
    )
    if slots.size <= LABELLED_GROUP_SIZE:
        names = run.preset.landmark_names()
        for slot, (x, y) in zip(slots[seen], xy[seen]):
            ax.annotate(
                short_name(names[slot]),
                (x, y),
                fontsize=5,
                xytext=(3, 3),
                textcoords="offset points",
            )
    fig.colorbar(dots, ax=ax, label="keep probability")
    ax.invert_yaxis()  # image coordinates: y grows downwards
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    unseen = int((~seen).sum())
    note = f"; {unseen} never detected, not drawn" if unseen else ""
    ax.set_title(
        f"{name}: {int(kept.sum())}/{slots.size} kept ({run.preset.name}, {run.gate_kind} gate)"
        f"\noutlined: kept by the evaluation mask{note}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_top(path: Path, run: GatedRun, probabilities: np.ndarray, top: int) -> None:
    """Bar chart of the ``top`` landmarks by keep probability, coloured by body part."""
    plt = _pyplot()
    preset = run.preset
    order = np.argsort(-probabilities, kind="stable")[: max(1, min(top, preset.num_landmarks))]
    names = preset.landmark_names()
    colours = plt.get_cmap("tab10")(preset.group_ids[order] % 10)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.22 * order.size))
    ax.barh(np.arange(order.size), probabilities[order], color=colours)
    ax.set_yticks(np.arange(order.size), [names[i] for i in order], fontsize=7)
    ax.invert_yaxis()  # the most likely kept at the top
    ax.set_xlim(0, 1)
    ax.set_xlabel("keep probability")
    shown = sorted(set(preset.group_ids[order].tolist()))
    ax.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=plt.get_cmap("tab10")(g % 10)) for g in shown],
        labels=[preset.group_names[g] for g in shown],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    kept = int(run.kept.sum())
    ax.set_title(
        f"top {order.size} of {preset.num_landmarks} landmarks ({kept} kept by the gate)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_accuracy(
    csv_path: Path, png_path: Path, rows: list[dict], metric: str, mode: str, split: str
) -> None:
    """The accuracy table as CSV and as a plot of the metric against landmarks kept."""
    columns = ["setting", "kept"] + [k for k in rows[0] if k not in ("setting", "kept")]
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    top = [r for r in rows if r["setting"] != "learned"]
    ax.plot([r["kept"] for r in top], [r[metric] for r in top], marker="o", label="top-K by logit")
    for r in top:
        ax.annotate(
            r["setting"],
            (r["kept"], r[metric]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    learned = next(r for r in rows if r["setting"] == "learned")
    ax.scatter(
        [learned["kept"]],
        [learned[metric]],
        marker="*",
        s=150,
        color="tab:red",
        label="learned gate",
    )
    ax.set_xscale("log")
    ax.set_xlabel("landmarks kept")
    ax.set_ylabel(f"{split} {metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
