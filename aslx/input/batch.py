"""What a host batch sends to the devices.

The input pipeline (:mod:`aslx.input.pipeline`) yields host batches that also carry host-only
fields (``clip_id``); training, evaluation and alignment send only these arrays to the devices.
"""

from __future__ import annotations

import numpy as np

#: Arrays of a host batch that go to the devices (the rest, e.g. clip ids, stay on the host).
DEVICE_KEYS = (
    "landmarks",
    "landmark_mask",
    "frame_mask",
    "labels",
    "label_mask",
    "example_mask",
    "alignment",
)


def device_batch(batch: dict) -> dict:
    """The arrays of a host batch that go to the devices (:data:`DEVICE_KEYS`)."""
    return {k: v for k, v in batch.items() if k in DEVICE_KEYS}


def device_batch_shapes(
    batch_size: int,
    max_frames: int,
    num_landmarks: int,
    max_label_length: int,
    alignments: bool = False,
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of the arrays :func:`device_batch` sends, for a batch of
    ``batch_size`` clips of ``max_frames`` frames of ``num_landmarks`` points with labels of
    ``max_label_length`` (:mod:`aslx.input.pipeline` documents each): what compiling a step
    ahead of time needs instead of data."""
    b, t, n, s = batch_size, max_frames, num_landmarks, max_label_length
    shapes = {
        "landmarks": ((b, t, n, 3), np.dtype(np.float32)),
        "landmark_mask": ((b, t, n), np.dtype(bool)),
        "frame_mask": ((b, t), np.dtype(bool)),
        "labels": ((b, s), np.dtype(np.int32)),
        "label_mask": ((b, s), np.dtype(bool)),
        "example_mask": ((b,), np.dtype(bool)),
    }
    if alignments:
        shapes["alignment"] = ((b, t), np.dtype(np.int32))
    return shapes
