"""The augmentation recipe on device (jitted, vectorised) against per-sample NumPy, side by side.

    python benchmarks/augment.py --json runs/bench/augment.json

All paths run the full default recipe (:class:`aslx.augment.recipe.AugmentConfig`) on the same
batch of ``kaggle75`` clips (default 64 × 384 frames × 75 points, clip lengths 96–384, 10 % of
points missing), one after the other in this process:

- device: ``augment_batch`` under ``jit`` (parameters drawn on device, one key per sample),
  timed after compiling and one warm-up call; the batch is already on the device.
- NumPy: ``benchmarks/numpy_augment.py``, the way host-side augmentation works (one sample at
  a time, its own NumPy random draws) but vectorised within the sample: no Python loop over
  frames or landmarks. This is the baseline ``speedup`` is measured against.
- reference: :mod:`aslx.augment.reference`, the slow per-sample oracle of the tests (loops over
  landmarks and frames); a few samples, for information only.

The NumPy paths use one core, as one host worker process would; XLA may spread the jitted
recipe over every core. Prints a table and writes ``{"device_samples_per_s",
"numpy_samples_per_s", "speedup", "device", "reference_samples_per_s"}`` and the sizes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from aslx import files  # noqa: E402
from aslx.augment import recipe, reference  # noqa: E402
from aslx.landmarks import presets  # noqa: E402
from benchmarks import numpy_augment  # noqa: E402


def make_batch(rng: np.random.Generator, batch: int, frames: int, landmarks: int, labels: int):
    lengths = rng.integers(frames // 4, frames + 1, size=batch)
    frame_mask = np.arange(frames)[None] < lengths[:, None]
    landmark_mask = (rng.random((batch, frames, landmarks)) < 0.9) & frame_mask[..., None]
    points = rng.uniform(0.2, 0.8, size=(batch, frames, landmarks, 3)).astype(np.float32)
    label_mask = np.arange(labels)[None] < rng.integers(1, labels // 2, size=batch)[:, None]
    return {
        "landmarks": np.where(landmark_mask[..., None], points, 0.0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
        "labels": np.where(label_mask, rng.integers(0, 59, size=(batch, labels)), -1).astype(
            np.int32
        ),
        "label_mask": label_mask,
    }


def time_device(batch: dict, config, preset, repeats: int) -> float:
    """Samples per second of the jitted recipe, after compiling and one warm-up call."""
    step = jax.jit(lambda key, b: recipe.augment_batch(key, b, config, preset))
    on_device = jax.device_put(batch)
    jax.block_until_ready(step(jax.random.key(0), on_device))
    start = time.perf_counter()
    for i in range(repeats):
        out = step(jax.random.key(i + 1), on_device)
    jax.block_until_ready(out)
    return repeats * len(batch["frame_mask"]) / (time.perf_counter() - start)


def time_numpy(batch: dict, config, preset, samples: int, warmup: int = 4) -> float:
    """Samples per second of the vectorised per-sample NumPy recipe (draw and apply, its own
    random draws), after ``warmup`` untimed samples."""
    rng = np.random.default_rng(0)
    size = len(batch["frame_mask"])
    for i in range(warmup):
        numpy_augment.augment(rng, {k: v[i % size] for k, v in batch.items()}, config, preset)
    start = time.perf_counter()
    for i in range(samples):
        numpy_augment.augment(rng, {k: v[i % size] for k, v in batch.items()}, config, preset)
    return samples / (time.perf_counter() - start)


def time_reference(batch: dict, config, preset, samples: int) -> float:
    """Samples per second of the slow NumPy oracle (:mod:`aslx.augment.reference`)."""
    rng = np.random.default_rng(0)
    frames = batch["frame_mask"].shape[1]
    start = time.perf_counter()
    for i in range(samples):
        sample = {k: v[i % len(v)] for k, v in batch.items()}
        reference.apply(sample, reference.draw(rng, config, preset, frames), config, preset)
    return samples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--frames", type=int, default=384, help="frames T (default 384)")
    parser.add_argument("--repeats", type=int, default=10, help="timed device batches")
    parser.add_argument(
        "--numpy-samples",
        type=int,
        default=512,
        help="samples timed on the vectorised NumPy path (default 512)",
    )
    parser.add_argument(
        "--reference-samples",
        type=int,
        default=16,
        help="samples timed on the slow NumPy reference (default 16)",
    )
    args = parser.parse_args(argv)

    preset = presets.KAGGLE75
    config = recipe.AugmentConfig()
    batch = make_batch(
        np.random.default_rng(0), args.batch, args.frames, preset.num_landmarks, labels=64
    )
    device_rate = time_device(batch, config, preset, args.repeats)
    numpy_rate = time_numpy(batch, config, preset, args.numpy_samples)
    reference_rate = time_reference(batch, config, preset, args.reference_samples)
    device = jax.devices()[0]
    result = {
        "device_samples_per_s": round(device_rate, 1),
        "numpy_samples_per_s": round(numpy_rate, 1),
        "speedup": round(device_rate / numpy_rate, 2),
        "device": f"{device.platform}: {device.device_kind}",
        "reference_samples_per_s": round(reference_rate, 1),
        "batch": args.batch,
        "frames": args.frames,
        "landmarks": preset.num_landmarks,
        "repeats": args.repeats,
        "numpy_samples": args.numpy_samples,
        "reference_samples": args.reference_samples,
        "jax": jax.__version__,
    }
    rows = [
        (f"jitted recipe ({result['device']})", device_rate),
        ("NumPy, vectorised per sample", numpy_rate),
        ("NumPy reference (oracle)", reference_rate),
    ]
    print(f"{'path':<36}{'samples/s':>12}")
    for name, rate in rows:
        print(f"{name:<36}{rate:>12.1f}")
    print(
        f"speedup {result['speedup']}× over vectorised NumPy on "
        f"{args.batch} × {args.frames} × {preset.num_landmarks}"
    )
    files.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
