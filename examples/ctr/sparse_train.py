"""Sparse row-update training of the CTR runner (``--sparse-updates``).

Usage: ``spec, opt_state = init(config, "adam_ar", 1e-3, params, fields);
train_step = make_train_step(graphdef, spec)``.
:func:`examples.ctr.train.create_train_state` and
:func:`examples.ctr.train.make_train_step` call these when
``config.sparse_updates``.

The dense runner differentiates the loss with respect to the whole per-ID
tables and lets optax read and write every row of them and of their
optimizer state at every step. Here, per batch and per field:

1. the host deduplicates the batch's ids (:func:`optax_ar.unique_rows`, a
   fixed capacity of ``min(batch_size * bag_size, rows)`` slots, so the step
   compiles once whatever the number of unique ids);
2. the jitted step gathers those rows from every table of the field
   (:func:`optax_ar.gather_rows`), rebuilds the model's ``lookup`` output by
   indexing them with the inverse, runs ``forward_from_embeddings`` and
   differentiates with respect to the gathered rows (autodiff sums the
   duplicates) and the dense weights;
3. :func:`optax_ar.sparse_adam_ar` / :func:`optax_ar.sparse_adagrad_ar`
   update the touched rows of the tables, their moments and ``last_step`` in
   place; the dense weights get the stock ``optax.adam`` / ``optax.adagrad``.

This is exactly the dense runner's ``adam_ar_lazy`` (and ``adagrad_ar``) with
``ar_tables_only=True``: lazy AdamAR on the tables, the AR wrapper's inner
optax transformation (no decay) on the dense weights. ``adam_ar`` is accepted
and trained with the same lazy moments (the sparse path cannot move an
untouched row by its momentum); the run records ``lazy: True``. With
``catch_up_moments`` (``--catch-up-moments``) a touched row's moments are
first decayed by the steps it skipped (``optax_ar.sparse_adam_ar(...,
catch_up_moments=True)``, those of dense ``adam_ar``) and the run records
``catch_up_moments: True``. Not
supported (clear errors): other optimizers (MEDA included) and
``ar_tables_only=False``.

On a ``("data", "model")`` mesh (``--mesh DxM``) the tables and their
optimizer state are split by rows over ``model`` (padded like the dense
path's, :func:`examples.ctr.sharding.place_params`) and the batch over
``data``. The step deduplicates the global batch's ids on the devices
(``jnp.unique`` with the same static capacity: every process feeds only its
share of the batch, so no host sees all of them), gathers the unique rows
with one all-reduce of ``(capacity, dim)`` over ``model``
(:func:`examples.ctr.sharding.gather_owned_rows`), sums their gradients over
``data``, and updates each table through :func:`optax_ar.shard_rows`: every
``model`` shard updates only the unique rows it owns, in place. No
collective moves a table.

The state is the runner's :class:`examples.ctr.train.TrainState` whose
``params`` and ``rest`` are those of the dense path (evaluation, metrics and
checkpoints are shared) and whose ``opt_state`` is a
:class:`SparseOptState`; ``resume`` restores it like any other state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import optax_ar
from examples.ctr import models
from examples.ctr import optimizers
from examples.ctr import sharding
from examples.ctr.config import AUTO_SPARSE_OPTIMIZERS
from examples.ctr.config import SPARSE_OPTIMIZERS
from examples.ctr.config import Config
from examples.ctr.data import schema
from examples.ctr.data.pipeline import Batch
from examples.ctr.models.base import Rows
from examples.ctr.models.embedding import TABLES

#: ``sparse_updates="auto"`` takes the sparse path when the per-ID tables
#: hold at least this many rows per id a step touches (the fields' rows over
#: their unique-id slots, :func:`table_size`). Measured with the DNN at batch
#: 2048 (docs/perf/train_throughput_update_path.txt), the sparse step against
#: the dense lazy one: 0.5-1.2x at 1-12 rows per id (Amazon Sports: 3, 0.5x),
#: 1.05x at 20, 1.34x at 32 (Amazon Books), 3x at 38, 6-20x at 108-381.
AUTO_MIN_ROWS_PER_ID = 32

#: ``{group: {"tables": {field: array}}}``: the per-ID tables as a plain tree.
Tables = dict[str, dict[str, dict[str, Any]]]


class SparseOptState(NamedTuple):
  """The optimizer state of a sparse run.

  Attributes:
    tables: the sparse optimizer's state over the :data:`Tables` tree
      (:class:`optax_ar.SparseAdamARState` or ``SparseAdagradARState``).
    dense: the optax state of the dense weights.
  """

  tables: Any
  dense: Any


@dataclasses.dataclass(frozen=True)
class SparseSpec:
  """The two optimizers of a sparse run (duck-types ``OptimizerSpec``).

  Attributes:
    table_opt: the sparse row optimizer of the per-ID tables.
    dense_tx: the optax transformation of the dense weights.
    capacities: ``{field: (rows, capacity)}``: each field's table rows (the
      padding id of :func:`optax_ar.unique_rows`) and its unique-id slots.
    hyperparams: the resolved hyperparameters, for results files.
    static_key: what fixes the compiled step (the hyperparameters are
      compiled in).
    reset_tables_each_epoch: always False (MEDA is not supported).
    skip_nonfinite: a step whose gradient has a NaN or infinite entry
      keeps the whole state and reports ``skipped``.
  """

  table_opt: optax_ar.SparseRowOptimizer
  dense_tx: optax.GradientTransformation
  capacities: dict[str, tuple[int, int]]
  hyperparams: dict[str, Any]
  static_key: tuple[Any, ...]
  reset_tables_each_epoch: bool = False
  skip_nonfinite: bool = False


class RowBatch(NamedTuple):
  """A batch with its per-field unique ids (built on the host).

  Attributes:
    features: ``{field: ids}`` as in :class:`Batch`.
    labels: float32 ``(batch,)``.
    weights: float32 ``(batch,)``.
    ids: ``{field: int32 (capacity,)}`` sorted unique ids, padded with rows.
    inverse: ``{field: int32 (batch, bag_size)}``; ``ids[inverse]`` gives
      the field's ids back.
  """

  features: dict[str, np.ndarray]
  labels: np.ndarray
  weights: np.ndarray
  ids: dict[str, np.ndarray]
  inverse: dict[str, np.ndarray]


def check_optimizer(name: str) -> None:
  """Raises ValueError unless ``name`` has a sparse path.

  Example:
    >>> check_optimizer("adagrad_ar")
  """
  if name not in SPARSE_OPTIMIZERS:
    raise ValueError(
      f"--sparse-updates supports the optimizers {SPARSE_OPTIMIZERS}, got "
      f"{name!r}; train it without --sparse-updates"
    )


class UpdatePath(NamedTuple):
  """The update path of one run (:func:`choose_update_path`).

  Attributes:
    sparse: train on the sparse row path.
    reason: why, in words (the flag, or ``auto``'s rule).
    auto: chosen by ``sparse_updates="auto"``.
  """

  sparse: bool
  reason: str
  auto: bool = False

  @property
  def name(self) -> str:
    return "sparse" if self.sparse else "dense"

  def describe(self) -> str:
    """The line the runner prints, e.g. ``update path: dense (...)``."""
    return f"update path: {self.name} ({self.reason})"


def choose_update_path(
  config: Config,
  optimizer: str,
  table_rows: int,
  ids_per_step: int,
) -> UpdatePath:
  """The update path of a run of ``optimizer`` (``config.sparse_updates``).

  ``True`` and ``False`` are the sparse and the dense path. ``"auto"`` takes
  the sparse path only where it trains the dense runner's optimizer
  (:data:`examples.ctr.config.AUTO_SPARSE_OPTIMIZERS`, with
  ``ar_tables_only``) and the per-ID tables hold at least
  :data:`AUTO_MIN_ROWS_PER_ID` rows per id a step touches: there the dense
  step's passes over every row cost more than the sparse step's gathers.

  Args:
    config: gives ``sparse_updates`` and ``ar_tables_only``.
    optimizer: the run's optimizer.
    table_rows: the rows of the per-ID tables, one table per field
      (:func:`table_size`).
    ids_per_step: the ids one step touches at most, summed over the fields.

  Example:
    >>> from examples.ctr.config import Config
    >>> auto = Config(sparse_updates="auto", optimizer="adam_ar_lazy")
    >>> print(choose_update_path(auto, "adam_ar_lazy", 74_597, 8_192)
    ...       .describe())
    update path: dense (AR tables hold 74,597 rows, 8,192 ids per step:
    below 32x)
  """
  if config.sparse_updates is True:
    return UpdatePath(True, "--sparse-updates")
  if config.sparse_updates != "auto":
    return UpdatePath(False, "--no-sparse-updates")
  if optimizer not in AUTO_SPARSE_OPTIMIZERS:
    return UpdatePath(
      False, f"{optimizer} has no sparse path equal to its dense one", True
    )
  if not config.ar_tables_only:
    return UpdatePath(False, "--no-ar-tables-only", True)
  ratio = table_rows / max(ids_per_step, 1)
  sparse = ratio >= AUTO_MIN_ROWS_PER_ID
  return UpdatePath(
    sparse,
    f"AR tables hold {table_rows:,} rows, {ids_per_step:,} ids per step: "
    f"{'at least' if sparse else 'below'} {AUTO_MIN_ROWS_PER_ID}x",
    True,
  )


def table_size(
  fields: Sequence[schema.FieldSpec], batch_size: int
) -> tuple[int, int]:
  """``(rows, ids per step)`` of the per-ID tables, one table per field.

  A field's ids per step are its sparse path's unique-id slots,
  ``min(batch_size * bag_size, rows)`` (:func:`table_capacities`).

  Example:
    >>> from examples.ctr.data.schema import FieldSpec
    >>> table_size([FieldSpec("u", 10_000), FieldSpec("c", 50)], 256)
    (10050, 306)
  """
  rows = sum(f.vocab_size for f in fields)
  ids = sum(min(batch_size * f.bag_size, f.vocab_size) for f in fields)
  return rows, ids


def split_params(params: Any) -> tuple[Any, Any]:
  """``(tables, dense)`` ``nnx.State``s of the per-ID tables and the rest."""
  return nnx.split_state(params, models.is_per_id_table, ...)


def table_capacities(
  tables: Tables, fields: Sequence[schema.FieldSpec], batch_size: int
) -> dict[str, tuple[int, int]]:
  """``{field: (rows, capacity)}`` with ``capacity = min(batch * bag, rows)``.

  Raises:
    ValueError: if two tables of one field have different row counts.

  Example:
    >>> from examples.ctr.data.schema import FieldSpec
    >>> tables = {"embedding": {"tables": {"u": np.zeros((10, 4))}}}
    >>> table_capacities(tables, [FieldSpec("u", 10, bag_size=3)], 2)
    {'u': (10, 6)}
  """
  bags = {f.name: f.bag_size for f in fields}
  capacities: dict[str, tuple[int, int]] = {}
  for group in tables.values():
    for name, table in group[TABLES].items():
      rows = int(table.shape[0])
      if capacities.get(name, (rows,))[0] != rows:
        raise ValueError(f"the tables of field {name!r} differ in rows")
      capacities[name] = (rows, min(batch_size * bags[name], rows))
  return capacities


def create_optimizers(
  config: Config, name: str, alpha: float, capacities: dict[str, Any]
) -> SparseSpec:
  """The sparse table optimizer and the dense optax one for ``name``.

  Hyperparameters are those of :func:`examples.ctr.train.create_optimizer`
  (the paper's learning rate by default, optax's other defaults).
  """
  check_optimizer(name)
  lr = config.learning_rate
  lr = optimizers.default_learning_rate(name) if lr is None else lr
  hyper: dict[str, Any] = {"learning_rate": lr, "alpha": alpha}
  if name == "adagrad_ar":
    acc = config.adagrad_initial_accumulator
    hyper["initial_accumulator_value"] = acc
    table_opt = optax_ar.sparse_adagrad_ar(lr, alpha, acc)
    dense_tx = optax.adagrad(lr, initial_accumulator_value=acc)
  else:
    catch_up = config.catch_up_moments
    table_opt = optax_ar.sparse_adam_ar(lr, alpha, catch_up_moments=catch_up)
    dense_tx = optax.adam(lr)
    hyper["lazy"] = True  # adam_ar too: the sparse path is lazy
    if catch_up:
      hyper["catch_up_moments"] = True
  hyper["sparse_updates"] = True
  if config.skip_nonfinite:
    hyper["skip_nonfinite"] = True
  static_key = (
    "sparse",
    name.removesuffix("_lazy"),
    lr,
    alpha,
    hyper.get("initial_accumulator_value"),
    tuple(sorted(capacities.items())),
    config.skip_nonfinite,
    config.catch_up_moments,
  )
  return SparseSpec(
    table_opt,
    dense_tx,
    capacities,
    hyper,
    static_key,
    skip_nonfinite=config.skip_nonfinite,
  )


def init(
  config: Config,
  optimizer: str,
  alpha: float,
  params: Any,
  fields: Sequence[schema.FieldSpec],
  mesh: jax.sharding.Mesh | None = None,
) -> tuple[SparseSpec, SparseOptState]:
  """The spec and initial optimizer state of a sparse run of ``params``.

  Args:
    config: gives the batch size and the hyperparameters.
    optimizer: a name of :data:`examples.ctr.config.SPARSE_OPTIMIZERS`.
    alpha: the AR decay per skipped step.
    params: the model's ``nnx.Param`` state; with a ``mesh``, already
      padded and placed (:func:`examples.ctr.sharding.place_params`).
    fields: the dataset's fields (their bag sizes fix the capacities).
    mesh: a ``("data", "model")`` mesh, or None for one device. The table
      optimizer is then wrapped in :func:`optax_ar.shard_rows` and its
      state is split by rows like the tables.

  Returns:
    ``(spec, opt_state)``.
  """
  check_optimizer(optimizer)
  table_state, dense = split_params(params)
  tables = nnx.to_pure_dict(table_state)
  capacities = table_capacities(tables, fields, config.batch_size)
  spec = create_optimizers(config, optimizer, alpha, capacities)
  if mesh is None:
    table_opt_state = spec.table_opt.init(tables)
    dense_opt_state = spec.dense_tx.init(dense)
  else:
    table_opt = optax_ar.shard_rows(spec.table_opt, mesh, sharding.MODEL_AXIS)
    spec = dataclasses.replace(spec, table_opt=table_opt)
    table_opt_state = jax.jit(table_opt.init)(tables)
    dense_opt_state = jax.jit(
      spec.dense_tx.init, out_shardings=sharding.replicated(mesh)
    )(dense)
  return spec, SparseOptState(table_opt_state, dense_opt_state)


def opt_state_shardings(
  opt_state: SparseOptState, mesh: jax.sharding.Mesh
) -> SparseOptState:
  """Shardings of a sparse run's optimizer state on ``mesh``.

  The table optimizer's per-row leaves are split by rows over ``model``,
  its step count and the dense weights' optax state are replicated.
  """
  return SparseOptState(
    sharding.rows_or_replicated(opt_state.tables, mesh),
    jax.tree.map(lambda _: sharding.replicated(mesh), opt_state.dense),
  )


def dedup_batch(
  batch: Batch, capacities: dict[str, tuple[int, int]]
) -> RowBatch:
  """Adds each field's unique ids and inverse (NumPy, on the host).

  Example:
    >>> b = Batch({"u": np.array([4, 2, 4])}, np.ones(3), np.ones(3))
    >>> rb = dedup_batch(b, {"u": (10, 3)})
    >>> rb.ids["u"].tolist(), rb.inverse["u"].tolist()
    ([2, 4, 10], [[1], [0], [1]])
  """
  ids, inverse = {}, {}
  for name, (rows, capacity) in capacities.items():
    x = np.asarray(batch.features[name])
    u = optax_ar.unique_rows(x, rows, capacity)
    ids[name] = u.ids
    inverse[name] = u.inverse.reshape(x.shape[0], -1)
  return RowBatch(batch.features, batch.labels, batch.weights, ids, inverse)


def _ids_like(tables: Tables, ids: dict[str, Any]) -> Tables:
  """The per-field ids arranged like the tables tree."""
  return {
    g: {TABLES: {f: ids[f] for f in group[TABLES]}}
    for g, group in tables.items()
  }


def _lookup(unique_rows: Tables, inverse: dict[str, Any]) -> Rows:
  """The model's ``lookup`` output from the gathered unique rows."""
  return {
    g: {f: rows[inverse[f]] for f, rows in group[TABLES].items()}
    for g, group in unique_rows.items()
  }


def unique_on_device(
  features: dict[str, jax.Array], capacities: dict[str, tuple[int, int]]
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """:func:`dedup_batch`'s ``(ids, inverse)``, computed under ``jit``.

  ``jnp.unique`` with the static capacity gives the same sorted ids, padded
  with the table's rows, and the same inverse as the host's
  :func:`optax_ar.unique_rows` (which also checks the capacity: here more
  unique ids than slots would be dropped, so capacities are at least the
  batch's ``batch * bag`` or the table's rows).
  """
  ids, inverse = {}, {}
  for name, (rows, capacity) in capacities.items():
    x = features[name]
    unique, where = jnp.unique(
      x.ravel(), size=capacity, fill_value=rows, return_inverse=True
    )
    ids[name] = unique.astype(jnp.int32)
    inverse[name] = where.reshape(x.shape[0], -1).astype(jnp.int32)
  return ids, inverse


def _make_jitted_step(
  graphdef: nnx.GraphDef,
  spec: SparseSpec,
  mesh: jax.sharding.Mesh | None = None,
  shardings: Any = None,
):
  """The jitted ``step(state, batch) -> (state, {"loss"})`` (donated).

  Without a mesh the batch is a :class:`RowBatch`; with one it is a
  :class:`Batch` split over ``data``, deduplicated on the devices.
  """
  if mesh is None:
    gather = optax_ar.gather_rows
  else:

    def gather(table, ids):
      return sharding.gather_owned_rows(table, ids, mesh)

  def update(state: Any, batch: Batch, ids, inverse):
    table_state, dense = split_params(state.params)
    tables = nnx.to_pure_dict(table_state)
    row_ids = _ids_like(tables, ids)
    rows = jax.tree.map(gather, tables, row_ids)

    def loss_fn(dense, rows):
      model = nnx.merge(graphdef, table_state, dense, state.rest)
      logits = model.forward_from_embeddings(
        _lookup(rows, inverse), batch.features
      )
      losses = optax.sigmoid_binary_cross_entropy(logits, batch.labels)
      total = jnp.sum(losses * batch.weights)
      loss = total / jnp.maximum(batch.weights.sum(), 1)
      return loss, nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest), (dense_grads, row_grads) = jax.value_and_grad(
      loss_fn, argnums=(0, 1), has_aux=True
    )(dense, rows)
    updates, dense_opt = spec.dense_tx.update(
      dense_grads, state.opt_state.dense, dense
    )
    dense = optax.apply_updates(dense, updates)
    tables, table_opt = spec.table_opt.update(
      tables, state.opt_state.tables, row_ids, row_grads
    )
    table_state = jax.tree.map(lambda x: x, table_state)  # a fresh State
    nnx.replace_by_pure_dict(table_state, tables)
    params = nnx.merge_state(table_state, dense)
    opt_state = SparseOptState(table_opt, dense_opt)
    new_state = state._replace(params=params, opt_state=opt_state, rest=rest)
    if not spec.skip_nonfinite:
      return new_state, {"loss": loss}
    finite = jnp.all(
      jnp.stack(
        [
          jnp.all(jnp.isfinite(g))
          for g in jax.tree.leaves((dense_grads, row_grads))
        ]
      )
    )
    new_state = jax.lax.cond(finite, lambda: new_state, lambda: state)
    return new_state, {"loss": loss, "skipped": jnp.logical_not(finite)}

  if mesh is None:

    def train_step(state: Any, batch: RowBatch):
      return update(state, batch, batch.ids, batch.inverse)

    return jax.jit(train_step, donate_argnums=0)

  by_batch = sharding.batch_sharding(mesh)

  def mesh_step(state: Any, batch: Batch):
    ids, inverse = unique_on_device(batch.features, spec.capacities)
    inverse = jax.lax.with_sharding_constraint(inverse, by_batch)
    return update(state, batch, ids, inverse)

  return jax.jit(
    mesh_step,
    donate_argnums=0,
    in_shardings=(shardings, by_batch),
    out_shardings=(shardings, sharding.replicated(mesh)),
  )


def make_train_step(
  graphdef: nnx.GraphDef,
  spec: SparseSpec,
  mesh: jax.sharding.Mesh | None = None,
  shardings: Any = None,
) -> Callable[[Any, Batch], tuple[Any, Any]]:
  """``train_step(state, batch) -> (state, {"loss": mean loss})``.

  Deduplicates the batch's ids on the host (:func:`dedup_batch`), then runs
  the jitted step, which donates the state and compiles once (fixed batch
  size and capacities). ``train_step.jitted`` is the jitted function
  (``jitted(state, dedup_batch(batch, spec.capacities))``). Each call
  builds a new step: :func:`examples.ctr.train.make_train_step` caches it.

  With a ``mesh`` (and the state's ``shardings``), the jitted step takes
  the :class:`Batch` split over ``data`` and deduplicates on the devices
  (:func:`unique_on_device`); ``train_step`` splits a host batch
  (:func:`examples.ctr.sharding.with_sharded_batch`).
  """
  if mesh is not None:
    jitted = _make_jitted_step(graphdef, spec, mesh, shardings)
    return sharding.with_sharded_batch(jitted, mesh)
  jitted = _make_jitted_step(graphdef, spec)

  def train_step(state, batch):
    return jitted(state, dedup_batch(batch, spec.capacities))

  train_step.jitted = jitted
  return train_step
