"""Draw a clip's landmarks as a grid of frames, optionally before and after augmentation.

    python -m aslx.report clip --data runs/demo/records --index 3 --augment --out clip.png

The top row shows the clip as recorded (image coordinates, y corrected for the record set's
camera aspect, so shapes look as they did on screen); with ``--augment`` the bottom row shows
the same frames after the augmentation recipe, which is what the model sees: every group's
local shape (centred, about [-1, 1]; its placement in the body frame is not drawn) side by
side. Each landmark group has its own colour, hands are drawn with their bones, and missing
points are simply absent.
"""

from __future__ import annotations

import itertools

import numpy as np

from aslx.landmarks import layouts, presets
from aslx.landmarks.normalize import Normalization

COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="record set folder (from aslx.ingest)")
    parser.add_argument("--index", type=int, default=0, help="clip number within the split")
    parser.add_argument("--split", default="train", help="split to read (default train)")
    parser.add_argument("--preset", default=None, help="landmark preset (default: the records')")
    parser.add_argument("--max-frames", type=int, default=256, help="static frames T")
    parser.add_argument("--frames", type=int, default=8, help="frames drawn (default 8)")
    parser.add_argument("--augment", action="store_true", help="also draw the augmented clip")
    parser.add_argument("--seed", type=int, default=0, help="augmentation key")
    parser.add_argument("--out", required=True, help="PNG file to write")


def load_example(data: str, split: str, index: int, preset: str | None, max_frames: int):
    """The ``index``-th example of ``split`` as a batch of one, and the record set."""
    from aslx.input import pipeline
    from aslx.records.metadata import RecordSet

    records = RecordSet(data)
    total = records.require_split(split, "pass --split")
    if not 0 <= index < total:
        raise ValueError(f"{data}: --index {index} outside the {total} clips of {split}")
    config = pipeline.InputConfig(batch_size=1, max_frames=max_frames, preset=preset)
    batches = pipeline.eval_batches(records, split, config, process_index=0, process_count=1)
    return next(itertools.islice(batches, index, None)), records


def augmented(batch: dict, preset: presets.Preset, seed: int, camera_aspect: float) -> dict:
    import jax

    from aslx.augment import recipe

    config = recipe.AugmentConfig()
    normalization = Normalization(camera_aspect=camera_aspect)
    fields = {k: batch[k] for k in recipe.SAMPLE_KEYS if k in batch}
    out = jax.jit(lambda key, b: recipe.augment_batch(key, b, config, preset, normalization))(
        jax.random.key(seed), fields
    )
    return {k: np.asarray(v) for k, v in out.items()} | {
        "landmarks": np.asarray(out["landmarks"][..., :3])  # the local shape channels
    }


def _draw_frame(ax, points, mask, preset, offsets) -> None:
    start = 0
    for g, (name, size) in enumerate(zip(preset.group_names, preset.group_sizes)):
        p, m = points[start : start + size], mask[start : start + size]
        x, y = p[:, 0] + offsets[g], p[:, 1]
        colour = COLOURS[g % len(COLOURS)]
        if size == 21 and "hand" in name:
            for a, b in layouts.HAND_BONES:
                if m[a] and m[b]:
                    ax.plot([x[a], x[b]], [y[a], y[b]], color=colour, linewidth=0.8)
        ax.scatter(x[m], y[m], s=4, color=colour, label=name)
        start += size


def draw(
    rows: list[tuple[str, dict, bool]],
    preset: presets.Preset,
    title: str,
    frames: int,
    out: str,
    y_scale: float = 1.0,
) -> None:
    """Draws one row per ``(label, batch of one, normalised)``; each row shows ``frames``
    frames spread over the clip's real frames (recorded rows with y times ``y_scale``, the
    camera's height / width)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(rows), frames, figsize=(2.2 * frames, 2.6 * len(rows)), squeeze=False
    )
    for r, (label, batch, normalised) in enumerate(rows):
        n = int(batch["frame_mask"][0].sum())
        chosen = np.unique(np.linspace(0, max(n - 1, 0), frames).round().astype(int))
        scale = np.array([1.0, 1.0 if normalised else y_scale, 1.0])
        offsets = [2.6 * g if normalised else 0.0 for g in range(len(preset.groups))]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(chosen):
                ax.axis("off")
                continue
            t = chosen[c]
            _draw_frame(
                ax, batch["landmarks"][0, t] * scale, batch["landmark_mask"][0, t], preset, offsets
            )
            ax.invert_yaxis()
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_title(f"{label}, frame {t}", fontsize=8)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(out, dpi=90)
    plt.close(fig)


def run(args) -> int:
    batch, records = load_example(args.data, args.split, args.index, args.preset, args.max_frames)
    preset = presets.get(args.preset) if args.preset else records.preset
    clip_id = batch["clip_id"][0].decode()
    label = records.vocab.decode(batch["labels"][0][batch["label_mask"][0]])
    rows = [("recorded", batch, False)]
    if args.augment:
        rows.append(("augmented", augmented(batch, preset, args.seed, records.camera_aspect), True))
    title = (
        f"{clip_id}: {label!r}, {int(batch['num_frames'][0])} frames, {preset.name} "
        f"({args.split} #{args.index})"
    )
    draw(rows, preset, title, args.frames, args.out, 1 / records.camera_aspect)
    print(f"wrote {args.out}")
    return 0
