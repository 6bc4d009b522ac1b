"""Fitting a clip into ``max_frames``: which stored frames a model sees, the one rule that the
input pipeline (TensorFlow), the TFLite graph (TensorFlow), ``aslx.predict`` (NumPy) and the
alignments (NumPy, the inverse map) share; and the length bucket a fitted clip runs at.

A clip of ``n`` frames keeps them all when ``n ≤ T``; a longer one keeps ``T`` evenly spaced
frames, stored frame ``floor(i · n / T)`` for ``i < T`` (the first frame always, the phrase
whole, so CTC labels stay valid). ``T = 0`` means no limit.
"""

from __future__ import annotations

import numpy as np


def bucket_length(num_frames: int, bounds: tuple[int, ...]) -> int:
    """The smallest bound that holds ``num_frames`` frames (``bounds`` ascending): the length
    a training batch is cut to and an exported graph's signature. Raises ``ValueError`` past
    the last bound."""
    for bound in bounds:
        if num_frames <= bound:
            return bound
    raise ValueError(f"a clip of {num_frames} frames exceeds the largest bucket {bounds[-1]}")


def fit_indices(num_frames, max_frames: int, ops=np):
    """The stored-frame indices kept, ``[min(n, T)]`` increasing.

    ``ops`` is the array module of the caller: ``numpy`` (default) or ``tensorflow`` (then
    ``num_frames`` may be a scalar tensor, inside a graph); ``max_frames`` is a Python int.
    """
    if not max_frames:
        return _range(ops, num_frames)
    kept = ops.minimum(num_frames, max_frames)
    return _range(ops, kept) * num_frames // kept


def _range(ops, n):
    return ops.arange(n) if hasattr(ops, "arange") else ops.range(n)


def stored_to_fitted(num_frames: int, max_frames: int) -> np.ndarray:
    """``[num_frames]``: for each stored frame, the index of the fitted frame it was kept as,
    or else of the nearest kept one (ties: the earlier). The inverse of :func:`fit_indices`:
    a kept frame maps back to its own fitted index, and the map is non-decreasing."""
    if not max_frames or num_frames <= max_frames:
        return np.arange(num_frames)
    kept = fit_indices(num_frames, max_frames)
    f = np.arange(num_frames)
    before = np.searchsorted(kept, f, side="right") - 1  # last kept frame ≤ f (kept[0] = 0)
    after = np.minimum(before + 1, max_frames - 1)
    return np.where(kept[after] - f < f - kept[before], after, before)
