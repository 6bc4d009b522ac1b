"""Finetune (or distil) an aslx model.

    python -m finetune.main --config configs/finetune_tiny.py --workdir runs/finetune_tiny \\
        [--config.batch_size=64 --config.data.dir=RECORDS ...]

Rerunning the same command resumes from the workdir's latest checkpoint. Every field is listed
with its meaning in ``aslx/training/config.py``; each recipe's docstring gives its command.
"""

from aslx.training import cli


def _train(config, workdir):
    from finetune.train import train  # after flag parsing: a bad flag fails fast

    return train(config, workdir)


if __name__ == "__main__":
    cli.run(_train)
