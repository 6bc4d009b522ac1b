"""What a finetuned model's joint gate learned: which landmarks it keeps, and what they are worth.

    python -m aslx.report joints --workdir runs/gated --out runs/gated/joints [--split val]

Reads a finetuning workdir whose model has a joint gate (``model.gate`` ``sigmoid`` or
``hard_concrete``) and writes into ``--out``:

* ``keep_probabilities.csv``: one row per input landmark: its slot in the preset, canonical
  index and name, body part, keep-logit, keep probability (the gate's own
  ``keep_probabilities``, at the run's final temperature) and whether the evaluation mask keeps
  it (logit > 0).
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
  by overwriting the keep-logits (the K highest positive, the rest negative), since the
  evaluation mask is ``logit > 0``: the rest of the model is untouched.

The weights are those the run's ``results.json`` scored: its ``best_step`` checkpoint and its
``selected_weights`` (raw or EMA); without a ``results.json``, the latest checkpoint's EMA
weights when it has them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aslx.landmarks import layouts, presets
from aslx.landmarks.normalize import ASPECT_Y

if TYPE_CHECKING:  # heavy imports stay inside the functions that run the model
    from flax import nnx

    from aslx.model.config import ModelConfig
    from aslx.vocab import Vocab

#: Top-K sizes scored (capped at the preset's landmark count).
TOP_KS = (10, 25, 50, 100)
#: Keep-logit written for an open (+) or closed (−) landmark in a top-K gate: any nonzero value
#: gives the same evaluation mask; a large one also reads clearly in a dump of the parameters.
FORCED_LOGIT = 10.0
#: Groups with at most this many points get their point names written beside them.
LABELLED_GROUP_SIZE = 33


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


# --- reading the workdir -----------------------------------------------------------------------


@dataclasses.dataclass
class GatedRun:
    """A finetuned gated model, ready to evaluate.

    Attributes:
      workdir: the training workdir.
      preset: the landmark selection the model reads.
      task: ``ctc`` or ``classification``.
      vocab: the records' vocabulary.
      max_frames: the static frame count the model was trained with.
      config: the run's ``config.json``.
      model_config: the model's configuration (``model_config.gate`` is the gate kind).
      graphdef, params: the model, split (``params`` hold the chosen weights).
      weights: ``raw`` or ``ema``.
      step: the checkpoint step read.
    """

    workdir: Path
    preset: presets.Preset
    task: str
    vocab: Vocab
    max_frames: int
    config: dict
    model_config: ModelConfig
    graphdef: nnx.GraphDef
    params: nnx.State
    weights: str
    step: int | None
    _forward: Callable | None = dataclasses.field(default=None, repr=False)

    @property
    def gate_kind(self) -> str:
        return self.model_config.gate

    @property
    def temperature(self) -> float:
        """The sigmoid gate's temperature at the end of training (the hard-concrete gate's keep
        probability does not depend on it)."""
        return float(self.config.get("gate", {}).get("temperature_end", 1.0))

    def module(self) -> nnx.Module:
        """The model with its current parameters (an ``nnx`` module)."""
        from flax import nnx

        return nnx.merge(self.graphdef, self.params)

    @property
    def logits(self) -> np.ndarray:
        """``[num_landmarks]`` the gate's learned keep-logits."""
        return np.asarray(self.params["gate"]["logits"][...], np.float32)

    def keep_probabilities(self) -> np.ndarray:
        """``[num_landmarks]`` the gate's own keep probabilities, at the final temperature."""
        return np.asarray(self.module().gate.keep_probabilities(self.temperature))

    def with_logits(self, logits: np.ndarray) -> nnx.State:
        """A copy of ``params`` whose gate has these keep-logits (everything else shared)."""
        import jax
        from flax import nnx

        logits = np.asarray(logits, np.float32)
        if logits.shape != self.logits.shape:
            raise ValueError(f"gate logits of shape {logits.shape}, want {self.logits.shape}")
        params = jax.tree.map(lambda x: x, self.params)  # new variables, same arrays
        pure = params.to_pure_dict()
        pure["gate"]["logits"] = logits
        nnx.replace_by_pure_dict(params, pure)
        return params

    def forward(self) -> Callable:
        """The jitted evaluation forward pass, built once (parameters are an argument, so new
        gate logits need no recompilation)."""
        from aslx.model import inference

        if self._forward is None:
            self._forward = inference.make_forward(self.graphdef, self.preset, self.task)
        return self._forward


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_run(workdir: str | os.PathLike) -> GatedRun:
    """Reads a finetuning workdir of a gated model (see the module docstring for the weights).

    Raises:
      FileNotFoundError: not a training workdir, or no checkpoint in it.
      ValueError: the model has no joint gate, or the checkpoint does not fit the model.
    """
    from aslx.run import card as card_lib
    from aslx.run import source as source_lib

    workdir = Path(workdir)
    card = card_lib.read(workdir)
    model_config = card.model
    # Before reading any array: the whole report is about the gate.
    if model_config.gate == "none":
        raise ValueError(
            f"{workdir}: the model has no joint gate (model.gate='none'), so there are no "
            "keep probabilities to report; train with --config.model.gate=hard_concrete "
            "(or sigmoid)"
        )
    config = _read_json(workdir / card_lib.CONFIG_FILE)
    trained = source_lib.load_trained(workdir)
    return GatedRun(
        workdir=workdir,
        preset=presets.get(card.preset),
        task=card.task,
        vocab=card.vocab,
        max_frames=card.max_frames,
        config=config,
        model_config=model_config,
        graphdef=trained.graphdef,
        params=trained.params,
        weights=trained.weights,
        step=trained.step,
    )


