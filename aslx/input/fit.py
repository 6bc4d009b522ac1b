"""Fitting a clip into ``max_frames``: which stored frames a model sees, the one rule that the
input pipeline (TensorFlow), the TFLite graph (TensorFlow), ``aslx.predict`` (NumPy) and the
alignments (NumPy, the inverse map) share; and the length buckets a fitted clip runs at, in the
one vocabulary that training, export and predict read.

**Long clips.** A clip of ``n`` frames keeps them all when ``n ≤ T``. A longer one keeps ``T``
frames by the run's ``long_clips`` policy: ``resample`` keeps evenly spaced frames, stored
frame ``floor(i · n / T)`` for ``i < T`` (the first frame always, the phrase whole, so CTC
labels stay valid); ``truncate`` keeps the first ``T``. ``T = 0`` means no limit.

**Buckets.** A run trains, and a model is exported and predicted, at a few static lengths
(bounds, ascending, the last ``T``): a clip runs at the smallest bound that holds it
(:func:`bucket_length`). :func:`parse_buckets` reads them in one vocabulary: ``auto``,
``none`` or ascending frame counts (``"64,128,256"``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

RESAMPLE = "resample"
TRUNCATE = "truncate"
#: What a clip longer than ``max_frames`` keeps (``data.long_clips``, the model card's
#: ``long_clips``); see the module docstring.
LONG_CLIP_POLICIES = (RESAMPLE, TRUNCATE)

AUTO = "auto"
NONE = "none"
#: The bucket setting when none is given: training derives bounds from the record set's clip
#: lengths (:func:`default_buckets`); export and predict take the bounds the run trained at
#: (its model card's ``buckets``).
DEFAULT_BUCKETS = AUTO
#: Bucket bounds are rounded up to a multiple of this (kernels like aligned lengths).
BUCKET_ALIGN = 16


def bucket_length(num_frames: int, bounds: tuple[int, ...]) -> int:
    """The smallest bound that holds ``num_frames`` frames (``bounds`` ascending): the length
    a training batch is cut to and an exported graph's signature. Raises ``ValueError`` past
    the last bound."""
    for bound in bounds:
        if num_frames <= bound:
            return bound
    raise ValueError(f"a clip of {num_frames} frames exceeds the largest bucket {bounds[-1]}")


def run_length(num_frames: int, bounds: tuple[int, ...]) -> int | None:
    """The static length a fitted clip runs at: :func:`bucket_length`, or ``None`` when it is
    longer than every bound (possible only without a frame limit; it then runs at its own
    length, as an export's any-length signature does)."""
    if not bounds or num_frames > bounds[-1]:
        return None
    return bucket_length(num_frames, bounds)


def default_buckets(frames: dict, max_frames: int) -> tuple[int, ...]:
    """Bucket bounds from a record set's clip lengths (``metadata.json``'s ``frames``: ``mean``,
    ``p95``): the mean, half-way to the 95th percentile, the 95th percentile and ``max_frames``,
    each rounded up to a multiple of :data:`BUCKET_ALIGN` and at most ``max_frames``. Few
    bounds: each is one compilation of the training step (and one signature of an export)."""
    mean, p95 = float(frames["mean"]), float(frames["p95"])
    candidates = (mean, (mean + p95) / 2, p95, max_frames)
    align = BUCKET_ALIGN
    return tuple(
        sorted({min(max_frames, -(-int(np.ceil(c)) // align) * align) for c in candidates})
    )


def parse_buckets(
    value: str | Iterable[int], max_frames: int, auto: Iterable[int] | None = None
) -> tuple[int, ...]:
    """Bucket bounds in the one vocabulary of ``config.data.buckets``, ``aslx.export
    --buckets`` and :class:`aslx.export.predictor.Predictor`.

    Args:
      value: ``auto`` (the bounds ``auto``), ``none`` (``max_frames`` only) or frame counts,
        ascending and distinct, as text (``"64,128,256"``) or integers; ``max_frames`` is
        always added, and no count may exceed it.
      max_frames: the clip's frame limit ``T`` (``0``: none; then counts may be any size,
        nothing is added, and ``none`` leaves no bound: every clip runs at its own length).
      auto: what ``auto`` means to the caller: training passes :func:`default_buckets` of the
        record set, export and predict the bounds the run trained at (the model card's
        ``buckets``; cut to those below ``T``, then ``T``). ``None`` (a card from before
        buckets were recorded, whose run trained at ``T`` only): ``auto`` is ``none``.

    Returns:
      The bounds, ascending; the last is ``max_frames`` when there is a limit.

    Raises:
      ValueError: naming ``buckets`` and the value, when it is not in the vocabulary.
    """
    if is_none(value):
        return _closed((), max_frames)
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return _closed(() if auto is None else auto, max_frames)
        try:
            counts = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ValueError(
                f"buckets {value!r}: write 'auto', 'none' or ascending frame counts like "
                "'64,128,256'"
            ) from None
    else:
        counts = tuple(int(b) for b in value)
    if (
        not counts
        or any(b < 1 or (max_frames and b > max_frames) for b in counts)
        or list(counts) != sorted(set(counts))
    ):
        limit = f"within 1..max_frames={max_frames}" if max_frames else "at least 1"
        shown = value if isinstance(value, str) else ",".join(map(str, counts))
        raise ValueError(f"buckets {shown!r}: frame counts must be ascending, distinct and {limit}")
    return _closed(counts, max_frames)


def is_none(value: str | Iterable[int]) -> bool:
    """Whether a bucket setting is ``none`` (every clip at ``max_frames``: nothing to sort by
    length)."""
    return isinstance(value, str) and value.strip().lower() == NONE


def _closed(bounds: Iterable[int], max_frames: int) -> tuple[int, ...]:
    """``bounds`` below ``max_frames``, then ``max_frames`` (no limit: ``bounds`` as they are)."""
    bounds = tuple(sorted({int(b) for b in bounds}))
    if not max_frames:
        return bounds
    return tuple(b for b in bounds if b < max_frames) + (int(max_frames),)


def fit_indices(num_frames, max_frames: int, ops=np, long_clips: str = RESAMPLE):
    """The stored-frame indices kept, ``[min(n, T)]`` increasing.

    ``ops`` is the array module of the caller: ``numpy`` (default) or ``tensorflow`` (then
    ``num_frames`` may be a scalar tensor, inside a graph); ``max_frames`` is a Python int;
    ``long_clips`` the policy for a longer clip (:data:`LONG_CLIP_POLICIES`).
    """
    check_long_clips(long_clips)
    if not max_frames:
        return _range(ops, num_frames)
    kept = ops.minimum(num_frames, max_frames)
    if long_clips == TRUNCATE:
        return _range(ops, kept)
    return _range(ops, kept) * num_frames // kept


def check_long_clips(long_clips: str) -> None:
    """Raises ``ValueError`` naming ``long_clips`` unless it is a policy of
    :data:`LONG_CLIP_POLICIES`."""
    if long_clips not in LONG_CLIP_POLICIES:
        raise ValueError(f"long_clips must be one of {LONG_CLIP_POLICIES}, not {long_clips!r}")


def _range(ops, n):
    return ops.arange(n) if hasattr(ops, "arange") else ops.range(n)


def stored_to_fitted(num_frames: int, max_frames: int, long_clips: str = RESAMPLE) -> np.ndarray:
    """``[num_frames]``: for each stored frame, the index of the fitted frame it was kept as,
    or else of the nearest kept one (ties: the earlier). The inverse of :func:`fit_indices`:
    a kept frame maps back to its own fitted index, and the map is non-decreasing. Under
    ``truncate`` every frame past the first ``T`` maps to the last kept one."""
    check_long_clips(long_clips)
    if not max_frames or num_frames <= max_frames:
        return np.arange(num_frames)
    if long_clips == TRUNCATE:
        return np.minimum(np.arange(num_frames), max_frames - 1)
    kept = fit_indices(num_frames, max_frames)
    f = np.arange(num_frames)
    before = np.searchsorted(kept, f, side="right") - 1  # last kept frame ≤ f (kept[0] = 0)
    after = np.minimum(before + 1, max_frames - 1)
    return np.where(kept[after] - f < f - kept[before], after, before)
