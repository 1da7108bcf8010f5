"""Data parallelism with ``jax.pmap``: replicas of AdamAR, AdagradAR, sparse.

Each of 8 simulated CPU devices holds a replica of the parameters and the
optimizer state, differentiates its slice of the batch and averages the
gradients with ``lax.pmean``; every replica then applies the same update. The
result must equal one ``jax.jit`` step on the whole batch.

The loss is chosen so that every gradient entry is a sum of terms of one sign
(positive parameters, a softplus of their products): a rounded sum of ``n``
such terms is within ``n * eps32`` of the exact one in relative terms, whatever
the order, so the per-device partial means and the single mean agree to
``2 * BATCH * eps32`` and Adam's normalisation cannot amplify the difference
(it would for nearly cancelling sums). Over ``STEPS`` steps the parameters may
drift apart by ``STEPS`` such amounts.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar

DEVICES = 8
BATCH = 32  # 4 examples per device
BAG = 3  # ids per example
ROWS = 64
DIM = 4
STEPS = 6
ALPHA = 0.05  # large, so that rows skipped for a few steps are decayed
EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
# Per step: each path's mean of BATCH one-signed terms is within BATCH * eps32
# of the exact mean (relative); the two paths by twice that; over STEPS steps.
RTOL = STEPS * 2 * BATCH * EPS32  # 4.6e-5


def _params(rng):
  """Positive parameters: every gradient entry is a one-signed sum."""
  return {
    "table": jnp.asarray(rng.uniform(0.5, 1.5, (ROWS, DIM)), jnp.float32),
    "w": jnp.asarray(rng.uniform(0.5, 1.5, (DIM,)), jnp.float32),
  }


def _batches(rng):
  """STEPS batches of ids, skewed so that rare rows skip steps."""
  probs = np.geomspace(1.0, 1e-2, ROWS)
  probs /= probs.sum()
  return [rng.choice(ROWS, size=(BATCH, BAG), p=probs) for _ in range(STEPS)]


def _example_loss(embedded, w):
  """Mean over examples of softplus(sum of the bag's rows . w)."""
  return jnp.mean(jax.nn.softplus(embedded.sum(axis=1) @ w))


def _loss(params, ids):
  return _example_loss(params["table"][ids], params["w"])


def _replicate(tree):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (DEVICES,) + x.shape), tree)


def _shard(x):
  """Splits the batch axis over the devices: ``(DEVICES, BATCH // DEVICES)``."""
  return x.reshape((DEVICES, -1) + x.shape[1:])


def _check_replicas(tree):
  """Every replica holds the same values and returns replica 0."""
  for leaf in jax.tree.leaves(tree):
    leaf = np.asarray(leaf)
    # An all-reduce hands every replica the same sum: identical, bitwise.
    np.testing.assert_array_equal(leaf, np.broadcast_to(leaf[0], leaf.shape))
  return jax.tree.map(lambda x: np.asarray(x[0]), tree)


def _assert_close(got, want, start):
  """``got`` and ``want`` moved the same way from ``start``, up to RTOL.

  Compares the displacements, which are what the gradients set; the
  parameters themselves are rounded to float32 at every step, each path by
  up to eps32 / 2 of their size, hence the ``atol``.
  """
  leaves = [jax.tree.leaves(t) for t in (got, want, start)]
  for g, w, s in zip(*leaves, strict=True):
    g, w, s = (np.asarray(x, np.float64) for x in (g, w, s))
    atol = STEPS * EPS32 * np.abs(w).max()
    np.testing.assert_allclose(g - s, w - s, rtol=RTOL, atol=atol)


@pytest.fixture(scope="module", autouse=True)
def _eight_devices():
  if jax.device_count() < DEVICES:
    pytest.skip(f"needs {DEVICES} devices (tests/conftest.py sets XLA_FLAGS)")


@pytest.mark.parametrize(
  "make",
  [
    functools.partial(optax_ar.adam_ar, 1e-2, ALPHA),
    functools.partial(optax_ar.adam_ar, 1e-2, ALPHA, lazy=True),
    functools.partial(optax_ar.adagrad_ar, 0.1, ALPHA),
  ],
  ids=["adam_ar", "adam_ar_lazy", "adagrad_ar"],
)
def test_pmap_replicas_equal_the_single_device_step(make):
  tx = make()
  rng = np.random.default_rng(0)
  params = _params(rng)
  batches = _batches(rng)

  @jax.jit
  def single_step(params, state, ids):
    grads = jax.grad(_loss)(params, ids)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  @functools.partial(jax.pmap, axis_name="batch")
  def replica_step(params, state, ids):
    grads = jax.lax.pmean(jax.grad(_loss)(params, ids), axis_name="batch")
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  want_params, want_state = params, tx.init(params)
  got_params, got_state = _replicate(params), _replicate(tx.init(params))
  for ids in batches:
    want_params, want_state = single_step(want_params, want_state, ids)
    got_params, got_state = replica_step(got_params, got_state, _shard(ids))
    _assert_close(_check_replicas(got_params), want_params, params)
  got_state = _check_replicas(got_state)
  # The touched test sees the averaged gradient: same rows, same steps.
  np.testing.assert_array_equal(
    got_state.last_step["table"], want_state.last_step["table"]
  )
  last = np.ravel(want_state.last_step["table"])
  assert ((last > 0) & (last < STEPS)).any()  # some rows skipped steps
  assert int(got_state.count) == STEPS


@pytest.mark.parametrize(
  "make",
  [
    functools.partial(optax_ar.sparse_adam_ar, 1e-2, ALPHA),
    functools.partial(optax_ar.sparse_adagrad_ar, 0.1, ALPHA),
  ],
  ids=["sparse_adam_ar", "sparse_adagrad_ar"],
)
def test_pmap_sparse_rows_equal_the_single_device_step(make):
  """The host deduplicates the whole batch; each replica sees its slice."""
  opt = make()
  rng = np.random.default_rng(1)
  params = _params(rng)
  table, w = params["table"], params["w"]
  batches = _batches(rng)
  capacity = BATCH * BAG

  def row_loss(rows, inverse):
    return _example_loss(rows[inverse], w)

  @jax.jit
  def single_step(table, state, ids, inverse):
    rows = optax_ar.gather_rows(table, ids)
    row_grads = jax.grad(row_loss)(rows, inverse)
    return opt.update(table, state, ids, row_grads)

  @functools.partial(jax.pmap, axis_name="batch", in_axes=(0, 0, None, 0))
  def replica_step(table, state, ids, inverse):
    rows = optax_ar.gather_rows(table, ids)
    row_grads = jax.grad(row_loss)(rows, inverse)
    row_grads = jax.lax.pmean(row_grads, axis_name="batch")
    return opt.update(table, state, ids, row_grads)

  want_table, want_state = table, opt.init(table)
  got_table, got_state = _replicate(table), _replicate(opt.init(table))
  for batch_ids in batches:
    u = optax_ar.unique_rows(batch_ids, ROWS, capacity)
    want_table, want_state = single_step(
      want_table, want_state, u.ids, u.inverse
    )
    got_table, got_state = replica_step(
      got_table, got_state, u.ids, _shard(u.inverse)
    )
    _assert_close(_check_replicas(got_table), want_table, table)
  got_state = _check_replicas(got_state)
  np.testing.assert_array_equal(got_state.last_step, want_state.last_step)
  last = np.ravel(want_state.last_step)
  assert ((last > 0) & (last < STEPS)).any()
  assert int(got_state.count) == STEPS
