"""The library's own training step, timed as a run uses it: augmentation, EMA, guard and all.

    python benchmarks/train_step.py --model small --batch 8 --frames 128 \\
        --json runs/bench/train_step_small.json
    python benchmarks/train_step.py --model large --batch 64 --frames 384 --dtype bfloat16 \\
        --compile-only --json runs/bench/train_step_large.json
    python benchmarks/train_step.py --model small --objective data2vec --batch 64 \\
        --frames 384 --dtype bfloat16 --json runs/bench/pretrain_small.json   # on a GPU

The step is the one the trainer jits for finetuning (``--objective ctc``) or pretraining
(``--objective data2vec``): :func:`aslx.training.trainer.make_step` of the job's model and
loss, with the model, optimiser and augmentation of the size's recipe in ``configs/``
(``finetune_{size}.py`` / ``pretrain_{size}.py``: remat policy, attention, augmentation), the
weight EMA, the non-finite guard and ``--accum`` micro-batches. Only batch, frames and compute
dtype come from the flags. The batch is a synthetic ``kaggle75`` batch shaped like the
pipeline's: image-fraction coordinates, 10 % of points missing, clip lengths uniform in
``[frames / 4, frames]``, labels of one character per 6 frames.

Reported (table and ``--json``):

================  ==========================================================================
key               meaning
================  ==========================================================================
step_ms           one step, median over ``--rounds`` rounds of ``--steps`` steps
samples_per_s     batch / step
real_frames_per_s non-padding frames per second
compile_seconds   lowering + XLA compilation of the step
augment_share     1 − (the same step with augmentation off) / step, the median of that ratio
                  over ``--rounds`` interleaved rounds of the same run
peak_bytes        XLA's buffer assignment of the compiled step (``memory_analysis()``):
                  arguments + outputs − donated aliases + temporaries
flops_per_step    model FLOPs: XLA's cost analysis of the same step lowered with its blocks
                  unrolled and no remat, in one micro-batch (a scanned loop's body is counted
                  once; recomputation is not model work)
mfu               FLOPs per second / the device's dense bf16 (or TF32/fp32) peak; ``null``
                  where the peak is unknown (a CPU)
decoder_params    ``--objective data2vec`` only: the light decoder's parameters
                  (``aslx.objectives.data2vec.decoder_params``)
================  ==========================================================================

``--compile-only`` lowers the step on abstract shapes (no parameter is allocated, so Large
compiles on a laptop) and reports ``compile_seconds``, ``peak_bytes`` and ``flops_per_step``.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

import jax  # noqa: E402
import numpy as np  # noqa: E402

from aslx.landmarks import presets  # noqa: E402
from aslx.landmarks.normalize import Normalization  # noqa: E402
from aslx.model import model as model_lib  # noqa: E402
from aslx.objectives import data2vec  # noqa: E402
from aslx.training import aot, finetuning, pretraining, trainer  # noqa: E402
from aslx.vocab import CharVocab  # noqa: E402
from benchmarks import harness  # noqa: E402

#: (substring of ``jax.Device.device_kind``, dtype) -> dense peak FLOP/s per chip, first match
#: wins (so ``TPU v5 lite`` before ``TPU v5``). bfloat16: dense tensor-core / MXU peak;
#: float32: TF32 tensor-core peak on GPUs.
PEAK_FLOPS: tuple[tuple[str, str, float], ...] = (
    ("A100", "bfloat16", 312e12),
    ("A100", "float32", 156e12),
    ("H100", "bfloat16", 989e12),
    ("H100", "float32", 494e12),
    ("H200", "bfloat16", 989e12),
    ("H200", "float32", 494e12),
    ("TPU v4", "bfloat16", 275e12),
    ("TPU v5 lite", "bfloat16", 197e12),  # v5e
    ("TPU v5e", "bfloat16", 197e12),
    ("TPU v5p", "bfloat16", 459e12),
    ("TPU v5", "bfloat16", 459e12),  # v5p reports itself as "TPU v5"
    ("TPU v6 lite", "bfloat16", 918e12),  # v6e (Trillium)
    ("TPU v6e", "bfloat16", 918e12),
)


def peak_flops(device: jax.Device, dtype: str) -> float | None:
    """The dense peak assumed for MFU, ``None`` on a CPU or an unknown chip."""
    if device.platform == "cpu":
        return None
    for kind, peak_dtype, peak in PEAK_FLOPS:
        if kind in device.device_kind and peak_dtype == dtype:
            return peak
    return None


def make_batch(rng: np.random.Generator, batch: int, frames: int, landmarks: int, vocab: int):
    """A pipeline-shaped batch: ``landmarks [B, T, L, 3]`` in image fractions (0 where
    missing), masks, and labels ``[B, S]`` of one character per 6 frames."""
    lengths = rng.integers(max(frames // 4, 1), frames + 1, size=batch)
    frame_mask = np.arange(frames)[None] < lengths[:, None]
    landmark_mask = (rng.random((batch, frames, landmarks)) < 0.9) & frame_mask[..., None]
    points = rng.uniform(0.2, 0.8, size=(batch, frames, landmarks, 3)).astype(np.float32)
    label_lengths = np.maximum(lengths // 6, 1)
    max_label = int(label_lengths.max())
    label_mask = np.arange(max_label)[None] < label_lengths[:, None]
    labels = rng.integers(0, vocab - 1, size=(batch, max_label))
    return {
        "landmarks": np.where(landmark_mask[..., None], points, 0.0).astype(np.float32),
        "landmark_mask": landmark_mask,
        "frame_mask": frame_mask,
        "labels": np.where(label_mask, labels, -1).astype(np.int32),
        "label_mask": label_mask,
        "example_mask": np.ones(batch, bool),
    }


def recipe(
    model: str,
    objective: str,
    dtype: str,
    augment: bool,
    frames: int,
    layers: int | None = None,
):
    """The config of the size's recipe in ``configs/`` with the benchmark's dtype, frames and
    augmentation (``layers``: another depth, same width)."""
    kind = "pretrain" if objective == "data2vec" else "finetune"
    config = importlib.import_module(f"configs.{kind}_{model}").get_config()
    config.model.compute_dtype = dtype
    config.augment.enabled = augment
    config.data.max_frames = frames
    if layers:
        config.model.num_layers = layers
    return config


#: What the benchmark's model reads: ``kaggle75`` points, the per-group normalisation and
#: the Kaggle characters (60 CTC outputs, the blank last).
INPUTS = trainer.Inputs(presets.get("kaggle75"), Normalization.per_group(), CharVocab.kaggle())


def build(
    model: str,
    objective: str,
    dtype: str,
    augment: bool,
    accum: int,
    frames: int,
    layers: int | None = None,
):
    """``(jitted step, state factory, model config)`` of the recipe's real train step: the
    trainer's own (:func:`aslx.training.trainer.make_step`) for the objective's job, with the
    recipe's optimiser. The model is built on abstract shapes; the state factory allocates it
    (call it under ``jax.eval_shape`` to compile without allocating)."""
    config = recipe(model, objective, dtype, augment, frames, layers)
    config.grad_accum_steps = accum
    job = pretraining.PretrainJob() if objective == "data2vec" else finetuning.FinetuneJob()
    spec = job.build(config, INPUTS, abstract=True)
    tx, _ = trainer.optimizer_for(config, spec)

    def init_state():
        return trainer.init_state(spec, job.build(config, INPUTS).params, tx)

    step = jax.jit(trainer.make_step(config, spec, tx), donate_argnums=(0,))
    return step, init_state, spec.config


def peak_bytes_of(compiled) -> int | None:
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    assigned = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        - stats.alias_size_in_bytes
        + stats.temp_size_in_bytes
    )
    # Some backends also report a live-range peak (the CPU's counts only the arguments).
    return int(max(assigned, getattr(stats, "peak_memory_in_bytes", 0) or 0))


def model_flops(
    model: str, objective: str, dtype: str, batch: dict, layers: int | None = None
) -> float | None:
    """FLOPs of one step of the recipe on ``batch``: :func:`aslx.training.aot.model_flops`, the
    step lowered with its blocks unrolled and no remat, in one micro-batch (cost analysis
    counts a loop's body once)."""
    batch_size, frames = batch["frame_mask"].shape
    config = recipe(model, objective, dtype, True, frames, layers)
    config.batch_size = batch_size
    return aot.model_flops(config, aot.Reads(INPUTS, batch["labels"].shape[1], "synthetic"))


def compile_step(step, init_state, batch: dict):
    """``(compiled, seconds)``: the step lowered on abstract shapes and compiled."""
    abstract_state = jax.eval_shape(init_state)
    abstract_batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), batch)
    start = time.perf_counter()
    compiled = step.lower(abstract_state, abstract_batch, jax.random.key(0)).compile()
    return compiled, time.perf_counter() - start


