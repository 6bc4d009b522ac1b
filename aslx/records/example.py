"""The record format: one ``tf.train.Example`` per clip, in sharded TFRecord files.

Features of a record:

=============  =========  =================================================================
key            type       meaning
=============  =========  =================================================================
clip_id        bytes      the clip's stable id within its source
landmarks      bytes      ``[num_frames, num_landmarks, 3]`` little-endian float16, NaN where
                          a point was not detected (the layout is in ``metadata.json``)
num_frames     int64      frames in the clip
label          bytes      the label text (phrase, gloss or class name; empty if unlabelled)
label_ids      int64[]    the label encoded with the record set's vocabulary
=============  =========  =================================================================

float16 halves the bytes read per step; its error (≤ 2.5e-4 for coordinates in [0, 1]) is far
below MediaPipe's own jitter.
"""

from __future__ import annotations

import numpy as np

from aslx.tf_cpu import tensorflow

STORAGE_DTYPE = np.dtype("<f2")


def _bytes(value: bytes):
    tf = tensorflow()

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values):
    tf = tensorflow()

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def serialize(clip_id: str, landmarks: np.ndarray, label: str, label_ids: list[int]) -> bytes:
    """Encodes one clip. ``landmarks``: ``[frames, landmarks, 3]``, NaN where missing."""
    tf = tensorflow()

    features = {
        "clip_id": _bytes(clip_id.encode()),
        "landmarks": _bytes(np.ascontiguousarray(landmarks, STORAGE_DTYPE).tobytes()),
        "num_frames": _ints([landmarks.shape[0]]),
        "label": _bytes(label.encode()),
        "label_ids": _ints(label_ids),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def feature_spec() -> dict:
    """``tf.io.parse_single_example`` spec of a record."""
    tf = tensorflow()

    return {
        "clip_id": tf.io.FixedLenFeature([], tf.string),
        "landmarks": tf.io.FixedLenFeature([], tf.string),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.string),
        "label_ids": tf.io.VarLenFeature(tf.int64),
    }


def parse(serialized, num_landmarks: int) -> dict:
    """Decodes one serialized record into tensors (``landmarks`` float32 ``[frames, L, 3]``)."""
    tf = tensorflow()

    features = tf.io.parse_single_example(serialized, feature_spec())
    landmarks = tf.io.decode_raw(features["landmarks"], tf.float16, little_endian=True)
    landmarks = tf.reshape(tf.cast(landmarks, tf.float32), [-1, num_landmarks, 3])
    return {
        "clip_id": features["clip_id"],
        "landmarks": landmarks,
        "num_frames": features["num_frames"],
        "label": features["label"],
        "label_ids": tf.sparse.to_dense(features["label_ids"]),
    }
