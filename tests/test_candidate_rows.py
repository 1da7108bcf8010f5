"""candidate_rows: the touched test reads only the rows a step can touch."""

import ar_reference
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar
from optax_ar._src import interval_decay

ROWS, DIM, STEPS = 40, 4, 60


@pytest.fixture(autouse=True)
def _always_use_candidates(monkeypatch):
  """These small leaves have few rows per candidate: use them anyway."""
  monkeypatch.setattr(interval_decay, "_ROWS_PER_CANDIDATE", 0)


def _stream(seed=0):
  """A sparse gradient stream, and per step a superset of its touched rows.

  The candidates hold every touched row (some twice), untouched rows whose
  gradient is zero (ids of a batch whose gradient vanished), and padding ids
  on both sides of ``[0, ROWS)``.
  """
  rng = np.random.default_rng(seed)
  probs = ar_reference.mixed_touch_probabilities(ROWS)
  grads = ar_reference.sparse_gradient_stream(rng, (ROWS, DIM), STEPS, probs)
  candidates = []
  for g in grads:
    touched = np.flatnonzero(np.any(g != 0, axis=1))
    spare = rng.choice(ROWS, size=3, replace=False)
    ids = np.concatenate([touched, touched[:2], spare, [-1, ROWS, ROWS + 7]])
    candidates.append(jnp.asarray(rng.permutation(ids), jnp.int32))
  return [jnp.asarray(g) for g in grads], candidates


def _run(tx, grads, candidates):
  params = {
    "table": jnp.asarray(
      np.random.default_rng(1).normal(size=(ROWS, DIM)), jnp.float32
    ),
    "w": jnp.ones((DIM, 2), jnp.float32),
  }
  state = tx.init(params)
  update = jax.jit(tx.update)
  for i, g in enumerate(grads):
    tree = {"table": g, "w": jnp.full((DIM, 2), 0.1, jnp.float32)}
    extra = {} if candidates is None else {"candidate_rows": candidates[i]}
    updates, state = update(tree, state, params, **extra)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.adam_ar(1e-2, 0.05),
    lambda: optax_ar.adam_ar(1e-2, 0.05, lazy=True),
    lambda: optax_ar.adagrad_ar(1e-1, 0.05),
  ],
  ids=["adam_ar", "adam_ar_lazy", "adagrad_ar"],
)
def test_candidates_give_the_full_test_bitwise(make):
  grads, candidates = _stream()
  hint = [{"table": c, "w": None} for c in candidates]
  want_params, want_state = _run(make(), grads, None)
  got_params, got_state = _run(make(), grads, hint)
  for want, got in zip(
    jax.tree.leaves((want_params, want_state)),
    jax.tree.leaves((got_params, got_state)),
    strict=True,
  ):
    # Bitwise by contract: candidates only choose which rows are tested for a
    # nonzero gradient; the update is the same IEEE elementwise arithmetic on
    # the same values (XLA:CPU neither contracts nor reassociates it).
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  # The stream decays: the test is not vacuous.
  assert int(np.min(want_state.last_step["table"])) < STEPS - 10


def test_a_zero_gradient_candidate_is_not_touched():
  tx = optax_ar.adaptive_interval_decay(0.5, optax.sgd(0.0))
  params = jnp.ones((3, 2))
  state = tx.init(params)
  grads = jnp.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
  _, state = tx.update(grads, state, params, candidate_rows=jnp.array([0, 1]))
  # Integers, set by exact tests (is a gradient row nonzero).
  np.testing.assert_array_equal(state.last_step.ravel(), [1, 0, 0])


def test_rows_outside_the_candidates_are_not_read():
  """The contract: a nonzero row left out is taken as untouched."""
  tx = optax_ar.adaptive_interval_decay(0.5, optax.sgd(0.0))
  params = jnp.ones((3, 2))
  state = tx.init(params)
  grads = jnp.ones((3, 2))
  _, state = tx.update(grads, state, params, candidate_rows=jnp.array([2]))
  np.testing.assert_array_equal(state.last_step.ravel(), [0, 0, 1])


def test_higher_rank_leaf_and_multidimensional_ids():
  g = jnp.zeros((5, 2, 3)).at[3, 1, 2].set(1.0).at[0, 0, 0].set(-2.0)
  ids = jnp.array([[3, 0], [4, 9]])
  got = optax_ar.touched_rows_among(g, ids)
  assert got.shape == (5, 1, 1)
  # Booleans from the exact test g != 0.
  np.testing.assert_array_equal(got, optax_ar.touched_rows(g))


