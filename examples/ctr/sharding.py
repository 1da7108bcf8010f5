"""Device meshes for the CTR runner: row-sharded tables, data-parallel batches.

Usage: ``python -m examples.ctr --config demo --mesh 2x4`` (2-way data
parallel x 4-way row sharding), or in code::

  mesh = create_mesh("2x4")
  params = pad_tables(params, table_mask, model_axis_size(mesh))
  shardings = param_shardings(params, table_mask, mesh)

Layout (see ``docs/SCALING.md``):

* The mesh has two axes, ``("data", "model")``, both of ``AxisType.Auto``:
  the runner states the shardings of its inputs and outputs (``jit``'s
  ``in_shardings`` / ``out_shardings``) and XLA's SPMD partitioner places the
  rest. (The alternative, ``Explicit`` axes with ``jax.set_mesh``, carries
  shardings in the types; the runner does not need it.)
* Per-ID tables (``per_id_table_mask``) are sharded by rows over ``model``:
  ``P("model", None)``; the optimizer state follows the params through
  :func:`optax.tree_map_params`, so Adam's moments and AdamAR's ``last_step``
  (shape ``(rows, 1)``) are sharded like their table; every other leaf (dense
  weights, step counts, hyperparameters, RNG keys) is replicated.
* Batches are sharded over ``data`` along the batch axis.
* A table whose row count is not a multiple of the ``model`` axis size is
  padded with zero rows (:func:`pad_tables`). The padded rows have IDs no
  feature ever holds, so they are never gathered, their gradient is exactly
  zero, and every optimizer of the runner leaves them at zero (AdamAR's
  decay only touches rows with a nonzero gradient). The first ``vocab_size``
  rows are the single-device table.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from examples.ctr.data.pipeline import Batch
from examples.ctr.data.pipeline import BatchIterator

DATA_AXIS = "data"
MODEL_AXIS = "model"
MESH_AXES = (DATA_AXIS, MODEL_AXIS)


def parse_mesh_shape(text: str) -> tuple[int, int]:
  """``"DATAxMODEL"`` -> ``(data, model)``.

  Example:
    >>> parse_mesh_shape("2x4")
    (2, 4)
  """
  parts = text.lower().split("x")
  try:
    shape = tuple(int(p) for p in parts)
  except ValueError:
    shape = ()
  if len(shape) != 2 or min(shape) < 1:
    raise ValueError(
      f"mesh must be DATAxMODEL with positive sizes (e.g. 2x4), got {text!r}"
    )
  return shape  # type: ignore[return-value]


def create_mesh(shape: str | tuple[int, int], devices: Any = None) -> Mesh:
  """A ``("data", "model")`` mesh with ``Auto`` axes over all devices.

  Args:
    shape: ``"2x4"`` or ``(2, 4)``; the product must equal the number of
      devices (of every process, under ``jax.distributed``).
    devices: devices to use; default ``jax.devices()`` (all processes).

  Returns:
    A :class:`jax.sharding.Mesh`.

  Example:
    >>> mesh = create_mesh("1x1", jax.devices()[:1])
    >>> dict(mesh.shape)
    {'data': 1, 'model': 1}
  """
  if isinstance(shape, str):
    shape = parse_mesh_shape(shape)
  devices = jax.devices() if devices is None else list(devices)
  if math.prod(shape) != len(devices):
    raise ValueError(
      f"mesh {shape[0]}x{shape[1]} needs {math.prod(shape)} devices, "
      f"have {len(devices)}"
    )
  return jax.make_mesh(
    tuple(shape),
    MESH_AXES,
    axis_types=(jax.sharding.AxisType.Auto,) * 2,
    devices=devices,
  )


def model_axis_size(mesh: Mesh) -> int:
  """The number of row shards of a table."""
  return int(mesh.shape[MODEL_AXIS])


def data_axis_size(mesh: Mesh) -> int:
  """The number of batch shards."""
  return int(mesh.shape[DATA_AXIS])


def padded_rows(num_rows: int, multiple: int) -> int:
  """``num_rows`` rounded up to a multiple of ``multiple``.

  Example:
    >>> padded_rows(115, 4), padded_rows(115, 8), padded_rows(128, 8)
    (116, 120, 128)
  """
  return -(-num_rows // multiple) * multiple


def pad_tables(params: Any, table_mask: Any, multiple: int) -> Any:
  """Pads every per-ID table with zero rows to a multiple of ``multiple``.

  Args:
    params: the params tree.
    table_mask: bools like ``params`` marking the per-ID tables.
    multiple: the ``model`` axis size.

  Returns:
    ``params`` with the tables padded (other leaves unchanged).

  Example:
    >>> p = pad_tables({"t": jnp.ones((3, 2)), "w": jnp.ones(3)},
    ...                {"t": True, "w": False}, 4)
    >>> p["t"].shape, p["w"].shape, float(p["t"][3].sum())
    ((4, 2), (3,), 0.0)
  """

  def pad(leaf, is_table):
    if not is_table:
      return leaf
    extra = padded_rows(leaf.shape[0], multiple) - leaf.shape[0]
    if not extra:
      return leaf
    return jnp.pad(leaf, [(0, extra)] + [(0, 0)] * (leaf.ndim - 1))

  return jax.tree.map(pad, params, table_mask)


def param_shardings(params: Any, table_mask: Any, mesh: Mesh) -> Any:
  """Tables by rows over ``model``, everything else replicated.

  Raises:
    ValueError: if a table's row count is not a multiple of the ``model``
      axis size (pad it first with :func:`pad_tables`).
  """
  rows, replicated = row_sharding(mesh), NamedSharding(mesh, P())

  def sharding(leaf, is_table):
    if not is_table:
      return replicated
    if leaf.shape[0] % model_axis_size(mesh):
      raise ValueError(
        f"a table of {leaf.shape[0]} rows does not split over "
        f"{model_axis_size(mesh)} shards: pad it with pad_tables"
      )
    return rows

  return jax.tree.map(sharding, params, table_mask)


def row_sharding(mesh: Mesh) -> NamedSharding:
  """``P("model", None)``: rows split over ``model``, copies over ``data``."""
  return NamedSharding(mesh, P(MODEL_AXIS))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over ``data``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """A copy on every device."""
  return NamedSharding(mesh, P())


def opt_state_shardings(
  tx: optax.GradientTransformation, params: Any, shardings: Any, mesh: Mesh
) -> Any:
  """Shardings of ``tx.init(params)``: per-row leaves follow their param.

  :func:`optax.tree_map_params` finds every copy of the params' structure in
  the state (Adam's ``mu``/``nu``, AdamAR's ``last_step``, SAM's copies,
  through ``inject_hyperparams`` and masks) and gives each leaf its param's
  sharding; ``last_step`` has shape ``(rows, 1)``, so the table's
  ``P("model", None)`` applies unchanged. Counters and hyperparameters are
  replicated.
  """

  def follow(leaf, sharding):
    # Masked leaves (e.g. ``last_step`` of dense weights) hold no array.
    return leaf if isinstance(leaf, optax.MaskedNode) else sharding

  return optax.tree_map_params(
    tx,
    follow,
    jax.eval_shape(tx.init, params),
    shardings,
    transform_non_params=lambda _: replicated(mesh),
    is_leaf=lambda x: isinstance(x, optax.MaskedNode),
  )


def shard_array(value: Any, sharding: NamedSharding) -> jax.Array:
  """A global array from a host value every process holds in full.

  Each process materialises only its addressable shards, so this works
  unchanged under ``jax.distributed`` (every host reads the same global
  batch and keeps its part).
  """
  value = np.asarray(value)
  return jax.make_array_from_callback(
    value.shape, sharding, lambda index: value[index]
  )


def shard_tree(tree: Any, shardings: Any) -> Any:
  """:func:`shard_array` over a tree (``shardings``: a tree or one)."""
  if isinstance(shardings, NamedSharding):
    return jax.tree.map(lambda x: shard_array(x, shardings), tree)
  return jax.tree.map(shard_array, tree, shardings)


def place_train_state(
  tx: optax.GradientTransformation,
  params: Any,
  rest: Any,
  table_mask: Any,
  mesh: Mesh,
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
  """Pads the tables and places a new training state on ``mesh``.

  The per-ID tables are padded with zero rows to a multiple of the
  ``model`` axis (:func:`pad_tables`) and split by rows over it, every
  other leaf is replicated, and the optimizer state is created by a jitted
  ``tx.init`` with the shardings of :func:`opt_state_shardings`.

  Args:
    tx: the optimizer.
    params: the model's ``nnx.Param`` state.
    rest: the model's other state (replicated).
    table_mask: bools like ``params`` marking the per-ID tables.
    mesh: the ``("data", "model")`` mesh.

  Returns:
    ``((params, opt_state, rest), (their shardings))``.
  """
  (params, rest), (param_sh, rest_sh) = place_params(
    params, rest, table_mask, mesh
  )
  opt_sh = opt_state_shardings(tx, params, param_sh, mesh)
  opt_state = jax.jit(tx.init, out_shardings=opt_sh)(params)
  return (params, opt_state, rest), (param_sh, opt_sh, rest_sh)


def place_params(
  params: Any, rest: Any, table_mask: Any, mesh: Mesh
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
  """Pads the tables and places ``params`` and ``rest`` on ``mesh``.

  Tables are padded (:func:`pad_tables`) and split by rows over ``model``;
  everything else is replicated. Every process passes the same values (the
  same seed) and keeps its own shards.

  Returns:
    ``((params, rest), (their shardings))``.
  """
  params = pad_tables(params, table_mask, model_axis_size(mesh))
  param_sh = param_shardings(params, table_mask, mesh)
  rest_sh = jax.tree.map(lambda _: replicated(mesh), rest)
  # One process: device to device. Several: each process copies only its
  # shards from its host copy (``jax.device_put`` there peaked at 6.4 GB
  # per process for a 2e7 x 8 table, 2.4 GB this way: docs/SCALING.md).
  put = jax.device_put if jax.process_count() == 1 else shard_tree
  return (put(params, param_sh), put(rest, rest_sh)), (param_sh, rest_sh)


def rows_or_replicated(tree: Any, mesh: Mesh) -> Any:
  """Shardings of a sparse row optimizer's state: rows over ``model``.

  Every leaf with rows (moments, ``last_step``) is split like its table
  (:func:`row_sharding`); scalars (the step count) are replicated.
  """
  return jax.tree.map(
    lambda x: row_sharding(mesh) if np.ndim(x) else replicated(mesh), tree
  )


def gather_owned_rows(table: jax.Array, ids: jax.Array, mesh: Mesh):
  """``table[ids]`` of a table split by rows over ``model``; zeros past it.

  Each ``model`` shard gathers the ids that fall in its block of rows
  (zeros for the others) and the results are summed over ``model``: one
  all-reduce of ``ids.shape + table.shape[1:]``, never the table. ``ids``
  and the result are replicated. Ids ``>= rows`` (padding) give zeros, as
  in :func:`optax_ar.gather_rows`.

  Example:
    >>> mesh = create_mesh("1x1", jax.devices()[:1])
    >>> gather_owned_rows(jnp.arange(6.0).reshape(3, 2),
    ...                   jnp.array([2, 3]), mesh).tolist()
    [[4.0, 5.0], [0.0, 0.0]]
  """

  def local(table, ids):
    num_rows = table.shape[0]
    local_ids = ids - jax.lax.axis_index(MODEL_AXIS) * num_rows
    owned = (local_ids >= 0) & (local_ids < num_rows)
    local_ids = jnp.where(owned, local_ids, num_rows)
    rows = table.at[local_ids].get(mode="fill", fill_value=0)
    return jax.lax.psum(rows, MODEL_AXIS)

  return jax.shard_map(
    local, mesh=mesh, in_specs=(P(MODEL_AXIS), P()), out_specs=P()
  )(table, ids)


def with_sharded_batch(step: Any, mesh: Mesh) -> Any:
  """``step(state, batch)`` that first splits a host batch over ``data``.

  With one process ``batch`` is the whole batch; under ``jax.distributed``
  it is this process's rows of it (:func:`process_batches`), and the
  processes' rows form the global batch (:func:`put_process_batch`). The
  returned function keeps the jitted ``step`` as ``.jitted`` (for
  ``.lower()`` and HLO checks).
  """
  by_batch = batch_sharding(mesh)

  def sharded_step(state, batch):
    if jax.process_count() == 1:
      return step(state, shard_tree(batch, by_batch))
    local = len(batch.labels)
    shares, data = process_data_shards(mesh), data_axis_size(mesh)
    return step(state, put_process_batch(batch, local * data // shares, mesh))

  sharded_step.jitted = step
  return sharded_step


def process_data_shards(mesh: Mesh) -> int:
  """How many of the ``data`` axis's shards this process's devices hold.

  Example:
    >>> process_data_shards(create_mesh("1x1", jax.devices()[:1]))
    1
  """
  index = jax.process_index()
  rows = {
    position[0]
    for position, device in np.ndenumerate(mesh.devices)
    if device.process_index == index
  }
  return len(rows)


def process_batches(
  split: Any, batch_size: int, mesh: Mesh | None, **options: Any
) -> Any:
  """A batch iterator that reads only this process's rows of every batch.

  With one process (or no mesh) this is a plain
  :class:`~examples.ctr.data.pipeline.BatchIterator`. Under
  ``jax.distributed`` it visits the same global batches (same order, same
  padding) but gathers only rows :func:`process_rows` of each, which
  :func:`with_sharded_batch` assembles into the global batch.

  Args:
    split: the data split.
    batch_size: the global batch size.
    mesh: the ``("data", "model")`` mesh, or None.
    **options: ``BatchIterator``'s options (``shuffle``, ``seed``, ...).

  Returns:
    An iterator with ``BatchIterator``'s interface.
  """
  if mesh is None or jax.process_count() == 1:
    return BatchIterator(split, batch_size, **options)
  rows = process_rows(batch_size, mesh)

  class ProcessBatchIterator(BatchIterator):
    """Gathers only ``rows`` of every global batch."""

    def _gather(self, idx):
      idx = idx[rows]
      # The global batch's padding rows (weight 0) that fall in ``rows``.
      pad = rows.stop - rows.start - idx.size if self.pad_remainder else 0

      def take(x):
        x = np.take(x, idx, axis=0)
        return np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])

      weights = np.zeros(idx.size + pad, np.float32)
      weights[: idx.size] = 1.0
      return Batch(
        {k: take(v) for k, v in self.split.features.items()},
        take(self.split.labels).astype(np.float32, copy=False),
        weights,
      )

  return ProcessBatchIterator(split, batch_size, **options)


def process_rows(batch_size: int, mesh: Mesh) -> slice:
  """The rows of a global batch that this process's devices hold.

  Under ``jax.distributed`` each process feeds only the devices it owns;
  batches are split over ``data`` (:func:`batch_sharding`), so a process
  needs the contiguous block of the ``data`` shards of its devices (the
  whole batch in one process, or when ``data`` is 1).

  Example:
    >>> process_rows(8, create_mesh("1x1", jax.devices()[:1]))
    slice(0, 8, None)
  """
  indices = batch_sharding(mesh).addressable_devices_indices_map((batch_size,))
  blocks = {index[0].indices(batch_size)[:2] for index in indices.values()}
  start = min(a for a, _ in blocks)
  stop = max(b for _, b in blocks)
  if sum(b - a for a, b in blocks) != stop - start:
    raise ValueError(
      "this process's devices hold no contiguous block of the batch; build "
      "the mesh with each process's devices in consecutive data rows"
    )
  return slice(start, stop)


def put_process_batch(local: Any, batch_size: int, mesh: Mesh) -> Any:
  """A global batch (split over ``data``) from this process's rows of it.

  ``local`` holds rows :func:`process_rows` of the global batch of
  ``batch_size`` examples; every process passes its own rows and together
  they form the global array (``jax.make_array_from_process_local_data``).
  With one process this is :func:`shard_tree` of the whole batch.
  """
  by_batch = batch_sharding(mesh)

  def put(x):
    x = np.asarray(x)
    shape = (batch_size, *x.shape[1:])
    return jax.make_array_from_process_local_data(by_batch, x, shape)

  return jax.tree.map(put, local)


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch") -> None:
  """Raises if ``batch_size`` does not split over the ``data`` axis."""
  if batch_size % data_axis_size(mesh):
    raise ValueError(
      f"{what} size {batch_size} is not a multiple of the data axis "
      f"({data_axis_size(mesh)})"
    )


COLLECTIVES = (
  "all-gather",
  "all-reduce",
  "all-to-all",
  "collective-permute",
  "reduce-scatter",
)


def collective_shapes(hlo_text: str) -> list[tuple[str, list[str]]]:
  """``(op, result shapes)`` of every collective in compiled HLO text.

  ``jax.jit(f).lower(...).compile().as_text()`` gives ``hlo_text``; a shape
  is written as in HLO, e.g. ``"f32[29,8]"`` (layouts dropped).

  Example:
    >>> collective_shapes("%a = (f32[2,8]{1,0}, f32[]) all-reduce(%p, %q)")
    [('all-reduce', ['f32[2,8]', 'f32[]'])]
  """
  ops = "|".join(COLLECTIVES)
  pattern = re.compile(rf"=\s*(.*?)\s(?:{ops})(?:-start)?\(")
  found = []
  for line in hlo_text.splitlines():
    match = pattern.search(line)
    if match is None:
      continue
    op = re.search(rf"({ops})(?:-start)?\(", line).group(1)
    shapes = re.findall(r"[a-z]+\d*\[[\d,]*\]", match.group(1))
    found.append((op, shapes))
  return found


def whole_table_collectives(
  hlo_text: str, table_shapes: list[tuple[int, ...]]
) -> list[tuple[str, str]]:
  """Collectives of compiled HLO whose result has a whole table's shape.

  With tables sharded by rows over a ``model`` axis of size > 1, no step
  should move a whole table (or its gradient) between devices: lookups
  all-reduce the gathered ``(batch, bag, dim)`` rows over ``model``, and the
  data-parallel gradient all-reduce is over a table *shard*.

  Example:
    >>> whole_table_collectives("%a = f32[64,8]{1,0} all-gather(%p)",
    ...                         [(64, 8)])
    [('all-gather', 'f32[64,8]')]
  """
  wanted = {"[" + ",".join(str(d) for d in s) + "]" for s in table_shapes}
  return [
    (op, shape)
    for op, shapes in collective_shapes(hlo_text)
    for shape in shapes
    if shape[shape.index("[") :] in wanted
  ]
