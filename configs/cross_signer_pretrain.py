"""Data2vec pretraining of the tiny encoder on many signers' clips, labels unused, for the
recipe for new signers (``configs/cross_signer.py``) to start from.

    python -m aslx.ingest --format npz --camera-aspect 4:3 \\
        --out runs/cross_signer/records_pretrain \\
        --src ../shared/data/mp_holistic_35signs/landmarks_f16.npz \\
        --src train=../shared/data/xsigner/labelled_train_f16.npz \\
        --src train=../shared/data/xsigner/unlabelled_f16.npz
    python -m pretrain.main --config configs/cross_signer_pretrain.py \\
        --workdir runs/cross_signer/pretrain
    python -m finetune.main --config configs/cross_signer.py \\
        --workdir runs/cross_signer/from_pretrain --config.init_from=runs/cross_signer/pretrain

``python benchmarks/cross_signer.py`` runs all three and scores the finetunes against
scratch on the val signers (``pretrain_gain_cross_signer``).

The pool: ``mp_holistic_35signs``' train split (its val and test stay out), the train signers'
labelled clips without their labels, and ``xsigner``'s 956 unlabelled clips of 128 signers
(other signs, other sign languages): about 3,500 clips of some 200 people. The one-hand letter
photos stay out: a photo repeated 30 times leaves nothing to predict over time. The val
signers' clips stay out too: they choose the recipe.

The encoder reads the clips as the finetune does (every field of
:data:`aslx.training.config.PREPROCESSING_FIELDS` copied from ``configs/cross_signer.py``).
The masking, targets and length are the ones ``configs/bench/few_label_pretrain.py`` chose on
32-frame clips (four fifths hidden, kept frames in whole blocks of 3, residual-stream
targets); the student's input and attention dropout are data2vec 2.0's 0.1
(:func:`aslx.training.config.pretrain`).

Measured (``benchmarks/cross_signer.py``, 2026-12-06, BENCHMARKS.md): finetuned from it, the
recipe gains +1.4 ± 0.2 points on the val signers with a tenth of the labels (three seeds of
three) and −1.1 ± 0.9 with all of them: it helps a little with few labels, not with many.

Meant for: a CPU (the tiny model; minutes on 2 cores).
"""

from aslx.training import config as config_lib
from configs import cross_signer, pretrain_tiny
from configs.bench import few_label_pretrain

#: The record set the command above writes.
RECORDS = "runs/cross_signer/records_pretrain"


def get_config(arg: str | None = None):
    finetune = cross_signer.get_config()
    c = pretrain_tiny.get_config()
    c.data.dir = RECORDS
    for field in config_lib.PREPROCESSING_FIELDS:
        c.data[field] = finetune.data[field]
    c.model.stem_padding = finetune.model.stem_padding
    chosen = few_label_pretrain.get_config()  # the masking chosen on 32-frame clips
    c.data.max_frames = chosen.data.max_frames
    c.batch_size = chosen.batch_size
    for field in ("mask_ratio", "block_length", "target_kind"):
        c.data2vec[field] = chosen.data2vec[field]
    c.total_steps = 2000
    c.log_every = 250
    return c
