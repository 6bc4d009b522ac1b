"""The finetuning and distillation program: ``python -m finetune.main``.

Not built yet: the library pieces it wires together (model, on-device augmentation,
objectives, checkpoints) come first.
"""
