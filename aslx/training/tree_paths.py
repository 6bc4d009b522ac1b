"""Pytree paths as text: how checkpoints, parameter names and optimiser masks spell them."""

from __future__ import annotations

from typing import Any


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
