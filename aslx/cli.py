"""What every aslx command shares: its parser and its error handling.

A command is ``python -m aslx.NAME``: a module ``aslx/NAME.py`` (or a package's
``__main__.py``) whose ``main(argv)`` only parses flags, calls the library and prints. An error
a user can fix (a missing file, a bad value, a split the records lack) ends the command with
one line, ``error: …`` on stderr, and exit status 2, and so does a storage fault (a full disk,
a quota, a read-only folder, a file past its size limit: :func:`aslx.files.storage_fault`
names the cause and the path); anything else is a bug and keeps its traceback. The trainers
(``finetune.main``, ``pretrain.main``) parse with absl and ml_collections instead
(:mod:`aslx.training.cli`) and end their errors the same way.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from aslx import files

#: Exceptions whose message tells the user what to fix (FormatError and ConfigError are
#: ValueErrors, NoSuchSplit a KeyError).
USER_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, ValueError, KeyError)


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows the module docstring as written."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def message(error: BaseException) -> str:
    """An error's text (a ``KeyError``'s without the quotes ``str`` adds)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def fail(error: BaseException, prefix: str = "") -> int:
    """Prints ``error: [prefix]message`` on stderr; returns the exit status 2."""
    print(f"error: {prefix}{message(error)}", file=sys.stderr)
    return 2


def command(main: Callable[..., int]) -> Callable[..., int]:
    """Decorates a command's ``main``: the errors of :data:`USER_ERRORS` become one line and
    exit status 2."""

    @functools.wraps(main)
    def guarded(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as error:
            cause = files.storage_fault(error)
            return fail(RuntimeError(cause) if cause else error)
        except Exception as error:  # a full disk reaches us as TensorFlow's or orbax's error too
            cause = files.storage_fault(error)
            if cause is None:
                raise
            return fail(RuntimeError(cause))

    return guarded
