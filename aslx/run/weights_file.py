"""The exported weights file: a trained model's parameters and its model card in one
`safetensors <https://github.com/huggingface/safetensors>`_ file, written and read here only.

aslx reads such a file wherever it reads a workdir (``config.init_from``,
``config.teacher.weights``, :func:`aslx.run.source.load_trained`), with no conversion; other
frameworks read it with the ``safetensors`` package alone. ``python -m aslx.export --format
weights`` writes one from a workdir.

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
  keep-logits (a landmark is kept at inference where its logit is above the model card's
  ``gate_eval_threshold``, 0 by default).

Metadata (the safetensors header's ``__metadata__``, all strings):

==================  ==========================================================================
key                 value
==================  ==========================================================================
``format``          ``aslx-weights``
``format_version``  ``2``
``model``           the model card's JSON, as the run's ``model.json``
                    (:mod:`aslx.run.card`: model config, vocabulary, preset, task,
                    ``max_frames``)
``weights``         ``raw`` or ``ema``: the trained weights or their moving average
``step``            the training step of the checkpoint they come from
``source``          the workdir the run trained in
``tensors_sha256``  SHA-256 over the tensors in name order (:func:`tensors_digest`): each
                    name, dtype, shape and bytes; checked on every read, so flipped bytes are
                    refused instead of predicted with (files without it are read unchecked)
==================  ==========================================================================

Reading it without aslx (PyTorch here; ``framework="numpy"``, ``"tf"`` or ``"flax"`` alike)::

    import json
    from safetensors import safe_open

    with safe_open("small.safetensors", framework="pt") as f:
        description = json.loads(f.metadata()["model"])
        weights = {name: f.get_tensor(name) for name in f.keys()}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import safetensors
from etils import epath
from safetensors import numpy as safetensors_numpy

from aslx import files
from aslx.run.card import ModelCard

FORMAT = "aslx-weights"
#: 2: stacked blocks (``encoder/blocks/…[layers, …]``); version 1 named each block
#: ``encoder/blocks/{i}/…`` and is not read.
FORMAT_VERSION = "2"
METADATA_KEYS = ("format", "format_version", "model", "weights", "step", "source")
WEIGHT_KINDS = ("raw", "ema")


@dataclasses.dataclass
class Source:
    """One set of weights and what rebuilds their model, from a workdir or an exported file."""

    card: ModelCard
    params: dict[str, np.ndarray]  # flat {path: array}, paths as aslx.model.paths names them
    weights: str  # 'raw' or 'ema'
    step: int  # the training step of the checkpoint they come from
    origin: str  # the workdir they were trained in (absolute path)


def write(path: str | os.PathLike, source: Source) -> epath.Path:
    """Writes ``source`` to the file ``path`` (parent folders created), whole or not at all."""
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(source.card.to_json(), sort_keys=True),
        "weights": source.weights,
        "step": str(source.step),
        "source": source.origin,
    }
    # np.asarray with order="C" (unlike ascontiguousarray) keeps 0-d arrays 0-d.
    tensors = {name: np.asarray(value, order="C") for name, value in source.params.items()}
    metadata["tensors_sha256"] = tensors_digest(tensors)
    with files.atomic_path(path) as tmp:
        safetensors_numpy.save_file(tensors, str(tmp), metadata=metadata)
    return files.path(path)


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of ``tensors`` in name order: each one's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = np.asarray(tensors[name], order="C")
        digest.update(f"{name}|{value.dtype.str}|{list(value.shape)}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def read(path: str | os.PathLike) -> Source:
    """Everything an exported weights file holds.

    Raises ``FileNotFoundError`` when ``path`` does not exist and ``ValueError`` when it is not
    an aslx weights file (not safetensors, no aslx metadata, a newer format version).
    """
    return _open(path, tensors=True)


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of an exported weights file, from its header alone (no tensor is read);
    errors as :func:`read`'s."""
    return _open(path, tensors=False).card


def _open(path: str | os.PathLike, tensors: bool) -> Source:
    path = files.path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such weights file; write one with "
            "python -m aslx.export --workdir DIR --format weights --out FILE"
        )
    if not path.is_file():
        raise ValueError(f"{path}: a folder, not a weights file; pass an exported .safetensors")
    try:
        with files.local_copy(path) as local, safetensors.safe_open(local, framework="numpy") as f:
            metadata = f.metadata() or {}
            _check_metadata(path, metadata)
            params = {name: f.get_tensor(name) for name in f.keys()} if tensors else {}
    except safetensors.SafetensorError as error:
        raise ValueError(
            f"{path}: not a safetensors file ({error}); export a workdir with "
            "python -m aslx.export --workdir DIR --format weights --out FILE"
        ) from None
    expected = metadata.get("tensors_sha256")
    if tensors and expected is not None and tensors_digest(params) != expected:
        raise ValueError(
            f"{path}: its tensors do not match the checksum in its header: the file is "
            "damaged; export it again"
        )
    try:
        card = json.loads(metadata["model"])
        step = int(metadata["step"])
    except ValueError:
        raise ValueError(
            f"{path}: its aslx metadata is damaged (model or step); export it again"
        ) from None
    return Source(
        ModelCard.from_json(card, path), params, metadata["weights"], step, metadata["source"]
    )


def _check_metadata(path: epath.Path, metadata: dict[str, str]) -> None:
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
    if metadata["weights"] not in WEIGHT_KINDS:
        raise ValueError(f"{path}: weights {metadata['weights']!r} is neither 'raw' nor 'ema'")
