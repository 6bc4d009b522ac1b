"""Isolated-sign classification with the tiny model on a CPU.

    python -m aslx.ingest --format npz \\
        --src ../shared/data/mp_holistic_35signs/landmarks_f16.npz --out runs/signs35
    python -m finetune.main --config configs/isolated_tiny.py --workdir runs/isolated_tiny

Model selection on ``val``, the test split scored once at the end.
"""

from aslx.training import config as config_lib


def get_config(arg: str | None = None):
    c = config_lib.finetune()
    c.task = "classification"
    c.data.dir = "runs/signs35"
    c.data.test_split = "test"
    c.data.preset = "hands_pose"
    c.data.max_frames = 32
    c.model.size = "tiny"
    c.batch_size = 32
    c.total_steps = 3000
    c.warmup_steps = 200
    c.lr = 2e-3
    c.label_smoothing = 0.1
    c.augment.time_flip_p = 0.0
    c.augment.cutmix_p = 0.0
    # A photo of a static letter, a resting second hand and cameras of other shapes
    # (benchmarks/robustness.py, chosen on its shifted val sets).
    c.augment.still_clip_p = 0.2
    c.augment.resting_hand_p = 0.1
    c.augment.camera_aspect_p = 0.25
    c.eval_every = 500
    c.checkpoint_every = 500
    return c
