"""Device mesh and parameter sharding from logical axis names.

Every parameter names its axes (``embed``, ``mlp``, ``heads``, ``vocab`` …; metadata
``logical_axes`` set where the model builds it). :data:`RULES` maps those names onto the axes
of a 2-D mesh:

* ``data``: data parallelism; the batch is split across it, parameters are replicated.
* ``fsdp``: fully sharded data parallelism; the batch is split across it *and* every ``embed``
  axis of the parameters (and of their optimiser state) is split across it, so the Large
  model's weights do not have to fit on one device. XLA gathers each weight when it is used.

An axis whose size does not divide by its mesh axis stays replicated. Nothing here is global:
the rules are an argument.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from flax import nnx
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp")
#: logical axis -> mesh axis (None: replicated).
RULES: Mapping[str, str | None] = {
    "embed": "fsdp",
    "mlp": None,
    "heads": None,
    "vocab": None,
    "norm": None,
    "conv": None,
    "input": None,
    "landmarks": None,
    # The stacked blocks' leading axis: lax.scan walks it one layer at a time, so every device
    # holds every layer (of its fsdp slice).
    "layers": None,
}


def make_mesh(fsdp: int = 1, devices=None) -> Mesh:
    """A ``(data, fsdp)`` mesh over ``devices`` (default: all), ``data = devices / fsdp``.

    ``jax.make_mesh`` orders the devices by the chips' physical topology (on a TPU slice,
    neighbours along ``fsdp`` are neighbours on the interconnect, where the weight gathers
    run); elsewhere it keeps JAX's order, each host's devices together. The axes are
    ``Auto``: shardings come from the logical-axis rules, not from explicit-sharding types.
    """
    devices = list(jax.devices() if devices is None else devices)
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"fsdp={fsdp} does not divide the {len(devices)} devices")
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    shape = (len(devices) // fsdp, fsdp)
    try:
        return jax.make_mesh(shape, MESH_AXES, axis_types=auto, devices=devices)
    except NotImplementedError:
        # A 3-D slice (v4, v5p: 4 × 4 × 4 chips) has no physical axis of 8: fsdp 8 then
        # spans two halves of one (neighbours still, on the torus).
        grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
        return Mesh(grid, MESH_AXES, axis_types=auto)


def _spec(variable: nnx.Variable, mesh: Mesh, rules: Mapping[str, str | None]) -> PartitionSpec:
    axes = variable.get_metadata().get("logical_axes") or (None,) * variable.ndim
    if len(axes) != variable.ndim:
        raise ValueError(f"logical axes {axes} do not match a parameter of shape {variable.shape}")
    spec = []
    for name, size in zip(axes, variable.shape):
        mesh_axis = rules.get(name) if name is not None else None
        if mesh_axis is not None and size % mesh.shape[mesh_axis]:
            mesh_axis = None
        spec.append(mesh_axis)
    return PartitionSpec(*spec)


def param_shardings(params: nnx.State, mesh: Mesh, rules: Mapping[str, str | None] = RULES):
    """A ``NamedSharding`` for every parameter, from its logical axes and ``rules``."""
    return jax.tree.map(
        lambda v: NamedSharding(mesh, _spec(v, mesh, rules)),
        params,
        is_leaf=lambda x: isinstance(x, nnx.Variable),
    )


def shard_params(params: nnx.State, mesh: Mesh, rules: Mapping[str, str | None] = RULES):
    """Places parameters on the mesh as :func:`param_shardings` says."""
    return jax.device_put(params, param_shardings(params, mesh, rules))


def batch_sharding(mesh: Mesh, ndim: int = 1) -> NamedSharding:
    """Sharding of a batch array: its first axis split over every mesh axis."""
    return NamedSharding(mesh, PartitionSpec(MESH_AXES, *([None] * (ndim - 1))))


def state_shardings(abstract_state, mesh: Mesh, rules: Mapping[str, str | None] = RULES):
    """Shardings of a whole training state: every ``nnx.Variable`` (parameters, their EMA, the
    optimiser's moments, which keep the parameters' metadata) by its logical axes; everything
    else (step counters, scalars) replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(
        lambda v: (
            NamedSharding(mesh, _spec(v, mesh, rules))
            if isinstance(v, nnx.Variable)
            else replicated
        ),
        abstract_state,
        is_leaf=lambda x: isinstance(x, nnx.Variable),
    )


def host_to_global(mesh: Mesh):
    """``to_device(batch)``: this process's NumPy batch → global arrays split over the mesh.

    Every process passes its own rows; the global batch is their concatenation in process
    order (``jax.make_array_from_process_local_data``), so one host and many hosts see the
    same global batch when their slices add up to it.
    """

    def to_device(batch: dict) -> dict:
        return {
            k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), v)
            for k, v in batch.items()
        }

    return to_device
