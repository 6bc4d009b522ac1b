"""A trained model as one TFLite graph: raw Kaggle columns in, decoded prediction out.

The graph holds every step between a recorder and an answer, so a phone app feeds it the
MediaPipe columns of a clip and reads the result:

1. **Columns → points.** ``inputs [frames, 3·K]`` float32 are the columns named in
   ``inference_args.json`` (``selected_columns``): the x of the K landmarks the preset can
   use, then their y, then their z, in the Kaggle asl-fingerspelling wide layout, NaN where a
   point was not detected. Any number of frames: RoPE has no length limit.
2. **Fit.** A clip longer than the model's ``max_frames`` keeps that many evenly spaced frames
   (``floor(i · n / T)``), exactly what the training pipeline did (``0`` keeps all frames).
3. **Selection.** The preset's landmarks; for a dominant-hand preset (``kaggle75``) the hand
   missing in fewer frames, the clip mirrored when it is the left one
   (:func:`aslx.landmarks.presets.select`).
4. **Normalisation and the encoder**: the evaluation forward pass
   (:func:`aslx.model.inference.make_forward`), converted from JAX with ``jax2tf``.
5. **Decoding.** CTC: greedy (per-frame argmax, repeats merged, blanks dropped);
   ``outputs [N, characters]`` holds the scores of the N emitted characters (the frame that
   emitted each, blank column removed), so ``argmax(outputs, -1)`` indexes the vocabulary's
   characters (Kaggle's ``character_to_prediction_index.json`` order for the Kaggle
   vocabulary). Classification: ``outputs [classes]``. Both also give ``logits``: per-frame
   CTC log-probabilities ``[frames, V]`` (after fitting) or the class log-probabilities.

Weights are stored as float16 by default (half the file, float32 arithmetic), or int8 with a
representative set of clips for calibration, or float32.

The signature is ``serving_default(inputs) -> {outputs, logits}``, the way the Kaggle ASL
competitions ran submissions. ``inference_args.json`` beside ``model.tflite`` has the
``selected_columns`` and, under ``aslx``, what :mod:`aslx.predict` needs to read the answer
(vocabulary, task, preset, blank id, ``max_frames``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from aslx import files
from aslx import vocab as vocab_lib
from aslx.augment import transforms
from aslx.input import fit
from aslx.landmarks import layouts, presets
from aslx.model import inference
from aslx.model import model as model_lib
from aslx.run import source as source_lib
from aslx.run.card import ModelCard
from aslx.run.source import TrainedModel
from aslx.tf_cpu import tensorflow

MODEL_FILE = "model.tflite"
ARGS_FILE = "inference_args.json"
QUANTIZATIONS = ("float16", "int8", "float32")


# --- what the graph reads -----------------------------------------------------------------


def graph_landmarks(preset: presets.Preset) -> np.ndarray:
    """``[K]`` canonical indices the graph reads, sorted: the preset's points, and for a
    dominant-hand preset also those of the mirrored selection (both hands)."""
    chosen = set(preset.indices.tolist())
    if preset.picks_dominant_hand:
        chosen |= set(preset.mirrored_indices.tolist())
    return np.array(sorted(chosen), np.int32)


def selected_columns(preset: presets.Preset) -> list[str]:
    """Names of the graph's input columns: x of every :func:`graph_landmarks` point, then y,
    then z (a subset of :func:`aslx.landmarks.layouts.wide_columns`, in its order)."""
    names = layouts.wide_columns()
    n = layouts.NUM_LANDMARKS
    return [names[axis * n + int(i)] for axis in range(3) for i in graph_landmarks(preset)]


def clip_columns(landmarks: np.ndarray, preset: presets.Preset) -> np.ndarray:
    """``[frames, 543, 3]`` canonical points (NaN missing) → the graph's ``[frames, 3·K]``."""
    points = np.asarray(landmarks, np.float32)[:, graph_landmarks(preset)]  # [T, K, 3]
    return np.ascontiguousarray(points.transpose(0, 2, 1).reshape(len(points), -1))