def test_new_ids_do_not_recompile():
  tx = optax_ar.adam_ar(1e-3, 1e-3)
  params = jnp.zeros((ROWS, DIM))
  state = tx.init(params)
  traces = []

  def step(grads, state, ids):
    traces.append(1)
    return tx.update(grads, state, params, candidate_rows=ids)

  step = jax.jit(step)
  grads, candidates = _stream()
  for g in grads[:3]:
    ids = jnp.arange(8, dtype=jnp.int32) + len(traces)
    _, state = step(g, state, ids)
  assert len(traces) == 1


def test_passes_through_inject_hyperparams_and_chain():
  grads, candidates = _stream()
  make = optax.inject_hyperparams(optax_ar.adam_ar)
  chained = optax.chain(optax.clip_by_global_norm(1e9), make(1e-2, 0.05))
  params = jnp.zeros((ROWS, DIM))
  state = chained.init(params)
  want_state = state
  for g, c in zip(grads[:10], candidates[:10], strict=True):
    _, state = chained.update(g, state, params, candidate_rows=c)
    _, want_state = chained.update(g, want_state, params)
  np.testing.assert_array_equal(
    state[1].inner_state.last_step, want_state[1].inner_state.last_step
  )


def test_float_ids_are_rejected():
  with pytest.raises(TypeError, match="candidate rows must be integer ids"):
    optax_ar.touched_rows_among(jnp.zeros((3, 2)), jnp.array([0.0, 1.0]))


def test_candidates_for_a_scalar_leaf_are_rejected():
  tx = optax_ar.adam_ar(1e-3, 1e-3)
  params = {"s": jnp.zeros(())}
  state = tx.init(params)
  with pytest.raises(ValueError, match="scalar leaf"):
    tx.update(params, state, params, candidate_rows={"s": jnp.array([0])})


def test_mismatched_tree_is_rejected_with_its_name():
  tx = optax_ar.adam_ar(1e-3, 1e-3)
  params = {"table": jnp.zeros((4, 2)), "mlp": {"w": jnp.zeros((2, 2))}}
  state = tx.init(params)
  with pytest.raises(ValueError, match="candidate_rows does not match"):
    tx.update(params, state, params, candidate_rows={"table": jnp.array([0])})


@pytest.mark.parametrize("candidates", [None, jnp.array([2, 1, 0, 1])])
def test_nan_rows_are_touched_and_negative_zero_rows_are_not(candidates):
  tx = optax_ar.adaptive_interval_decay(0.5, optax.sgd(0.0))
  params = jnp.ones((3, 2))
  state = tx.init(params)
  grads = jnp.array([[jnp.nan, 0.0], [-0.0, -0.0], [0.0, 1.0]])
  extra = {} if candidates is None else {"candidate_rows": candidates}
  _, state = tx.update(grads, state, params, **extra)
  np.testing.assert_array_equal(state.last_step.ravel(), [1, 0, 1])


def test_duplicate_candidates_in_any_order_give_one_update():
  tx = optax_ar.adaptive_interval_decay(0.25, optax.sgd(0.0))
  params = jnp.full((4, 2), 2.0)
  state = tx.init(params)
  grads = jnp.zeros((4, 2)).at[1].set(1.0).at[3].set(1.0)
  for _ in range(3):  # rows 1 and 3 touched at k = 1, idle at k = 2, 3
    _, state = tx.update(grads * 0, state, params)
    state = state._replace(last_step=state.last_step.at[1].set(1).at[3].set(1))
  ids = jnp.array([3, 1, 3, 3, 1, 4, -2, 1])
  updates, state = tx.update(grads, state, params, candidate_rows=ids)
  # k = 4, I = 2, lam = 0.5: -0.5 * 2 on rows 1 and 3, once each.
  np.testing.assert_array_equal(updates[:, 0], [0.0, -1.0, 0.0, -1.0])
  np.testing.assert_array_equal(state.last_step.ravel(), [0, 4, 0, 4])


def test_a_leaf_with_few_rows_per_candidate_is_tested_in_full(monkeypatch):
  """The only visible difference: a nonzero row outside the ids is read."""
  monkeypatch.setattr(interval_decay, "_ROWS_PER_CANDIDATE", 8)
  tx = optax_ar.adaptive_interval_decay(0.5, optax.sgd(0.0))
  params = jnp.ones((16, 2))
  grads = jnp.zeros((16, 2)).at[5].set(1.0)
  # 2 ids: 8 rows per id, the ids alone are read; 3 ids: the whole leaf.
  for ids, touched in [([0, 1], []), ([0, 1, 2], [5])]:
    _, state = tx.update(
      grads, tx.init(params), params, candidate_rows=jnp.array(ids)
    )
    np.testing.assert_array_equal(np.flatnonzero(state.last_step), touched)
