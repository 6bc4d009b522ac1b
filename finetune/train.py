"""The finetuning program: the one trainer (:mod:`aslx.training.trainer`) running the
finetuning job (:mod:`aslx.training.finetuning`)."""

from __future__ import annotations

import ml_collections

from aslx.training import finetuning, trainer


def train(config: ml_collections.ConfigDict, workdir, *, print_fn=print) -> dict:
    """Finetunes as ``config`` says, in ``workdir``; resumes when it holds a checkpoint.

    Returns the final metrics (also in ``workdir/results.json``).
    """
    return trainer.train(config, workdir, finetuning.FinetuneJob(), print_fn=print_fn)
