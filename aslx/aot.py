"""Compile a recipe's training step for a TPU slice before renting it.

    python -m aslx.aot --config configs/pretrain_large.py --topology v5e-256 --json P
    python -m aslx.aot --config configs/finetune_large.py --topology v5e-64 --config.fsdp=8
    python -m aslx.aot --config configs/distill_small.py --topology v5e-8 --teacher large
    python -m aslx.aot --config configs/finetune_small.py --topology v5e-8 --find-batch

The step is the one the trainer would run on that slice, compiled by the real TPU compiler on
this machine (no TPU, no data: :mod:`aslx.training.aot`). Prints a table and, with ``--json``,
writes ``topology``, ``chips``, ``hosts``, ``mesh``, ``bytes_per_chip`` and its parts
(``bytes``), ``hbm_bytes``, ``fits``, ``flops_per_step_per_chip``, ``collectives`` (count and
bytes a step per kind), ``sharding`` (whether the state and batch are split as intended) and
``compile_seconds``. Exit status 0 when the step fits the chips' memory, 1 when it does not
(one line: the shortfall and what would help), 2 for a usage error (one line).

Flags: ``--config`` and any ``--config.FIELD=VALUE`` as for the trainers; ``--topology`` a slice
as Cloud TPU names it (``v5e-8``, ``v5e-256``, ``v5p-128``, ``v6e-256``, ``v4-64``);
``--records DIR`` reads a record set's ``metadata.json`` for the preset, vocabulary and label
length (no clip is read; without it: the recipe's preset, Kaggle characters, labels of one
character per 6 frames, or ``--classes`` classes); ``--teacher SIZE`` compiles distillation from
a teacher of that size when the config names no trained one; ``--find-batch`` reports the largest
global batch (a multiple of the chips) that fits; ``--json PATH``.

Needs libtpu, the TPU compiler (Linux x86-64): ``make tpu-compiler``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compile-only: no TPU backend is started here
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags  # noqa: E402

from aslx import files  # noqa: E402
from aslx.model import config as model_config_lib  # noqa: E402
from aslx.training import aot  # noqa: E402
from aslx.training import cli as training_cli  # noqa: E402

_TOPOLOGY = flags.DEFINE_string("topology", None, "the TPU slice, e.g. v5e-256", required=True)
_JSON = flags.DEFINE_string("json", None, "write the report here")
_RECORDS = flags.DEFINE_string("records", None, "a record set whose metadata the step reads")
_CLASSES = flags.DEFINE_integer("classes", 250, "classes of a classification step without records")
_TEACHER = flags.DEFINE_enum(
    "teacher", None, list(model_config_lib.SIZES), "distil from an untrained teacher of this size"
)
_FIND_BATCH = flags.DEFINE_bool("find-batch", False, "report the largest global batch that fits")


def _gib(n: int) -> str:
    """Bytes in GiB, or in MiB below one GiB."""
    return f"{n / aot.GIB:.2f} GiB" if n >= aot.GIB else f"{n / 2**20:.1f} MiB"


def table(result: dict) -> str:
    """The report as a table for the console."""
    parts = result["bytes"]
    flops = result["flops_per_step_per_chip"]
    rows = [
        (
            "slice",
            f"{result['topology']} ({result['libtpu_topology']}): {result['chips']} chips, "
            f"{result['hosts']} hosts × {result['chips_per_host']}",
        ),
        ("mesh", " × ".join(f"{k} {v}" for k, v in result["mesh"].items())),
        (
            "batch",
            f"{result['batch_size']} ({result['batch_per_chip']} a chip, "
            f"{result['grad_accum_steps']} micro-batches) × {result['max_frames']} frames",
        ),
        (
            "memory a chip",
            f"{_gib(result['bytes_per_chip'])} of {_gib(result['hbm_bytes'])} "
            f"({result['hbm_fraction']:.0%}): {'fits' if result['fits'] else 'DOES NOT FIT'}",
        ),
        ("  arguments", _gib(parts["arguments"])),
        ("  outputs − aliased", _gib(parts["outputs"] - parts["aliased"])),
        ("  temporaries", _gib(parts["temporaries"])),
        ("  generated code", _gib(parts["generated_code"])),
        ("model FLOPs a step a chip", f"{flops:.3e}" if flops is not None else "unknown"),
    ]
    for kind, c in result["collectives"].items():
        if c["count"]:
            rows.append((f"  {kind}", f"{c['count']:,} a step, {_gib(c['bytes'])}"))
    facts = result["sharding"]
    rows.append(
        (
            "sharding",
            f"{facts['embed_leaves_split']}/{facts['embed_leaves']} embed leaves split "
            f"{result['mesh']['fsdp']} ways, arguments "
            f"{facts['argument_ratio']:.2f} × expected, batch "
            f"{'split over every chip' if facts['batch_split'] else 'NOT split'}, "
            f"{len(facts['batch_gathers'])} batch gathers",
        )
    )
    rows.append(("compile", f"{result['compile_seconds']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _compile(config, tpu, reads, devices, teacher) -> tuple[dict | None, str | None]:
    """``(report, None)`` when the step fits, ``(report or None, shortfall)`` when not."""
    try:
        compiled = aot.compile_step(config, reads, devices, teacher)
    except Exception as error:  # the TPU compiler's own error when the program is too big
        needed = aot.out_of_memory(error)
        if needed is None:
            raise
        return None, aot.shortfall(config, tpu, *needed)
    result = aot.report(config, tpu, compiled)
    if not result["fits"]:
        return result, aot.shortfall(config, tpu, result["bytes_per_chip"], tpu.hbm_bytes)
    return result, None


def find_batch(config, tpu, reads, devices, teacher, say) -> int | None:
    """The largest global batch whose step fits (:func:`aslx.training.aot.largest_batch`),
    each compile said as it ends."""

    def fits(batch_size: int) -> bool:
        config.batch_size = batch_size
        result, problem = _compile(config, tpu, reads, devices, teacher)
        used = f" ({result['hbm_fraction']:.0%} of HBM)" if result else ""
        say(f"batch {batch_size}: {'fits' if problem is None else 'does not fit'}{used}")
        return problem is None

    return aot.largest_batch(fits, tpu.chips * config.grad_accum_steps, config.batch_size)


def run(config) -> int:
    tpu = aot.get_slice(_TOPOLOGY.value)
    aot.check_divides(config, tpu.chips)
    reads = aot.reads_of(config, _RECORDS.value, _CLASSES.value)
    teacher = aot.teacher_of(config, reads, _TEACHER.value)
    devices = aot.slice_devices(tpu)
    say = print
    if _FIND_BATCH.value:
        largest = find_batch(config, tpu, reads, devices, teacher, say)
        if largest is None:
            print(
                f"error: not even {tpu.chips * config.grad_accum_steps} clips fit", file=sys.stderr
            )
            return 1
        config.batch_size = largest
        say(f"largest global batch that fits {tpu.name}: {largest}")
    result, problem = _compile(config, tpu, reads, devices, teacher)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    flops = aot.model_flops(config, reads, teacher)  # None where XLA gives no count
    result["flops_per_step_per_chip"] = None if flops is None else flops / tpu.chips
    result["reads"] = reads.source
    say(table(result))
    if _JSON.value:
        files.write_json(_JSON.value, result)
        say(f"wrote {_JSON.value}")
    return 0


def main() -> None:
    training_cli.main(run)


if __name__ == "__main__":
    main()
