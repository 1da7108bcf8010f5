"""The sparse row-update path on tables sharded by rows over a mesh axis.

Usage: ``opt = shard_rows(sparse_adam_ar(1e-3, 1e-3), mesh, "model");
tables, state = jax.jit(opt.update)(tables, state, row_ids, row_grads)``.

Each shard of a table holds a contiguous block of rows (``P(axis)`` on axis
0). :func:`shard_rows` runs the wrapped optimizer inside ``jax.shard_map``:
every shard receives the step's global row ids and row gradients
(replicated: the same on every device), keeps the ids that fall in its own
block, shifts them to local indices, and sends every other slot to the local
padding id, which the sparse update ignores. Each shard therefore gathers,
updates and scatters only the rows it owns, with no communication at all;
the step count is advanced identically on every shard. The result equals the
single-device update bitwise, since every row is updated by exactly one
shard with the same arithmetic.
"""

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from optax_ar._src.sparse import SparseRowOptimizer


def _local_ids(ids: jax.Array, local_rows: int, axis_name: str) -> jax.Array:
  """Global ids -> ids of this shard's block; others -> ``local_rows``."""
  ids = jnp.asarray(ids)
  local = ids - jax.lax.axis_index(axis_name) * local_rows
  owned = (local >= 0) & (local < local_rows)
  return jnp.where(owned, local, local_rows).astype(ids.dtype)


def _specs(tree: Any, axis_name: str) -> Any:
  """``P(axis)`` for leaves with rows (ndim >= 1), ``P()`` for scalars."""
  return jax.tree.map(lambda x: P(axis_name) if x.ndim else P(), tree)


def shard_rows(
  optimizer: SparseRowOptimizer, mesh: Mesh, axis_name: str = "model"
) -> SparseRowOptimizer:
  """A sparse row optimizer for tables sharded by rows over ``axis_name``.

  The tables (and the state's per-row leaves: moments, ``last_step``) are
  sharded ``P(axis_name)`` along axis 0, every other mesh axis holding
  copies; each table's row count must be a multiple of the axis size (pad
  the table with rows no id refers to). Scalar state leaves (the step count)
  are replicated. ``row_ids`` and ``row_grads`` are global and replicated:
  the unique ids of the step and their summed gradients, as for the
  unsharded optimizer (under data parallelism, sum the per-device row
  gradients over the data axis first).

  Args:
    optimizer: e.g. :func:`optax_ar.sparse_adam_ar` or
      :func:`optax_ar.sparse_adagrad_ar`; every non-scalar leaf of its state
      must have the table's rows along axis 0.
    mesh: the device mesh.
    axis_name: the mesh axis the rows are split over.

  Returns:
    A :class:`optax_ar.SparseRowOptimizer` with the same state, sharded.

  Examples:
    >>> import jax, jax.numpy as jnp, optax_ar
    >>> from jax.sharding import NamedSharding, PartitionSpec as P
    >>> devices = jax.devices()[:2]  # two shards where there are two
    >>> mesh = jax.make_mesh((len(devices),), ("model",), devices=devices)
    >>> opt = optax_ar.shard_rows(optax_ar.sparse_adam_ar(0.1, 0.01), mesh)
    >>> rows = NamedSharding(mesh, P("model"))
    >>> table = jax.device_put(jnp.ones((8, 2)), rows)
    >>> state = jax.jit(opt.init)(table)
    >>> ids = jnp.array([1, 6, 8])  # 8 = padding; row 1 on shard 0, 6 on 1
    >>> table, state = jax.jit(opt.update)(table, state, ids, jnp.ones((3, 2)))
    >>> table[:, 0]
    Array([1. , 0.9, 1. , 1. , 1. , 1. , 0.9, 1. ], dtype=float32)
    >>> state.last_step.sharding.is_equivalent_to(rows, 2)
    True
  """
  if axis_name not in mesh.shape:
    raise ValueError(f"mesh has no axis {axis_name!r}: {dict(mesh.shape)}")
  num_shards = int(mesh.shape[axis_name])

  def check(tables):
    for table in jax.tree.leaves(tables):
      if table.ndim < 1 or table.shape[0] % num_shards:
        raise ValueError(
          f"a table of shape {table.shape} does not split by rows over "
          f"{num_shards} shards of {axis_name!r}: pad its rows"
        )

  def init(tables):
    check(tables)
    state_shape = jax.eval_shape(optimizer.init, tables)
    return jax.shard_map(
      optimizer.init,
      mesh=mesh,
      in_specs=(_specs(tables, axis_name),),
      out_specs=_specs(state_shape, axis_name),
    )(tables)

  def update(tables, state, row_ids, row_grads):
    check(tables)

    def local_update(tables, state, row_ids, row_grads):
      local_ids = jax.tree.map(
        lambda t, ids: _local_ids(ids, t.shape[0], axis_name),
        tables,
        row_ids,
      )
      return optimizer.update(tables, state, local_ids, row_grads)

    table_specs = _specs(tables, axis_name)
    state_specs = _specs(state, axis_name)
    replicated = jax.tree.map(lambda _: P(), (row_ids, row_grads))
    return jax.shard_map(
      local_update,
      mesh=mesh,
      in_specs=(table_specs, state_specs, *replicated),
      out_specs=(table_specs, state_specs),
    )(tables, state, row_ids, row_grads)

  return SparseRowOptimizer(init, update)
