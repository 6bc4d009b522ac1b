"""The command line every training program shares: ``--config`` (a recipe, overridable
field by field) and ``--workdir``; errors a user can fix end with one line and exit status 2.

    python -m finetune.main --config configs/finetune_tiny.py --workdir DIR [--config.x=...]
    python -m pretrain.main --config configs/pretrain_tiny.py --workdir DIR [--config.x=...]
"""

from __future__ import annotations

import logging as logging_lib
import os
import re
import sys
import warnings
from collections.abc import Callable

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from aslx import cli, files
from aslx.training import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "a recipe in configs/", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, logs and results go")
flags.mark_flag_as_required("config")


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, except that overriding a field the config does not have
    (``--config.no_such_field=1``) ends with one line on stderr and exit status 2:
    ml_collections raises a bare ``AttributeError`` there, which absl shows as a traceback."""
    try:
        return app.parse_flags_with_usage(argv)
    except AttributeError as error:
        root = error
        while root.__context__ is not None:
            root = root.__context__
        if not (isinstance(root, KeyError) and root.args and isinstance(root.args[0], str)):
            raise
        key = root.args[0]
        flag = next(
            (
                "--" + name
                for name in (a.lstrip("-").split("=", 1)[0] for a in argv[1:])
                if name.startswith("config.") and key in name.split(".")[1:]
            ),
            f"--config.{key}",
        )
        hint = re.search(r'Did you mean "([^"]+)"', str(error))
        suggestion = f" (did you mean {hint.group(1)!r}?)" if hint else ""
        print(
            f"error: {flag}: the config has no field {key!r}{suggestion}; every field is "
            "listed in aslx/training/config.py",
            file=sys.stderr,
        )
        sys.exit(2)


class _QuietOrbax(logging_lib.Filter):
    """Drops orbax's own log records and asyncio's (the trainer's only asyncio is orbax's
    background saving): orbax's warning on every checkpoint saved without an evaluation, and
    the tracebacks both log when a save fails, which the trainer reports itself in one line
    (:func:`aslx.training.loop.save_errors`)."""

    def filter(self, record: logging_lib.LogRecord) -> bool:
        return f"{os.sep}orbax{os.sep}" not in record.pathname and record.name != "asyncio"


def _quiet_closed_loops(unraisable) -> None:
    """``sys.unraisablehook`` that drops TensorStore's "Event loop is closed": when a save
    fails, orbax closes the event loop of that save while TensorStore writes of it are still
    completing, and each completion prints a traceback from a TensorStore thread. Every other
    unraisable exception goes to Python's own hook."""
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
        return
    sys.__unraisablehook__(unraisable)


def main(program: Callable[[ml_collections.ConfigDict], None]) -> None:
    """Parses the command line and calls ``program(config)``; the errors of
    :data:`aslx.training.loop.USER_ERRORS` end it with one line and exit status 2."""

    def main(argv: list[str]) -> int:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        logging.set_verbosity(logging.WARNING)  # keep library INFO chatter off the console
        logging.get_absl_handler().addFilter(_QuietOrbax())
        sys.unraisablehook = _quiet_closed_loops
        # The same failed save can leave orbax's write coroutines unawaited when the loop
        # closes; Python warns of each at exit. The trainer's only coroutines are orbax's.
        warnings.filterwarnings(
            "ignore", message=r"coroutine '.*' was never awaited", category=RuntimeWarning
        )
        try:
            return program(_CONFIG.value) or 0
        except loop.USER_ERRORS as e:
            return cli.fail(e)
        except Exception as e:  # a read-only workdir, a full disk under the logs
            cause = files.storage_fault(e)
            if cause is None:
                raise
            return cli.fail(RuntimeError(cause))

    app.run(main, flags_parser=_parse_flags)


def run(train: Callable) -> None:
    """Parses a training program's command line and calls ``train(config, workdir)``."""
    flags.mark_flag_as_required("workdir")
    main(lambda config: train(config, _WORKDIR.value) and None)
