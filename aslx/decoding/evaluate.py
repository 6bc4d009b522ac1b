"""Evaluation: the jitted forward on device, decoding and scoring on the host.

Metrics by task and vocabulary:

====================  ==============  ======================================================
task                  vocabulary      metrics
====================  ==============  ======================================================
``ctc``               characters      ``normalized_levenshtein`` (micro, the Kaggle metric)
``ctc``               classes         ``wer`` over glosses (lower is better)
``classification``    classes         ``top1``, ``top5``
====================  ==============  ======================================================

Counts (edit distances, reference lengths, hits) are summed over every process before the
ratio is taken, so a multi-host evaluation gives the single-host number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from aslx import processes
from aslx import vocab as vocab_lib
from aslx.decoding import ctc as ctc_decoding
from aslx.decoding import metrics as metrics_lib
from aslx.input import batch as batch_lib
from aslx.model.inference import ctc_layout


def primary_metric(task: str, vocab: vocab_lib.Vocab) -> tuple[str, str]:
    """``(name, 'max' or 'min')`` of the metric that picks the best checkpoint."""
    if task == "classification":
        return "top1", "max"
    if isinstance(vocab, vocab_lib.CharVocab):
        return "normalized_levenshtein", "max"
    return "wer", "min"


def local_rows(array: jax.Array) -> np.ndarray:
    """This process's rows of a batch-sharded global array, in order (all rows on one host)."""
    if array.is_fully_addressable:
        return np.asarray(array)
    shards = {s.index[0].start or 0: s.data for s in array.addressable_shards}
    return np.concatenate([np.asarray(shards[k]) for k in sorted(shards)])


def decode_ctc(
    outputs: dict[str, np.ndarray], frame_mask: np.ndarray, blank_id: int, beam: int
) -> list[list[int]]:
    """Label ids per example: greedy from the best path, or the batched prefix beam search
    (on this process's rows, on its own device)."""
    if beam > 1:
        return ctc_decoding.beam_search(outputs["log_probs"], frame_mask, blank_id, beam)
    return [
        ctc_decoding.collapse(path[m.astype(bool)], blank_id)
        for path, m in zip(outputs["best_path"], frame_mask)
    ]


def evaluate(
    forward: Callable,
    params,
    batches: Iterable[dict],
    *,
    task: str,
    vocab: vocab_lib.Vocab,
    to_device: Callable[[dict], dict],
    beam: int = 0,
    on_predictions: Callable | None = None,
    min_frames: int = 0,
) -> dict[str, float]:
    """Scores ``params`` on one pass of host ``batches``.

    Args:
      forward: from :func:`aslx.model.inference.make_forward`.
      to_device: host batch (NumPy) → device batch (global arrays on the mesh).
      beam: CTC prefix-beam width (0 or 1: greedy).
      on_predictions: called with ``(batch, predictions)`` per batch (host side): label id
        lists for CTC, class logits for classification; for reports (the batch's
        ``record_frames`` are each clip's real frame count).
      min_frames: with a model's fewest training frames, ``short_examples`` counts the clips
        with fewer (their scores are less reliable); 0 leaves it out.

    Returns:
      The task's metrics and ``examples`` (and ``short_examples``); for CTC also
      ``empty_predictions``, the examples decoded to no label at all (when that is every
      example, the model emits only the blank: :func:`decodes_nothing`).
    """
    _, blank_id = ctc_layout(vocab)
    counts = np.zeros(3, np.float64)  # CTC: (reference tokens, edits, examples); classes: hits
    short = np.zeros(1, np.float64)
    empty = np.zeros(1, np.float64)
    for batch in batches:
        out = forward(params, to_device(batch_lib.device_batch(batch)))
        want = ("class_logits",) if task == "classification" else ("best_path",)
        if task != "classification" and beam > 1:
            want = ("log_probs",)
        out = {k: local_rows(out[k]) for k in want}
        real = batch["example_mask"].astype(bool)
        if min_frames:
            short += (real & (batch["record_frames"] < min_frames)).sum()
        if task == "classification":
            logits = out["class_logits"]
            classes = batch["labels"][:, 0]
            top = np.argsort(-logits, axis=-1)[:, :5]
            # A clip without a label (an unlabelled source) is neither right nor wrong.
            scored = (
                real & batch["label_mask"][:, 0].astype(bool) if "label_mask" in batch else real
            )
            counts += [
                (top[scored, 0] == classes[scored]).sum(),
                (top[scored] == classes[scored, None]).any(-1).sum(),
                scored.sum(),
            ]
            predictions = logits
        else:
            predictions = decode_ctc(out, batch["frame_mask"], blank_id, beam)
            for hypothesis, labels, mask, keep in zip(
                predictions, batch["labels"], batch["label_mask"], real
            ):
                if keep:
                    reference = labels[mask.astype(bool)].tolist()
                    empty += len(hypothesis) == 0
                    counts += [
                        len(reference),
                        metrics_lib.edit_distance(reference, hypothesis),
                        1,
                    ]
        if on_predictions is not None:
            on_predictions(batch, predictions)
    counts = processes.sum_over(np.concatenate([counts, short, empty]))
    extra = {"short_examples": int(counts[3])} if min_frames else {}
    if task == "classification":
        n = max(counts[2], 1)
        return {
            "top1": counts[0] / n,
            "top5": counts[1] / n,
            "examples": int(counts[2]),
        } | extra
    tokens = max(counts[0], 1)
    name, _ = primary_metric(task, vocab)
    value = 1 - counts[1] / tokens if name == "normalized_levenshtein" else counts[1] / tokens
    return {
        name: float(value),
        "examples": int(counts[2]),
        "empty_predictions": int(counts[4]),
    } | extra


