"""A trained model's weights in one framework-neutral file, and reading it back.

``export_weights(workdir, out)`` writes the parameters a training run chose (or its raw or EMA
ones) as a `safetensors <https://github.com/huggingface/safetensors>`_ file. aslx reads such a
file wherever it reads a workdir (``config.init_from``, ``config.teacher.weights``,
:func:`aslx.training.warm_start.load_trained`), with no conversion; other frameworks read it
with the ``safetensors`` package alone.

File format (``format_version`` 2)
----------------------------------

Tensors: one per model parameter, named by its path in the aslx model, ``/``-separated, e.g.
``encoder/stem/kernel``, ``encoder/blocks/attention/query/kernel``, ``ctc_head/bias``. The
dtype is the checkpoint's (float32 for every aslx parameter). Layouts are Flax's:

* the transformer blocks are stacked: every ``encoder/blocks/…`` tensor has a leading
  ``[layers]`` axis, block 0 first (``encoder/blocks/attention/query/kernel [layers, in, out]``,
  ``encoder/blocks/mlp_norm/scale [layers, width]``); block ``i`` of a per-layer framework is
  slice ``i``. The block's parts are ``attention_norm``, ``attention/{query,key,value,out}``,
  ``mlp_norm``, ``mlp_in``, ``mlp_out``;

* dense kernels ``[in, out]`` (a ``torch.nn.Linear`` weight is the transpose), biases ``[out]``;
* ``encoder/stem/kernel`` is the temporal convolution ``[width, in, out]`` over each frame's
  points flattened point-major (``in = landmarks × 3``, x y z of point 0, then point 1 …);
* LayerNorms have ``scale`` and ``bias``; ``gate/logits [landmarks]`` are a joint gate's
  keep-logits (a landmark is kept at inference where its logit is > 0).

Metadata (the safetensors header's ``__metadata__``, all strings):

==================  ==========================================================================
key                 value
==================  ==========================================================================
``format``          ``aslx-weights``
``format_version``  ``1``
``model``           JSON of the run's ``model.json``: ``model`` (the ``ModelConfig`` fields:
                    sizes, heads' vocabulary sizes, gate …), ``vocab``, ``preset`` (which
                    landmarks, in which order), ``task``, ``max_frames``
``weights``         ``raw`` or ``ema``: the trained weights or their moving average
``step``            the training step of the checkpoint they come from
``source``          the workdir the run trained in
==================  ==========================================================================

Reading it without aslx (PyTorch here; ``framework="numpy"``, ``"tf"`` or ``"flax"`` alike)::

    import json
    from safetensors import safe_open

    with safe_open("small.safetensors", framework="pt") as f:
        description = json.loads(f.metadata()["model"])
        weights = {name: f.get_tensor(name) for name in f.keys()}
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import safetensors
from safetensors import numpy as safetensors_numpy

from aslx.training import warm_start

FORMAT = "aslx-weights"
#: 2: stacked blocks (``encoder/blocks/…[layers, …]``); version 1 named each block
#: ``encoder/blocks/{i}/…`` and is not read.
FORMAT_VERSION = "2"
METADATA_KEYS = ("format", "format_version", "model", "weights", "step", "source")
CHOICES = ("selected", "raw", "ema")


def export_weights(
    workdir: str | os.PathLike,
    out: str | os.PathLike,
    weights: str = "selected",
    *,
    step: int | None = None,
) -> Path:
    """Writes a workdir's weights to the file ``out`` (parent folders created); returns it.

    Args:
      workdir: a finetuning or pretraining workdir, finished or still training.
      out: the file to write; replaced atomically, so it is never left half written.
      weights: ``selected`` (what ``results.json`` chose; without results, as
        :func:`~aslx.training.warm_start.read_source` chooses), ``raw`` or ``ema``.
      step: the checkpoint; default the best step ``results.json`` names, else the latest.

    Raises:
      ValueError: an unknown ``weights``, or ``ema`` for a checkpoint without EMA weights.
      FileNotFoundError: ``workdir`` has no ``model.json`` or no checkpoint (of ``step``).
    """
    if weights not in CHOICES:
        raise ValueError(f"weights must be one of {', '.join(CHOICES)}, got {weights!r}")
    source = warm_start.read_source(workdir, step, None if weights == "selected" else weights)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(source.description, sort_keys=True),
        "weights": source.weights,
        "step": str(source.step),
        "source": source.origin,
    }
    # np.asarray with order="C" (unlike ascontiguousarray) keeps 0-d arrays 0-d.
    tensors = {name: np.asarray(value, order="C") for name, value in source.params.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside ``out`` under a hidden temporary name and renamed over it: a rename within
    # one folder is atomic, so a crash leaves either the old file or the complete new one. The
    # name is unique but the file is created by save_file (not mkstemp, whose 0600 mode would
    # stay on the exported file instead of the user's umask).
    tmp = str(out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        safetensors_numpy.save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return out


def read_weights_file(path: str | os.PathLike) -> warm_start.Source:
    """Everything an exported weights file holds: description, flat parameters, raw or EMA,
    step, source workdir.

    Raises ``FileNotFoundError`` when ``path`` does not exist and ``ValueError`` when it is not
    an aslx weights file (not safetensors, no aslx metadata, a newer format version).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such weights file; write one with "
            "python -m aslx.export --workdir DIR --format weights --out FILE"
        )
    if not path.is_file():
        raise ValueError(f"{path}: a folder, not a weights file; pass an exported .safetensors")
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            _check_metadata(path, metadata)
            params = {name: f.get_tensor(name) for name in f.keys()}
    except safetensors.SafetensorError as error:
        raise ValueError(
            f"{path}: not a safetensors file ({error}); export a workdir with "
            "python -m aslx.export --workdir DIR --format weights --out FILE"
        ) from None
    try:
        description = json.loads(metadata["model"])
        step = int(metadata["step"])
    except ValueError:
        raise ValueError(
            f"{path}: its aslx metadata is damaged (model or step); export it again"
        ) from None
    return warm_start.Source(description, params, metadata["weights"], step, metadata["source"])


def _check_metadata(path: Path, metadata: dict[str, str]) -> None:
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path}: a safetensors file without aslx metadata (format={FORMAT!r}); "
            "export a training workdir with python -m aslx.export --format weights"
        )
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: aslx weights format version {version!r}, this aslx reads "
            f"{FORMAT_VERSION!r}; upgrade aslx or export the workdir again with this one"
        )
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"{path}: its aslx metadata lacks {', '.join(missing)}; export it again")
    if metadata["weights"] not in ("raw", "ema"):
        raise ValueError(f"{path}: weights {metadata['weights']!r} is neither 'raw' nor 'ema'")


def load_weights(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(description, params)`` of an exported weights file: the description as the run's
    ``model.json`` holds it, and the parameters flat, ``{path: array}``.

    Raises ``FileNotFoundError`` or ``ValueError`` (naming the file) as
    :func:`read_weights_file` does.
    """
    source = read_weights_file(path)
    return source.description, source.params