# --- top-K gates and their scores --------------------------------------------------------------


def top_k_logits(logits: np.ndarray, k: int, magnitude: float = FORCED_LOGIT) -> np.ndarray:
    """Keep-logits that keep exactly the ``k`` landmarks with the highest ``logits``.

    The ``k`` highest become ``+magnitude`` and the rest ``-magnitude``; ties go to the lower
    slot (a stable sort), so exactly ``k`` are kept even when logits are equal, as they are in a
    gate that has not moved from its initial value.
    """
    logits = np.asarray(logits, np.float32)
    if not 0 <= k <= logits.size:
        raise ValueError(f"cannot keep {k} of {logits.size} landmarks")
    if magnitude <= 0:
        raise ValueError(f"magnitude must be positive, not {magnitude}")
    order = np.argsort(-logits, kind="stable")
    out = np.full(logits.shape, -magnitude, np.float32)
    out[order[:k]] = magnitude
    return out


def settings(logits: np.ndarray, ks: tuple[int, ...] = TOP_KS) -> list[tuple[str, np.ndarray]]:
    """``(name, keep-logits)`` of every scored gate: ``top-K`` for each distinct K below the
    landmark count, ``all`` (every landmark open) and ``learned`` (the gate as trained)."""
    n = np.asarray(logits).size
    chosen = sorted({min(k, n) for k in ks} - {n})
    rows = [(f"top-{k}", top_k_logits(logits, k)) for k in chosen]
    rows.append(("all", top_k_logits(logits, n)))
    rows.append(("learned", np.asarray(logits, np.float32)))
    return rows


def _check_split(records: str | os.PathLike, split: str) -> None:
    from aslx.records.metadata import RecordSet

    if not (Path(records) / "metadata.json").is_file():
        raise FileNotFoundError(f"{records}: no record set there (no metadata.json)")
    RecordSet(records).require_split(split, "pass --split")


def _batches(
    run: GatedRun, records: str | os.PathLike, split: str, batch_size: int
) -> Iterator[dict]:
    from aslx.input import pipeline

    data = run.config.get("data", {})
    config = pipeline.InputConfig(
        batch_size=batch_size,
        max_frames=run.max_frames,
        preset=run.preset.name,
        long_clips=data.get("long_clips", "resample"),
    )
    return pipeline.eval_batches(records, split, config)