def columns_to_batch(
    columns: jnp.ndarray, num_frames: jnp.ndarray, preset: presets.Preset
) -> dict[str, jnp.ndarray]:
    """The graph's columns ``[T, 3·K]`` → a one-clip batch as the input pipeline makes it:
    ``landmarks [1, T, L, 3]`` (0 where missing), ``landmark_mask [1, T, L]``,
    ``frame_mask [1, T]`` (the first ``num_frames`` frames are real, the rest padding, which
    must be NaN). Traceable for any ``T``; the same selection as
    :func:`aslx.landmarks.presets.select` (NaN padding counts as missing for both hands
    alike, so it never changes which hand is dominant)."""
    graph = graph_landmarks(preset)
    slot = {int(c): i for i, c in enumerate(graph)}
    points = columns.reshape(columns.shape[0], 3, len(graph)).transpose(0, 2, 1)
    selected = transforms.permute(points, [slot[int(c)] for c in preset.indices], axis=1)
    if preset.picks_dominant_hand:
        mirrored = transforms.permute(
            points, [slot[int(c)] for c in preset.mirrored_indices], axis=1
        )
        mirrored = mirrored * jnp.array([-1.0, 1.0, 1.0]) + jnp.array([1.0, 0.0, 0.0])  # x → 1 − x

        def missing_frames(group: str) -> jnp.ndarray:
            hand = layouts.group_slice(group)
            hand_points = transforms.permute(
                points, [slot[c] for c in range(hand.start, hand.stop)], 1
            )
            return jnp.all(jnp.isnan(hand_points), axis=(1, 2)).sum()

        left_dominant = missing_frames("left_hand") < missing_frames("right_hand")
        selected = jnp.where(left_dominant, mirrored, selected)
    mask = ~jnp.any(jnp.isnan(selected), axis=-1)
    return {
        "landmarks": jnp.where(mask[..., None], selected, 0.0)[None],
        "landmark_mask": mask[None],
        "frame_mask": (jnp.arange(columns.shape[0]) < num_frames)[None],
    }


# --- the model as a function of the columns -------------------------------------------------


def inference_function(trained: TrainedModel) -> Callable:
    """``f(columns [T, 3·K], num_frames) -> log-probabilities``: ``[T, V]`` per frame for CTC
    (rows past ``num_frames`` are padding), ``[C]`` for classification. The frames must
    already be fitted (:func:`aslx.input.fit.fit_indices`); padding rows must be NaN. Pure
    JAX: the exported graph converts it, and :mod:`aslx.predict` jits it for a workdir."""
    preset = presets.get(trained.card.preset)
    task = trained.card.task
    forward = inference.make_forward(trained.graphdef, preset, task)

    def log_probs(columns, num_frames):
        batch = columns_to_batch(columns.astype(jnp.float32), num_frames, preset)
        out = forward(trained.params, batch)
        # Index the one-clip batch by slicing, not a gather: see transforms.permute.
        if task == "classification":
            return jax.nn.log_softmax(lax.index_in_dim(out["class_logits"], 0, keepdims=False))
        return lax.index_in_dim(out["log_probs"], 0, keepdims=False)

    return log_probs


def padded_length(num_frames: int, max_frames: int) -> int:
    """Static length a jitted model pads a fitted clip to, so that it compiles once per length
    bucket rather than once per clip: ``max_frames``, or a multiple of 64 without a limit."""
    if max_frames and num_frames <= max_frames:
        return max_frames
    return -(-max(num_frames, 1) // 64) * 64


def blank_id_of(card: ModelCard) -> int | None:
    """The model's CTC blank id (``None`` for classification)."""
    if card.task == "classification":
        return None
    return inference.ctc_layout(card.vocab)[1]


def inference_args(trained: TrainedModel, max_frames: int) -> dict:
    """What ``inference_args.json`` holds."""
    card = trained.card
    preset = presets.get(card.preset)
    described = card.to_json()
    return {
        "selected_columns": selected_columns(preset),
        "aslx": {
            "task": card.task,
            "preset": preset.name,
            "vocab": described["vocab"],
            "blank_id": blank_id_of(card),
            "max_frames": max_frames,
            "model": described["model"],
        },
    }


# --- the TensorFlow graph ---------------------------------------------------------------------


def tf_module(trained: TrainedModel, max_frames: int):
    """A ``tf.Module`` whose ``serve(inputs [frames, 3·K])`` returns ``{outputs, logits}``."""
    tf = tensorflow()
    from jax.experimental import jax2tf

    args = inference_args(trained, max_frames)
    num_columns = len(args["selected_columns"])
    blank_id = args["aslx"]["blank_id"]
    # The same parameters with the blocks unrolled and XLA's attention: a TFLite graph has no
    # use for a loop over layers (the interpreter runs ops one by one) or for cuDNN.
    graph_config = dataclasses.replace(trained.config, scan_layers=False, attention="xla")
    graph_model = dataclasses.replace(trained, graphdef=model_lib.abstract_params(graph_config)[0])
    converted = jax2tf.convert(
        inference_function(graph_model), polymorphic_shapes=["(t, _)", None], with_gradient=False
    )

    class Serving(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, num_columns], tf.float32, name="inputs")],
            autograph=False,
        )
        def serve(self, inputs):
            frames = tf.shape(inputs)[0]
            if max_frames:
                inputs = tf.gather(inputs, fit.fit_indices(frames, max_frames, tf))
            logits = converted(inputs, tf.shape(inputs)[0])
            if blank_id is None:
                return {"outputs": logits, "logits": logits}
            best = tf.argmax(logits, axis=-1, output_type=tf.int32)
            previous = tf.concat([[-1], best[:-1]], axis=0)
            emitted = tf.logical_and(tf.not_equal(best, blank_id), tf.not_equal(best, previous))
            characters = [i for i in range(logits.shape[-1]) if i != blank_id]
            outputs = tf.gather(tf.boolean_mask(logits, emitted), characters, axis=1)
            return {"outputs": outputs, "logits": logits}

    return Serving()


