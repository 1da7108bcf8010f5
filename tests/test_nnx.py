"""adam_ar through Flax NNX's ``nnx.Optimizer`` under ``nnx.jit``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar

nnx = pytest.importorskip("flax.nnx")

ROWS, DIM, BATCH, STEPS = 30, 4, 8, 6


class _Model(nnx.Module):
  """An embedding table (rows touched by the batch) and a dense layer."""

  def __init__(self, rngs, dtype=jnp.float32):
    self.embed = nnx.Embed(ROWS, DIM, param_dtype=dtype, rngs=rngs)
    self.linear = nnx.Linear(DIM, 1, param_dtype=dtype, rngs=rngs)

  def __call__(self, ids):
    return self.linear(self.embed(ids).sum(axis=1))[:, 0]


def _loss(model, ids, labels):
  return jnp.mean((model(ids) - labels) ** 2)


def _batches():
  rng = np.random.default_rng(0)
  for _ in range(STEPS):
    ids = rng.integers(0, ROWS // 2, size=(BATCH, 2))  # rows >= 15: idle
    yield jnp.asarray(ids, jnp.int32), jnp.asarray(rng.normal(size=BATCH))


def _reference(tx, dtype):
  """The same steps with plain optax on a params tree (no NNX)."""
  graphdef, params = nnx.split(_Model(nnx.Rngs(0), dtype), nnx.Param)
  state = tx.init(params)

  @jax.jit
  def step(params, state, ids, labels):
    def loss(params):
      model = nnx.merge(graphdef, params)
      return _loss(model, ids, labels)

    grads = jax.grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for ids, labels in _batches():
    params, state = step(params, state, ids, labels)
  return params


@pytest.mark.parametrize(
  ("lazy", "candidates"),
  [(False, False), (True, False), (True, True)],
  ids=["dense", "lazy", "lazy_candidate_rows"],
)
def test_nnx_optimizer_update_under_nnx_jit(lazy, candidates):
  # In float64: the two programs may sum a row's gradient in different
  # orders, and in float32 Adam would turn an ulp of a nearly cancelling sum
  # into a machine-dependent difference; in float64 that costs ~1e-16.
  with jax.enable_x64(True):
    _nnx_optimizer_update_under_nnx_jit(lazy, candidates)


def _nnx_optimizer_update_under_nnx_jit(lazy, candidates):
  tx = optax_ar.adam_ar(1e-2, 0.1, lazy=lazy)
  model = _Model(nnx.Rngs(0), jnp.float64)
  table0 = np.array(model.embed.embedding[...])
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, ids, labels):
    grads = nnx.grad(_loss)(model, ids, labels)
    if candidates:
      # A tree like the params (an nnx.State): the table's candidate rows
      # are the batch's ids; None tests a dense leaf in full. nnx.Optimizer
      # passes it through to tx.update.
      rows = jax.tree_util.tree_map_with_path(
        lambda path, _: ids if "embed" in jax.tree_util.keystr(path) else None,
        nnx.state(model, nnx.Param),
      )
      optimizer.update(model, grads, candidate_rows=rows)
    else:
      optimizer.update(model, grads)

  for ids, labels in _batches():
    train_step(model, optimizer, ids, labels)

  got = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  want = nnx.to_pure_dict(_reference(tx, jnp.float64))
  assert got["embed"]["embedding"].dtype == np.float64
  # Two jitted programs of the same arithmetic in float64: their difference
  # is far below a float32 ulp (1e-7) of these O(1) values.
  jax.tree.map(
    lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7),
    got,
    want,
  )
  last = np.asarray(optimizer.opt_state.last_step["embed"]["embedding"][...])
  assert last.shape == (ROWS, 1)
  assert np.all(last[ROWS // 2 :] == 0) and np.all(last[: ROWS // 2] > 0)
  table = got["embed"]["embedding"]
  if lazy:  # idle rows keep their values exactly
    np.testing.assert_array_equal(table[ROWS // 2 :], table0[ROWS // 2 :])
  assert int(optimizer.step[...]) == STEPS


def test_candidate_rows_reach_the_touched_test():
  """Candidates that leave out every id: no table row counts as touched."""
  model = _Model(nnx.Rngs(0))
  optimizer = nnx.Optimizer(
    model, optax_ar.adam_ar(1e-2, 0.1, lazy=True), wrt=nnx.Param
  )

  @nnx.jit
  def train_step(model, optimizer, ids, labels):
    grads = nnx.grad(_loss)(model, ids, labels)
    rows = jax.tree_util.tree_map_with_path(
      lambda path, _: (
        jnp.full((1,), -1) if "embed" in jax.tree_util.keystr(path) else None
      ),
      nnx.state(model, nnx.Param),
    )
    optimizer.update(model, grads, candidate_rows=rows)

  ids, labels = next(_batches())
  train_step(model, optimizer, ids, labels)
  last = optimizer.opt_state.last_step
  np.testing.assert_array_equal(last["embed"]["embedding"][...], 0)
  np.testing.assert_array_equal(last["linear"]["kernel"][...], 1)
