"""Finetune (or distil) an aslx model.

    python -m finetune.main --config configs/finetune_tiny.py --workdir runs/finetune_tiny \\
        [--config.batch_size=64 --config.data.dir=RECORDS ...]

Rerunning the same command resumes from the workdir's latest checkpoint. Every field is listed
with its meaning in ``aslx/training/config.py``; each recipe's docstring gives its command.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from aslx.training.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "a recipe in configs/", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, logs and results go")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # keep library INFO chatter off the console
    from finetune.train import TrainingError, train

    try:
        train(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, TrainingError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
