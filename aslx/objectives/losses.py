"""The losses of finetuning, each a masked mean over what is real.

* :func:`ctc` — Connectionist Temporal Classification (Graves et al. 2006): the negative log of
  the summed probability of every frame-level path that collapses (merge repeats, drop blanks)
  to the label. Computed by ``optax.ctc_loss``; here the masks become its paddings, label
  padding never reaches it as an index, and each example's loss is divided by its label length
  so long phrases do not dominate.
* :func:`distillation` — cross-entropy of the student's separate distillation head against the
  teacher's per-frame argmax (hard labels, as DeiT distils), averaged over the batch's real
  frames (a long clip weighs more, as in the reference), or per clip then over clips.
* :func:`classification` — softmax cross-entropy of class logits against class ids.

Each returns ``(scalar loss, per-example loss [B])``; examples with ``example_mask`` 0 (the
padding of evaluation batches) count for nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _masked_mean(per_example: jnp.ndarray, example_mask: jnp.ndarray | None) -> jnp.ndarray:
    if example_mask is None:
        return per_example.mean()
    weights = example_mask.astype(per_example.dtype)
    return (per_example * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def ctc(
    logits: jnp.ndarray,
    frame_mask: jnp.ndarray,
    labels: jnp.ndarray,
    label_mask: jnp.ndarray,
    blank_id: int,
    example_mask: jnp.ndarray | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """CTC loss.

    Args:
      logits: ``[B, T, V]`` per-frame logits (V includes the blank).
      frame_mask: ``[B, T]`` real frames.
      labels: ``[B, S]`` label ids (padding may hold any value, e.g. ``LABEL_PAD``).
      label_mask: ``[B, S]`` real label positions (a prefix).
      blank_id: the blank's id.
      example_mask: ``[B]`` examples that count (default: all).

    Returns:
      (mean over examples of loss / label length, per-example negative log-likelihood ``[B]``).
    """
    safe_labels = jnp.where(label_mask, labels, 0)
    nll = optax.ctc_loss(
        logits.astype(jnp.float32),
        1.0 - frame_mask.astype(jnp.float32),
        safe_labels,
        1.0 - label_mask.astype(jnp.float32),
        blank_id=blank_id,
    )
    per_label = nll / jnp.maximum(label_mask.sum(-1), 1)
    return _masked_mean(per_label, example_mask), nll


#: How :func:`distillation` averages: over the batch's real frames, or per clip then over clips.
KD_AVERAGES = ("frames", "examples")


def distillation(
    student_logits: jnp.ndarray,
    teacher_logits: jnp.ndarray,
    frame_mask: jnp.ndarray,
    example_mask: jnp.ndarray | None = None,
    average: str = "frames",
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-frame cross-entropy against the teacher's argmax (``[B, T, V]`` each); the teacher
    gets no gradient.

    With ``w_bt`` = frame ``t`` of example ``b`` is real (and the example counts) and ``c_bt``
    the cross-entropy there:

    * ``average="frames"``: ``Σ_bt w_bt c_bt / Σ_bt w_bt``, every real frame of the batch alike;
    * ``average="examples"``: the mean over examples of ``Σ_t w_bt c_bt / Σ_t w_bt``.

    Returns ``(loss, per-example mean over real frames [B])``."""
    if average not in KD_AVERAGES:
        raise ValueError(f"average must be one of {KD_AVERAGES}, not {average!r}")
    targets = jnp.argmax(jax.lax.stop_gradient(teacher_logits), axis=-1)
    per_frame = optax.softmax_cross_entropy_with_integer_labels(
        student_logits.astype(jnp.float32), targets
    )
    weights = frame_mask.astype(jnp.float32)
    per_example = (per_frame * weights).sum(-1) / jnp.maximum(weights.sum(-1), 1.0)
    if average == "examples":
        return _masked_mean(per_example, example_mask), per_example
    if example_mask is not None:
        weights = weights * example_mask.astype(jnp.float32)[:, None]
    return (per_frame * weights).sum() / jnp.maximum(weights.sum(), 1.0), per_example


def classification(
    logits: jnp.ndarray,
    class_ids: jnp.ndarray,
    example_mask: jnp.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Softmax cross-entropy; ``logits [B, C]``, ``class_ids [B]``."""
    num_classes = logits.shape[-1]
    targets = optax.smooth_labels(jax.nn.one_hot(class_ids, num_classes), label_smoothing)
    per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
    return _masked_mean(per_example, example_mask), per_example