def evaluate_logits(
    run: GatedRun,
    logits: np.ndarray,
    records: str | os.PathLike,
    split: str,
    *,
    batch_size: int = 32,
) -> dict[str, float]:
    """The model's metrics on ``split`` with its gate's keep-logits replaced by ``logits``."""
    from aslx.decoding import evaluate as evaluate_lib

    return evaluate_lib.evaluate(
        run.forward(),
        run.with_logits(logits),
        _batches(run, records, split, batch_size),
        task=run.task,
        vocab=run.vocab,
        to_device=lambda batch: batch,  # one process: the jitted forward takes host arrays
        beam=int(run.config.get("decode_beam", 0) or 0),
    )


# --- where to draw each landmark -------------------------------------------------------------


class _GroupMean:
    """Running mean shape of one landmark group, each frame aligned onto a reference first.

    Points are complex numbers ``x + iy``, so a 2-D similarity (rotation and scale, no
    reflection) is one complex factor. A frame is aligned by the least-squares factor that
    maps its points onto the reference frame's (over the points both have), which keeps the
    shape of a hand sharp where plain image positions would smear it over every place and
    orientation it took. The reference is the first frame seen; its own pose is undone at the
    end (the mean is turned and scaled back by the average alignment), so the picture is upright
    the way the clips are.
    """

    def __init__(self, size: int):
        self.reference: np.ndarray | None = None  # [size] complex, NaN where not seen
        self.total = np.zeros(size, np.complex128)
        self.count = np.zeros(size)
        self.turns = 0j  # sum of the alignment factors' unit directions
        self.scales = 0.0  # sum of their magnitudes
        self.frames = 0

    def add(self, points: np.ndarray, mask: np.ndarray) -> None:
        """Adds frames: ``points [F, size]`` complex, ``mask [F, size]`` bool."""
        if self.reference is None:
            first = np.flatnonzero(mask.any(-1))
            if not first.size:
                return
            f = first[0]
            self.reference = np.where(mask[f], points[f], np.nan)
        known = ~np.isnan(self.reference)
        common = mask & known  # [F, size]
        enough = common.sum(-1) >= 3  # a similarity needs two points; three for any check
        points, mask, common = points[enough], mask[enough], common[enough]
        if not len(points):
            return
        w = common.astype(np.float64)
        n = w.sum(-1, keepdims=True)
        reference = np.nan_to_num(self.reference)
        centre = (points * w).sum(-1, keepdims=True) / n
        target = (reference * w).sum(-1, keepdims=True) / n
        a = (points - centre) * w
        b = (reference - target) * w
        factor = (np.conj(a) * b).sum(-1, keepdims=True) / np.maximum(
            (np.abs(a) ** 2).sum(-1, keepdims=True), 1e-12
        )
        aligned = (points - centre) * factor + target
        self.total += (aligned * mask).sum(0)
        self.count += mask.sum(0)
        magnitude = np.abs(factor[:, 0])
        self.turns += (factor[:, 0] / np.maximum(magnitude, 1e-12)).sum()
        self.scales += magnitude.sum()
        self.frames += len(points)

    def mean(self) -> np.ndarray:
        """``[size, 2]`` mean (x, y) about the group's centre, NaN for points never seen."""
        seen = self.count > 0
        out = np.full((self.count.size, 2), np.nan)
        if not seen.any() or not self.frames:
            return out
        shape = self.total[seen] / self.count[seen]
        shape = shape - shape.mean()
        # Undo the reference frame's pose: the factor maps a frame onto the reference, so the
        # average frame is the reference divided by the average factor.
        turn = self.turns / max(abs(self.turns), 1e-12)
        shape = shape / (turn * max(self.scales / self.frames, 1e-12))
        out[seen] = np.stack([shape.real, shape.imag], -1)
        return out


