"""Start a model from other weights: match parameters by path, keep n layers evenly spaced.

The weights come from any source :func:`aslx.run.source.read_source` reads (a training
workdir, pretraining's included, or an exported weights file), flat ``{path: array}``.

Parameters are matched by their path in the model (``encoder/blocks/mlp_in/kernel``): a path
present in both with the same shape is loaded; a source path the target lacks, or whose shape
differs, is skipped; a target path the source lacks keeps its fresh initialisation. The report
lists all three, so a user sees at once what a mismatch cost.

A run records the weights it started from (``init_from.json`` beside its checkpoints: the
source, its step, raw or EMA, and a digest of the tensors). Resuming reads ``init_from`` again
and compares: a source trained again since (the same folder, other weights) is refused in one
line, since the run would go on from the old weights while its command names the new ones.

``keep_layers = n`` builds the target's ``n`` blocks from ``n`` of the source's ``N`` blocks,
evenly spaced from the first to the last (``round(linspace(0, N − 1, n))``): a 24-block
teacher gives a 6-block student its blocks 0, 5, 9, 14, 18, 23. The blocks are stacked (every
``encoder/blocks/…`` parameter has a leading ``[N]`` axis), so this is a slice of that axis.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

import numpy as np
from flax import nnx

from aslx import files
from aslx.model import paths
from aslx.run import checkpoint as checkpoint_lib
from aslx.run.weights_file import Source, tensors_digest
from aslx.training.config import ConfigError

#: A run's record of the weights it started from, in its workdir.
SOURCE_RECORD = "init_from.json"


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


def source_record(init_from: str, source: Source) -> dict:
    """What a run records of the weights ``config.init_from`` gave it."""
    return {
        "init_from": init_from,
        "step": source.step,
        "weights": source.weights,
        "digest": tensors_digest(source.params),
    }


def check_source(workdir: str | os.PathLike, record: dict) -> None:
    """Holds a resumed run to the weights it started from: a workdir with checkpoints whose
    ``init_from.json`` names other weights than ``record`` (:func:`source_record`) is refused
    with a one-line :class:`~aslx.training.config.ConfigError` naming both steps; call it
    before anything is written there. A run started before runs kept a record is not checked.
    """
    folder = files.path(workdir)
    target = folder / SOURCE_RECORD
    if not (checkpoint_lib.has_steps(folder / "checkpoints") and target.is_file()):
        return
    try:
        old = json.loads(target.read_text())
        digest = old["digest"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{target}: not a record of the weights this run started from ({e}); restore it, "
            "or delete it to resume without comparing config.init_from"
        ) from None
    if digest != record["digest"]:
        raise ConfigError(
            f"config.init_from={record['init_from']!r}: {folder} started from other weights "
            f"(the {old.get('weights')} weights of step {old.get('step')} of "
            f"{old.get('init_from')!r}; now the {record['weights']} weights of step "
            f"{record['step']}), and resuming would go on from those; nothing was changed "
            "there: give a new --workdir to start from the new weights"
        )


def keep_source_record(workdir: str | os.PathLike, record: dict) -> None:
    """Writes ``record`` as the run's ``init_from.json`` where the run has no checkpoint yet
    (a first start, or one that stopped before its first save); a resumed run keeps the
    record of its first start. Process 0 only."""
    folder = files.path(workdir)
    if not checkpoint_lib.has_steps(folder / "checkpoints"):
        files.write_json(folder / SOURCE_RECORD, record)
