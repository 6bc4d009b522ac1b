"""The pretraining program: the one trainer (:mod:`aslx.training.trainer`) running the
Data2vec 2.0 job (:mod:`aslx.training.pretraining`)."""

from __future__ import annotations

import ml_collections

from aslx.training import pretraining, trainer


def train(config: ml_collections.ConfigDict, workdir, *, print_fn=print) -> dict:
    """Pretrains as ``config`` says, in ``workdir``; resumes when it holds a checkpoint.

    Returns what ``workdir/results.json`` holds.
    """
    return trainer.train(config, workdir, pretraining.PretrainJob(), print_fn=print_fn)
