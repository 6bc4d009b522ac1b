"""What every benchmark script shares: its flags, its table, its JSON file and its errors.

A benchmark is ``python benchmarks/NAME.py … --json PATH``: a script whose ``main(argv)``
parses its flags (:func:`parser`, :func:`parse_args`), measures, prints a table
(:func:`print_table`) and writes one JSON object (:func:`write_json`: whole or not at all,
through :func:`aslx.files.write_json`). ``main`` is decorated with :func:`command`: an error a
user can fix (:data:`aslx.training.loop.USER_ERRORS`: a bad config or record set, a workdir that
holds another run, a run stopped by a preemption notice, a missing file) ends the script with
one line, ``error: …`` on stderr, and exit status 2; anything else is a bug and keeps its
traceback. The training recipes a benchmark runs are ``get_config(arg)`` files in ``configs/``
(those of the benchmarks alone in ``configs/bench/``), so each of its runs can be repeated with
the trainer by itself. ``tests/test_benchmarks.py`` runs every script's ``main`` at tiny sizes.

**One import style.** A script runs by its path (``python benchmarks/NAME.py``), which puts
``benchmarks/``, not the project root, on ``sys.path``. So every script begins with::

    ROOT = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(ROOT))  # run by path: the project root is not on sys.path

    from benchmarks import harness  # noqa: E402

and imports the project's other top-level packages from the root, by package: another script
as ``from benchmarks import train_step``, a recipe as ``from configs.bench import spelling``
(or ``from configs import isolated_tiny``), a trainer as ``from finetune.train import train``.
Never ``import real_data`` with ``benchmarks/`` on the path, nor ``importlib`` on a file path:
either loads a file a second time as another module, with its own globals. The tests import
the scripts the same way (``from benchmarks import decode``); ``benchmarks/__init__.py`` makes
the folder a regular package, so an installed package of the same name cannot shadow it.
Modules without a ``main`` (this one, ``numpy_augment``, ``robustness_shifts``) import only
the library (``aslx``, installed), so they need no path of their own.

**Tiny runs.** ``--smoke`` (:func:`add_smoke_argument`; every benchmark that trains has it) runs
the whole script in seconds, to show it still works: every training is cut by
:func:`tiny_run` to :data:`SMOKE_STEPS` steps of one 32-wide block without augmentation, the
benchmarks on real landmarks read a subset of the clips (``real_data.SMOKE_SPLITS``), and their
records and runs go to ``WORKDIR/smoke``, apart from the real ones. Its figures mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from aslx import cli, files

ROOT = Path(__file__).resolve().parents[1]
#: The folder of ``mp_holistic_35signs``'s ``landmarks_f16.npz`` (``--data``'s default).
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mp_holistic_35signs"
#: The archive a ``--data`` folder holds.
ARCHIVE = "landmarks_f16.npz"
#: Steps of every training in a ``--smoke`` run.
SMOKE_STEPS = 2
#: The model of every training in a ``--smoke`` run: one block, 32 wide (2 heads of 16).
SMOKE_MODEL = {"num_layers": 1, "dim": 32}
#: The largest batch of a ``--smoke`` run.
SMOKE_BATCH = 8

#: Whether the running ``main`` was given ``--smoke`` (set by :func:`parse_args`, cleared when
#: a :func:`command` returns). Module state, not an argument, because the real-landmark
#: scripts reach the trainings through ``real_data``'s shared functions.
_smoke = False


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows the script's docstring as written, with ``--json PATH``
    (required: where the result goes)."""
    out = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    out.add_argument("--json", required=True, help="where to write the result (JSON)")
    return out


def add_smoke_argument(parser: argparse.ArgumentParser) -> None:
    """``--smoke``: a tiny run of the whole script (see the module docstring)."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a run of seconds that checks the script works: every training {SMOKE_STEPS} "
        "steps of one 32-wide block without augmentation, on a subset of the data; its "
        "figures mean nothing",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--workdir`` and ``--smoke``: what every benchmark on the real landmarks
    takes."""
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the folder of mp_holistic_35signs' {ARCHIVE} (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / "runs" / "real_data",
        help="where records and runs are written once and reused (default runs/real_data)",
    )
    add_smoke_argument(parser)


