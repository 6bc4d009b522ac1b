"""One call from raw landmarks to an answer: a TFLite export or a trained run's weights.

``Predictor(model)(landmarks [frames, 543, 3])`` gives the decoded text (CTC) or the top
classes with their probabilities. ``model`` is an exported TFLite model (``model.tflite``, or
the folder holding it with ``inference_args.json``), a training workdir or an exported weights
file (run with JAX). Both backends take the same path from raw points to the answer (a clip
longer than ``max_frames`` fitted by the run's own ``long_clips`` rule), and run a clip at a
fixed length (the smallest length bucket that holds it: the export's signatures, or for a run
the lengths it trained at), so they give the same predictions; ``python -m aslx.predict``
prints them.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from aslx import files
from aslx import vocab as vocab_lib
from aslx.decoding import ctc as ctc_decoding
from aslx.export import tflite
from aslx.input import fit
from aslx.landmarks import presets
from aslx.landmarks.normalize import DEFAULT_CAMERA_ASPECT
from aslx.run import card as card_lib
from aslx.run import reader

#: Classes shown per clip for a classifier.
TOP_K = 5


class NonFiniteOutput(ValueError):
    """The model's outputs for a clip hold NaN or infinity (its weights, or the clip's values):
    a clip's error, never an answer."""


