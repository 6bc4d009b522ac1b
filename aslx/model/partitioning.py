"""Where a batch's activations live on a device mesh: split along their first axis.

Parameters name their axes and :mod:`aslx.training.sharding` places them; activations follow
XLA's sharding propagation, which keeps a batch split over the mesh except where an operation
gives it a reason not to: compiled for a TPU slice (``python -m aslx.aot``), Data2vec's
pretraining step gathered whole batches of its masked copies onto every chip around the
stem's convolution and the gathers of visible frames. :func:`split_batch` pins an activation's
first axis to the mesh's batch axes at those points.

It acts only while a step is traced under a mesh that has the batch axes
(``jax.sharding.use_abstract_mesh``, as :func:`aslx.training.trainer.make_step` does);
elsewhere (inference, export, one device) it returns its argument unchanged, so the model
never needs to know whether it runs on one device or a pod.
"""

from __future__ import annotations

import math

import jax
from jax.sharding import PartitionSpec

#: The mesh axes a batch is split over, in order (:data:`aslx.training.sharding.MESH_AXES`).
BATCH_AXES = ("data", "fsdp")


def split_batch(x: jax.Array) -> jax.Array:
    """``x [B, …]`` constrained to be split along ``B`` over :data:`BATCH_AXES` of the mesh
    being traced under; ``x`` itself outside such a mesh, or where ``B`` does not divide over
    it (a micro-batch smaller than the mesh is left to XLA)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or not set(BATCH_AXES) <= set(mesh.axis_names):
        return x
    if x.shape[0] % math.prod(mesh.shape[axis] for axis in BATCH_AXES):
        return x
    return jax.lax.with_sharding_constraint(x, PartitionSpec(BATCH_AXES, *[None] * (x.ndim - 1)))
