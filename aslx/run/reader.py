"""A trained model as every inference tool reads it: the weights, how it reads a clip, and its
jitted forward pass, from a workdir or an exported weights file.

:func:`load_for_inference` is the one place the input settings of a trained model are made:
the landmark preset, ``max_frames``, what a longer clip keeps (``long_clips``), the
normalisation and the length buckets, all from its model card (:mod:`aslx.run.card`), never
from a training config or a constant of the reader. Predict, export, align, the reports and
the benchmarks all call it, so a run trained with ``long_clips='truncate'`` (say) is read the
same way everywhere. The only settings a caller may change are the ones a user asks for by
name: another frame limit or other buckets (``aslx.export --max-frames/--buckets``), and
another camera for records recorded with one (:meth:`InferenceModel.with_camera`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from aslx import vocab as vocab_lib
from aslx.input import fit, pipeline
from aslx.landmarks import presets
from aslx.landmarks.normalize import Normalization
from aslx.landmarks.presets import Preset
from aslx.model import inference
from aslx.records.metadata import RecordSet
from aslx.run.card import ModelCard
from aslx.run.source import TrainedModel, load_trained

__all__ = ["InferenceModel", "InputSettings", "load_for_inference"]


@dataclasses.dataclass(frozen=True)
class InputSettings:
    """How a trained model reads a clip: what the input pipeline did in training.

    Attributes:
      preset: the landmarks the model reads (:mod:`aslx.landmarks.presets`).
      max_frames: frames the encoder sees at most, ``T`` (0: no limit).
      long_clips: what a clip longer than ``T`` keeps: ``resample`` (``T`` evenly spaced
        frames) or ``truncate`` (the first ``T``); :mod:`aslx.input.fit`.
      normalization: how landmarks become the model's input, the camera aspect included.
      buckets: the static lengths a fitted clip runs at, ascending, the last ``T`` when there
        is a limit (:func:`aslx.input.fit.parse_buckets`).
    """

    preset: Preset
    max_frames: int
    long_clips: str
    normalization: Normalization
    buckets: tuple[int, ...]

    @classmethod
    def of_card(
        cls,
        card: ModelCard,
        *,
        max_frames: int | None = None,
        buckets: str | Iterable[int] | None = None,
    ) -> InputSettings:
        """The settings the run of ``card`` trained with.

        Args:
          max_frames: another frame limit (``None``: the card's; ``0``: none). The card's
            ``long_clips`` still decides what a longer clip keeps.
          buckets: other bucket bounds in :func:`aslx.input.fit.parse_buckets`' vocabulary
            (``None`` or ``auto``: the card's ``buckets``, cut to those below ``max_frames``;
            a card without them ran at ``max_frames`` only).

        Raises ``ValueError`` naming the setting when it is not one a model can run at.
        """
        max_frames = card.max_frames if max_frames is None else int(max_frames)
        if max_frames < 0:
            raise ValueError(f"max_frames {max_frames}: a frame count, or 0 for no limit")
        fit.check_long_clips(card.long_clips)
        return cls(
            preset=presets.get(card.preset),
            max_frames=max_frames,
            long_clips=card.long_clips,
            normalization=card.normalization,
            buckets=fit.parse_buckets(
                fit.DEFAULT_BUCKETS if buckets is None else buckets, max_frames, card.buckets
            ),
        )

    def fit_indices(self, num_frames, ops=np):
        """The stored frames a clip of ``num_frames`` keeps, ``[min(n, T)]`` increasing
        (:func:`aslx.input.fit.fit_indices`; ``ops`` numpy or tensorflow)."""
        return fit.fit_indices(num_frames, self.max_frames, ops, self.long_clips)

    def stored_to_fitted(self, num_frames: int) -> np.ndarray:
        """``[num_frames]``: the fitted frame each stored frame was kept as, or the nearest
        kept one (:func:`aslx.input.fit.stored_to_fitted`)."""
        return fit.stored_to_fitted(num_frames, self.max_frames, self.long_clips)

    def fitted_frames(self, num_frames: int) -> int:
        """Frames left of a clip of ``num_frames`` once fitted."""
        return min(num_frames, self.max_frames) if self.max_frames else num_frames

    def run_length(self, fitted_frames: int) -> int | None:
        """The static length a fitted clip runs at: the smallest bucket that holds it;
        ``None`` when it is longer than every bucket (only without a frame limit: it runs at
        its own length); :func:`aslx.input.fit.run_length`."""
        return fit.run_length(fitted_frames, self.buckets)

    def input_config(self, batch_size: int) -> pipeline.InputConfig:
        """The host pipeline that reads a record set as training did, ``batch_size`` clips a
        batch (:func:`aslx.input.pipeline.eval_batches` takes it). The dominant hand is judged
        in the records' own camera aspect (a property of the record set, as in training)."""
        if not self.max_frames:
            raise ValueError(
                "a record set is read at a frame limit; this model has none (max_frames 0)"
            )
        return pipeline.InputConfig(
            batch_size=batch_size,
            max_frames=self.max_frames,
            preset=self.preset.name,
            long_clips=self.long_clips,
        )

    def to_json(self) -> dict:
        """The settings as JSON values (``inference_args.json`` keeps them)."""
        return {
            "preset": self.preset.name,
            "max_frames": self.max_frames,
            "long_clips": self.long_clips,
            "normalization": self.normalization.to_json(),
            "buckets": list(self.buckets),
        }


@dataclasses.dataclass
class InferenceModel:
    """A trained model ready for inference.

    Attributes:
      trained: the weights and the card (:class:`aslx.run.source.TrainedModel`).
      inputs: how it reads a clip (:class:`InputSettings`).
      forward: ``forward(params, batch) -> outputs``, jitted: the input settings'
        normalisation, the model in evaluation mode; CTC gives ``best_path [B, T]`` and
        ``log_probs [B, T, V]``, classification ``class_logits [B, C]``
        (:func:`aslx.model.inference.make_forward`). ``params`` is an argument, so other
        weights of the same model (a gate's keep-logits) need no recompilation.
    """

    trained: TrainedModel
    inputs: InputSettings
    forward: Callable = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        self.forward = self.make_forward()

    @classmethod
    def of(
        cls,
        trained: TrainedModel,
        *,
        max_frames: int | None = None,
        buckets: str | Iterable[int] | None = None,
    ) -> InferenceModel:
        """A model already in memory, its settings from its card
        (:meth:`InputSettings.of_card` takes ``max_frames`` and ``buckets``)."""
        inputs = InputSettings.of_card(trained.card, max_frames=max_frames, buckets=buckets)
        return cls(trained, inputs)

    @property
    def card(self) -> ModelCard:
        return self.trained.card

    @property
    def task(self) -> str:
        return self.trained.card.task

    @property
    def vocab(self) -> vocab_lib.Vocab:
        return self.trained.card.vocab

    @property
    def graphdef(self):
        return self.trained.graphdef

    @property
    def params(self):
        return self.trained.params

    def make_forward(self, jit: bool = True) -> Callable:
        """:attr:`forward`, jitted or not (``jit=False`` for a caller that traces it with the
        parameters as constants: the TFLite graph)."""
        inputs = self.inputs
        return inference.make_forward(
            self.trained.graphdef, inputs.preset, self.task, inputs.normalization, jit=jit
        )

    def with_camera(self, camera_aspect: float) -> InferenceModel:
        """The same model normalising clips of a camera of ``camera_aspect`` (width / height)
        instead of its training camera's; a new jitted forward."""
        normalization = dataclasses.replace(self.inputs.normalization, camera_aspect=camera_aspect)
        return InferenceModel(
            self.trained, dataclasses.replace(self.inputs, normalization=normalization)
        )

    def eval_batches(
        self,
        records: RecordSet | str | os.PathLike,
        split: str,
        batch_size: int,
        *,
        process_index: int | None = None,
        process_count: int | None = None,
    ) -> Iterator[dict[str, np.ndarray]]:
        """One pass over ``split`` of a record set, each clip read as the model was trained to
        (:meth:`InputSettings.input_config`, :func:`aslx.input.pipeline.eval_batches`)."""
        return pipeline.eval_batches(
            records,
            split,
            self.inputs.input_config(batch_size),
            process_index=process_index,
            process_count=process_count,
        )


def load_for_inference(
    path: str | os.PathLike,
    *,
    max_frames: int | None = None,
    buckets: str | Iterable[int] | None = None,
) -> InferenceModel:
    """The model a run chose, from its workdir or an exported weights file
    (:func:`aslx.run.source.load_trained`), with its input settings from its model card and
    its jitted forward pass.

    Args:
      path: a training workdir or an exported weights file.
      max_frames: another frame limit than the card's (``None``: the card's; ``0``: none).
      buckets: other bucket bounds (``None`` or ``auto``: the card's), in the vocabulary of
        :func:`aslx.input.fit.parse_buckets`.

    Raises:
      FileNotFoundError: neither a workdir nor a weights file.
      ValueError: damaged or mismatched weights, a card field out of range, or ``max_frames``
        or ``buckets`` that are not settings a model can run at (the message names which).
    """
    trained = load_trained(path)
    try:
        return InferenceModel.of(trained, max_frames=max_frames, buckets=buckets)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
