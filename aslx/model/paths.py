"""Parameter paths as text: how checkpoints, weights files, warm start and optimiser masks name
a model's parameters (``encoder/blocks/attention/query/kernel``), and putting flat parameters
back into a model's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flax import nnx, traverse_util

#: Paths of the stacked blocks' parameters, each ``[num_layers, …]``.
BLOCKS_PREFIX = "encoder/blocks/"


def key_name(key: Any) -> str:
    """One pytree path entry as a string.

    Orbax stores every pytree node as a dict or a list, and parameter paths are written
    ``encoder/blocks/…``, so a ``GetAttrKey`` (namedtuple fields, ``Variable.value``), a
    ``DictKey`` with an int key (``nnx.State`` layer indices) and a ``SequenceKey`` must all
    compare by their string form.
    """
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_names(path: tuple) -> tuple[str, ...]:
    """A whole ``jax.tree_util`` key path as strings, one per entry."""
    return tuple(key_name(k) for k in path)


def flatten(tree: Mapping) -> dict[str, np.ndarray]:
    """Nested mapping (an ``nnx.State``, or arrays read from a checkpoint) → ``{'a/b/c': array}``
    in the model's own path names.

    A checkpoint stores each ``nnx`` variable as a mapping with a ``value`` entry, so its paths
    end in ``/value`` where the model's do not; that suffix is dropped.
    """
    if isinstance(tree, nnx.State):
        tree = tree.to_pure_dict()
    flat = traverse_util.flatten_dict(dict(tree))
    return {
        "/".join(str(part) for part in key).removesuffix("/value"): value
        for key, value in flat.items()
    }


def assign(params: nnx.State, values: Mapping[str, np.ndarray]) -> nnx.State:
    """``params`` with the parameters named in ``values`` (flat, :func:`flatten`'s paths)
    replaced, in place; the caller has checked the shapes. Paths not in ``values`` keep their
    arrays."""
    merged = traverse_util.flatten_dict(params.to_pure_dict())
    for key in merged:
        path = "/".join(str(part) for part in key)
        if path in values:
            merged[key] = values[path]
    nnx.replace_by_pure_dict(params, traverse_util.unflatten_dict(merged))
    return params
