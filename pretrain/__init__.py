"""The pretraining program (Data2vec 2.0 with an EMA teacher): ``python -m pretrain.main``.

Not built yet: the library pieces it wires together (model, on-device augmentation,
objectives) come first.
"""