def _finite(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise NonFiniteOutput(
            "the model's outputs are NaN or infinite for this clip (huge or damaged weights, "
            "or impossible coordinates); no answer"
        )
    return values


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What a model says of one clip.

    Attributes:
      ids: CTC: the decoded label ids; classification: class ids, most probable first.
      scores: classification: the probabilities of ``ids``; CTC: empty.
      text: the decoded string, or the most probable class name.
    """

    ids: tuple[int, ...]
    scores: tuple[float, ...]
    text: str


class Predictor:
    """A model from a TFLite export or a workdir, as one call: ``predictor(landmarks)``.

    Args:
      model: a TFLite export, a training workdir or a weights file.
      beam: CTC prefix-beam width (0 or 1: greedy, the best path).
      num_threads: TFLite interpreter threads (default: the cores this process may use).
      max_frames: workdir or weights: frames the encoder sees at most, as the export's
        ``--max-frames`` (default: the run's); a TFLite file has its own.
      buckets: workdir or weights: the lengths a clip runs at, as the export's ``--buckets``
        (:func:`aslx.input.fit.parse_buckets`; default: the lengths the run trained at); a
        TFLite file has its own signatures.
      camera_aspect: the width / height of the camera the clips come from (default: the
        model's, ``camera_aspect`` in ``inference_args.json``); a clip's own aspect (``.pose``
        headers) is passed to each call instead.

    Attributes:
      preset, task, vocab, blank_id, max_frames: what the model reads and says.
      model_aspect: the camera aspect the model normalises with.
      min_train_frames: the fewest frames of a clip it was trained on (0: unknown).
      lengths: the fixed lengths a clip is padded to (the export's signatures, or the run's
        buckets).
      backend: ``'tflite'`` or ``'jax'``.
    """

    def __init__(
        self,
        model: files.PathLike,
        beam: int = 0,
        num_threads: int | None = None,
        max_frames: int | None = None,
        camera_aspect: float | None = None,
        buckets: str | tuple[int, ...] | None = None,
    ):
        self.beam = int(beam)
        self.camera_aspect = camera_aspect
        model = files.path(model)
        self._inputs: reader.InputSettings | None = None
        if card_lib.exists(model) or model.suffix == ".safetensors":
            loaded = reader.load_for_inference(model, max_frames=max_frames, buckets=buckets)
            args = tflite.inference_args(loaded)
            self._inputs = loaded.inputs
            self._jitted = jax.jit(tflite.inference_function(loaded))
            self._graph = None
            self.backend = "jax"
        else:
            self._graph = tflite.TFLiteModel(model, num_threads=num_threads)
            args = self._graph.args
            self.backend = "tflite"
        meta = args["aslx"]
        self.preset = presets.get(meta["preset"])
        self.task = meta["task"]
        self.vocab = vocab_lib.from_json(meta["vocab"])
        self.blank_id = meta["blank_id"]
        self.max_frames = int(meta["max_frames"])
        signatures = meta.get("signatures", {})
        self.lengths = tuple(sorted(n for n in signatures.values() if n is not None))
        # Exports from before the camera aspect normalised with the portrait default.
        self.model_aspect = float(meta.get("camera_aspect", DEFAULT_CAMERA_ASPECT))
        self.min_train_frames = int((meta.get("train_frames") or {}).get("min", 0))

    def close(self) -> None:
        """Frees a TFLite interpreter now rather than at the process's end."""
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def in_model_camera(self, landmarks: np.ndarray, camera_aspect: float | None = None):
        """``landmarks`` from a camera of ``camera_aspect`` (default: the predictor's) with y
        rescaled so that the model's own aspect correction gives their true proportions."""
        aspect = camera_aspect or self.camera_aspect
        if not aspect or abs(aspect - self.model_aspect) < 1e-9:
            return landmarks
        return np.asarray(landmarks, np.float32) * np.array(
            [1.0, self.model_aspect / aspect, 1.0], np.float32
        )

    def padded_length(self, num_frames: int) -> int:
        """The static length a fitted clip runs at: its bucket (:func:`aslx.input.fit.run_length`,
        so the jitted model compiles once per bucket, not once per clip), else (longer than
        every bucket, only without a frame limit) its own length, as the export's any-length
        signature runs it."""
        bucket = fit.run_length(num_frames, self.lengths)
        return bucket if bucket is not None else max(num_frames, 1)

    def log_probs(self, landmarks: np.ndarray) -> np.ndarray:
        """``[frames, 543, 3]`` canonical points (NaN missing) → per-frame CTC
        log-probabilities ``[fitted frames, V]`` or class log-probabilities ``[C]``."""
        columns = tflite.clip_columns(landmarks, self.preset)
        if self._graph is not None:
            return np.asarray(self._graph(columns)["logits"])
        columns = columns[self._inputs.fit_indices(len(columns))]  # the run's long_clips
        n = len(columns)
        padded = np.full((self.padded_length(n), columns.shape[1]), np.nan, np.float32)
        padded[:n] = columns
        out = np.asarray(self._jitted(padded, np.int32(n)))
        return out if self.task == "classification" else out[:n]

    def _beam_search(self, log_probs: np.ndarray) -> list[int]:
        """Batched prefix beam search of one clip's ``[frames, V]`` log-probabilities, padded
        to the length bucket so that it compiles once per bucket, not once per clip."""
        n = len(log_probs)
        padded = np.zeros((1, self.padded_length(n), log_probs.shape[1]))
        padded[0, :n] = ctc_decoding.log_softmax(log_probs)  # the graph's may be raw logits
        mask = np.arange(padded.shape[1])[None] < n
        return ctc_decoding.beam_search(padded, mask, self.blank_id, self.beam)[0]

    def __call__(self, landmarks: np.ndarray, camera_aspect: float | None = None) -> Prediction:
        """The answer for ``[frames, 543, 3]`` points (NaN missing) from a camera of
        ``camera_aspect`` (default: the predictor's, else the model's)."""
        landmarks = self.in_model_camera(landmarks, camera_aspect)
        if self.task == "classification":
            log_probs = _finite(self.log_probs(landmarks))
            top = np.argsort(-log_probs)[:TOP_K]
            return Prediction(
                tuple(int(i) for i in top),
                tuple(float(np.exp(log_probs[i])) for i in top),
                self.vocab.decode([int(top[0])]),
            )
        if self.beam > 1:
            ids = self._beam_search(_finite(self.log_probs(landmarks)))
        elif self._graph is not None:
            # The graph decodes: one row per emitted character, the blank column removed.
            graph = self._graph(tflite.clip_columns(landmarks, self.preset))
            _finite(graph["logits"])
            outputs = graph["outputs"]
            ids = [int(j) + (int(j) >= self.blank_id) for j in np.argmax(outputs, -1)]
        else:
            log_probs = _finite(self.log_probs(landmarks))
            ids = ctc_decoding.collapse(log_probs.argmax(-1), self.blank_id)
        return Prediction(tuple(ids), (), self.vocab.decode(ids))
