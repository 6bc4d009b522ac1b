"""The finetuning and distillation program: ``python -m finetune.main``."""
