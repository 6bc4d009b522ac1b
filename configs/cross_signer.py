"""Isolated signs for people the model never saw: the tiny model trained on many signers.

    python -m aslx.ingest --format npz --camera-aspect 4:3 --out runs/cross_signer/records \\
        --src ../shared/data/mp_holistic_35signs/landmarks_f16.npz \\
        --src train=../shared/data/xsigner/labelled_train_f16.npz \\
        --src train=../shared/data/xsigner/handsonly_train_f16.npz \\
        --src xval=../shared/data/xsigner/labelled_val_f16.npz
    python -m finetune.main --config configs/cross_signer.py --workdir runs/cross_signer/recipe

``python benchmarks/cross_signer.py`` writes those records and trains this recipe beside the
one-signer recipe (``configs/isolated_tiny.py``), scoring both on the val signers.

The records: ``mp_holistic_35signs`` (one signer, its own train / val / test split) and the
``xsigner`` clips of other people, their train signers' labelled clips and one-hand letter
photos in ``train`` and their val signers' clips in ``xval``. The checkpoint and the raw or
EMA weights are chosen on ``xval`` (``data.eval_split``), the val signers; ``test`` is
``mp_holistic_35signs``' test split, the one signer the recipe must not lose.

The camera: every source is a webcam of unknown shape (the recorders' laptops; the tutorial
they follow opens the default 640 × 480 capture), so the record set says 4:3 for all of them
(``--camera-aspect 4:3`` at ingest: a property of the record set, read by the model card),
not the portrait phones of the Kaggle data. The hand photos are crops of unknown shape;
their points keep the same rule.

The frame: ``group`` (each group's local shape only: a hand relative to the hand itself, no
placement in the body's frame) rather than the one-signer recipe's ``body``. Chosen on the
val signers only: three seeds, 0.732 / 0.711 / 0.720 against 0.703 / 0.689 / 0.703 with
``body``, +2.3 ± 0.3 points paired by seed (``docs/benchmarks-log.md``, "2026-12-06 —
screening the recipe on the val signers"); where a hand sits relative to the body is the
part of a sign that differs most between recorders.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from configs import isolated_tiny

#: The record set ``benchmarks/cross_signer.py`` writes (the command above).
RECORDS = "runs/cross_signer/records"
#: The split of the val signers' clips, which chooses the checkpoint.
VAL_SIGNERS = "xval"


def get_config(arg: str | None = None):
    c = isolated_tiny.get_config()
    c.data.dir = RECORDS
    c.data.eval_split = VAL_SIGNERS
    c.data.normalization = "group"
    c.data.test_split = "test"
    return c
