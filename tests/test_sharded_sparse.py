"""The sparse row-update path on row-sharded tables (8 simulated devices)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optax_ar

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)

ROWS = {"big": 48, "small": 16}
DIM, CAPACITY, STEPS = 3, 12, 12
# Elementwise updates of the same values, an ulp per step at most.
RTOL = STEPS * float(np.finfo(np.float32).eps)  # 1.4e-6
OPTIMIZERS = {
  "adam": lambda: optax_ar.sparse_adam_ar(1e-2, 0.05),
  "adam_catch_up": lambda: optax_ar.sparse_adam_ar(
    1e-2, 0.05, catch_up_moments=True
  ),
  "adagrad": lambda: optax_ar.sparse_adagrad_ar(1e-1, 0.05),
}


def _steps(seed=0):
  """Unique ids (padded with num_rows) and their row gradients per step."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(STEPS):
    ids, grads = {}, {}
    for name, rows in ROWS.items():
      weights = 1.0 / np.arange(1, rows + 1)
      ids_raw = rng.choice(rows, size=CAPACITY, p=weights / weights.sum())
      unique = optax_ar.unique_rows(ids_raw, rows, CAPACITY)
      g = rng.normal(size=(CAPACITY, DIM)).astype(np.float32)
      g[unique.num_unique :] = 0.0
      g[unique.ids == 0] = 0.0  # a zero gradient row is not touched
      ids[name], grads[name] = unique.ids, g
    out.append((ids, grads))
  return out


def _tables():
  rng = np.random.default_rng(1)
  return {
    k: rng.normal(size=(r, DIM)).astype(np.float32) for k, r in ROWS.items()
  }


def _row_leaves(state):
  """The per-row state leaves (moments, accumulators, last_step)."""
  return [x for x in jax.tree.leaves(state) if x.ndim]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("mesh_shape", [(1, 8), (2, 4)])
def test_sharded_sparse_update_equals_single_device(name, mesh_shape):
  mesh = jax.make_mesh(mesh_shape, ("data", "model"))
  rows = NamedSharding(mesh, P("model"))
  opt = OPTIMIZERS[name]()
  sharded_opt = optax_ar.shard_rows(opt, mesh, "model")

  tables = jax.device_put(_tables(), rows)
  state = jax.jit(sharded_opt.init)(tables)
  update = jax.jit(sharded_opt.update, donate_argnums=(0, 1))
  single, single_state = _tables(), opt.init(_tables())
  single_update = jax.jit(opt.update)
  for ids, grads in _steps():
    tables, state = update(tables, state, ids, grads)
    single, single_state = single_update(single, single_state, ids, grads)

  for k in ROWS:
    assert tables[k].sharding.is_equivalent_to(rows, 2)
    local = tables[k].addressable_shards[0].data.shape
    assert local == (ROWS[k] // mesh_shape[1], DIM)
    # Same ids and row gradients (no sums): elementwise updates, an ulp per
    # step at most from another fusion: STEPS * eps32 = 1.4e-6 of |theta|.
    np.testing.assert_allclose(tables[k], single[k], rtol=RTOL, atol=1e-7)
  for got, want in zip(
    _row_leaves(state), _row_leaves(single_state), strict=True
  ):
    assert got.sharding.is_equivalent_to(rows, got.ndim), got.sharding
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-7)
  assert state.count.sharding.is_fully_replicated
  assert int(state.count) == STEPS
  # Rows were really updated on their shards (and some never touched).
  last = np.asarray(state.last_step["big"]).ravel()
  assert last.max() == STEPS and (last == 0).sum() > 0


def test_each_shard_updates_its_rows_without_communication():
  mesh = jax.make_mesh((2, 4), ("data", "model"))
  rows = NamedSharding(mesh, P("model"))
  opt = optax_ar.shard_rows(optax_ar.sparse_adam_ar(0.1, 0.0), mesh)
  tables = jax.device_put(
    {k: jnp.zeros((r, DIM)) for k, r in ROWS.items()}, rows
  )
  state = jax.jit(opt.init)(tables)
  ids, grads = _steps()[0]
  hlo = jax.jit(opt.update).lower(tables, state, ids, grads).compile()
  text = hlo.as_text()
  assert not re.search(
    r"all-gather|all-reduce|all-to-all|collective-permute", text
  )
  tables, state = jax.jit(opt.update)(tables, state, ids, grads)
  # Row j lives on model shard j // (rows / 4); only touched rows moved.
  touched = np.zeros(ROWS["big"], bool)
  touched[ids["big"][np.any(grads["big"] != 0, axis=1)]] = True
  for shard in tables["big"].addressable_shards:
    block = shard.index[0]
    moved = np.any(np.asarray(shard.data) != 0, axis=1)
    # Exact: tables start at zero and untouched rows are never written.
    np.testing.assert_array_equal(moved, touched[block])


def test_rejects_rows_that_do_not_split_and_unknown_axes():
  mesh = jax.make_mesh((8,), ("model",))
  opt = optax_ar.shard_rows(optax_ar.sparse_adam_ar(0.1, 0.0), mesh)
  with pytest.raises(ValueError, match="pad its rows"):
    opt.init(jnp.zeros((12, 2)))
  with pytest.raises(ValueError, match="no axis 'rows'"):
    optax_ar.shard_rows(optax_ar.sparse_adam_ar(0.1, 0.0), mesh, "rows")
