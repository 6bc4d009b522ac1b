"""A trained model as one TFLite graph: raw Kaggle columns in, decoded prediction out.

The graph holds every step between a recorder and an answer, so a phone app feeds it the
MediaPipe columns of a clip and reads the result:

1. **Columns → points.** ``inputs [frames, 3·K]`` float32 are the columns named in
   ``inference_args.json`` (``selected_columns``): the x of the K landmarks the preset can
   use, then their y, then their z, in the Kaggle asl-fingerspelling wide layout, NaN where a
   point was not detected.
2. **Fit.** A clip longer than the model's ``max_frames`` is fitted by the run's own rule, the
   model card's ``long_clips`` (:mod:`aslx.input.fit`): ``resample`` keeps that many evenly
   spaced frames (``floor(i · n / T)``), ``truncate`` the first ``T``, exactly what the
   training pipeline did (``0`` keeps all frames). The fitted frames are then padded with NaN
   rows, inside the graph, to the signature's fixed length (below), so that every op after it
   has a static shape.
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

**Signatures, one per length bucket.** A graph traced for one fixed length keeps the fused
kernels (``SOFTMAX``, ``GELU``, XNNPACK's fully connected and batched matmul) that a
shape-polymorphic graph loses to chains of shape ops. So the file holds one signature per
bucket (the model's input settings, :class:`aslx.run.reader.InputSettings`: by default the
lengths the run trained at, the model card's ``buckets``, the last ``max_frames``):
``frames_64(inputs) -> {outputs, logits}`` takes clips of at most 64 frames, and so on. The
largest answers to ``serving_default``, the name the Kaggle ASL competitions call, and takes
clips of any length (fitted). Without a frame limit
(``max_frames=0``) ``serving_default`` is the shape-polymorphic graph for clips longer than
every bucket. The weights are stored once whatever the number of signatures (the converter
shares identical buffers). :class:`TFLiteModel` picks the smallest bucket that holds a clip.

Weights are stored as float16 by default (half the file, float32 arithmetic), as int8 with
float activations (``dynamic_int8``: a quarter of the file, no calibration), as int8 with a
representative set of clips for calibration (``int8``), or as float32.

``inference_args.json`` beside ``model.tflite`` has the ``selected_columns`` and, under
``aslx``, what :mod:`aslx.predict` needs to read the answer (vocabulary, task, preset, blank
id, ``max_frames``, ``long_clips``, ``buckets``, and ``signatures``: each signature's fixed
length, ``null`` for any).

**The export proves itself.** ``aslx.model_file`` holds the size and SHA-256 of
``model.tflite`` and ``aslx.inputs`` each signature's input shape (``[length, 3·K]``, ``-1``
for any length). :class:`TFLiteModel` checks size and checksum before the interpreter sees a
byte (a truncated flatbuffer can make the interpreter allocate without bound), then the
signatures' shapes, so a damaged file or an ``inference_args.json`` of another export fails
with one line. Exports from before these keys load with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
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
from aslx.input import fit
from aslx.landmarks import layouts, normalize, preprocess, presets
from aslx.model import inference
from aslx.model import model as model_lib
from aslx.run import reader
from aslx.run.card import ModelCard
from aslx.run.reader import InferenceModel
from aslx.tf_cpu import tensorflow

MODEL_FILE = "model.tflite"
ARGS_FILE = "inference_args.json"
QUANTIZATIONS = ("float16", "dynamic_int8", "int8", "float32")
#: The signature TFLite runtimes (and the Kaggle competitions) call by default.
DEFAULT_SIGNATURE = "serving_default"


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
    columns: jnp.ndarray,
    num_frames: jnp.ndarray,
    preset: presets.Preset,
    y_scale: float = normalize.ASPECT_Y,
) -> dict[str, jnp.ndarray]:
    """The graph's columns ``[T, 3·K]`` → a one-clip batch as the input pipeline makes it:
    ``landmarks [1, T, L, 3]`` (0 where missing), ``landmark_mask [1, T, L]``,
    ``frame_mask [1, T]`` (the first ``num_frames`` frames are real, the rest padding, which
    must be NaN). Traceable for any ``T``; the same selection as
    :func:`aslx.landmarks.presets.select` with the camera's ``y_scale`` (NaN padding counts as
    missing for both hands alike, so it never changes which hand is dominant)."""
    graph = graph_landmarks(preset)
    slot = {int(c): i for i, c in enumerate(graph)}
    points = columns.reshape(columns.shape[0], 3, len(graph)).transpose(0, 2, 1)
    selected = preprocess.permute(points, [slot[int(c)] for c in preset.indices], axis=1)
    if preset.picks_dominant_hand:
        mirrored = preprocess.permute(
            points, [slot[int(c)] for c in preset.mirrored_indices], axis=1
        )
        mirrored = mirrored * jnp.array([-1.0, 1.0, 1.0]) + jnp.array([1.0, 0.0, 0.0])  # x → 1 − x
        corrected = points * jnp.array([1.0, y_scale, 1.0])
        seen = ~jnp.any(jnp.isnan(corrected), axis=-1)
        corrected = jnp.where(seen[..., None], corrected, 0.0)

        def take(canonical):
            """``(points, mask)`` of canonical indices, by slices (see preprocess.permute)."""
            index = [slot[int(c)] for c in canonical]
            return (
                preprocess.permute(corrected, index, axis=1),
                preprocess.permute(seen, index, axis=1),
            )

        left_signs = presets.left_signs_in(jnp, take)
        selected = jnp.where(left_signs, mirrored, selected)
    mask = ~jnp.any(jnp.isnan(selected), axis=-1)
    return {
        "landmarks": jnp.where(mask[..., None], selected, 0.0)[None],
        "landmark_mask": mask[None],
        "frame_mask": (jnp.arange(columns.shape[0]) < num_frames)[None],
    }


# --- the model as a function of the columns -------------------------------------------------


def inference_function(model: InferenceModel) -> Callable:
    """``f(columns [T, 3·K], num_frames) -> log-probabilities``: ``[T, V]`` per frame for CTC
    (rows past ``num_frames`` are padding), ``[C]`` for classification. The frames must
    already be fitted (:meth:`aslx.run.reader.InputSettings.fit_indices`); padding rows must
    be NaN. Pure JAX, not jitted, the parameters closed over as constants: the exported graph
    converts it, and :mod:`aslx.predict` jits it for a workdir."""
    inputs, task, params = model.inputs, model.task, model.params
    forward = model.make_forward(jit=False)

    def log_probs(columns, num_frames):
        batch = columns_to_batch(
            columns.astype(jnp.float32), num_frames, inputs.preset, inputs.normalization.y_scale
        )
        out = forward(params, batch)
        # Index the one-clip batch by slicing, not a gather: see preprocess.permute.
        if task == "classification":
            return jax.nn.log_softmax(lax.index_in_dim(out["class_logits"], 0, keepdims=False))
        return lax.index_in_dim(out["log_probs"], 0, keepdims=False)

    return log_probs


def signature_key(length: int | None, max_frames: int) -> str:
    """The name of the signature of fixed ``length`` (``None``: the any-length graph)."""
    if length is None or length == max_frames:
        return DEFAULT_SIGNATURE
    return f"frames_{length}"


def blank_id_of(card: ModelCard) -> int | None:
    """The model's CTC blank id (``None`` for classification)."""
    if card.task == "classification":
        return None
    return inference.ctc_layout(card.vocab)[1]


