"""What the input pipeline makes of a record set (``python -m aslx.stats`` prints it).

Reads ``metadata.json``, then runs one epoch of training batches and one pass of evaluation
batches of every other split through :mod:`aslx.input.pipeline`, and prints clip counts, clip
lengths, label lengths, how often each landmark group is detected, how much of each batch is
padding, and the pipeline's throughput on this machine.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from aslx.input import fit, pipeline
from aslx.records.metadata import RecordSet


def group_detection(batch_masks: list[np.ndarray], frame_masks: list[np.ndarray], preset) -> dict:
    """Share of real frames in which each group has at least one detected point."""
    landmark_mask = np.concatenate(batch_masks)  # [N, T, L]
    frame_mask = np.concatenate(frame_masks)  # [N, T]
    out, start = {}, 0
    for name, size in zip(preset.group_names, preset.group_sizes):
        seen = landmark_mask[..., start : start + size].any(-1)
        out[name] = float(seen.sum() / max(frame_mask.sum(), 1))
        start += size
    return out


def bucketed_padding(
    records: RecordSet, split: str, config: pipeline.InputConfig, steps: int, bounds
) -> float:
    """Share of padding frames in ``steps`` training batches sorted in windows of
    ``pipeline.DEFAULT_SORT_WINDOW`` and cut to bucket ``bounds``, as the trainer's default
    does."""
    sorted_config = dataclasses.replace(config, sort_window=pipeline.DEFAULT_SORT_WINDOW)
    stream = pipeline.train_batches(records, split, sorted_config, process_index=0, process_count=1)
    real = total = 0
    for _ in range(steps):
        lengths = next(stream)["num_frames"]
        real += int(lengths.sum())
        total += lengths.size * fit.bucket_length(int(lengths.max()), bounds)
    return 1 - real / max(total, 1)


def summarize(records: RecordSet, config: pipeline.InputConfig) -> dict:
    meta = records.meta
    stats = {
        "examples": meta["num_examples"],
        "splits": meta["splits"],
        "distinct_labels": meta["num_classes"],
        "skipped": meta["num_skipped"],
        "frames": meta["frames"],
        "max_label_length": meta["max_label_length"],
        "vocabulary": meta["vocabulary"]["kind"],
    }
    train_split = "train" if "train" in meta["splits"] else next(iter(meta["splits"]))
    per_epoch = pipeline.batches_per_epoch(records, train_split, config.batch_size, 0, 1)
    iterator = pipeline.train_batches(
        records, train_split, config, process_index=0, process_count=1
    )
    start = time.perf_counter()
    batches = [next(iterator) for _ in range(per_epoch)]
    seconds = time.perf_counter() - start
    preset = records.preset if config.preset is None else pipeline.presets.get(config.preset)
    frame_masks = [b["frame_mask"] for b in batches]
    stats[f"{train_split}_batches_per_epoch"] = per_epoch
    stats["padding_share"] = float(1 - np.mean(np.concatenate(frame_masks)))
    stats["detected"] = group_detection([b["landmark_mask"] for b in batches], frame_masks, preset)
    stats["sequences_per_s"] = per_epoch * config.batch_size / seconds
    stats["batch_shapes"] = {k: list(v.shape) for k, v in batches[0].items()}
    stats["buckets"] = fit.default_buckets(meta["frames"], config.max_frames)
    stats["bucketed_padding_share"] = bucketed_padding(
        records, train_split, config, per_epoch, stats["buckets"]
    )
    for split in meta["splits"]:
        if split == train_split:
            continue
        n = sum(
            int(b["example_mask"].sum())
            for b in pipeline.eval_batches(records, split, config, process_index=0, process_count=1)
        )
        stats[f"{split} examples seen"] = n
    return stats


def format_summary(stats: dict, data: str) -> str:
    """:func:`summarize`'s result as the lines ``python -m aslx.stats`` prints."""
    frames = stats["frames"]
    lines = [
        f"record set        {data} ({stats['vocabulary']} labels)",
        f"clips             {stats['examples']} "
        + "("
        + ", ".join(f"{k} {v}" for k, v in stats["splits"].items())
        + ")"
        + f", {stats['skipped']} skipped at ingest",
        f"distinct labels   {stats['distinct_labels']}, longest {stats['max_label_length']} ids",
        f"clip frames       min {frames['min']}, mean {frames['mean']}, p95 {frames['p95']}, "
        f"max {frames['max']}",
        "batch             "
        + ", ".join(
            f"{k} {v}" for k, v in stats["batch_shapes"].items() if k in ("landmarks", "labels")
        ),
        f"padding           {stats['padding_share']:.1%} of frames at max_frames; "
        f"{stats['bucketed_padding_share']:.1%} in buckets "
        + ",".join(map(str, stats["buckets"]))
        + f" (data.buckets=auto, windows of {pipeline.DEFAULT_SORT_WINDOW} batches sorted)",
        "detected          "
        + ", ".join(f"{k} {v:.1%}" for k, v in stats["detected"].items())
        + " of real frames",
        f"throughput        {stats['sequences_per_s']:.0f} sequences/s (one training epoch, "
        "this machine)",
    ]
    lines += [
        f"{k:<18}{v} (one evaluation pass)"
        for k, v in stats.items()
        if k.endswith(" examples seen")
    ]
    return "\n".join(lines)
