"""Model sizes and options.

========  ======  =====  =====  ==========================================================
size      layers  width  heads  parameters (75 points × 3, 60-way CTC head)
========  ======  =====  =====  ==========================================================
tiny      2       64     2      ≈ 0.15 M: demos and tests on a CPU
small     24      256    4      ≈ 19.1 M: fits a 40 MB float16 TFLite file
large     24      1024   16     ≈ 303 M: the teacher
========  ======  =====  =====  ==========================================================
"""

from __future__ import annotations

import dataclasses

GATE_KINDS = ("none", "sigmoid", "hard_concrete")
#: Attention implementations: ``jax.nn.dot_product_attention``'s ``xla`` and ``cudnn``, or
#: ``explicit`` (the softmax written out heads-first, what the TFLite graph runs); ``auto`` is
#: ``cudnn`` (flash attention) on a GPU with bfloat16 compute and ``xla`` everywhere else.
ATTENTION_IMPLEMENTATIONS = ("auto", "xla", "cudnn", "explicit")
#: What a scanned block keeps for the backward pass (``jax.checkpoint`` policies): ``none``
#: keeps every activation, ``full`` only each block's input (recomputes the block),
#: ``dots_saveable`` every matrix product (attention scores included),
#: ``dots_with_no_batch_dims_saveable`` the weight products only (not the ``[B, N, T, T]``
#: attention scores).
REMAT_POLICIES = ("none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable")
#: What the conv stem sees beyond a clip's ends: ``zeros``, or ``edge`` (its first and last
#: real frames repeated, so a pose held at the clip's ends, or a one-frame photo, reaches the
#: stem as it would in the middle of a clip where it is held).
STEM_PADDINGS = ("zeros", "edge")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the model's parameters and computation.

    Attributes:
      num_landmarks: points per frame (the selection preset's count).
      landmark_channels: input channels per point (:mod:`aslx.landmarks.normalize`: 3 for
        x, y, z, up to 8 with the mask channel and the body-frame placement).
      num_layers, dim, num_heads: transformer depth, width and attention heads.
      mlp_ratio: MLP hidden width / ``dim``.
      conv_kernel: temporal kernel of the conv stem (frames).
      stem_padding: what the stem sees beyond each clip's real frames, one of
        :data:`STEM_PADDINGS`.
      dropout: dropout on the attention and MLP outputs (training only).
      input_dropout: dropout on the stem's output, before the first block (training only).
      attention_dropout: dropout on the attention probabilities (training only; a nonzero
        rate runs training's attention written out, not fused).
      layer_drop: probability of skipping a whole block, per example (training only).
      rope_base: RoPE frequency base.
      compute_dtype: ``float32`` or ``bfloat16`` for matrix products; parameters, softmax,
        norms and outputs stay float32.
      ctc_vocab: CTC outputs (characters + blank); 0 for no CTC head.
      distill_vocab: outputs of the separate distillation head; 0 for none.
      num_classes: classification outputs; 0 for no classification head.
      gate: joint gate kind: ``none``, ``sigmoid`` or ``hard_concrete``.
      gate_init: initial keep-logit of every landmark (positive: start open).
      hard_concrete_beta: hard-concrete temperature β (Louizos et al. use 2/3).
      gate_eval_threshold: the evaluation mask keeps a landmark whose keep-logit is above this
        (0: keep probability above 1/2; :data:`aslx.model.gate.NONZERO_THRESHOLD` ≈ −2.40:
        wherever Louizos's test-time estimate is non-zero).
      attention: the attention implementation, one of :data:`ATTENTION_IMPLEMENTATIONS`.
      remat: rematerialisation of the scanned blocks, one of :data:`REMAT_POLICIES`.
      scan_layers: run the blocks under ``lax.scan`` (compile time flat in depth); ``False``
        unrolls the same stacked parameters into a Python loop (TFLite export, tests).
    """

    num_landmarks: int = 75
    landmark_channels: int = 3
    num_layers: int = 2
    dim: int = 64
    num_heads: int = 2
    mlp_ratio: int = 4
    conv_kernel: int = 3
    stem_padding: str = "zeros"
    dropout: float = 0.1
    input_dropout: float = 0.0
    attention_dropout: float = 0.0
    layer_drop: float = 0.1
    rope_base: float = 10_000.0
    compute_dtype: str = "float32"
    ctc_vocab: int = 60
    distill_vocab: int = 0
    num_classes: int = 0
    gate: str = "none"
    gate_init: float = 3.0
    hard_concrete_beta: float = 2.0 / 3.0
    gate_eval_threshold: float = 0.0
    attention: str = "auto"
    remat: str = "none"
    scan_layers: bool = True

    def __post_init__(self):
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.num_heads} heads of even size")
        if self.gate not in GATE_KINDS:
            raise ValueError(f"gate must be one of {GATE_KINDS}, not {self.gate!r}")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"compute_dtype must be float32 or bfloat16, not {self.compute_dtype!r}"
            )
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attention must be one of {ATTENTION_IMPLEMENTATIONS}, not {self.attention!r}"
            )
        if self.stem_padding not in STEM_PADDINGS:
            raise ValueError(
                f"stem_padding must be one of {STEM_PADDINGS}, not {self.stem_padding!r}"
            )
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat must be one of {REMAT_POLICIES}, not {self.remat!r}")
        for name in ("dropout", "input_dropout", "attention_dropout", "layer_drop"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), not {getattr(self, name)}")


SIZES: dict[str, dict] = {
    "tiny": dict(num_layers=2, dim=64, num_heads=2),
    "small": dict(num_layers=24, dim=256, num_heads=4),
    "large": dict(num_layers=24, dim=1024, num_heads=16),
}


def size_name(size: str, model: ModelConfig) -> str:
    """What a log line calls ``model``, built from the named ``size``: the name, and where its
    shape differs from that size's, the fields that differ (``tiny with num_layers=4, dim=128``),
    so a run with overridden widths or depths does not read as the named size."""
    changed = [f"{k}={getattr(model, k)}" for k, v in SIZES[size].items() if getattr(model, k) != v]
    return f"{size} with {', '.join(changed)}" if changed else size


def sized(size: str, **overrides) -> ModelConfig:
    """``ModelConfig`` of a named size, with fields overridden."""
    if size not in SIZES:
        raise KeyError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    return ModelConfig(**(SIZES[size] | overrides))
