"""The pretraining program: ``python -m pretrain.main``."""