def _representative(columns: Iterable[np.ndarray]):
    def generate():
        for c in columns:
            yield {"inputs": np.asarray(c, np.float32)}

    return generate


def convert(
    trained: TrainedModel,
    *,
    max_frames: int,
    quantize: str = "float16",
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """The TFLite flat buffer of :func:`tf_module`.

    Args:
      max_frames: clips longer than this keep this many evenly spaced frames (0: all).
      quantize: ``float16`` (weights stored as float16), ``int8`` (weights and, where the
        calibration allows, activations in int8; needs ``representative``) or ``float32``.
      representative: graph inputs ``[frames, 3·K]`` for int8 calibration (a few hundred clips).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, not {quantize!r}")
    if quantize == "int8" and representative is None:
        raise ValueError("int8 quantisation needs representative clips (--representative)")
    tf = tensorflow()
    module = tf_module(trained, max_frames)
    with tempfile.TemporaryDirectory(prefix="aslx-savedmodel-") as saved:
        # A SavedModel keeps the signature's input and output names in the TFLite file.
        tf.saved_model.save(
            module, saved, signatures={"serving_default": module.serve.get_concrete_function()}
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(representative)
        with _silenced():
            return converter.convert()


@contextlib.contextmanager
def _silenced():
    """The converter prints its MLIR passes to stderr (file descriptor 2), which no Python
    logging setting reaches; keep them out of the user's terminal unless conversion fails."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception:
            os.dup2(saved, 2)
            log.seek(0)
            os.write(2, log.read()[-20000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def export(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    quantize: str = "float16",
    max_frames: int | None = None,
    representative: Iterable[np.ndarray] | None = None,
) -> dict:
    """Writes ``out/model.tflite`` and ``out/inference_args.json`` for a trained model.

    Args:
      source: a training workdir or an exported weights file.
      out: output folder (created). Both files are written to temporary names and renamed, so
        a crash leaves the previous export, or nothing, never half a file.
      max_frames: frames fed to the encoder at most; ``None`` takes the run's ``max_frames``.

    Returns:
      ``{"model": path, "args": path, "bytes": size of model.tflite}``.
    """
    trained = source_lib.load_trained(source)
    if trained.card.task not in ("ctc", "classification"):
        raise ValueError(
            f"{source}: a {trained.card.task} run has no task head to export; "
            "export a finetuning run"
        )
    if max_frames is None:
        max_frames = trained.card.max_frames
    flat = convert(trained, max_frames=max_frames, quantize=quantize, representative=representative)
    out = files.path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = inference_args(trained, max_frames)
    args["aslx"]["quantize"] = quantize
    args["aslx"]["source"] = str(source)
    model_path = files.write_bytes(out / MODEL_FILE, flat)
    args_path = files.write_json(out / ARGS_FILE, args)
    return {"model": model_path, "args": args_path, "bytes": len(flat)}


# --- running an exported model ------------------------------------------------------------------


class TFLiteModel:
    """An exported model loaded for inference: ``model(columns) -> {outputs, logits}``.

    ``path`` is ``model.tflite`` or the folder holding it (``inference_args.json`` beside).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        path = files.path(path)
        model_path = path / MODEL_FILE if path.is_dir() else path
        args_path = model_path.parent / ARGS_FILE
        for p in (model_path, args_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p}: not found; an exported model is a folder with {MODEL_FILE} and "
                    f"{ARGS_FILE} (python -m aslx.export --format tflite)"
                )
        self.path = model_path
        self.args = json.loads(args_path.read_text())
        if "aslx" not in self.args:
            raise ValueError(f"{args_path}: no 'aslx' entry; was this model exported by aslx?")
        tf = tensorflow()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            if files.is_local(model_path):  # memory-mapped
                where = {"model_path": os.fspath(model_path)}
            else:
                where = {"model_content": model_path.read_bytes()}
            self.interpreter = tf.lite.Interpreter(**where, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.preset = presets.get(self.args["aslx"]["preset"])
        self.task = self.args["aslx"]["task"]
        self.vocab = vocab_lib.from_json(self.args["aslx"]["vocab"])
        self.blank_id = self.args["aslx"]["blank_id"]

    @property
    def num_bytes(self) -> int:
        return self.path.stat().length

    def __call__(self, columns: np.ndarray) -> dict[str, np.ndarray]:
        return self.runner(inputs=np.asarray(columns, np.float32))
