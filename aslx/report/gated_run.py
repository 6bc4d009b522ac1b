"""A gated finetuning run as the joints report reads it: the model and its gate from the
workdir (:func:`aslx.run.reader.load_for_inference`: the weights, the input settings of its
model card, the jitted forward), gates that keep only the top-K landmarks, and the run's score
with any keep-logits."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aslx.model import gate as gate_lib

if TYPE_CHECKING:  # heavy imports stay inside the functions that run the model
    from flax import nnx

    from aslx.landmarks import presets
    from aslx.landmarks.normalize import Normalization
    from aslx.model.config import ModelConfig
    from aslx.run.reader import InferenceModel
    from aslx.vocab import Vocab


#: Top-K sizes scored (capped at the preset's landmark count).
TOP_KS = (10, 25, 50, 100)
#: Keep-logit written for an open (+) or closed (−) landmark in a top-K gate: any nonzero value
#: gives the same evaluation mask; a large one also reads clearly in a dump of the parameters.
FORCED_LOGIT = 10.0
# --- reading the workdir -----------------------------------------------------------------------


@dataclasses.dataclass
class GatedRun:
    """A finetuned gated model, ready to evaluate.

    Attributes:
      workdir: the training workdir.
      model: the model as inference reads it (:class:`aslx.run.reader.InferenceModel`): the
        chosen weights, the input settings of its card, the jitted forward.
      config: the run's ``config.json``, for what is not the model's (the gate's final
        temperature, the decoding beam, the record set); never for how the model reads input.
    """

    workdir: Path
    model: InferenceModel
    config: dict

    @property
    def preset(self) -> presets.Preset:
        """The landmark selection the model reads."""
        return self.model.inputs.preset

    @property
    def normalization(self) -> Normalization:
        """How the model's input is normalised."""
        return self.model.inputs.normalization

    @property
    def max_frames(self) -> int:
        """The static frame count the model was trained with."""
        return self.model.inputs.max_frames

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def vocab(self) -> Vocab:
        return self.model.vocab

    @property
    def model_config(self) -> ModelConfig:
        """The model's configuration (``model_config.gate`` is the gate kind)."""
        return self.model.card.model

    @property
    def graphdef(self) -> nnx.GraphDef:
        return self.model.graphdef

    @property
    def params(self) -> nnx.State:
        """The chosen weights."""
        return self.model.params

    @property
    def weights(self) -> str:
        """``raw`` or ``ema``."""
        return self.model.trained.weights

    @property
    def step(self) -> int | None:
        """The checkpoint step read."""
        return self.model.trained.step

    @property
    def gate_kind(self) -> str:
        return self.model_config.gate

    @property
    def threshold(self) -> float:
        """The keep-logit above which the evaluation mask keeps a landmark."""
        return self.model_config.gate_eval_threshold

    @property
    def kept(self) -> np.ndarray:
        """``[num_landmarks]`` bool: what the evaluation mask keeps."""
        return gate_lib.kept(self.logits, self.threshold)

    @property
    def temperature(self) -> float:
        """The sigmoid gate's temperature at the end of training (the hard-concrete gate's keep
        probability does not depend on it)."""
        return float(self.config.get("gate", {}).get("temperature_end", 1.0))

    def module(self) -> nnx.Module:
        """The model with its current parameters (an ``nnx`` module)."""
        from flax import nnx

        return nnx.merge(self.graphdef, self.params)

    @property
    def logits(self) -> np.ndarray:
        """``[num_landmarks]`` the gate's learned keep-logits."""
        return np.asarray(self.params["gate"]["logits"][...], np.float32)

    def keep_probabilities(self) -> np.ndarray:
        """``[num_landmarks]`` the gate's own keep probabilities, at the final temperature."""
        return np.asarray(self.module().gate.keep_probabilities(self.temperature))

    def with_logits(self, logits: np.ndarray) -> nnx.State:
        """A copy of ``params`` whose gate has these keep-logits (everything else shared)."""
        import jax
        from flax import nnx

        logits = np.asarray(logits, np.float32)
        if logits.shape != self.logits.shape:
            raise ValueError(f"gate logits of shape {logits.shape}, want {self.logits.shape}")
        params = jax.tree.map(lambda x: x, self.params)  # new variables, same arrays
        pure = params.to_pure_dict()
        pure["gate"]["logits"] = logits
        nnx.replace_by_pure_dict(params, pure)
        return params

    def forward(self) -> Callable:
        """The jitted evaluation forward pass, built once (parameters are an argument, so new
        gate logits need no recompilation)."""
        return self.model.forward


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_run(workdir: str | os.PathLike) -> GatedRun:
    """Reads a finetuning workdir of a gated model (see the module docstring for the weights).

    Raises:
      FileNotFoundError: not a training workdir, or no checkpoint in it.
      ValueError: the model has no joint gate, or the checkpoint does not fit the model.
    """
    from aslx.run import card as card_lib
    from aslx.run import reader

    workdir = Path(workdir)
    card = card_lib.read(workdir)
    model_config = card.model
    # Before reading any array: the whole report is about the gate.
    if model_config.gate == "none":
        raise ValueError(
            f"{workdir}: the model has no joint gate (model.gate='none'), so there are no "
            "keep probabilities to report; train with --config.model.gate=hard_concrete "
            "(or sigmoid)"
        )
    config = _read_json(workdir / card_lib.CONFIG_FILE)
    return GatedRun(workdir=workdir, model=reader.load_for_inference(workdir), config=config)