def signatures_of(inputs: reader.InputSettings) -> dict[str, int | None]:
    """``{signature name: fixed length}`` of the graph: one per bucket of ``inputs``, and
    without a frame limit the any-length ``serving_default`` (length ``None``)."""
    max_frames = inputs.max_frames
    signatures = {signature_key(b, max_frames): b for b in inputs.buckets}
    if not max_frames:
        signatures[DEFAULT_SIGNATURE] = None
    return signatures


def inference_args(model: InferenceModel) -> dict:
    """What ``inference_args.json`` holds."""
    card, inputs = model.card, model.inputs
    described = card.to_json()
    return {
        "selected_columns": selected_columns(inputs.preset),
        "aslx": inputs.to_json()
        | {
            "task": card.task,
            "vocab": described["vocab"],
            "blank_id": blank_id_of(card),
            "signatures": signatures_of(inputs),
            "model": described["model"],
            # The graph normalises with this camera's width / height; feed a clip from another
            # camera with y scaled by camera_aspect / that camera's (aslx.predict does).
            "camera_aspect": inputs.normalization.camera_aspect,
            "train_frames": card.train_frames,
        },
    }


# --- the TensorFlow graph ---------------------------------------------------------------------


def tf_module(model: InferenceModel):
    """``(module, signatures)``: a ``tf.Module`` holding one ``tf.function`` per signature of
    :func:`inference_args`, each ``inputs [frames, 3·K] -> {outputs, logits}``, and the map
    from their names to concrete functions (what ``tf.saved_model.save`` takes)."""
    tf = tensorflow()
    from jax.experimental import jax2tf

    args = inference_args(model)
    settings = model.inputs
    max_frames = settings.max_frames
    num_columns = len(args["selected_columns"])
    blank_id = args["aslx"]["blank_id"]
    trained = model.trained
    # The same parameters with the blocks unrolled and the attention written out heads-first:
    # a TFLite graph has no use for a loop over layers (the interpreter runs ops one by one).
    graph_config = dataclasses.replace(trained.config, scan_layers=False, attention="explicit")
    # NumPy parameters make each unrolled block's kernels their own [in, out] constants (a
    # slice of a stacked jax array would be a [1, in, out] one): only then does the converter
    # turn the dense layers into FULLY_CONNECTED, XNNPACK's fastest kernel, not BATCH_MATMUL.
    graph_trained = dataclasses.replace(
        trained,
        graphdef=model_lib.abstract_params(graph_config)[0],
        params=jax.tree.map(np.asarray, trained.params),
    )
    log_probs = inference_function(InferenceModel(graph_trained, settings))

    def decode(logits):
        if blank_id is None:
            return {"outputs": logits, "logits": logits}
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        previous = tf.concat([[-1], best[:-1]], axis=0)
        emitted = tf.logical_and(tf.not_equal(best, blank_id), tf.not_equal(best, previous))
        characters = [i for i in range(logits.shape[-1]) if i != blank_id]
        outputs = tf.gather(tf.boolean_mask(logits, emitted), characters, axis=1)
        return {"outputs": outputs, "logits": logits}

    def serving(length: int | None):
        """The graph for clips fitted to at most ``length`` frames (``None``: any)."""
        polymorphic = ["(t, _)", None] if length is None else None
        converted = jax2tf.convert(log_probs, polymorphic_shapes=polymorphic, with_gradient=False)
        fits = max_frames and length in (None, max_frames)  # the only ones a long clip reaches

        @tf.function(
            input_signature=[tf.TensorSpec([None, num_columns], tf.float32, name="inputs")],
            autograph=False,
        )
        def serve(inputs):
            if fits:  # the run's own rule for a long clip (its card's long_clips)
                inputs = tf.gather(inputs, settings.fit_indices(tf.shape(inputs)[0], tf))
            frames = tf.shape(inputs)[0]
            if length is None:
                return decode(converted(inputs, frames))
            padding = tf.fill([length - frames, num_columns], float("nan"))
            padded = tf.reshape(tf.concat([inputs, padding], 0), [length, num_columns])
            logits = converted(padded, frames)
            return decode(logits if blank_id is None else logits[:frames])

        return serve

    module, signatures = tf.Module(), {}
    for key, length in args["aslx"]["signatures"].items():
        serve = serving(length)
        setattr(module, key, serve)  # a SavedModel saves the functions its module holds
        signatures[key] = serve.get_concrete_function()
    return module, signatures


