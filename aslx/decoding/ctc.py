"""CTC decoding: greedy (best path) and prefix beam search.

A CTC output is a distribution over ``V`` symbols (labels plus the blank) per frame. A path
(one symbol per frame) *collapses* to a label sequence by merging repeated symbols, then
dropping blanks: ``a a _ a b b _`` → ``a a b``.

* :func:`greedy` takes the most probable symbol per frame and collapses it (best path).
* :func:`prefix_beam_search` (Hannun et al. 2014, arXiv:1408.2873) keeps the ``beam`` most
  probable label *prefixes*, each with the probability of the paths that end in a blank and of
  those that end in its last label, so it sums over the many paths of one labelling instead of
  trusting a single path. With a wide enough beam it finds the most probable labelling.

Both run on the host in NumPy over log-probabilities; the model's argmax and log-softmax run on
device.
"""

from __future__ import annotations

import numpy as np


def collapse(path, blank_id: int) -> list[int]:
    """Merges repeats, then drops blanks."""
    out, previous = [], None
    for symbol in path:
        symbol = int(symbol)
        if symbol != previous and symbol != blank_id:
            out.append(symbol)
        previous = symbol
    return out


def greedy(logits: np.ndarray, frame_mask: np.ndarray, blank_id: int) -> list[list[int]]:
    """Best-path decoding of ``[B, T, V]`` logits (or log-probabilities) over real frames."""
    best = np.asarray(logits).argmax(-1)
    return [
        collapse(path[np.asarray(mask, bool)], blank_id) for path, mask in zip(best, frame_mask)
    ]


def _log_add(a: float, b: float) -> float:
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    high = max(a, b)
    return high + np.log1p(np.exp(-abs(a - b)))


def _add(candidates: dict, prefix: tuple, blank_part: float, label_part: float) -> None:
    entry = candidates.setdefault(prefix, [-np.inf, -np.inf])
    entry[0] = _log_add(entry[0], blank_part)
    entry[1] = _log_add(entry[1], label_part)


def prefix_beam_search(log_probs: np.ndarray, blank_id: int, beam: int = 8) -> list[int]:
    """The most probable labelling of one sequence of ``[T, V]`` log-probabilities (real frames
    only), keeping ``beam`` prefixes."""
    log_probs = np.asarray(log_probs, np.float64)
    # prefix -> (log P(paths ending in blank), log P(paths ending in the prefix's last label))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    for frame in log_probs:
        candidates: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_label) in beams.items():
            total = _log_add(p_blank, p_label)
            _add(candidates, prefix, total + frame[blank_id], -np.inf)  # stays, by a blank
            for symbol in range(len(frame)):
                if symbol == blank_id:
                    continue
                p = frame[symbol]
                if prefix and prefix[-1] == symbol:
                    _add(candidates, prefix, -np.inf, p_label + p)  # a repeat merges
                    _add(candidates, prefix + (symbol,), -np.inf, p_blank + p)  # blank between
                else:
                    _add(candidates, prefix + (symbol,), -np.inf, total + p)
        ranked = sorted(candidates.items(), key=lambda kv: -_log_add(*kv[1]))
        beams = {prefix: (b, label) for prefix, (b, label) in ranked[:beam]}
    best = max(beams.items(), key=lambda kv: _log_add(*kv[1]))
    return list(best[0])


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def beam_search(
    logits: np.ndarray, frame_mask: np.ndarray, blank_id: int, beam: int = 8
) -> list[list[int]]:
    """:func:`prefix_beam_search` over a batch of ``[B, T, V]`` logits."""
    log_probs = log_softmax(logits)
    return [
        prefix_beam_search(lp[np.asarray(mask, bool)], blank_id, beam)
        for lp, mask in zip(log_probs, frame_mask)
    ]