def time_steps(compiled, state, batch, steps: int):
    """``(state, seconds per step, last loss)`` over ``steps`` steps."""
    key = jax.random.key(0)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, batch, key)
    loss = float(metrics["loss"])  # waits for the last step
    return state, (time.perf_counter() - start) / steps, loss


def run(
    model: str,
    batch: int,
    frames: int,
    dtype: str,
    *,
    objective: str = "ctc",
    accum: int = 1,
    steps: int = 5,
    rounds: int = 5,
    compile_only: bool = False,
    augment_share: bool = True,
) -> dict:
    data = make_batch(np.random.default_rng(0), batch, frames, 75, 60)
    step, init_state, model_config = build(model, objective, dtype, True, accum, frames)
    compiled, compile_seconds = compile_step(step, init_state, data)
    device = jax.devices()[0]
    result = {
        "model": model,
        "objective": objective,
        "params": model_lib.count_params(jax.eval_shape(lambda: init_state()["params"])),
        "batch": batch,
        "frames": frames,
        "dtype": dtype,
        "accum": accum,
        "remat": model_config.remat,
        "attention": model_config.attention,
        "compile_seconds": compile_seconds,
        "peak_bytes": peak_bytes_of(compiled),
        "flops_per_step": model_flops(model, objective, dtype, data),
        "device": f"{device.platform}: {device.device_kind} ×{jax.device_count()}",
    }
    if objective == "data2vec":
        d2v = recipe(model, objective, dtype, True, frames).data2vec
        result["decoder_params"] = data2vec.decoder_params(
            data2vec.Data2vecConfig(**d2v), model_config.dim
        )
    if compile_only:
        return result

    steps_fns = {"augment": compiled}
    if augment_share:
        plain_step, plain_init, _ = build(model, objective, dtype, False, accum, frames)
        steps_fns["plain"] = compile_step(plain_step, plain_init, data)[0]
    on_device = jax.device_put(data)
    state = init_state()
    for warm_up in steps_fns.values():  # a first call pays for more than the step
        state, _, _ = time_steps(warm_up, state, on_device, 2)
    times = {name: [] for name in steps_fns}
    losses = {}
    for _ in range(rounds):  # interleaved: both see the same machine load
        for name, fn in steps_fns.items():
            state, seconds, losses[name] = time_steps(fn, state, on_device, steps)
            times[name].append(seconds)
    seconds = statistics.median(times["augment"])
    seconds_plain = statistics.median(times["plain"]) if augment_share else None
    # Paired by round: a round's two timings share its machine load.
    plain_over_augment = [p / a for p, a in zip(times.get("plain", []), times["augment"])]
    peak = peak_flops(device, dtype)
    flops = result["flops_per_step"]
    return result | {
        "step_ms": seconds * 1e3,
        "step_ms_without_augment": seconds_plain * 1e3 if augment_share else None,
        "samples_per_s": batch / seconds,
        "real_frames_per_s": float(data["frame_mask"].sum()) / seconds,
        "augment_share": (
            max(0.0, 1.0 - statistics.median(plain_over_augment)) if augment_share else None
        ),
        "mfu": (flops / seconds / peak) if (flops and peak) else None,
        "peak_flops_assumed": peak,
        "loss": losses["augment"],
    }