def _representative(columns: Iterable[np.ndarray], signatures: dict[str, int | None]):
    """Calibration samples for every signature: each clip, cut to the signature's length
    (calibration needs activation ranges, and a long clip's first frames give them)."""
    clips = [np.asarray(c, np.float32) for c in columns]

    def generate():
        for key, length in signatures.items():
            for c in clips:
                yield key, {"inputs": c if length is None else c[:length]}

    return generate


def convert(
    model: InferenceModel,
    *,
    quantize: str = "float16",
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """The TFLite flat buffer of :func:`tf_module`, fitting clips and running at the lengths of
    ``model.inputs`` (:class:`aslx.run.reader.InputSettings`).

    Args:
      quantize: ``float16`` (weights stored as float16), ``dynamic_int8`` (weights stored as
        int8, activations float, quantised on the fly where a kernel can), ``int8`` (weights
        and, where the calibration allows, activations in int8; needs ``representative``) or
        ``float32``.
      representative: graph inputs ``[frames, 3·K]`` for int8 calibration (a few hundred clips).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, not {quantize!r}")
    if quantize == "int8" and representative is None:
        raise ValueError("int8 quantisation needs representative clips (--representative)")
    tf = tensorflow()
    module, signatures = tf_module(model)
    with tempfile.TemporaryDirectory(prefix="aslx-savedmodel-") as saved:
        # A SavedModel keeps the signatures' input and output names in the TFLite file.
        tf.saved_model.save(module, saved, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = _representative(
                representative, signatures_of(model.inputs)
            )
        with _silenced(), warnings.catch_warnings():
            # int8 calibration runs tf.lite's own (deprecated) interpreter: its notice is not
            # for the user, who runs the file with ai_edge_litert.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
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
    buckets: str | Iterable[int] | None = None,
) -> dict:
    """Writes ``out/model.tflite`` and ``out/inference_args.json`` for a trained model.

    Args:
      source: a training workdir or an exported weights file.
      out: output folder (created). Both files are written to temporary names and renamed, so
        a crash leaves the previous export, or nothing, never half a file.
      max_frames: frames fed to the encoder at most; ``None`` takes the run's ``max_frames``
        (a longer clip is fitted by the run's ``long_clips`` either way).
      representative: int8 calibration clips, ``[frames, 543, 3]`` canonical points (NaN
        missing), as :func:`clip_columns` takes them.
      buckets: the fixed signature lengths, in :func:`aslx.input.fit.parse_buckets`'
        vocabulary; ``None`` (or ``auto``) takes the lengths the run trained at.

    Returns:
      ``{"model": path, "args": path, "bytes": size of model.tflite}``.
    """
    # The settings are checked here, before the long conversion.
    model = reader.load_for_inference(source, max_frames=max_frames, buckets=buckets)
    if model.task not in ("ctc", "classification"):
        raise ValueError(
            f"{source}: a {model.task} run has no task head to export; export a finetuning run"
        )
    if representative is not None:
        representative = [clip_columns(clip, model.inputs.preset) for clip in representative]
    flat = convert(model, quantize=quantize, representative=representative)
    out = files.path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = inference_args(model)
    args["aslx"]["quantize"] = quantize
    args["aslx"]["source"] = str(source)
    args["aslx"]["model_file"] = {"bytes": len(flat), "sha256": hashlib.sha256(flat).hexdigest()}
    args["aslx"]["inputs"] = signature_inputs(_interpreter({"model_content": flat}, 1))
    model_path = files.write_bytes(out / MODEL_FILE, flat)
    args_path = files.write_json(out / ARGS_FILE, args)
    return {"model": model_path, "args": args_path, "bytes": len(flat)}


# --- running an exported model ------------------------------------------------------------------


def interpreter_class() -> type:
    """The TFLite interpreter: ``ai_edge_litert``'s, the maintained one, where it is installed,
    else ``tf.lite``'s (deprecated, the same runtime). Both apply XNNPACK by default."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return tensorflow().lite.Interpreter
    return Interpreter


def default_threads() -> int:
    """The cores this process may run on (the interpreter's ``num_threads`` default)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _interpreter(where: dict, num_threads: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return interpreter_class()(**where, num_threads=num_threads)


def signature_inputs(interpreter) -> dict[str, list[int]]:
    """``{signature: input shape}`` of a loaded graph (``-1`` where a length is free)."""
    out = {}
    for key in sorted(interpreter.get_signature_list()):
        details = interpreter.get_signature_runner(key).get_input_details()["inputs"]
        out[key] = [int(n) for n in details["shape_signature"]]
    return out


def check_model_file(model_path, expected: dict | None, args_path) -> None:
    """Raises ``ValueError`` unless ``model_path`` has the size and SHA-256 ``expected``
    (``inference_args.json``'s ``model_file``); an export from before the checksum only warns."""
    if expected is None:
        warnings.warn(
            f"{args_path} has no checksum of {model_path.name} (an export from before aslx "
            "checked them); export it again to have it checked",
            stacklevel=3,
        )
        return
    size = model_path.stat().length
    if size != expected["bytes"]:
        raise ValueError(
            f"{model_path}: {size:,} bytes where {args_path.name} says {expected['bytes']:,}: "
            "the file is truncated or belongs to another export; export the model again"
        )
    if files.sha256(model_path) != expected["sha256"]:
        raise ValueError(
            f"{model_path}: its SHA-256 differs from the one in {args_path.name}: the file is "
            "damaged or belongs to another export; export the model again"
        )


class TFLiteModel:
    """An exported model loaded for inference: ``model(columns) -> {outputs, logits}``.

    ``path`` is ``model.tflite`` or the folder holding it (``inference_args.json`` beside).
    Each call runs the signature of the smallest length bucket that holds the fitted clip, on
    ``num_threads`` threads (default: :func:`default_threads`).
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
        try:
            self.args = json.loads(args_path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{args_path}: not readable JSON ({e}); export the model again"
            ) from None
        if not isinstance(self.args, dict) or "aslx" not in self.args:
            raise ValueError(f"{args_path}: no 'aslx' entry; was this model exported by aslx?")
        meta = self.args["aslx"]
        check_model_file(model_path, meta.get("model_file"), args_path)
        self.num_threads = int(num_threads or default_threads())
        if files.is_local(model_path):  # memory-mapped
            where = {"model_path": os.fspath(model_path)}
        else:
            where = {"model_content": model_path.read_bytes()}
        self.interpreter = _interpreter(where, self.num_threads)
        if "inputs" in meta and signature_inputs(self.interpreter) != meta["inputs"]:
            raise ValueError(
                f"{model_path}: its signatures' inputs {signature_inputs(self.interpreter)} are "
                f"not those {args_path} describes ({meta['inputs']}); keep each export's two "
                "files together"
            )
        # Exports from before the length buckets hold one any-length signature.
        signatures = meta.get("signatures", {DEFAULT_SIGNATURE: None})
        self.runners = {key: self.interpreter.get_signature_runner(key) for key in signatures}
        self.lengths = {length: key for key, length in signatures.items() if length is not None}
        self.any_length = next((k for k, length in signatures.items() if length is None), None)
        self.max_frames = int(meta.get("max_frames", 0))
        self.preset = presets.get(meta["preset"])
        self.task = meta["task"]
        self.vocab = vocab_lib.from_json(meta["vocab"])
        self.blank_id = meta["blank_id"]

    @property
    def num_bytes(self) -> int:
        return self.path.stat().length

    def close(self) -> None:
        """Frees the interpreter now. Left to the end of the process, it was sometimes freed
        during interpreter shutdown, where its thread pool aborted the process (exit 134)."""
        self.runners = {}
        self.interpreter = None
        gc.collect()

    def signature_for(self, num_frames: int) -> str:
        """The signature a clip of ``num_frames`` raw frames runs on: the smallest length that
        holds it once fitted (:func:`aslx.input.fit.run_length`), else the any-length one."""
        fitted = min(num_frames, self.max_frames) if self.max_frames else num_frames
        length = fit.run_length(fitted, tuple(sorted(self.lengths)))
        return self.any_length if length is None else self.lengths[length]

    def __call__(self, columns: np.ndarray) -> dict[str, np.ndarray]:
        columns = np.asarray(columns, np.float32)
        return self.runners[self.signature_for(len(columns))](inputs=columns)