# --- raw and EMA weights ---------------------------------------------------------------------

#: The weights a training state holds, by name: ``raw`` (trained) and ``ema`` (their average).
WEIGHT_VARIANTS = {"raw": "params", "ema": "ema_params"}


def better_of(mode: str) -> Callable:
    """``max`` for a metric where higher is better (``mode='max'``), else ``min``."""
    return max if mode == "max" else min


def evaluate_variants(
    forward: Callable,
    state: dict,
    batches: Callable[[], Iterable[dict]],
    variants: Iterable[str],
    **evaluate_kwargs,
) -> dict[str, dict[str, float]]:
    """``{variant: metrics}``: :func:`evaluate` of each of the state's ``variants``
    (:data:`WEIGHT_VARIANTS` names) on a fresh pass of ``batches()``. Weights holding NaN or
    infinity are left out, so they are never scored nor chosen; ``ValueError`` when no
    variant's weights are finite."""
    finite = [v for v in variants if all_finite(state[WEIGHT_VARIANTS[v]])]
    if not finite:
        raise ValueError(
            f"every set of weights ({', '.join(variants)}) holds NaN or infinity: nothing to "
            "evaluate"
        )
    return {
        variant: evaluate(forward, state[WEIGHT_VARIANTS[variant]], batches(), **evaluate_kwargs)
        for variant in finite
    }


def all_finite(tree) -> bool:
    """Whether every floating-point array of ``tree`` is finite (one device reduction)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return bool(jax.device_get(_all_finite(leaves))) if leaves else True


@jax.jit
def _all_finite(leaves: list) -> jax.Array:
    return jnp.stack([jnp.isfinite(x).all() for x in leaves]).all()


def select_weights(by_variant: dict[str, dict], metric: str, mode: str) -> str:
    """The variant that scores better on ``metric`` (first listed on a tie)."""
    return better_of(mode)(by_variant, key=lambda v: by_variant[v][metric])


def flat_scores(split: str, by_variant: dict[str, dict], metric: str, mode: str) -> dict:
    """``{split/name_variant: value}`` for every metric of every variant, and
    ``split/metric``: the better variant's, which picks the best checkpoint."""
    scores = {
        f"{split}/{name}_{variant}": value
        for variant, metrics in by_variant.items()
        for name, value in metrics.items()
    }
    scores[f"{split}/{metric}"] = by_variant[select_weights(by_variant, metric, mode)][metric]
    return scores


def final_scores(scores: dict[str, dict[str, dict]], selected: str) -> dict:
    """A results file's scores: for each split ``split/name`` (the ``selected`` weights') and
    ``split/name_variant`` (every variant's)."""
    results = {}
    for split, by_variant in scores.items():
        results |= {f"{split}/{k}": v for k, v in by_variant[selected].items()}
        for variant, metrics in by_variant.items():
            results |= {f"{split}/{k}_{variant}": v for k, v in metrics.items()}
    return results


#: The :func:`evaluate` fields that count clips rather than score them.
COUNTS = ("examples", "short_examples", "empty_predictions")


def is_count(key: str) -> bool:
    """Whether a scores key (``val/examples``, ``test/empty_predictions_ema`` …) is one of
    :data:`COUNTS`: what a line of scores leaves out."""
    name = key.rsplit("/", 1)[-1]
    return any(name == c or name.startswith(f"{c}_") for c in COUNTS)


def decodes_nothing(results: dict, split: str) -> bool:
    """Whether a results file's selected weights (:func:`final_scores`) decoded every one of
    ``split``'s clips to no label: a CTC head that emits only the blank, which scores a
    normalized Levenshtein near 0 without failing anything."""
    examples = results.get(f"{split}/examples", 0)
    return examples > 0 and results.get(f"{split}/empty_predictions") == examples
