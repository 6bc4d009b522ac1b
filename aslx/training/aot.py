"""The trainer's own step compiled ahead of time for a TPU slice that is not attached.

    python -m aslx.aot --config configs/pretrain_large.py --topology v5e-256 --json P

JAX compiles for a slice it cannot reach: ``libtpu`` (the TPU compiler) describes the slice's
chips (:func:`slice_devices`), and a step lowered with shardings over them compiles with the real
TPU compiler, which reports the memory each chip needs. :func:`compile_step` builds exactly
what a run would: the job's model and loss (:meth:`aslx.training.trainer.Job.build`, on abstract
shapes: nothing allocated, no data read), the step :func:`aslx.training.trainer.make_step`
(augmentation, EMA teacher, non-finite guard, gradient accumulation, Data2vec's masked copies),
the mesh :func:`aslx.training.sharding.make_mesh` over the slice's chips with the config's
``fsdp``, the state's shardings from the logical-axis rules and the global batch split over
every chip as the input pipeline delivers it (:func:`aslx.training.sharding.batch_sharding`).

The slices (:data:`SLICES`), named as Cloud TPU names them: ``v5e-N`` and ``v6e-N`` count
chips, ``v5p-N`` and ``v4-N`` count TensorCores (two a chip; JAX sees one device a chip):

=========  ============================  =================  ===========  ================
name       chips                         chips a host       HBM a chip   topology
=========  ============================  =================  ===========  ================
v5e-N      N = 1, 4, 8 … 256             N up to 8, else 4  16 GiB       2-D (16x16 …)
v6e-N      N = 1, 4, 8 … 256             N up to 8, else 4  32 GiB       2-D
v5p-N      N / 2 = 4, 8 … 1024           4                  95 GiB       3-D (4x4x4 …)
v4-N       N / 2 = 4, 8 … 1024           4                  32 GiB       3-D
=========  ============================  =================  ===========  ================

What a compile reports (:func:`report`): the memory of one chip from the compiled program
(``memory_analysis()``: arguments + outputs − donated aliases + temporaries + generated code),
whether it fits the chip's HBM, the model FLOPs of a step per chip (:func:`model_flops`), the
collectives the compiler placed (:func:`collectives`, per step: a scanned loop's body counted
as often as the loop runs) and whether the state and batch are sharded as intended
(:func:`sharding_facts`). It predicts no step time: XLA's cost analysis of a compiled TPU
program is no use for that (a scanned body counted once, negative ``optimal_seconds``); a
measured step on the slice is the only figure for time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from aslx import vocab as vocab_lib
from aslx.input import batch as batch_lib
from aslx.landmarks import presets
from aslx.model import config as model_config_lib
from aslx.model import inference
from aslx.records.metadata import RecordSet
from aslx.training import config as config_lib
from aslx.training import finetuning, pretraining, sharding, trainer
from aslx.training.config import ConfigError

GIB = 2**30

# --- the slices -----------------------------------------------------------------------------------

#: Chips of a 2-D slice (v5e, v6e) -> its shape.
_PLANAR = {1: (1, 1), 4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16)}
_PLANAR[256] = (16, 16)
#: Chips of a 3-D slice (v4, v5p) -> its shape.
_CUBIC = {4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4)}
_CUBIC |= {128: (4, 4, 8), 256: (4, 8, 8), 512: (8, 8, 8)}


@dataclasses.dataclass(frozen=True)
class Generation:
    """A TPU generation: whether its slice names count chips or TensorCores (two a chip), its
    HBM a chip, its slice shapes and the chip configuration libtpu compiles for."""

    counts: str  # "chips" or "cores"
    hbm_bytes: int
    shapes: dict[int, tuple[int, ...]]
    chip_config: str = "default"


GENERATIONS = {
    "v5e": Generation("chips", 16 * GIB, _PLANAR),
    "v6e": Generation("chips", 32 * GIB, _PLANAR),
    "v5p": Generation("cores", 95 * GIB, _CUBIC),
    "v4": Generation("cores", 32 * GIB, _CUBIC, chip_config="megacore"),
}


@dataclasses.dataclass(frozen=True)
class Slice:
    """A TPU slice as Cloud TPU names it (``v5e-256``) and as libtpu describes it."""

    name: str
    generation: str
    chips: int
    shape: tuple[int, ...]
    chips_per_host: tuple[int, int, int]
    hbm_bytes: int
    chip_config: str

    @property
    def topology(self) -> str:
        """libtpu's name of the slice (``v5e:16x16``)."""
        return f"{self.generation}:{'x'.join(map(str, self.shape))}"

    @property
    def hosts(self) -> int:
        return self.chips // math.prod(self.chips_per_host)


