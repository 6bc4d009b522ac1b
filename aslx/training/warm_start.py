"""Start a model from other weights: match parameters by path, keep n layers evenly spaced.

A source is either a training workdir of any aslx program, pretraining's student included (a
checkpoint's raw or EMA weights, with ``model.json`` beside it), or an exported weights file
(:mod:`aslx.export.weights`: the same flat parameters and the same model description in one
safetensors file). Both are read by :func:`read_source` and serve alike wherever a source is
accepted (``init_from``, a distillation teacher, :func:`load_trained`), with no conversion.

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
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from flax import nnx, traverse_util

from aslx.model.config import ModelConfig

MODEL_FILE = "model.json"
#: What a finished training run writes into its workdir: steps, seconds, scores.
RESULTS_FILE = "results.json"
#: Paths of the stacked blocks' parameters, each ``[num_layers, …]``.
BLOCKS_PREFIX = "encoder/blocks/"


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
    found = {np.shape(v)[0] for p, v in flat.items() if p.startswith(BLOCKS_PREFIX)}
    if len(found) > 1:
        raise ValueError(f"stacked blocks disagree on their layer count: {sorted(found)}")
    return found.pop() if found else 0


def warm_start(
    params: nnx.State, source: Mapping[str, np.ndarray], keep_layers: int = 0
) -> tuple[nnx.State, WarmStartReport]:
    """``params`` with every matching parameter of ``source`` (flat ``{path: array}``)."""
    target = flatten(params)
    source = dict(source)
    if keep_layers:
        chosen = block_indices(_num_blocks(source), keep_layers)
        source = {
            path: np.asarray(value)[chosen] if path.startswith(BLOCKS_PREFIX) else value
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
    merged = traverse_util.flatten_dict(params.to_pure_dict())
    for key in merged:
        path = "/".join(str(part) for part in key)
        if path in values:
            merged[key] = values[path]
    nnx.replace_by_pure_dict(params, traverse_util.unflatten_dict(merged))
    return params, WarmStartReport(loaded, skipped, fresh)


def _write_json(path: Path, value: dict, **dumps_options) -> None:
    """Writes ``path`` whole or not at all: a crash mid-write leaves the old file, not half."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(value, indent=1, **dumps_options) + "\n")
    tmp.replace(path)


def write_model_file(workdir: str | os.PathLike, description: dict) -> None:
    """``workdir/model.json``: what rebuilds the model (its config, vocabulary, preset, task)."""
    _write_json(Path(workdir) / MODEL_FILE, description, sort_keys=True)


def read_model_file(workdir: str | os.PathLike) -> dict:
    path = Path(workdir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{workdir}: no {MODEL_FILE}; is this a workdir of an aslx training run?"
        )
    return json.loads(path.read_text())


def write_results(workdir: str | os.PathLike, results: dict) -> None:
    """``workdir/``:data:`RESULTS_FILE`, written by a run when it finishes."""
    _write_json(Path(workdir) / RESULTS_FILE, results)


def read_results(workdir: str | os.PathLike) -> dict:
    """A workdir's :data:`RESULTS_FILE` (``{}`` while the run has not finished)."""
    path = Path(workdir) / RESULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclasses.dataclass
class Source:
    """One set of weights and what rebuilds their model, from a workdir or an exported file."""

    description: dict  # as model.json: model config, vocab, preset, task, max_frames
    params: dict[str, np.ndarray]  # flat {path: array}, paths as flatten() names them
    weights: str  # 'raw' or 'ema'
    step: int  # the training step of the checkpoint they come from
    origin: str  # the workdir they were trained in (absolute path)


def read_source(
    path: str | os.PathLike, step: int | None = None, weights: str | None = None
) -> Source:
    """The weights of a workdir or of an exported weights file.

    A workdir gives its checkpoint at ``step`` (default: the best step its ``results.json``
    names, else the latest), its raw (``weights='raw'``) or EMA (``'ema'``) parameters (default:
    the ones ``results.json`` chose; without results, a pretraining run's raw student weights,
    another run's EMA weights). A file holds one step's raw or EMA weights: ``step`` and
    ``weights``, when given, must be what it holds.

    Raises ``FileNotFoundError`` when ``path`` is neither, ``ValueError`` when the asked-for
    weights are not there.
    """
    from aslx.training import checkpoint

    path = Path(path)
    if weights not in (None, "raw", "ema"):
        raise ValueError(f"weights must be 'raw' or 'ema', got {weights!r}")
    if path.is_file():
        from aslx.export import weights as exported

        source = exported.read_weights_file(path)
        asked = (f"step {step}" if step not in (None, source.step) else "") or (
            f"the {weights} weights" if weights not in (None, source.weights) else ""
        )
        if asked:
            raise ValueError(
                f"{path}: holds the {source.weights} weights of step {source.step}, not "
                f"{asked}; export those from the workdir {source.origin}"
            )
        return source
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path}: neither a training workdir nor an exported weights file; check the path"
        )
    description = read_model_file(path)
    results = read_results(path)
    step = results.get("best_step") if step is None else step
    weights = weights or results.get("selected_weights")
    with checkpoint.Checkpointer(path / "checkpoints", read_only=True) as checkpoints:
        step = checkpoints.latest_step() if step is None else step
        arrays = checkpoints.read_arrays(step)  # FileNotFoundError when there is no step
    if weights is None:
        # A pretraining run's EMA weights are its teacher; what one starts from is the student.
        pretraining = description.get("task") == "pretrain"
        weights = "ema" if "ema_params" in arrays and not pretraining else "raw"
    if weights == "ema" and "ema_params" not in arrays:
        raise ValueError(
            f"{path}: the checkpoint of step {step} holds no EMA weights; ask for weights='raw'"
        )
    params = flatten(arrays["ema_params" if weights == "ema" else "params"])
    return Source(description, params, weights, int(step), os.path.abspath(path))


def source_weights(
    path: str | os.PathLike, step: int | None = None, weights: str | None = None
) -> dict[str, np.ndarray]:
    """Flat parameters ``{path: array}`` of a workdir or an exported weights file; ``step`` and
    ``weights`` as :func:`read_source` takes them (by default, what the run chose)."""
    return read_source(path, step, weights).params


@dataclasses.dataclass
class TrainedModel:
    """A trained model, rebuilt from its workdir or from an exported weights file."""

    description: dict  # as model.json
    config: ModelConfig
    graphdef: nnx.GraphDef
    params: nnx.State
    weights: str  # 'raw' or 'ema'
    step: int  # the checkpoint's step


def load_trained(path: str | os.PathLike) -> TrainedModel:
    """The model a run chose, from its workdir (the best checkpoint and the raw or EMA weights
    that ``results.json`` names; without results, the latest checkpoint's EMA weights) or from
    an exported weights file (the weights it holds).

    Raises ``ValueError`` when the weights do not fit the model description.
    """
    from aslx.model import model as model_lib

    source = read_source(path)
    config = ModelConfig(**source.description["model"])
    graphdef, params = model_lib.create(config)
    params, report = warm_start(params, source.params)
    if report.skipped or report.fresh:
        raise ValueError(
            f"{path}: the weights do not fit its model description: {report.details()}"
        )
    return TrainedModel(source.description, config, graphdef, params, source.weights, source.step)
