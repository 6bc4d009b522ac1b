"""Start a model from other weights: match parameters by path, keep n layers evenly spaced.

The weights come from any source :func:`aslx.run.source.read_source` reads (a training
workdir, pretraining's included, or an exported weights file), flat ``{path: array}``.

Parameters are matched by their path in the model (``encoder/blocks/mlp_in/kernel``): a path
present in both with the same shape is loaded; a source path the target lacks, or whose shape
differs, is skipped; a target path the source lacks keeps its fresh initialisation. The report
lists all three, so a user sees at once what a mismatch cost.

``keep_layers = n`` builds the target's ``n`` blocks from ``n`` of the source's ``N`` blocks,
evenly spaced from the first to the last (``round(linspace(0, N − 1, n))``): a 24-block
teacher gives a 6-block student its blocks 0, 5, 9, 14, 18, 23. The blocks are stacked (every
``encoder/blocks/…`` parameter has a leading ``[N]`` axis), so this is a slice of that axis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from flax import nnx

from aslx.model import paths


@dataclasses.dataclass
class WarmStartReport:
    loaded: list[str]
    skipped: list[str]  # "path: reason"
    fresh: list[str]

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} parameters, skipped {len(self.skipped)}, "
            f"newly initialised {len(self.fresh)}"
        )

    def details(self, limit: int = 8) -> str:
        lines = [self.summary()]
        for title, items in (("skipped", self.skipped), ("newly initialised", self.fresh)):
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                lines.append(f"  {title}: {', '.join(items[:limit])}{more}")
        return "\n".join(lines)


def block_indices(num_source: int, num_target: int) -> list[int]:
    """``num_target`` of ``num_source`` block indices, evenly spaced, first and last kept."""
    if not 0 < num_target <= num_source:
        raise ValueError(f"cannot keep {num_target} of {num_source} layers")
    return [int(i) for i in np.round(np.linspace(0, num_source - 1, num_target))]


def _num_blocks(flat: Mapping[str, np.ndarray]) -> int:
    found = {np.shape(v)[0] for p, v in flat.items() if p.startswith(paths.BLOCKS_PREFIX)}
    if len(found) > 1:
        raise ValueError(f"stacked blocks disagree on their layer count: {sorted(found)}")
    return found.pop() if found else 0


def warm_start(
    params: nnx.State, source: Mapping[str, np.ndarray], keep_layers: int = 0
) -> tuple[nnx.State, WarmStartReport]:
    """``params`` with every matching parameter of ``source`` (flat ``{path: array}``)."""
    target = paths.flatten(params)
    source = dict(source)
    if keep_layers:
        chosen = block_indices(_num_blocks(source), keep_layers)
        source = {
            path: np.asarray(value)[chosen] if path.startswith(paths.BLOCKS_PREFIX) else value
            for path, value in source.items()
        }
    loaded, skipped, values = [], [], {}
    for path, value in sorted(source.items()):
        if path not in target:
            skipped.append(f"{path}: not in this model")
        elif np.shape(value) != np.shape(target[path]):
            skipped.append(f"{path}: shape {np.shape(value)} ≠ {np.shape(target[path])}")
        else:
            values[path] = np.asarray(value, dtype=np.asarray(target[path]).dtype)
            loaded.append(path)
    fresh = sorted(set(target) - set(values))
    paths.assign(params, values)
    return params, WarmStartReport(loaded, skipped, fresh)