# --- top-K gates and their scores --------------------------------------------------------------


def top_k_logits(logits: np.ndarray, k: int, magnitude: float = FORCED_LOGIT) -> np.ndarray:
    """Keep-logits that keep exactly the ``k`` landmarks with the highest ``logits``.

    The ``k`` highest become ``+magnitude`` and the rest ``-magnitude``; ties go to the lower
    slot (a stable sort), so exactly ``k`` are kept even when logits are equal, as they are in a
    gate that has not moved from its initial value.
    """
    logits = np.asarray(logits, np.float32)
    if not 0 <= k <= logits.size:
        raise ValueError(f"cannot keep {k} of {logits.size} landmarks")
    if magnitude <= 0:
        raise ValueError(f"magnitude must be positive, not {magnitude}")
    order = np.argsort(-logits, kind="stable")
    out = np.full(logits.shape, -magnitude, np.float32)
    out[order[:k]] = magnitude
    return out


def settings(logits: np.ndarray, ks: tuple[int, ...] = TOP_KS) -> list[tuple[str, np.ndarray]]:
    """``(name, keep-logits)`` of every scored gate: ``top-K`` for each distinct K below the
    landmark count, ``all`` (every landmark open) and ``learned`` (the gate as trained)."""
    n = np.asarray(logits).size
    chosen = sorted({min(k, n) for k in ks} - {n})
    rows = [(f"top-{k}", top_k_logits(logits, k)) for k in chosen]
    rows.append(("all", top_k_logits(logits, n)))
    rows.append(("learned", np.asarray(logits, np.float32)))
    return rows


def check_split(records: str | os.PathLike, split: str) -> None:
    from aslx.records.metadata import RecordSet

    if not (Path(records) / "metadata.json").is_file():
        raise FileNotFoundError(f"{records}: no record set there (no metadata.json)")
    RecordSet(records).require_split(split, "pass --split")


def split_batches(
    run: GatedRun, records: str | os.PathLike, split: str, batch_size: int
) -> Iterator[dict]:
    """One pass over ``split``, each clip read as the model was trained to (its card's
    settings, :meth:`aslx.run.reader.InferenceModel.eval_batches`)."""
    return run.model.eval_batches(records, split, batch_size)


def evaluate_logits(
    run: GatedRun,
    logits: np.ndarray,
    records: str | os.PathLike,
    split: str,
    *,
    batch_size: int = 32,
) -> dict[str, float]:
    """The model's metrics on ``split`` with its gate's keep-logits replaced by ``logits``."""
    from aslx.decoding import evaluate as evaluate_lib

    return evaluate_lib.evaluate(
        run.forward(),
        run.with_logits(logits),
        split_batches(run, records, split, batch_size),
        task=run.task,
        vocab=run.vocab,
        to_device=lambda batch: batch,  # one process: the jitted forward takes host arrays
        beam=int(run.config.get("decode_beam", 0) or 0),
    )
