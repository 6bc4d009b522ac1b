"""Scores of decoded sequences.

* :func:`normalized_levenshtein` — the Kaggle fingerspelling metric ``(N − D) / N`` with ``N``
  the total number of label characters and ``D`` the total edit distance, both summed over the
  whole set (micro average, not a mean of per-phrase ratios).
* :func:`word_error_rate` — total word edit distance / total reference words (continuous signing).
* :func:`top_k_accuracy` — share of examples whose class is among the ``k`` highest logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def normalized_levenshtein(references: Sequence[Sequence], hypotheses: Sequence[Sequence]) -> float:
    """``(N − D) / N`` summed over the set; can be negative when hypotheses are long and wrong."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("references hold no characters")
    distance = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return (total - distance) / total


def word_error_rate(references: Sequence[Sequence], hypotheses: Sequence[Sequence]) -> float:
    """Total word edit distance over total reference words (sequences of words or glosses)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("references hold no words")
    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses)) / total


def top_k_accuracy(
    logits: np.ndarray, class_ids: np.ndarray, k: int = 1, example_mask: np.ndarray | None = None
) -> float:
    """Share of (real) examples whose class is among the ``k`` largest logits ``[B, C]``."""
    logits, class_ids = np.asarray(logits), np.asarray(class_ids)
    top = np.argsort(-logits, axis=-1)[:, :k]
    hit = (top == class_ids[:, None]).any(-1)
    mask = np.ones(len(hit), bool) if example_mask is None else np.asarray(example_mask, bool)
    return float(hit[mask].mean()) if mask.any() else 0.0
