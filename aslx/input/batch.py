"""What a host batch sends to the devices.

The input pipeline (:mod:`aslx.input.pipeline`) yields host batches that also carry host-only
fields (``clip_id``); training, evaluation and alignment send only these arrays to the devices.
"""

from __future__ import annotations

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