def _slices() -> dict[str, Slice]:
    slices = {}
    for name, generation in GENERATIONS.items():
        per_name = 2 if generation.counts == "cores" else 1
        for chips, shape in generation.shapes.items():
            if len(shape) == 2:  # up to 8 chips on one host, else 2 × 2 a host
                per_host = (*shape, 1) if chips <= 8 else (2, 2, 1)
            else:
                per_host = (2, 2, 1)
            slices[f"{name}-{chips * per_name}"] = Slice(
                f"{name}-{chips * per_name}",
                name,
                chips,
                shape,
                per_host,
                generation.hbm_bytes,
                generation.chip_config,
            )
    return slices


#: Every slice :func:`get_slice` knows, by name.
SLICES: dict[str, Slice] = _slices()


class AotError(ConfigError):
    """What stops a compile before it starts (no libtpu, an unknown slice, a mesh or batch
    that does not divide the chips); the message names the fix."""


def get_slice(name: str) -> Slice:
    """The slice called ``name`` (``v5e-256``); :class:`AotError` listing the known ones."""
    if name not in SLICES:
        raise AotError(f"--topology {name!r}: unknown TPU slice; known: {', '.join(SLICES)}")
    return SLICES[name]


#: Where ``make tpu-compiler`` puts libtpu: beside the environment, not on its import path
#: (installed there, every JAX process of the environment would look for a TPU at start).
LIBTPU_BESIDE = Path(sys.prefix) / "libtpu" / "libtpu" / "libtpu.so"
LIBTPU_MISSING = (
    "the TPU compiler (libtpu) is not installed: run `make tpu-compiler` (it goes beside the "
    "environment), or pip install -e '.[tpu]', or set TPU_LIBRARY_PATH to a libtpu.so"
)


def libtpu_problem() -> str | None:
    """Why no slice can be described here (``None``: libtpu is at hand)."""
    if os.environ.get("TPU_LIBRARY_PATH") and Path(os.environ["TPU_LIBRARY_PATH"]).is_file():
        return None
    if importlib.util.find_spec("libtpu") is not None or LIBTPU_BESIDE.is_file():
        return None
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        return (
            f"libtpu has wheels for Linux x86-64 only, not {platform.system()} "
            f"{platform.machine()}: compile on a Linux x86-64 machine"
        )
    return LIBTPU_MISSING


def slice_devices(tpu: Slice) -> list:
    """The compile-only devices of ``tpu``: what JAX compiles for, nothing it can run on."""
    problem = libtpu_problem()
    if problem:
        raise AotError(problem)
    if not os.environ.get("TPU_LIBRARY_PATH") and importlib.util.find_spec("libtpu") is None:
        os.environ["TPU_LIBRARY_PATH"] = str(LIBTPU_BESIDE)
    # No TPU here: libtpu would otherwise ask the cloud's metadata server which TPU it runs
    # on and log each failed guess, and take a machine-wide lock that a second compile (in
    # another process) would fail on; compiling needs neither.
    for name, value in (
        ("ALLOW_MULTIPLE_LIBTPU_LOAD", "1"),
        ("TPU_SKIP_MDS_QUERY", "1"),
        ("TPU_WORKER_HOSTNAMES", "localhost"),
        ("TPU_ACCELERATOR_TYPE", tpu.name),
        ("TPU_STDERR_LOG_LEVEL", "3"),
        ("TPU_MIN_LOG_LEVEL", "3"),
    ):
        os.environ.setdefault(name, value)
    from jax.experimental import topologies

    description = topologies.get_topology_desc(
        platform="tpu",
        topology_name=tpu.topology,
        chip_config_name=tpu.chip_config,
        chips_per_host_bounds=tpu.chips_per_host,
    )
    return list(description.devices)


