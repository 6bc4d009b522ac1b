"""``python -m aslx.export --format weights``: a workdir's chosen (or raw, or EMA) weights as
one framework-neutral safetensors file.

The file's format (tensor names, layouts, metadata) is documented where it is written and
read, :mod:`aslx.run.weights_file`; aslx reads such a file wherever it reads a workdir
(``config.init_from``, ``config.teacher.weights``, ``aslx.predict``).
"""

from __future__ import annotations

import os

from etils import epath

from aslx.run import source as source_lib
from aslx.run import weights_file

CHOICES = ("selected", "raw", "ema")


def export_weights(
    workdir: str | os.PathLike,
    out: str | os.PathLike,
    weights: str = "selected",
    *,
    step: int | None = None,
) -> epath.Path:
    """Writes a workdir's weights to the file ``out`` (parent folders created); returns it.

    Args:
      workdir: a finetuning or pretraining workdir, finished or still training.
      out: the file to write; replaced atomically, so it is never left half written.
      weights: ``selected`` (what ``results.json`` chose; without results, as
        :func:`aslx.run.source.read_source` chooses), ``raw`` or ``ema``.
      step: the checkpoint; default the best step ``results.json`` names, else the latest.

    Raises:
      ValueError: an unknown ``weights``, or ``ema`` for a checkpoint without EMA weights.
      FileNotFoundError: ``workdir`` has no ``model.json`` or no checkpoint (of ``step``).
    """
    if weights not in CHOICES:
        raise ValueError(f"weights must be one of {', '.join(CHOICES)}, got {weights!r}")
    source = source_lib.read_source(workdir, step, None if weights == "selected" else weights)
    return weights_file.write(out, source)
