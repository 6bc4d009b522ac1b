"""One training step's speed: forward + backward + AdamW, jitted, after warm-up.

    python benchmarks/train_step.py --model small --batch 8 --frames 128 \\
        --json runs/bench/small.json
    python benchmarks/train_step.py --model large --batch 64 --frames 384 --dtype bfloat16 \\
        --json runs/bench/large.json        # on a GPU

The step is CTC on random labels over random (already normalised) landmarks of the
``kaggle75`` preset: the model's full cost without the data pipeline. ``--objective data2vec``
times a pretraining step instead (``aslx.objectives.data2vec``: 8 masked copies of each clip
through the student, the EMA teacher once per clip, the decoder; normalisation included).
FLOPs per step come from XLA's cost analysis of the compiled step; MFU = FLOPs per second /
the device's peak, where the peak assumed is printed (dense bf16 tensor-core peak for
bfloat16, dense TF32 for float32; no peak, hence ``mfu: null``, on a CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aslx.landmarks import presets
from aslx.model import config as config_lib
from aslx.model import model as model_lib
from aslx.objectives import data2vec
from aslx.training import optimizer
from aslx.training import step as step_lib

#: (substring of jax device_kind, dtype) -> dense peak FLOP/s assumed for MFU.
PEAK_FLOPS = {
    ("H100", "bfloat16"): 989e12,
    ("H100", "float32"): 494e12,
    ("H200", "bfloat16"): 989e12,
    ("H200", "float32"): 494e12,
    ("A100", "bfloat16"): 312e12,
    ("A100", "float32"): 156e12,
    ("TPU v4", "bfloat16"): 275e12,
    ("TPU v5p", "bfloat16"): 459e12,
}


def peak_flops(device: jax.Device, dtype: str) -> float | None:
    if device.platform == "cpu":
        return None
    for (kind, peak_dtype), peak in PEAK_FLOPS.items():
        if kind in device.device_kind and peak_dtype == dtype:
            return peak
    return None


def make_batch(rng: np.random.Generator, batch: int, frames: int, landmarks: int, vocab: int):
    lengths = rng.integers(frames // 2, frames + 1, size=batch)
    label_lengths = np.maximum(lengths // 6, 1)
    max_label = int(label_lengths.max())
    return {
        "landmarks": rng.normal(size=(batch, frames, landmarks, 3)).astype(np.float32),
        "frame_mask": np.arange(frames)[None] < lengths[:, None],
        "labels": rng.integers(0, vocab - 1, size=(batch, max_label)).astype(np.int32),
        "label_mask": np.arange(max_label)[None] < label_lengths[:, None],
        "landmark_mask": np.broadcast_to(
            (np.arange(frames)[None] < lengths[:, None])[..., None], (batch, frames, landmarks)
        ).copy(),
    }


def build_step(graphdef, tx, blank_id: int):
    def loss_fn(params, batch, key):
        out = model_lib.apply(graphdef, params, batch["landmarks"], batch["frame_mask"], key=key)
        losses = optax.ctc_loss(
            out["ctc_logits"],
            1.0 - batch["frame_mask"].astype(jnp.float32),
            batch["labels"],
            1.0 - batch["label_mask"].astype(jnp.float32),
            blank_id=blank_id,
        )
        return losses.mean()

    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def flops_of(compiled) -> float | None:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return float(flops) if flops is not None else None


def build_data2vec_step(config, tx):
    """A Data2vec step with the library's own train step: ``(params, opt_state) -> …`` as for
    CTC, the EMA teacher folded into the timed function."""
    # The design brief's objective; tiny gets the decoder of configs/pretrain_tiny.py.
    small_encoder = config.num_layers < 6
    objective = data2vec.Data2vecConfig(
        top_k=min(6, config.num_layers),
        decoder_layers=2 if small_encoder else 4,
        decoder_dim=min(256, config.dim),
    )
    graphdef, params = data2vec.create(config, objective, seed=0)
    step_fn = step_lib.make_train_step(
        data2vec.make_loss(graphdef, objective, presets.get("kaggle75"), None),
        tx,
        ema_decay=lambda s: data2vec.ema_decay(objective, s),
        teacher_is_ema=True,
    )

    def step(state, _, batch, key):
        state, metrics = step_fn(state, batch, key)
        return state, None, metrics["loss"]

    return params, jax.jit(step, donate_argnums=(0,)), lambda p: step_lib.init_state(p, tx)


def run(
    model: str,
    batch: int,
    frames: int,
    dtype: str,
    steps: int,
    warmup: int,
    objective: str = "ctc",
) -> dict:
    config = config_lib.sized(model, compute_dtype=dtype)
    tx = optimizer.adamw(1e-4)
    data = make_batch(
        np.random.default_rng(0), batch, frames, config.num_landmarks, config.ctc_vocab
    )
    if objective == "data2vec":
        config = config_lib.sized(model, compute_dtype=dtype, ctc_vocab=0)
        params, step, init = build_data2vec_step(config, tx)
        params, opt_state = init(params), None
    else:
        graphdef, params = model_lib.create(config, seed=0)
        opt_state = tx.init(params)
        step = build_step(graphdef, tx, blank_id=config.ctc_vocab - 1)
    data = jax.device_put(data)
    key = jax.random.key(0)
    compiled = step.lower(params, opt_state, data, key).compile()
    flops = flops_of(compiled)
    for i in range(warmup):
        params, opt_state, loss = compiled(params, opt_state, data, jax.random.fold_in(key, i))
    jax.block_until_ready(loss)
    start = time.perf_counter()
    for i in range(steps):
        params, opt_state, loss = compiled(params, opt_state, data, jax.random.fold_in(key, i))
    jax.block_until_ready(loss)
    seconds = (time.perf_counter() - start) / steps
    device = jax.devices()[0]
    peak = peak_flops(device, dtype)
    counted = params["params"] if objective == "data2vec" else params
    return {
        "model": model,
        "objective": objective,
        "params": model_lib.count_params(counted),
        "batch": batch,
        "frames": frames,
        "dtype": dtype,
        "samples_per_s": batch / seconds,
        "step_ms": seconds * 1e3,
        "flops_per_step": flops,
        "mfu": (flops / seconds / peak) if (flops and peak) else None,
        "peak_flops_assumed": peak,
        "device": f"{device.platform}: {device.device_kind} ×{jax.device_count()}",
        "loss": float(loss),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(config_lib.SIZES), default="tiny")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--frames", type=int, default=128, help="frames per clip (default 128)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="compute dtype (parameters stay float32)",
    )
    parser.add_argument(
        "--objective",
        choices=["ctc", "data2vec"],
        default="ctc",
        help="finetuning (CTC) or pretraining (Data2vec 2.0) step (default ctc)",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
    parser.add_argument("--json", required=True, help="where to write the result")
    args = parser.parse_args(argv)
    result = run(
        args.model, args.batch, args.frames, args.dtype, args.steps, args.warmup, args.objective
    )
    print(
        f"{'model':<7}{'params':>12}{'batch':>7}{'frames':>8}{'dtype':>10}{'step ms':>10}"
        f"{'samples/s':>11}{'GFLOP/step':>12}{'MFU':>7}  device"
    )
    mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "n/a"
    gflops = result["flops_per_step"] / 1e9 if result["flops_per_step"] else float("nan")
    print(
        f"{result['model']:<7}{result['params']:>12,}{result['batch']:>7}{result['frames']:>8}"
        f"{result['dtype']:>10}{result['step_ms']:>10.1f}{result['samples_per_s']:>11.1f}"
        f"{gflops:>12.1f}{mfu:>7}  {result['device']}"
    )
    if result["peak_flops_assumed"]:
        print(f"MFU assumes a peak of {result['peak_flops_assumed'] / 1e12:.0f} TFLOP/s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
