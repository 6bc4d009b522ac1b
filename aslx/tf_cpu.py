"""TensorFlow for host-side data work only: quiet, and never on an accelerator.

aslx uses TensorFlow for record files and ``tf.data``; JAX owns every accelerator. Import
TensorFlow through :func:`tensorflow` so it never grabs GPU or TPU memory.
"""

from __future__ import annotations

import os


def tensorflow():
    """The ``tensorflow`` module, with GPUs and TPUs hidden from it and its C++ logs quieted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow only decodes and pads here; its oneDNN kernels bring nothing but a start-up
    # banner that absl prints whatever the log level.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_visible_devices([], "TPU")
    except (RuntimeError, ValueError):
        pass  # devices already initialised, or no such device type
    return tf
