"""Run by tests/test_sharding.py in a subprocess with 8 fake CPU devices (XLA_FLAGS set before
JAX starts). Prints one JSON line: max differences between the sharded and 1-device forward
passes, and the shardings the Large model's parameters would get."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from aslx.model import config as config_lib
from aslx.model import model as model_lib
from aslx.model.partitioning import split_batch
from aslx.training import sharding


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    config = config_lib.sized("tiny", num_classes=8, gate="hard_concrete", distill_vocab=16)
    graphdef, params = model_lib.create(config, seed=0)
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.normal(size=(8, 16, 75, 3)), jnp.float32)
    mask = jnp.asarray(np.arange(16)[None] < rng.integers(4, 17, size=(8, 1)))
    forward = jax.jit(lambda p, x, m, k: model_lib.apply(graphdef, p, x, m, key=k))
    key = jax.random.key(1)
    single = jax.device_get(forward(params, points, mask, key))

    result = {}
    for fsdp in (1, 4, 8):
        mesh = sharding.make_mesh(fsdp=fsdp)
        sharded_params = sharding.shard_params(params, mesh)
        out = forward(
            sharded_params,
            jax.device_put(points, sharding.batch_sharding(mesh, 4)),
            jax.device_put(mask, sharding.batch_sharding(mesh, 2)),
            key,
        )
        result[f"fsdp{fsdp}"] = {
            k: float(np.abs(np.asarray(out[k]) - single[k]).max()) for k in out
        }
        kernel = sharded_params["encoder"]["blocks"]["mlp_in"]["kernel"]
        result[f"fsdp{fsdp}_mlp_in_devices_per_shard"] = int(
            np.prod(kernel.sharding.shard_shape(kernel.shape)) * 1.0 / np.prod(kernel.shape) * 8
        )

    mesh = sharding.make_mesh(fsdp=2)
    replicated = jax.device_put(jnp.ones((16, 3)), NamedSharding(mesh, PartitionSpec()))

    def pinned(x, rows):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return split_batch(x[:rows] * 2)

    result["split_batch"] = {
        f"{where}_{rows}": str(out.sharding.spec)
        for rows in (16, 6)
        for where, out in (
            ("mesh", jax.jit(pinned, static_argnums=1)(replicated, rows)),
            ("no_mesh", jax.jit(lambda x, rows=rows: split_batch(x[:rows] * 2))(replicated)),
        )
    }
    result["mesh"] = {
        "shape": dict(mesh.shape),
        "devices": sorted(d.id for d in mesh.devices.flat),
        "axis_types": [str(t) for t in mesh.axis_types],
    }

    _, large = model_lib.abstract_params(config_lib.sized("large"))
    specs = sharding.param_shardings(large, sharding.make_mesh(fsdp=8))
    block = specs["encoder"]["blocks"]  # stacked: a leading, unsharded layers axis
    result["large_specs"] = {
        "mlp_in": list(block["mlp_in"]["kernel"].spec),
        "query": list(block["attention"]["query"]["kernel"].spec),
        "out": list(block["attention"]["out"]["kernel"].spec),
        "norm": list(block["mlp_norm"]["scale"].spec),
        "ctc_head": list(specs["ctc_head"]["kernel"].spec),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
