"""How many frames CTC needs to emit a label, the one rule every stage shares.

CTC emits each label on a frame of its own and needs a blank frame between two equal
neighbours (``l l`` collapses to ``l`` otherwise), so a label ``l_1 … l_m`` needs

    frames(l) = m + #{k : l_k = l_{k−1}}

frames, and its first ``k`` labels need the running count. Ingest skips clips whose phrase
cannot fit their frames; augmentation and temporal CutMix keep the longest label prefix that
fits what they leave; forced alignment refuses labels that cannot fit.

Every function takes NumPy or JAX arrays (traced ones too) and answers in the same kind;
``mask [S]`` marks the real labels of a padded row (a prefix), all of them by default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _ops(labels):
    return jnp if isinstance(labels, jax.Array) else np


def frames_for_prefixes(labels, mask=None):
    """``[S]``: frames needed to emit labels ``0 … k`` (meaningful where ``mask`` is True)."""
    xp = _ops(labels)
    labels = xp.asarray(labels).reshape(-1)
    mask = xp.ones(labels.shape, bool) if mask is None else xp.asarray(mask, bool).reshape(-1)
    first = xp.zeros(1, bool)
    repeat = xp.concatenate([first, labels[1:] == labels[:-1]]) & mask
    repeat = repeat & xp.concatenate([first, mask[:-1]])
    return xp.cumsum(mask) + xp.cumsum(repeat)


def min_frames(labels, mask=None):
    """Frames needed to emit the whole (masked) label: an ``int`` for NumPy input, a scalar
    array for JAX."""
    xp = _ops(labels)
    needed = frames_for_prefixes(labels, mask)
    if needed.size == 0:
        return 0 if xp is np else jnp.zeros((), jnp.int32)
    total = xp.max(needed)
    return int(total) if xp is np else total


def fitting_mask(labels, num_frames, mask=None):
    """``[S]`` bool: the labels of the longest prefix that fits ``num_frames`` frames."""
    xp = _ops(labels)
    labels = xp.asarray(labels).reshape(-1)
    mask = xp.ones(labels.shape, bool) if mask is None else xp.asarray(mask, bool).reshape(-1)
    return mask & (frames_for_prefixes(labels, mask) <= num_frames)


def fitting_prefix(labels, num_frames, mask=None):
    """Length of the longest label prefix CTC can emit in ``num_frames`` frames."""
    kept = fitting_mask(labels, num_frames, mask)
    return int(kept.sum()) if _ops(labels) is np else kept.sum()