# --- what the step reads --------------------------------------------------------------------------


def job_of(config: ml_collections.ConfigDict) -> trainer.Job:
    """The trainer's job for ``config``: pretraining when it has ``data2vec`` fields."""
    return pretraining.PretrainJob() if "data2vec" in config else finetuning.FinetuneJob()


@dataclasses.dataclass(frozen=True)
class Reads:
    """What the compiled step reads: the model's inputs and the labels' static length."""

    inputs: trainer.Inputs
    max_label_length: int
    source: str  # the record set, or what stood in for it


def reads_of(
    config: ml_collections.ConfigDict, records: str | None = None, classes: int = 250
) -> Reads:
    """What a run of ``config`` reads: from ``records``' ``metadata.json`` (no clip is read),
    or else the recipe's preset, ingest's camera aspect and, for labels, the Kaggle characters
    with one character per 6 frames (CTC), ``classes`` classes (classification) or none
    (pretraining)."""
    if records:
        record_set = RecordSet(records)
        preset = presets.get(config.data.preset) if config.data.preset else record_set.preset
        inputs = trainer.Inputs(
            preset, config_lib.normalization(config, record_set), record_set.vocab
        )
        return Reads(inputs, max(int(record_set.meta["max_label_length"]), 1), str(records))
    preset = presets.get(config.data.preset or "kaggle75")
    normalization = config_lib.normalization(config, None)
    if "data2vec" in config:
        return Reads(trainer.Inputs(preset, normalization), 1, "no records (no labels)")
    if config.task == "classification":
        vocab = vocab_lib.ClassVocab(tuple(f"class_{i}" for i in range(classes)))
        return Reads(trainer.Inputs(preset, normalization, vocab), 1, f"{classes} classes")
    length = max(config.data.max_frames // 6, 1)
    return Reads(
        trainer.Inputs(preset, normalization, vocab_lib.CharVocab.kaggle()),
        length,
        f"Kaggle characters, labels of {length}",
    )


def teacher_of(
    config: ml_collections.ConfigDict, reads: Reads, size: str | None
) -> finetuning.Teacher | None:
    """A distillation teacher of ``size`` on abstract shapes (``None``: none, or the one
    ``config.teacher`` names, which the job loads itself)."""
    if not size or "data2vec" in config:
        return None
    inputs = reads.inputs
    ctc_vocab, _ = inference.ctc_layout(inputs.vocab)
    model = model_config_lib.sized(
        size,
        num_landmarks=inputs.preset.num_landmarks,
        landmark_channels=inputs.normalization.landmark_channels,
        ctc_vocab=ctc_vocab,
    )
    return finetuning.abstract_teacher(model)


def build_model(config, reads: Reads, teacher: finetuning.Teacher | None) -> trainer.Model:
    """The job's model of ``config`` on abstract shapes."""
    if teacher is not None:
        return finetuning.build(config, reads.inputs, abstract=True, teacher=teacher)
    return job_of(config).build(config, reads.inputs, abstract=True)


def abstract_batch(config, reads: Reads, batch_size: int | None = None) -> dict:
    """``{key: ShapeDtypeStruct}`` of a global batch of ``config`` (its longest bucket)."""
    shapes = batch_lib.device_batch_shapes(
        batch_size or config.batch_size,
        config.data.max_frames,
        reads.inputs.preset.num_landmarks,
        reads.max_label_length,
        alignments=bool(config.data.get("alignments", "")),
    )
    return {k: jax.ShapeDtypeStruct(shape, dtype) for k, (shape, dtype) in shapes.items()}


# --- compiling ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Compiled:
    """A step compiled for a slice, with what was compiled."""

    executable: Any  # jax.stages.Compiled
    seconds: float
    mesh: jax.sharding.Mesh
    state: Any  # abstract state
    state_shardings: Any
    batch: dict  # abstract global batch
    frozen: Any = None  # a distillation teacher's abstract parameters


def check_divides(config: ml_collections.ConfigDict, chips: int) -> None:
    """:class:`AotError` when ``fsdp`` or the batch does not divide over ``chips``."""
    if config.fsdp < 1 or chips % config.fsdp:
        divisors = [d for d in (1, 2, 4, 8, 16, 32, 64) if chips % d == 0]
        raise AotError(
            f"--config.fsdp={config.fsdp} does not divide the slice's {chips} chips; "
            f"choose one of {divisors}"
        )
    unit = chips * config.grad_accum_steps
    if config.batch_size % unit:
        raise AotError(
            f"--config.batch_size={config.batch_size} does not split over {chips} chips "
            f"× {config.grad_accum_steps} micro-batches; use a multiple of {unit}"
        )


def compile_step(
    config: ml_collections.ConfigDict, reads: Reads, devices: list, teacher=None
) -> Compiled:
    """The step of ``config`` lowered on abstract, sharded shapes over ``devices`` and
    compiled; raises the compiler's error when the program cannot be built (out of memory)."""
    check_divides(config, len(devices))
    model = build_model(config, reads, teacher)
    tx, _ = trainer.optimizer_for(config, model)
    mesh = sharding.make_mesh(config.fsdp, devices=devices)
    state = jax.eval_shape(lambda p: trainer.init_state(model, p, tx), model.params)
    shardings = sharding.state_shardings(state, mesh)
    replicated = NamedSharding(mesh, PartitionSpec())
    batch = abstract_batch(config, reads)
    batch_shardings = {k: sharding.batch_sharding(mesh, v.ndim) for k, v in batch.items()}
    key = jax.eval_shape(lambda: jax.random.key(0))
    frozen = model.frozen
    frozen_shardings = sharding.param_shardings(frozen, mesh) if frozen is not None else None
    step = jax.jit(
        trainer.make_step(config, model, tx, mesh),
        in_shardings=(shardings, batch_shardings, replicated, frozen_shardings),
        out_shardings=(shardings, None),
        donate_argnums=(0,),
    )
    began = time.perf_counter()
    executable = step.lower(state, batch, key, frozen).compile()
    seconds = time.perf_counter() - began
    return Compiled(executable, seconds, mesh, state, shardings, batch, frozen)


def largest_batch(fits, unit: int, start: int) -> int | None:
    """The largest multiple of ``unit`` for which ``fits(batch)`` holds (``None``: not even
    ``unit``), assuming what fits stays fitting below it: doubling from ``start`` (rounded to
    a multiple) until a batch does not fit, then halving the gap; about 2 log₂ of the answer
    compiles."""
    low, high = 0, max(start // unit, 1)
    while fits(high * unit):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle * unit) else (low, middle)
    return low * unit if low else None


#: The compiler's words when a program does not fit, in its two forms: "Used 21.3G of 15.75G
#: hbm" and "the total memory required for HLO temporaries (66.48G) exceeds available HBM
#: (15.75G)".
_OUT_OF_MEMORY = (
    re.compile(r"Used ([\d.]+)([KMGT]?) of ([\d.]+)([KMGT]?) hbm"),
    re.compile(r"\(([\d.]+)([KMGT]?)\) exceeds available HBM \(([\d.]+)([KMGT]?)\)"),
)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def out_of_memory(error: BaseException) -> tuple[int, int] | None:
    """``(bytes needed, bytes usable)`` from the TPU compiler's out-of-memory error, else
    ``None``."""
    for pattern in _OUT_OF_MEMORY:
        match = pattern.search(str(error))
        if match:
            used, used_unit, usable, usable_unit = match.groups()
            return int(float(used) * _UNITS[used_unit]), int(float(usable) * _UNITS[usable_unit])
    return None


# --- what a compiled step says --------------------------------------------------------------------


def memory(compiled) -> dict[str, int]:
    """One chip's bytes of a compiled program, by part, and ``bytes_per_chip``: arguments +
    outputs − donated aliases + temporaries + generated code."""
    stats = compiled.memory_analysis()
    parts = {
        "arguments": stats.argument_size_in_bytes,
        "outputs": stats.output_size_in_bytes,
        "aliased": stats.alias_size_in_bytes,
        "temporaries": stats.temp_size_in_bytes,
        "generated_code": stats.generated_code_size_in_bytes,
    }
    parts = {k: int(v) for k, v in parts.items()}
    total = (
        parts["arguments"]
        + parts["outputs"]
        - parts["aliased"]
        + parts["temporaries"]
        + parts["generated_code"]
    )
    return parts | {"bytes_per_chip": total}


COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2}
_DTYPE_BYTES |= {"f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8, "c64": 8}
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) \(.*\) -> .*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?[\w.\-]+ = (.+?) ([a-z\-]+)\(")
_CALLED = re.compile(
    r"\b(body|condition|to_apply|calls|branch_computations)=(\{[^}]*\}|%?[\w.\-]+)"
)
_TRIPS = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_S32_CONSTANT = re.compile(r"= s32\[\]\S* constant\((\d+)\)")


def _shapes(text: str) -> list[tuple[str, tuple[int, ...]]]:
    return [
        (dtype, tuple(int(d) for d in dims.split(",") if d))
        for dtype, dims in _ARRAY.findall(text)
        if dtype in _DTYPE_BYTES
    ]


def _nbytes(dtype: str, dims: tuple[int, ...]) -> int:
    return _DTYPE_BYTES[dtype] * math.prod(dims)


def hlo_collectives(hlo: str) -> list[dict]:
    """Every collective of a compiled HLO module's text: ``kind``, its output ``shapes`` and
    ``times`` it runs a step (the trip counts of the loops around it multiplied)."""
    computations: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo.splitlines():
        match = _COMPUTATION.match(line)
        if match:
            current = match.group(1)
            computations[current] = []
            if line.startswith("ENTRY"):
                entry = current
        elif current is not None:
            computations[current].append(line)
    times = {name: 0 for name in computations}

    def trip_count(line: str) -> int:
        """A while loop's trips: XLA's note, else its condition ``i < N`` (a scan's form)."""
        trips = _TRIPS.search(line)
        if trips:
            return int(trips.group(1))
        condition = re.search(r"condition=%?([\w.\-]+)", line)
        lines = computations.get(condition.group(1), []) if condition else []
        bounds = [int(c) for c in _S32_CONSTANT.findall("\n".join(lines))]
        root = next((x for x in lines if x.lstrip().startswith("ROOT")), "")
        return bounds[0] if len(bounds) == 1 and "direction=LT" in root else 1

    def visit(name: str, factor: int) -> None:
        times[name] += factor
        for line in computations.get(name, []):
            for role, callees in _CALLED.findall(line):
                repeat = trip_count(line) if role == "body" else 1
                for callee in re.split(r"[,\s%]+", callees):
                    if callee in computations:
                        visit(callee, factor * repeat)

    if entry is not None:
        visit(entry, 1)
    found = []
    for name, lines in computations.items():
        for line in lines:
            match = _INSTRUCTION.match(line)
            if not match:
                continue
            result, op = match.groups()
            kind = op.removesuffix("-start")
            if kind not in COLLECTIVES or op.endswith("-done") or not times[name]:
                continue
            shapes = _shapes(result)
            if op.endswith("-start") and kind != "all-reduce" and shapes:
                shapes = shapes[-1:]  # (operands…, output): the output is last
            found.append({"kind": kind, "shapes": shapes, "times": times[name]})
    return found


def collectives(hlo: str) -> dict[str, dict[str, int]]:
    """``{kind: {"count", "bytes"}}`` per step of each collective in :data:`COLLECTIVES` (bytes
    of their outputs on one chip)."""
    totals = {kind: {"count": 0, "bytes": 0} for kind in COLLECTIVES}
    for op in hlo_collectives(hlo):
        totals[op["kind"]]["count"] += op["times"]
        totals[op["kind"]]["bytes"] += op["times"] * sum(_nbytes(*s) for s in op["shapes"])
    return totals


def batch_gathers(hlo: str, global_batch: int, per_chip_batch: int) -> list[str]:
    """Gathers whose output looks like an activation of the batch gathered onto one chip, as
    ``kind dtype[shape]`` strings; empty when none.

    Read from shapes alone: a leading axis that is a multiple of the global batch and larger
    than a chip's share, on an array of 3 or more axes (``[B, T, D]``) or of masks and indices
    (``pred``, ``s32``). A weight is 2-D in a scanned block (a stack's leading axis is its
    layers) and floating-point, so it does not look like one unless the batch equals a width:
    choose a batch that does not when checking a model."""
    if global_batch == per_chip_batch:
        return []
    return [
        f"{op['kind']} {dtype}{list(dims)}"
        for op in hlo_collectives(hlo)
        if op["kind"] in ("all-gather", "all-to-all")
        for dtype, dims in op["shapes"]
        if dims
        and dims[0] > per_chip_batch
        and dims[0] % global_batch == 0
        and (len(dims) >= 3 or dtype in ("pred", "s32"))
    ]


def _leaves_with_axes(tree) -> list[tuple[Any, tuple | None]]:
    """``(leaf, logical axes or None)`` in ``jax.tree.leaves`` order."""
    out = []
    for node in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nnx.Variable)):
        if isinstance(node, nnx.Variable):
            axes = node.get_metadata().get("logical_axes")
            out.extend((leaf, axes) for leaf in jax.tree.leaves(node))
        else:
            out.append((node, None))
    return out


