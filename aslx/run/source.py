"""Weights and the model they belong to, from a training workdir or an exported weights file.

A source is either a training workdir of any aslx program, pretraining's student included (a
checkpoint's raw or EMA weights, with ``model.json`` beside it), or an exported weights file
(:mod:`aslx.run.weights_file`: the same flat parameters and the same model card in one
safetensors file). Both are read by :func:`read_source` and serve alike wherever a source is
accepted (``init_from``, a distillation teacher, :func:`load_trained`), with no conversion.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from flax import nnx

from aslx import files
from aslx.model import model as model_lib
from aslx.model import paths
from aslx.run import card as card_lib
from aslx.run import checkpoint, weights_file
from aslx.run import results as results_lib
from aslx.run.card import ModelCard
from aslx.run.weights_file import Source

__all__ = [
    "Source",
    "TrainedModel",
    "load_trained",
    "read_card",
    "read_source",
    "source_weights",
]


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
    weights are not there or hold non-finite values.
    """
    source = _read_source(files.path(path), step, weights)
    check_finite(source.params, path)
    return source


def check_finite(params: dict[str, np.ndarray], where) -> None:
    """Raises ``ValueError`` naming ``where``, the count and the first tensors when any of the
    flat ``params`` holds a NaN or an infinity: such weights predict garbage silently."""
    bad = {
        name: int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        for name, value in params.items()
        if np.issubdtype(np.asarray(value).dtype, np.floating)
    }
    bad = {name: n for name, n in bad.items() if n}
    if bad:
        names = ", ".join(sorted(bad)[:3]) + (" …" if len(bad) > 3 else "")
        raise ValueError(
            f"{where}: {sum(bad.values()):,} non-finite weight values in {len(bad)} tensors "
            f"({names}); these weights are damaged or diverged, use another checkpoint or export"
        )


def _read_source(path, step: int | None, weights: str | None) -> Source:
    if weights not in (None, *weights_file.WEIGHT_KINDS):
        raise ValueError(f"weights must be 'raw' or 'ema', got {weights!r}")
    if path.is_file():
        source = weights_file.read(path)
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
    card = card_lib.read(path)
    results = results_lib.read(path)
    step = results.get("best_step") if step is None else step
    weights = weights or results.get("selected_weights")
    with checkpoint.Checkpointer(path / "checkpoints", read_only=True) as checkpoints:
        step = checkpoints.latest_step() if step is None else step
        arrays = checkpoints.read_arrays(step)  # FileNotFoundError when there is no step
    if weights is None:
        # A pretraining run's EMA weights are its teacher; what one starts from is the student.
        weights = "ema" if "ema_params" in arrays and card.task != "pretrain" else "raw"
    if weights == "ema" and "ema_params" not in arrays:
        raise ValueError(
            f"{path}: the checkpoint of step {step} holds no EMA weights; ask for weights='raw'"
        )
    params = paths.flatten(arrays["ema_params" if weights == "ema" else "params"])
    return Source(card, params, weights, int(step), os.fspath(files.absolute(path)))


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of a workdir (its ``model.json``) or of an exported weights file (its
    header), with no weights read; errors as :func:`read_source`'s."""
    path = files.path(path)
    if path.is_dir():
        return card_lib.read(path)
    if path.is_file():
        return weights_file.read_card(path)
    return read_source(path).card  # names what is wrong with the path


def source_weights(
    path: str | os.PathLike, step: int | None = None, weights: str | None = None
) -> dict:
    """Flat parameters ``{path: array}`` of a workdir or an exported weights file; ``step`` and
    ``weights`` as :func:`read_source` takes them (by default, what the run chose)."""
    return read_source(path, step, weights).params


@dataclasses.dataclass
class TrainedModel:
    """A trained model, rebuilt from its workdir or from an exported weights file."""

    card: ModelCard
    graphdef: nnx.GraphDef
    params: nnx.State
    weights: str  # 'raw' or 'ema'
    step: int | None  # the checkpoint's step

    @property
    def config(self):
        return self.card.model


def load_trained(path: str | os.PathLike) -> TrainedModel:
    """The model a run chose, from its workdir (the best checkpoint and the raw or EMA weights
    that ``results.json`` names; without results, the latest checkpoint's EMA weights) or from
    an exported weights file (the weights it holds).

    Raises ``ValueError`` when the weights do not fit the model card: every parameter must be
    there with its shape, and nothing else.
    """
    source = read_source(path)
    graphdef, params = model_lib.create(source.card.model)
    fresh = paths.flatten(params)
    want = {p: v.shape for p, v in fresh.items()}
    got = {p: tuple(v.shape) for p, v in source.params.items()}
    if want != got:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        reshaped = sorted(p for p in set(want) & set(got) if want[p] != got[p])
        parts = [
            f"{title}: {', '.join(items[:6])}{' …' if len(items) > 6 else ''}"
            for title, items in (
                ("missing", missing),
                ("not in the model", extra),
                ("other shapes", reshaped),
            )
            if items
        ]
        raise ValueError(f"{path}: the weights do not fit its model card ({'; '.join(parts)})")
    values = {p: np.asarray(source.params[p], fresh[p].dtype) for p in want}
    params = paths.assign(params, values)
    return TrainedModel(source.card, graphdef, params, source.weights, source.step)
