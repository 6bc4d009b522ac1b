"""The model card: everything that rebuilds a trained model and says what it reads and answers.

A training run writes it as ``model.json`` in its workdir; an exported weights file carries
the same JSON in its metadata (:mod:`aslx.run.weights_file`). Both are written by
:meth:`ModelCard.to_json` and read by :meth:`ModelCard.from_json`, nowhere else.

``model.json`` (one JSON object):

==============  ============================================================================
key             value
==============  ============================================================================
``model``       the :class:`~aslx.model.config.ModelConfig` fields (sizes, heads, gate …)
``vocab``       the vocabulary (:func:`aslx.vocab.from_json` reads it)
``preset``      the landmark preset the model reads (:mod:`aslx.landmarks.presets`)
``task``        ``ctc``, ``classification`` or ``pretrain``
``max_frames``  the static frame count T the run trained at
``normalization``  how landmarks became the model's input, camera aspect included
                (:class:`~aslx.landmarks.normalize.Normalization`; a card without it is
                the per-group normalisation with the portrait aspect)
``train_frames``  ``{min, mean}`` frames of the clips trained on (``null`` when unknown):
                shorter clips are warned about at prediction
``data2vec``    pretraining only: the Data2vec objective's fields
``long_clips``  ``resample`` or ``truncate``: how a clip longer than ``max_frames`` was fitted
                (a card without it: ``resample``)
``buckets``     the frame-count bounds the run trained at, ascending, the last
                ``max_frames`` (``null`` when unknown)
==============  ============================================================================
"""

from __future__ import annotations

import dataclasses
import json
import os

from etils import epath

from aslx import files
from aslx import vocab as vocab_lib
from aslx.input import fit
from aslx.landmarks.normalize import Normalization
from aslx.model.config import ModelConfig

MODEL_FILE = "model.json"
#: The run's whole training config beside the card (written by the trainers, read by reports).
CONFIG_FILE = "config.json"
TASKS = ("ctc", "classification", "pretrain")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a trained model is (see the module docstring for each field)."""

    model: ModelConfig
    vocab: vocab_lib.Vocab
    preset: str
    task: str
    max_frames: int
    data2vec: dict | None = None
    normalization: Normalization = dataclasses.field(default_factory=Normalization.per_group)
    train_frames: dict | None = None
    long_clips: str = fit.RESAMPLE
    buckets: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {self.task!r}")
        fit.check_long_clips(self.long_clips)
        if self.buckets is not None:
            # Bounds a run trains at: ascending within max_frames, the last max_frames.
            bounds = tuple(self.buckets)
            if fit.parse_buckets(bounds, self.max_frames) != bounds:
                raise ValueError(f"buckets {list(bounds)} must end at max_frames={self.max_frames}")

    def to_json(self) -> dict:
        value = {
            "model": dataclasses.asdict(self.model),
            "vocab": self.vocab.to_json(),
            "preset": self.preset,
            "task": self.task,
            "max_frames": int(self.max_frames),
        }
        if self.data2vec is not None:
            value["data2vec"] = dict(self.data2vec)
        value["normalization"] = self.normalization.to_json()
        value["train_frames"] = self.train_frames
        value["long_clips"] = self.long_clips
        value["buckets"] = list(self.buckets) if self.buckets is not None else None
        return value

    @classmethod
    def from_json(cls, value: dict, where: str | os.PathLike) -> ModelCard:
        """Reads :meth:`to_json`'s form; ``ValueError`` naming ``where`` and the field when a
        field is missing or wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"{where}: a model card must be a JSON object")
        missing = [k for k in ("model", "vocab", "preset", "task", "max_frames") if k not in value]
        if missing:
            raise ValueError(f"{where}: the model card lacks {', '.join(missing)}")
        try:
            model = ModelConfig(**value["model"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: field 'model': {e}") from None
        try:
            vocab = vocab_lib.from_json(value["vocab"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: field 'vocab': {e}") from None
        try:
            normalization = Normalization.from_json(value.get("normalization"))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: field 'normalization': {e}") from None
        try:
            return cls(
                model=model,
                vocab=vocab,
                preset=str(value["preset"]),
                task=str(value["task"]),
                max_frames=int(value["max_frames"]),
                data2vec=value.get("data2vec"),
                normalization=normalization,
                train_frames=value.get("train_frames"),
                long_clips=str(value.get("long_clips", fit.RESAMPLE)),
                buckets=tuple(int(b) for b in value["buckets"]) if value.get("buckets") else None,
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None


def write(workdir: str | os.PathLike, card: ModelCard) -> epath.Path:
    """``workdir/model.json``, written whole or not at all."""
    return files.write_json(files.path(workdir) / MODEL_FILE, card.to_json(), sort_keys=True)


def exists(workdir: str | os.PathLike) -> bool:
    return (files.path(workdir) / MODEL_FILE).is_file()


def read(workdir: str | os.PathLike) -> ModelCard:
    """The card of a workdir. ``FileNotFoundError`` when it has none, ``ValueError`` naming the
    file when it is damaged."""
    path = files.path(workdir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{workdir}: no {MODEL_FILE}; is this a workdir of an aslx training run?"
        )
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); the workdir is damaged") from None
    return ModelCard.from_json(value, path)
