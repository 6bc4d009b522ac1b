"""The augmentation recipe on device (jitted, vectorised) against per-sample NumPy, side by side.

    python benchmarks/augment.py --json runs/bench/augment.json

Both paths run the full default recipe (:class:`aslx.augment.recipe.AugmentConfig`) on the same
batch of ``kaggle75`` clips (default 64 × 384 frames × 75 points, clip lengths 96–384, 10 % of
points missing), one after the other in this process:

- device: ``augment_batch`` under ``jit`` (parameters drawn on device, one key per sample),
  timed after compiling and one warm-up call; the batch is already on the device.
- NumPy: ``benchmarks/numpy_augment.py``, the way host-side augmentation works (one sample at
  a time, its own NumPy random draws) but vectorised within the sample: no Python loop over
  frames or landmarks. This is the baseline ``speedup`` is measured against. (The slow,
  obvious per-sample oracle that checks both, ``tests/augment_reference.py``, is the tests'
  and is not timed: it is no peer's way.)

The NumPy path uses one core, as one host worker process would; XLA may spread the jitted
recipe over every core. Prints a table and writes ``{"device_samples_per_s",
"numpy_samples_per_s", "speedup", "device"}`` and the sizes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import jax  # noqa: E402
import numpy as np  # noqa: E402

from aslx.augment import recipe  # noqa: E402
from aslx.landmarks import presets  # noqa: E402
from benchmarks import harness, numpy_augment  # noqa: E402


def make_batch(rng: np.random.Generator, batch: int, frames: int, landmarks: int, labels: int):
    """A pipeline-shaped batch: ``landmarks [B, T, L, 3]`` in image fractions (0 where missing,
    10 % of points), clip lengths uniform in ``[T / 4, T]``, masks and ``labels [B, labels]``
    (a random prefix of up to half of them real)."""
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


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--frames", type=int, default=384, help="frames T (default 384)")
    parser.add_argument("--repeats", type=int, default=10, help="timed device batches")
    parser.add_argument(
        "--numpy-samples",
        type=int,
        default=512,
        help="samples timed on the vectorised NumPy path (default 512)",
    )
    args = harness.parse_args(parser, argv)

    preset = presets.KAGGLE75
    config = recipe.AugmentConfig()
    batch = make_batch(
        np.random.default_rng(0), args.batch, args.frames, preset.num_landmarks, labels=64
    )
    device_rate = time_device(batch, config, preset, args.repeats)
    numpy_rate = time_numpy(batch, config, preset, args.numpy_samples)
    result = {
        "device_samples_per_s": round(device_rate, 1),
        "numpy_samples_per_s": round(numpy_rate, 1),
        "speedup": round(device_rate / numpy_rate, 2),
        "device": harness.device(),
        "batch": args.batch,
        "frames": args.frames,
        "landmarks": preset.num_landmarks,
        "repeats": args.repeats,
        "numpy_samples": args.numpy_samples,
        "jax": jax.__version__,
    }
    rows = [
        (f"jitted recipe ({result['device']})", f"{device_rate:.1f}"),
        ("NumPy, vectorised per sample", f"{numpy_rate:.1f}"),
    ]
    harness.print_table(("path", "samples/s"), rows)
    print(
        f"speedup {result['speedup']}× over vectorised NumPy on "
        f"{args.batch} × {args.frames} × {preset.num_landmarks}"
    )
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