def sharding_facts(compiled: Compiled) -> dict:
    """Whether the state and batch are sharded as intended, from the compiled program:

    * ``embed_leaves`` / ``embed_leaves_split``: state leaves (parameters, optimiser moments,
      EMA) with an ``embed`` axis that ``fsdp`` divides, and how many the compiled program
      takes split ``fsdp`` ways along it;
    * ``expected_argument_bytes``: each argument's bytes over its shards, summed (the state
      and a distillation teacher split as the rules say, the batch over every chip), against
      the compiled program's ``arguments`` bytes (``argument_ratio``);
    * ``batch_split``: every batch array's first axis split over every chip;
    * ``batch_gathers``: :func:`batch_gathers` of the program (should be empty).
    """
    mesh, fsdp = compiled.mesh, compiled.mesh.shape["fsdp"]
    arg_shardings = compiled.executable.input_shardings[0]
    state_shardings = jax.tree.leaves(arg_shardings[0])
    embed, split = 0, 0
    for (leaf, axes), leaf_sharding in zip(_leaves_with_axes(compiled.state), state_shardings):
        if not axes or "embed" not in axes:
            continue
        axis = axes.index("embed")
        if leaf.shape[axis] % fsdp:
            continue
        embed += 1
        split += leaf_sharding.shard_shape(leaf.shape)[axis] * fsdp == leaf.shape[axis]
    expected = 0
    arguments = [compiled.state, compiled.batch, compiled.frozen]
    argument_shardings = [arg_shardings[0], arg_shardings[1], arg_shardings[3]]
    for leaf, leaf_sharding in zip(jax.tree.leaves(arguments), jax.tree.leaves(argument_shardings)):
        expected += math.prod(leaf_sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
    chips = mesh.size
    batch_split = all(
        s.shard_shape(v.shape)[0] * chips == v.shape[0]
        for v, s in zip(compiled.batch.values(), jax.tree.leaves(arg_shardings[1]))
    )
    global_batch = next(iter(compiled.batch.values())).shape[0]
    actual = compiled.executable.memory_analysis().argument_size_in_bytes
    return {
        "embed_leaves": embed,
        "embed_leaves_split": split,
        "expected_argument_bytes": int(expected),
        "argument_ratio": actual / expected if expected else None,
        "batch_split": bool(batch_split),
        "batch_gathers": batch_gathers(
            compiled.executable.as_text(), global_batch, global_batch // chips
        ),
    }


def model_flops(config: ml_collections.ConfigDict, reads: Reads, teacher=None) -> float | None:
    """Model FLOPs of one step of ``config`` on its whole global batch: XLA's cost analysis of
    the step lowered (not compiled) with its blocks unrolled, no remat and one micro-batch
    (cost analysis counts a loop's body once, and recomputation is not model work)."""
    unrolled = ml_collections.ConfigDict(config.to_dict())
    unrolled.model.scan_layers, unrolled.model.remat = False, "none"
    unrolled.grad_accum_steps = 1
    model = build_model(unrolled, reads, teacher)
    tx, _ = trainer.optimizer_for(unrolled, model)
    state = jax.eval_shape(lambda p: trainer.init_state(model, p, tx), model.params)
    key = jax.eval_shape(lambda: jax.random.key(0))
    step = jax.jit(trainer.make_step(unrolled, model, tx))
    lowered = step.lower(state, abstract_batch(unrolled, reads), key, model.frozen)
    analysis = lowered.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return float(flops) if flops is not None else None


def report(config: ml_collections.ConfigDict, tpu: Slice, compiled: Compiled) -> dict:
    """What the JSON of ``python -m aslx.aot`` holds for one compiled step, but its FLOPs
    (:func:`model_flops`, a lowering of its own, done once the step fits)."""
    parts = memory(compiled.executable)
    total = parts.pop("bytes_per_chip")
    return {
        "topology": tpu.name,
        "libtpu_topology": tpu.topology,
        "chips": tpu.chips,
        "hosts": tpu.hosts,
        "chips_per_host": math.prod(tpu.chips_per_host),
        "mesh": dict(compiled.mesh.shape),
        "batch_size": config.batch_size,
        "batch_per_chip": config.batch_size // tpu.chips,
        "grad_accum_steps": config.grad_accum_steps,
        "max_frames": config.data.max_frames,
        "bytes_per_chip": total,
        "bytes": parts,
        "hbm_bytes": tpu.hbm_bytes,
        "hbm_fraction": total / tpu.hbm_bytes,
        "fits": total <= tpu.hbm_bytes,
        "collectives": collectives(compiled.executable.as_text()),
        "sharding": sharding_facts(compiled),
        "compile_seconds": compiled.seconds,
    }


def shortfall(config: ml_collections.ConfigDict, tpu: Slice, needed: int, usable: int) -> str:
    """One line: how far a config misses a chip's memory and what would help."""
    per_chip = config.batch_size // tpu.chips
    hints = []
    larger = [f for f in (2, 4, 8, 16, 32) if f > config.fsdp and tpu.chips % f == 0]
    if larger:
        hints.append(f"a larger --config.fsdp (now {config.fsdp}; {larger[0]} divides the chips)")
    if config.model.remat != "full":
        hints.append("--config.model.remat=full")
    if per_chip > 1:
        half = config.batch_size // 2
        hints.append(
            f"a smaller per-chip batch with accumulation (now {per_chip} clips a chip: "
            f"--config.batch_size={half} --config.grad_accum_steps={config.grad_accum_steps}, or "
            f"--config.grad_accum_steps={config.grad_accum_steps * 2} to keep the batch)"
        )
    return (
        f"does not fit {tpu.name}: a chip needs {needed / GIB:.2f} GiB, "
        f"{(needed - usable) / GIB:.2f} GiB more than the {usable / GIB:.2f} GiB the compiler "
        f"can use of its {tpu.hbm_bytes / GIB:.0f} GiB; try " + ", or ".join(hints)
    )
