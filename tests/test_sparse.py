"""The sparse row-update path: equal to dense lazy AdamAR / AdagradAR."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar
from optax_ar._src import sparse as sparse_module

NUM_ROWS, DIM, BATCH, CAPACITY, STEPS = 40, 3, 24, 24, 100


def _stream(seed=0, steps=STEPS):
  """Raw ids with duplicates (skewed), and a gradient per occurrence.

  Id 0 stands for the padding id of the CTR data: its occurrences carry a
  zero gradient, so it is never touched in either path. Rows near the end
  are rare or never seen.
  """
  rng = np.random.default_rng(seed)
  weights = 1.0 / np.arange(1, NUM_ROWS + 1) ** 1.2
  weights[-5:] = 0.0  # never touched
  weights /= weights.sum()
  for _ in range(steps):
    size = rng.integers(4, BATCH + 1)  # a varying number of ids per step
    ids = rng.choice(NUM_ROWS, size=size, p=weights)
    # Multiples of 1/8: the dense path (np.add.at) and the sparse one
    # (autodiff's scatter-add) sum duplicate ids in different orders, and
    # these sums are exact in float32 in any order; rounded, a nearly
    # cancelling sum differs between orders and Adam's normalisation makes
    # that a machine-dependent difference in the update.
    grads = (np.round(rng.normal(size=(size, DIM)) * 8) / 8).astype(np.float32)
    grads[ids == 0] = 0.0
    yield ids, grads


def _row_grads(table, unique, occurrence_grads):
  """Differentiates w.r.t. the gathered unique rows (sums duplicates)."""
  rows = optax_ar.gather_rows(table, unique.ids)
  return jax.grad(lambda r: jnp.sum(r[unique.inverse] * occurrence_grads))(rows)


def _run_both(dense_tx, sparse_opt, seed=0, steps=STEPS):
  rng = np.random.default_rng(seed + 100)
  table0 = jnp.asarray(rng.normal(size=(NUM_ROWS, DIM)), jnp.float32)

  dense_state = dense_tx.init(table0)

  @jax.jit
  def dense_step(params, state, grads):
    updates, state = dense_tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  traces = []

  def sparse_step(table, state, ids, occurrence_grads, inverse):
    traces.append(None)
    unique = optax_ar.UniqueRows(ids, inverse, 0)
    row_grads = _row_grads(table, unique, occurrence_grads)
    return sparse_opt.update(table, state, ids, row_grads)

  sparse_step = jax.jit(sparse_step, donate_argnums=(0, 1))

  dense, sparse = table0, jnp.array(table0)
  sparse_state = sparse_opt.init(sparse)
  for ids, grads in _stream(seed, steps):
    dense_grad = np.zeros((NUM_ROWS, DIM), np.float32)
    np.add.at(dense_grad, ids, grads)
    dense, dense_state = dense_step(dense, dense_state, dense_grad)
    unique = optax_ar.unique_rows(ids, NUM_ROWS, CAPACITY)
    padded = np.zeros((BATCH, DIM), np.float32)
    padded[: len(ids)] = grads
    inverse = np.zeros((BATCH,), np.int32)
    inverse[: len(ids)] = unique.inverse  # extra slots carry zero grads
    sparse, sparse_state = sparse_step(
      sparse, sparse_state, unique.ids, padded, inverse
    )
  assert len(traces) == 1, "the sparse step recompiled"
  return (dense, dense_state), (sparse, sparse_state)


SCHEDULES = {
  "constant": (1e-2, 0.02),
  "schedules": (
    optax.linear_schedule(2e-2, 5e-3, STEPS),
    lambda count: 0.002 * jnp.minimum(count, 20),
  ),
}


@pytest.mark.parametrize("hyper", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_sparse_adam_ar_equals_dense_lazy_adam_ar(hyper):
  lr, alpha = hyper
  (dense, dense_state), (sparse, sparse_state) = _run_both(
    optax_ar.adam_ar(lr, alpha, lazy=True),
    optax_ar.sparse_adam_ar(lr, alpha),
  )
  # Same gradients (exact sums), the same rule in two orders of operations:
  # each step's update may differ by an ulp or two, and nothing feeds back
  # (the gradients do not depend on the table): STEPS * eps32 = 1.2e-5.
  np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
  adam_state = dense_state.inner_state[0]
  # Moments: an ulp per step, damped by b1, b2; mu may cancel to ~0 (mixed
  # signs), where the error is absolute: a few eps32 of max|g| (< 8).
  np.testing.assert_allclose(
    sparse_state.mu, adam_state.mu, rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(sparse_state.nu, adam_state.nu, rtol=1e-5)
  np.testing.assert_array_equal(sparse_state.last_step, dense_state.last_step)
  assert int(sparse_state.count) == int(dense_state.count) == STEPS
  # The stream exercised what matters: decays, rows never touched, id 0.
  last = np.asarray(sparse_state.last_step).ravel()
  assert last[0] == 0 and np.all(last[-5:] == 0)
  assert 0 < np.sum((last > 0) & (last < STEPS - 20))


def test_sparse_adagrad_ar_equals_dense_adagrad_ar():
  (dense, dense_state), (sparse, sparse_state) = _run_both(
    optax_ar.adagrad_ar(0.05, 0.02), optax_ar.sparse_adagrad_ar(0.05, 0.02)
  )
  # As for Adam: an ulp or two per step, over STEPS steps.
  np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
  rss = dense_state.inner_state[0].sum_of_squares
  # Sums of squares of multiples of 1/8 from 0.1: one rounding per add.
  np.testing.assert_allclose(sparse_state.sum_of_squares, rss, rtol=1e-5)
  np.testing.assert_array_equal(sparse_state.last_step, dense_state.last_step)


def test_catch_up_moments_equal_dense_adam_moments_on_touched_rows():
  (_, dense_state), (_, sparse_state) = _run_both(
    optax_ar.adam_ar(1e-2, 0.02, lazy=False),
    optax_ar.sparse_adam_ar(1e-2, 0.02, catch_up_moments=True),
    steps=60,
  )
  adam_state = dense_state.inner_state[0]
  # A row last touched at step k has had 60 - k dense decays since.
  last = np.asarray(sparse_state.last_step)
  rows = np.flatnonzero(last.ravel() > 0)
  assert len(np.unique(last[rows])) > 5
  skipped = (60 - last[rows]).astype(np.float64)
  # b**I in float32 (a pow) against the dense path's I multiplications by b,
  # each rounded: up to I ulps, I < 60: 60 * eps32 = 7e-6. mu may cancel to
  # ~0, where the error is absolute: 60 ulps of its terms (< 0.1 each).
  np.testing.assert_allclose(
    sparse_state.mu[rows] * 0.9**skipped,
    adam_state.mu[rows],
    rtol=1e-4,
    atol=1e-6,
  )
  np.testing.assert_allclose(
    sparse_state.nu[rows] * 0.999**skipped, adam_state.nu[rows], rtol=1e-4
  )


def test_padding_and_out_of_range_slots_leave_every_other_row_untouched():
  opt = optax_ar.sparse_adam_ar(0.1, 0.5)
  table = jnp.arange(12.0).reshape(6, 2) + 1
  state = opt.init(table)
  ids = jnp.array([2, 6, -1, 100, 4], jnp.int32)  # 6, -1, 100 are padding
  grads = jnp.ones((5, 2)).at[4].set(0.0)  # row 4: zero gradient
  new_table, state = jax.jit(opt.update)(table, state, ids, grads)
  changed = np.any(np.asarray(new_table) != np.asarray(table), axis=1)
  # Exact: slots that are not touched are dropped by the scatter.
  np.testing.assert_array_equal(changed, [0, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(state.last_step.ravel(), [0, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(state.mu)[[0, 1, 3, 4, 5]], 0.0)
  assert int(state.count) == 1


def test_decay_of_a_row_first_touched_at_step_k():
  # alpha = 0.1, lr = 0: row 1 first touched at step 4 sees I = 3.
  opt = optax_ar.sparse_adagrad_ar(0.0, 0.1)
  table = jnp.full((3, 2), 2.0)
  state = opt.init(table)
  update = jax.jit(opt.update)
  ids, grads = jnp.array([0, 3]), jnp.ones((2, 2))
  for _ in range(3):
    table, state = update(table, state, ids, grads)
  table, state = update(table, state, jnp.array([0, 1]), grads)
  # float32(0.1) * 3, then 2 - lam * 2: three roundings, 4 * eps32 = 5e-7.
  np.testing.assert_allclose(
    table[:, 0], [2.0, 2.0 * (1 - 0.3), 2.0], rtol=4 * np.finfo(np.float32).eps
  )


def test_tree_of_tables_equals_each_table_alone():
  opt = optax_ar.sparse_adam_ar(1e-2, 0.1)
  rng = np.random.default_rng(0)
  tables = {
    "a": jnp.asarray(rng.normal(size=(8, 2)), jnp.float32),
    "b": jnp.asarray(rng.normal(size=(5, 2, 3)), jnp.float32),
  }
  ids = {"a": jnp.array([1, 7, 8]), "b": jnp.array([4, 0])}
  grads = {
    "a": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
    "b": jnp.asarray(rng.normal(size=(2, 2, 3)), jnp.float32),
  }
  state = opt.init(tables)
  assert state.last_step["b"].shape == (5, 1, 1)
  tables_out = tables
  for _ in range(3):
    tables_out, state = opt.update(tables_out, state, ids, grads)
  for name in tables:
    alone, alone_state = tables[name], opt.init(tables[name])
    for _ in range(3):
      alone, alone_state = opt.update(
        alone, alone_state, ids[name], grads[name]
      )
    # Eager, op by op: the same primitives on the same values, bitwise.
    np.testing.assert_array_equal(tables_out[name], alone)
    np.testing.assert_array_equal(state.nu[name], alone_state.nu)


def test_update_is_in_place_under_donation():
  # No O(rows) copy of the table or its state in the compiled step.
  opt = optax_ar.sparse_adam_ar(1e-3, 1e-3)
  table = jnp.zeros((4099, 8))
  state = opt.init(table)
  ids, grads = jnp.arange(16), jnp.ones((16, 8))
  step = jax.jit(opt.update, donate_argnums=(0, 1))
  hlo = step.lower(table, state, ids, grads).compile().as_text()
  copies = re.findall(r"\[4099,(?:8|1)\][^\n]* copy\(", hlo)
  assert not copies, copies


def test_unique_rows_pads_and_inverts():
  ids = np.array([[9, 3, 3], [0, 9, 9]])
  unique = optax_ar.unique_rows(ids, num_rows=10, capacity=5)
  np.testing.assert_array_equal(unique.ids, [0, 3, 9, 10, 10])
  np.testing.assert_array_equal(unique.ids[unique.inverse], ids)
  assert unique.num_unique == 3
  assert unique.ids.dtype == unique.inverse.dtype == np.int32


@pytest.mark.parametrize(
  ("ids", "capacity", "match"),
  [
    ([1, 10], 4, "ids must be in"),
    ([-1, 2], 4, "ids must be in"),
    ([1.0, 2.0], 4, "ids must be integers"),
    ([1, 2, 3], 2, "capacity=2"),
  ],
)
def test_unique_rows_rejects_bad_input(ids, capacity, match):
  with pytest.raises(ValueError, match=match):
    optax_ar.unique_rows(np.array(ids), num_rows=10, capacity=capacity)


def test_update_rejects_mismatched_shapes_and_bad_hyperparameters():
  opt = optax_ar.sparse_adam_ar(1e-3, 1e-3)
  table = jnp.zeros((4, 2))
  state = opt.init(table)
  with pytest.raises(ValueError, match="row_grads"):
    opt.update(table, state, jnp.array([0, 1]), jnp.ones((3, 2)))
  with pytest.raises(ValueError, match="row_ids"):
    opt.update(table, state, jnp.zeros((2, 1), jnp.int32), jnp.ones((2, 2)))
  with pytest.raises(ValueError, match="alpha"):
    optax_ar.sparse_adam_ar(1e-3, 1.0)
  with pytest.raises(ValueError, match="b2"):
    optax_ar.sparse_adam_ar(1e-3, 1e-3, b2=1.0)
  with pytest.raises(ValueError, match="learning_rate"):
    optax_ar.sparse_adagrad_ar(-1.0, 1e-3)


SPARSE_ADAM_OPTIONS = {
  "eps_root": {"eps_root": 1e-6},
  "nesterov": {"nesterov": True},
  "mu_dtype": {"mu_dtype": jnp.bfloat16},
}


@pytest.mark.parametrize(
  "options", SPARSE_ADAM_OPTIONS.values(), ids=SPARSE_ADAM_OPTIONS
)
def test_sparse_adam_ar_options_equal_dense_lazy_adam_ar(options):
  (dense, dense_state), (sparse, sparse_state) = _run_both(
    optax_ar.adam_ar(1e-2, 0.02, **options, lazy=True),
    optax_ar.sparse_adam_ar(1e-2, 0.02, **options),
    steps=40,
  )
  # As test_sparse_adam_ar_equals_dense_lazy_adam_ar.
  np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
  adam_state = dense_state.inner_state[0]
  assert sparse_state.mu.dtype == adam_state.mu.dtype
  np.testing.assert_allclose(
    np.asarray(sparse_state.mu, np.float32),
    np.asarray(adam_state.mu, np.float32),
    rtol=1e-5,
  )


def test_sparse_adam_ar_on_rows_touched_every_step_is_optax_adam():
  """Every row in every step: lazy and dense Adam agree, so optax.adam."""
  rng = np.random.default_rng(5)
  options = {"eps_root": 1e-8, "nesterov": True, "b1": 0.8}
  table = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
  want = table
  tx = optax.adam(1e-2, **options)
  opt = optax_ar.sparse_adam_ar(1e-2, 0.0, **options)
  tx_state, opt_state = tx.init(want), opt.init(table)
  ids = jnp.arange(6)
  for _ in range(20):
    grads = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    updates, tx_state = tx.update(grads, tx_state)
    want = optax.apply_updates(want, updates)
    table, opt_state = opt.update(table, opt_state, ids, grads)
  # float32 rounding of two orders of the same operations over 20 steps
  # (the gradients are given, not summed: nothing amplifies an ulp).
  np.testing.assert_allclose(table, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(opt_state.mu, tx_state[0].mu, rtol=1e-6)


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.sparse_adam_ar(1e-3, 1e-3),
    lambda: optax_ar.sparse_adagrad_ar(1e-3, 1e-3),
  ],
  ids=["adam", "adagrad"],
)
def test_update_rejects_bad_ids_and_trees_naming_the_argument(make):
  opt = make()
  tables = {"a": jnp.zeros((4, 2)), "b": jnp.zeros((3, 2))}
  state = opt.init(tables)
  ids = {"a": jnp.array([0, 1]), "b": jnp.array([2, 3])}
  grads = {"a": jnp.ones((2, 2)), "b": jnp.ones((2, 2))}
  opt.update(tables, state, ids, grads)  # well-formed: accepted
  with pytest.raises(TypeError, match="row_ids must be integer"):
    opt.update(tables, state, {**ids, "a": jnp.array([0.0, 1.0])}, grads)
  with pytest.raises(TypeError, match="row_ids must be integer"):
    opt.update(tables, state, {**ids, "a": np.array([True, False])}, grads)
  # 2**40 would wrap to row 0 when JAX converts it to int32.
  with pytest.raises(ValueError, match="row_ids must fit in int32"):
    opt.update(tables, state, {**ids, "a": np.array([2**40, 1])}, grads)
  with pytest.raises(ValueError, match="row_ids does not match the tables"):
    opt.update(tables, state, {"a": ids["a"]}, grads)
  with pytest.raises(ValueError, match="row_grads does not match the tables"):
    opt.update(tables, state, ids, [grads["a"], grads["b"]])
  with pytest.raises(ValueError, match="state.* does not match the tables"):
    opt.update(tables, opt.init(tables["a"]), ids, grads)
  # A capacity (row_ids length) too small for the gradient rows.
  with pytest.raises(ValueError, match=r"row_grads must have shape \(1, 2\)"):
    opt.update(tables, state, {**ids, "a": jnp.array([0])}, grads)
  # Under jit the ids are traced: their dtype is still checked.
  with pytest.raises(TypeError, match="row_ids must be integer"):
    jax.jit(opt.update)(
      tables, state, {**ids, "a": jnp.array([0.0, 1.0])}, grads
    )


def _sparse_run(opt, steps=30):
  table = jnp.asarray(
    np.random.default_rng(5).normal(size=(NUM_ROWS, DIM)), jnp.float32
  )
  state = opt.init(table)
  update = jax.jit(opt.update, donate_argnums=(0, 1))
  for ids, grads in _stream(seed=3, steps=steps):
    unique = optax_ar.unique_rows(ids, NUM_ROWS, CAPACITY)
    row_grads = np.zeros((CAPACITY, DIM), np.float32)
    np.add.at(row_grads, unique.inverse, grads)
    table, state = update(table, state, unique.ids, row_grads)
  return table, state


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.sparse_adam_ar(1e-2, 0.02),
    lambda: optax_ar.sparse_adam_ar(1e-2, 0.02, catch_up_moments=True),
    lambda: optax_ar.sparse_adagrad_ar(0.05, 0.02),
  ],
  ids=["adam", "adam_catch_up", "adagrad"],
)
def test_update_in_chunks_equals_one_update(make, monkeypatch):
  want_table, want_state = _sparse_run(make())
  # Chunks of 5 slots: 4 in the loop and a remainder of 4 (capacity 24).
  monkeypatch.setattr(sparse_module, "_CHUNK_BYTES", 5 * DIM * 4)
  monkeypatch.setattr(sparse_module, "_MIN_CHUNK_ROWS", 1)
  got_table, got_state = _sparse_run(make())
  # The state is bitwise equal; XLA may contract the table's last
  # multiply-add differently inside the loop: an ulp of the table value
  # (|theta| < 4 here) per step, over 30 steps, without feedback into the
  # moments.
  for w, g in zip(
    jax.tree.leaves(want_state), jax.tree.leaves(got_state), strict=True
  ):
    np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
  np.testing.assert_allclose(got_table, want_table, rtol=0, atol=30 * 2.4e-7)


def test_update_in_chunks_is_in_place_under_donation(monkeypatch):
  monkeypatch.setattr(sparse_module, "_CHUNK_BYTES", 4 * 8 * 4)
  monkeypatch.setattr(sparse_module, "_MIN_CHUNK_ROWS", 1)
  opt = optax_ar.sparse_adam_ar(1e-3, 1e-3)
  table = jnp.zeros((4099, 8))
  state = opt.init(table)
  ids, grads = jnp.arange(18), jnp.ones((18, 8))
  step = jax.jit(opt.update, donate_argnums=(0, 1))
  hlo = step.lower(table, state, ids, grads).compile().as_text()
  assert " while(" in hlo
  copies = re.findall(r"\[4099,(?:8|1)\][^\n]* copy\(", hlo)
  assert not copies, copies