def add_seeds_argument(
    parser: argparse.ArgumentParser, default: int, help: str, least: int
) -> None:
    """``--seeds N``: how many seeds each arm of a comparison trains; argparse refuses a count
    below ``least`` in one line."""

    def count(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"{value}: at least {least}")
        return value

    parser.add_argument("--seeds", type=count, default=default, help=help)


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser``'s arguments; with ``--smoke`` a tiny run is on (:func:`smoke`) and
    ``--workdir`` becomes ``WORKDIR/smoke``, so a tiny run never reuses, or leaves behind, the
    records and runs of a real one."""
    global _smoke
    args = parser.parse_args(argv)
    _smoke = bool(getattr(args, "smoke", False))
    if _smoke and getattr(args, "workdir", None) is not None:
        args.workdir = Path(args.workdir) / "smoke"
    return args


def smoke() -> bool:
    """Whether the running script was given ``--smoke``."""
    return _smoke


def tiny_run(config):
    """``config`` (a finetuning or pretraining ``ConfigDict``) cut to a ``--smoke`` run, in
    place, and returned: :data:`SMOKE_STEPS` steps (one warm-up step at most), one checkpoint
    and one evaluation at the end, the :data:`SMOKE_MODEL`, batches of at most
    :data:`SMOKE_BATCH` and no augmentation (compiling it takes a CPU half a minute); its
    data, task and preprocessing stay the recipe's."""
    steps = min(config.total_steps, SMOKE_STEPS)
    config.total_steps = steps
    config.warmup_steps = min(config.warmup_steps, steps - 1)
    config.log_every = 1
    config.checkpoint_every = steps
    if "eval_every" in config:
        config.eval_every = steps
    config.model.update(SMOKE_MODEL)
    config.batch_size = min(config.batch_size, SMOKE_BATCH)
    config.augment.enabled = False
    if "data2vec" in config:
        config.data2vec.top_k = 1  # the target averages the last blocks: there is one
        config.collapse_after = steps  # a run this short is all warm-up
    return config


def data_missing(args: argparse.Namespace) -> bool:
    """True, after one error line, when ``--data`` holds no :data:`ARCHIVE`."""
    if (args.data / ARCHIVE).is_file():
        return False
    print(f"error: {args.data / ARCHIVE} not found (--data)", file=sys.stderr)
    return True


def command(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Decorates a script's ``main``: an error of :data:`aslx.training.loop.USER_ERRORS`
    becomes one line and exit status 2, and ``--smoke`` ends with the call."""

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        global _smoke
        try:
            return main(argv)
        except Exception as error:
            # Imported here: the training loop costs a script that never trains seconds.
            from aslx.training.loop import USER_ERRORS

            if isinstance(error, USER_ERRORS):
                return cli.fail(error)
            raise
        finally:
            _smoke = False

    return guarded


def device() -> str:
    """The default device, as every result names it: ``platform: kind``."""
    import jax

    first = jax.devices()[0]
    return f"{first.platform}: {first.device_kind}"


def print_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None
) -> None:
    """Prints ``rows`` under ``header``, one line each, every column as wide as its widest
    cell. ``align`` has one letter per column, ``l`` (left) or ``r`` (right); by default the
    first column is left-aligned and the others right-aligned. Cells print as ``str`` gives
    them (format numbers before)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = [[str(cell) for cell in row] for row in (header, *rows)]
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(header))]
    for line in lines:
        cells = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(line, widths, align)
        ]
        print("  ".join(cells).rstrip())


def write_json(path: str | Path, result: dict) -> None:
    """Writes ``result`` to ``path`` as indented JSON, whole or not at all, and says where. The
    result of a ``--smoke`` run says so (``"smoke": true``), so nobody reads its figures."""
    if _smoke:
        result = result | {"smoke": True}
    files.write_json(path, result)
    print(f"wrote {path}")
