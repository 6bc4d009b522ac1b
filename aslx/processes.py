"""What the processes of one ``jax.distributed`` job agree on: sums and maxima of host values,
barriers, and programs compiled by every process before any of them runs one.

With one process every function here is the plain single-process operation.

**Why compile together.** A program's first run is where its collectives start, and every
process must reach them: on CPUs the collectives (gloo) give up when a peer is 30 s late. A
process that loads the program from the compilation cache while another compiles it, or one
starved of CPU time, is easily that late. :class:`CompiledTogether` compiles a jitted function
ahead of time for each new set of input shapes, waits for every process at a barrier of the
coordination service (no device collective, a generous timeout), then runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

#: How long a process waits for the others at a barrier (compiling a Large step can take long).
BARRIER_TIMEOUT_S = 3600


def distributed() -> bool:
    return jax.process_count() > 1


def sum_over(values: np.ndarray) -> np.ndarray:
    """``values`` (a host array, the same shape everywhere) summed over the processes."""
    if not distributed():
        return values
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(values)).sum(0)


def max_over(value: int) -> int:
    """The largest of every process's ``value``."""
    if not distributed():
        return value
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def barrier(name: str, timeout_s: int = BARRIER_TIMEOUT_S) -> None:
    """Waits until every process has called ``barrier(name)``; each name once per job.

    Through the coordination service of ``jax.distributed`` (what orbax's barriers use), so
    it involves no device and no collective library."""
    if not distributed():
        return
    from jax._src import distributed as jax_distributed

    jax_distributed.global_state.client.wait_at_barrier(name, timeout_s * 1000)


def _shapes(tree: Any) -> tuple:
    return tuple(
        (getattr(leaf, "shape", ()), str(getattr(leaf, "dtype", type(leaf))))
        for leaf in jax.tree.leaves(tree)
    )


class CompiledTogether:
    """``jitted`` (a ``jax.jit`` function), compiled by every process before any runs it.

    Called like ``jitted``. In a job of several processes, the first call with new input
    shapes compiles ahead of time (``lower().compile()``, through the persistent compilation
    cache as usual), waits at a :func:`barrier` named ``name`` and the shapes' number, then
    runs; later calls with those shapes run the compiled program. The first argument (the
    parameters or the training state) keeps its shapes from call to call and is left out of the
    key. One process: ``jitted`` itself is called.
    """

    def __init__(self, jitted: Callable, name: str):
        self._jitted, self._name = jitted, name
        self._compiled: dict[tuple, Any] = {}

    def __call__(self, first, *rest):
        if not distributed():
            return self._jitted(first, *rest)
        key = _shapes(rest)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._jitted.lower(first, *rest).compile()
            barrier(f"{self._name}:compiled:{len(self._compiled)}")
            self._compiled[key] = compiled
        return compiled(first, *rest)
