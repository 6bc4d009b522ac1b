"""The persistent compilation cache: a restarted run, or a second host of the same job, loads
its compiled steps instead of compiling them again.

``config.compilation_cache`` chooses the folder: ``auto`` (the default) takes
``$JAX_COMPILATION_CACHE_DIR`` when the environment sets it, else ``$XDG_CACHE_HOME/aslx/jax``
(``~/.cache/aslx/jax``); ``none`` turns the cache off; anything else is the folder itself (a
``gs://`` path works: JAX writes it through etils). The cache is JAX's own, keyed by the
compiled program, the JAX version and the devices, so a changed model or machine simply
compiles anew. Share a cache folder only between jobs you trust.

:func:`watch` counts JAX's own cache events while a block runs, so the training loop can say
whether a step was compiled or loaded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

_EVENTS = {
    "/jax/compilation_cache/cache_hits": "hits",
    "/jax/compilation_cache/cache_misses": "misses",
}


def folder(setting: str) -> str | None:
    """The cache folder ``config.compilation_cache`` names, or ``None`` when it is off."""
    setting = str(setting).strip()
    if setting.lower() == "none" or not setting:
        return None
    if setting.lower() != "auto":
        return setting
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "aslx" / "jax")


def enable(setting: str) -> str | None:
    """Turns the cache on in the folder :func:`folder` names (or leaves it off); returns it.

    Effective even after this process compiled something: JAX decides whether it caches once
    per process, so a changed folder resets that decision."""
    path = folder(setting)
    if path is None:
        return None
    if jax.config.jax_compilation_cache_dir != path:
        compilation_cache.reset_cache()
        compilation_cache.set_cache_dir(path)
    return path


@contextlib.contextmanager
def watch() -> Iterator[dict[str, int]]:
    """``{"hits": n, "misses": n}``: the compilations served from the cache, and those that
    were not, while the block runs."""
    counts = {"hits": 0, "misses": 0}

    def listen(event: str, **kwargs) -> None:
        if event in _EVENTS:
            counts[_EVENTS[event]] += 1

    jax.monitoring.register_event_listener(listen)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_listener(listen)
