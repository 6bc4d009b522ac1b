"""Start a model from other weights: match parameters by path, keep n layers evenly spaced.

A source is a training workdir (its checkpoint's EMA weights, or raw weights) of any aslx
program, pretraining's student included. Parameters are matched by their path in the model
(``encoder/blocks/3/mlp_in/kernel``): a path present in both with the same shape is loaded; a
source path the target lacks, or whose shape differs, is skipped; a target path the source
lacks keeps its fresh initialisation. The report lists all three, so a user sees at once what
a mismatch cost.

``keep_layers = n`` builds the target's ``n`` blocks from ``n`` of the source's ``N`` blocks,
evenly spaced from the first to the last (``round(linspace(0, N − 1, n))``): a 24-block
teacher gives a 6-block student its blocks 0, 5, 9, 14, 18, 23.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from flax import nnx, traverse_util

from aslx.model.config import ModelConfig

MODEL_FILE = "model.json"
BLOCK = re.compile(r"^(encoder/blocks/)(\d+)(/.*)$")


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


def block_indices(num_source: int, num_target: int) -> list[int]:
    """``num_target`` of ``num_source`` block indices, evenly spaced, first and last kept."""
    if not 0 < num_target <= num_source:
        raise ValueError(f"cannot keep {num_target} of {num_source} layers")
    return [int(i) for i in np.round(np.linspace(0, num_source - 1, num_target))]


def _num_blocks(flat: Mapping[str, np.ndarray]) -> int:
    found = [int(m.group(2)) for p in flat if (m := BLOCK.match(p))]
    return max(found) + 1 if found else 0


def warm_start(
    params: nnx.State, source: Mapping[str, np.ndarray], keep_layers: int = 0
) -> tuple[nnx.State, WarmStartReport]:
    """``params`` with every matching parameter of ``source`` (flat ``{path: array}``)."""
    target = flatten(params)
    source = dict(source)
    if keep_layers:
        chosen = block_indices(_num_blocks(source), keep_layers)
        remapped = {}
        for path, value in source.items():
            m = BLOCK.match(path)
            if m is None:
                remapped[path] = value
            elif int(m.group(2)) in chosen:
                remapped[f"{m.group(1)}{chosen.index(int(m.group(2)))}{m.group(3)}"] = value
        source = remapped
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
    merged = traverse_util.flatten_dict(params.to_pure_dict())
    for key in merged:
        path = "/".join(str(part) for part in key)
        if path in values:
            merged[key] = values[path]
    nnx.replace_by_pure_dict(params, traverse_util.unflatten_dict(merged))
    return params, WarmStartReport(loaded, skipped, fresh)


def write_model_file(workdir: str | os.PathLike, description: dict) -> None:
    """``workdir/model.json``: what rebuilds the model (its config, vocabulary, preset, task)."""
    path = Path(workdir) / MODEL_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(description, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def read_model_file(workdir: str | os.PathLike) -> dict:
    path = Path(workdir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{workdir}: no {MODEL_FILE}; is this a workdir of an aslx training run?"
        )
    return json.loads(path.read_text())


def _results(workdir: Path) -> dict:
    path = workdir / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def source_weights(
    path: str | os.PathLike, step: int | None = None, weights: str | None = None
) -> dict[str, np.ndarray]:
    """Flat parameters of a workdir's checkpoint (``step``, default the latest): its EMA
    weights (``weights='ema'``, when it has them) or its raw ones (``'raw'``); by default the
    ones its ``results.json`` chose (a pretraining run chooses its student, the raw weights),
    else EMA."""
    from aslx.training import checkpoint

    path = Path(path)
    weights = weights or _results(path).get("selected_weights", "ema")
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path}: not a training workdir (exported weights files are not readable yet)"
        )
    arrays = checkpoint.read_arrays(path / "checkpoints", step)
    key = "ema_params" if weights == "ema" and "ema_params" in arrays else "params"
    return flatten(arrays[key])


@dataclasses.dataclass
class TrainedModel:
    """A finished run's model, rebuilt from its workdir."""

    description: dict  # model.json
    config: ModelConfig
    graphdef: nnx.GraphDef
    params: nnx.State
    weights: str  # 'raw' or 'ema'
    step: int | None  # the checkpoint's step (None: the latest)


def load_trained(workdir: str | os.PathLike) -> TrainedModel:
    """The model a workdir's run chose: the best checkpoint and the raw or EMA weights that
    ``results.json`` names; without results, the latest checkpoint's EMA weights.

    Raises ``ValueError`` when the checkpoint does not fit ``model.json``.
    """
    from aslx.model import model as model_lib

    workdir = Path(workdir)
    description = read_model_file(workdir)
    config = ModelConfig(**description["model"])
    results = _results(workdir)
    step, weights = results.get("best_step"), results.get("selected_weights", "ema")
    graphdef, params = model_lib.create(config)
    params, report = warm_start(params, source_weights(workdir, step, weights))
    if report.skipped or report.fresh:
        raise ValueError(f"{workdir}: the checkpoint does not fit model.json: {report.details()}")
    return TrainedModel(description, config, graphdef, params, weights, step)