def print_table(result: dict) -> None:
    def fmt(key, spec, scale=1.0):
        value = result.get(key)
        return "n/a" if value is None else format(value * scale, spec)

    rows = [
        ("model", f"{result['model']} ({result['params']:,} parameters), {result['objective']}"),
        ("batch × frames", f"{result['batch']} × {result['frames']}, {result['dtype']}"),
        *(
            [("decoder", f"{result['decoder_params']:,} parameters")]
            if "decoder_params" in result
            else []
        ),
        ("remat, attention", f"{result['remat']}, {result['attention']}"),
        ("compile s", fmt("compile_seconds", ".1f")),
        ("peak GB", fmt("peak_bytes", ".2f", 1e-9)),
        ("GFLOP / step", fmt("flops_per_step", ".1f", 1e-9)),
        ("step ms", fmt("step_ms", ".1f")),
        ("step ms, no augmentation", fmt("step_ms_without_augment", ".1f")),
        ("augment share", fmt("augment_share", ".1%")),
        ("samples / s", fmt("samples_per_s", ".1f")),
        ("real frames / s", fmt("real_frames_per_s", ",.0f")),
        ("MFU", fmt("mfu", ".1%")),
        ("device", result["device"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


@harness.command
def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", choices=["tiny", "small", "large"], default="tiny")
    parser.add_argument("--batch", type=int, default=16, help="global batch (default 16)")
    parser.add_argument("--frames", type=int, default=128, help="frames per clip (default 128)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="compute dtype (parameters stay float32; default float32)",
    )
    parser.add_argument(
        "--objective",
        choices=["ctc", "data2vec"],
        default="ctc",
        help="finetuning (CTC) or pretraining (Data2vec 2.0) step (default ctc)",
    )
    parser.add_argument("--accum", type=int, default=1, help="micro-batches per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median, 5)")
    parser.add_argument(
        "--compile-only",
        action="store_true",
        help="only compile: compile_seconds, peak_bytes, flops_per_step",
    )
    parser.add_argument(
        "--no-augment-share",
        action="store_true",
        help="skip the step without augmentation (one compilation less; augment_share null)",
    )
    args = harness.parse_args(parser, argv)
    result = run(
        args.model,
        args.batch,
        args.frames,
        args.dtype,
        objective=args.objective,
        accum=args.accum,
        steps=args.steps,
        rounds=args.rounds,
        compile_only=args.compile_only,
        augment_share=not args.no_augment_share,
    )
    print_table(result)
    if result.get("peak_flops_assumed"):
        print(f"MFU assumes a peak of {result['peak_flops_assumed'] / 1e12:.0f} TFLOP/s")
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
