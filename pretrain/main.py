"""Pretrain an aslx encoder with Data2vec 2.0 on any record set (labels unused).

    python -m pretrain.main --config configs/pretrain_tiny.py --workdir runs/pretrain_tiny \\
        [--config.data.dir=RECORDS --config.batch_size=64 ...]

Rerunning the same command resumes. Finetune from the result with
``--config.init_from=WORKDIR``: the student's encoder loads by path, with no conversion.
"""

from aslx.training import cli


def _train(config, workdir):
    from pretrain.train import train  # after flag parsing: a bad flag fails fast

    return train(config, workdir)


if __name__ == "__main__":
    cli.run(_train)