def mean_positions(batches: Iterable[dict], preset: presets.Preset, max_clips: int) -> np.ndarray:
    """``[num_landmarks, 2]`` typical (x, y) of each landmark about its group's centre, from up
    to ``max_clips`` clips of ``batches`` (y corrected for the portrait aspect); see
    :class:`_GroupMean`. A point never detected takes its mirror partner's position mirrored
    (a left hand drawn from the right hands), else stays NaN.
    """
    starts = np.cumsum((0,) + preset.group_sizes)
    groups = [_GroupMean(size) for size in preset.group_sizes]
    clips = 0
    for batch in batches:
        take = np.flatnonzero(batch["example_mask"].astype(bool))[: max_clips - clips]
        if not take.size:
            break
        xy = batch["landmarks"][take][..., :2].astype(np.float64)
        points = (xy[..., 0] + 1j * xy[..., 1] * ASPECT_Y).reshape(-1, preset.num_landmarks)
        mask = batch["landmark_mask"][take] & batch["frame_mask"][take][..., None]
        mask = mask.reshape(-1, preset.num_landmarks)
        for g, group in enumerate(groups):
            part = slice(starts[g], starts[g + 1])
            group.add(points[:, part], mask[:, part])
        clips += take.size
        if clips >= max_clips:
            break
    positions = np.concatenate([group.mean() for group in groups])
    partner = preset.mirror_permutation()
    missing = np.isnan(positions).any(-1) & ~np.isnan(positions[partner]).any(-1)
    positions[missing] = positions[partner[missing]] * [-1.0, 1.0]
    return positions


def body_parts(preset: presets.Preset) -> list[tuple[str, np.ndarray]]:
    """``(name, slots)`` of every body part drawn: the preset's groups, plus ``lips`` (the face
    group's lip points) when the preset has a whole face but no lips group of its own."""
    parts = []
    start = 0
    for name, size in zip(preset.group_names, preset.group_sizes):
        parts.append((name, np.arange(start, start + size)))
        start += size
    if "face" in preset.group_names and "lips" not in preset.group_names:
        lips = {layouts.canonical_index("face", i) for i in layouts.LIPS}
        slots = np.flatnonzero(np.isin(preset.indices, list(lips)))
        if slots.size:
            parts.append(("lips", slots))
    return parts


def short_name(name: str) -> str:
    """``'left_hand_WRIST'`` → ``'WRIST'``: the point's name without its canonical group."""
    for group, _ in layouts.GROUPS:
        if name.startswith(group + "_"):
            return name[len(group) + 1 :]
    return name


# --- writing -----------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_keep_csv(path: Path, run: GatedRun, probabilities: np.ndarray) -> None:
    preset, logits = run.preset, run.logits
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
                    int(logits[i] > 0),
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
    kept = run.logits[slots] > 0
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
    kept = int((run.logits > 0).sum())
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


def run(args) -> int:
    from aslx.decoding import evaluate as evaluate_lib

    if args.top < 1 or args.template_clips < 1 or args.batch_size < 1:
        raise ValueError("--top, --template-clips and --batch-size must be at least 1")
    gated = load_run(args.workdir)
    records = args.data or gated.config.get("data", {}).get("dir", "")
    if not records:
        raise ValueError(f"{args.workdir}: config.json names no data.dir; pass --data RECORDS")
    _check_split(records, args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = gated.preset
    probabilities = gated.keep_probabilities()
    kept = gated.logits > 0
    written = [out / "keep_probabilities.csv"]
    write_keep_csv(written[-1], gated, probabilities)

    positions = mean_positions(
        _batches(gated, records, args.split, args.batch_size), preset, args.template_clips
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
        rows.append({"setting": setting, "kept": int((logits > 0).sum())} | scores)
    written += [out / "accuracy_vs_kept.csv", out / "accuracy_vs_kept.png"]
    write_accuracy(written[-2], written[-1], rows, metric, mode, args.split)

    step = f"step {gated.step}" if gated.step is not None else "latest step"
    print(
        f"{gated.workdir}: {gated.gate_kind} gate, {preset.name}, {gated.weights} weights of "
        f"{step}; {int(kept.sum())}/{preset.num_landmarks} landmarks kept"
    )
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
