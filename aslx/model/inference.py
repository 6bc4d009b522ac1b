"""The trained model as inference uses it: the CTC output layout and the jitted forward pass
(normalisation, the model in evaluation mode, log-probabilities), shared by evaluation, the
TFLite export, alignment, reports and predict."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from aslx import vocab as vocab_lib
from aslx.landmarks import preprocess
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset
from aslx.model import model as model_lib


def ctc_layout(vocab: vocab_lib.Vocab) -> tuple[int, int]:
    """``(CTC outputs, blank id)``: characters keep their own blank; classes (glosses) get
    the blank after the last class."""
    if isinstance(vocab, vocab_lib.CharVocab):
        return vocab.size, vocab.blank_id
    return vocab.size + 1, vocab.size


def make_forward(
    graphdef: nnx.GraphDef,
    preset: Preset,
    task: str,
    normalization: Normalization | None = None,
    jit: bool = True,
) -> Callable:
    """``forward(params, batch) -> outputs``: normalisation (``normalization``, the model
    card's; ``None`` the per-group one) and the model in evaluation mode (hard gate, no
    dropout). CTC gives ``best_path [B, T]`` and ``log_probs [B, T, V]``;
    classification gives ``class_logits [B, C]``. Jitted unless ``jit=False`` (for a caller
    that traces it with the parameters as constants: the TFLite graph)."""

    def forward(params, batch):
        batch = preprocess.normalize_batch(batch, preset, normalization)
        out = model_lib.apply(graphdef, params, batch["landmarks"], batch["frame_mask"])
        if task == "classification":
            return {"class_logits": out["class_logits"]}
        log_probs = jax.nn.log_softmax(out["ctc_logits"].astype(jnp.float32), axis=-1)
        return {"best_path": jnp.argmax(log_probs, -1), "log_probs": log_probs}

    return jax.jit(forward) if jit else forward
