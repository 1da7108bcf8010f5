"""Tests of research.read_decay against an independent NumPy reference.

The reference is written from the module's docstring (decay the rows a step
reads by ``min(1, alpha * idle steps)``, then a dense Adam step with the
gradient taken at the decayed params), in float64 with explicit loops.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import runner_testlib
from flax import nnx

from examples.ctr import models
from examples.ctr import optimizers
from examples.ctr import train
from examples.ctr.research import read_decay

# Steps of the float64 runner comparisons (runner_testlib).
STEPS = 8

LR, ALPHA, STEPS, ROWS, DIM = 0.05, 0.15, 16, 9, 3
B1, B2, EPS = 0.9, 0.999, 1e-8


def _reference(theta0, reads, grad_of):
  """Params after each step; ``grad_of(theta, k)`` is the step's gradient."""
  theta = np.array(theta0, np.float64)
  m, v = np.zeros_like(theta), np.zeros_like(theta)
  last = np.zeros(len(theta), np.int64)
  history = []
  for k, rows in enumerate(reads, start=1):
    for j in sorted(set(rows.tolist())):
      theta[j] *= 1.0 - min(1.0, ALPHA * (k - last[j] - 1))
      last[j] = k
    g = grad_of(theta, k)
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g**2
    direction = (m / (1 - B1**k)) / (np.sqrt(v / (1 - B2**k)) + EPS)
    theta = theta - LR * direction
    history.append(theta.copy())
  return history


def _reads(seed):
  rng = np.random.default_rng(seed)
  # Repeated IDs within a step, and rows idle for many steps.
  return [rng.integers(0, ROWS, size=4) ** 2 % ROWS for _ in range(STEPS)]


def test_matches_reference_with_gradient_at_decayed_params():
  rng = np.random.default_rng(0)
  theta0 = rng.normal(size=(ROWS, DIM)).astype(np.float32)
  target = rng.normal(size=(ROWS, DIM))
  reads = _reads(1)

  def ref_grad(theta, k):  # d/dtheta of 0.5 |theta - target|^2 on read rows
    g = np.zeros_like(theta)
    rows = np.unique(reads[k - 1])
    g[rows] = theta[rows] - target[rows]
    return g

  tx = read_decay.adam_ar_decay_on_read(LR, ALPHA)

  @jax.jit
  def step(p, s, rows):
    p, s = read_decay.decay_read_rows(p, s, rows, ALPHA)
    read = jnp.zeros(ROWS, bool).at[rows].set(True)[:, None]
    g = jnp.where(read, p - jnp.asarray(target, jnp.float32), 0.0)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  params, state = jnp.asarray(theta0), tx.init(jnp.asarray(theta0))
  expected = _reference(theta0, reads, ref_grad)
  for rows, want in zip(reads, expected, strict=True):
    params, state = step(params, state, jnp.asarray(rows))
    np.testing.assert_allclose(params, want, rtol=2e-5, atol=1e-5)
  last = np.zeros(ROWS, int)
  for k, rows in enumerate(reads, start=1):
    last[rows] = k
  np.testing.assert_array_equal(state.last_read.ravel(), last)


def test_masked_and_unread_leaves_are_untouched():
  tx = read_decay.adam_ar_decay_on_read(LR, 0.5, mask={"t": True, "w": False})
  params = {"t": jnp.ones((4, 2)), "w": jnp.ones((4, 2))}
  state = tx.init(params)
  for _ in range(3):
    _, state = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
  ids = jnp.array([2, 2, 3])
  out, state = read_decay.decay_read_rows(
    params, state, {"t": ids, "w": ids}, 0.5
  )
  np.testing.assert_array_equal(out["w"], params["w"])  # not decayed
  # Rows 2 and 3 idle for 3 steps: lam = min(1, 0.5 * 3) = 1; 0 and 1 unread.
  np.testing.assert_array_equal(out["t"][:, 0], [1.0, 1.0, 0.0, 0.0])
  assert state.last_read["t"].ravel().tolist() == [0, 0, 4, 4]
  assert isinstance(state.last_read["w"], optax.MaskedNode)
  # None for a leaf: left alone, as a prefix tree allows.
  same, _ = read_decay.decay_read_rows(
    params, state, {"t": None, "w": None}, 0.5
  )
  np.testing.assert_array_equal(same["t"], params["t"])


def test_keeps_dtype_and_injected_alpha():
  spec = optimizers.create_optimizer(
    "adam_ar_decay_on_read", {"t": True}, alpha=0.25
  )
  params = {"t": jnp.ones((3, 2), jnp.bfloat16)}
  state = spec.tx.init(params)
  assert float(state.hyperparams["alpha"]) == 0.25
  for _ in range(2):
    _, state = spec.tx.update(jax.tree.map(jnp.zeros_like, params), state)
  out, state = read_decay.decay_read_rows_in_state(
    params, state, {"t": jnp.array([1])}
  )
  assert out["t"].dtype == jnp.bfloat16
  # k = 3, never read: lam = min(1, 0.25 * 2) = 0.5.
  assert out["t"][:, 0].tolist() == [1.0, 0.5, 1.0]


def test_runner_alpha_zero_is_adam(config, dataset, train_batches):
  """alpha = 0: no decay, so plain Adam.

  The two are different compiled programs, whose float32 sums may differ in
  order; compared in float64 within the path-length bound (runner_testlib).
  """
  runs = {}
  with jax.enable_x64(True):
    for name in ("adam", "adam_ar_decay_on_read"):
      setup = train.create_train_state(config, dataset.fields, name, 0.0, 0)
      step = train.make_train_step(setup.graphdef, setup.spec)
      runs[name] = runner_testlib.run_float64(
        step, setup.state, train_batches[:STEPS]
      )
  (adam, path_length, _), (read, _, _) = runs.values()
  runner_testlib.assert_within_path_length(
    read.params, adam.params, path_length, STEPS
  )


def test_runner_takes_the_loss_at_the_decayed_tables(
  config, dataset, train_batches
):
  """The step's loss is the model's loss after the read rows' decay."""
  setup = train.create_train_state(
    config, dataset.fields, "adam_ar_decay_on_read", 0.2, 0
  )
  step = train.make_train_step(setup.graphdef, setup.spec)
  state = setup.state
  for batch in train_batches[:5]:
    state, _ = step(state, batch)
  batch = train_batches[5]

  def loss_at(params):
    model = nnx.merge(setup.graphdef, params, state.rest)
    losses = optax.sigmoid_binary_cross_entropy(
      model(batch.features), batch.labels
    )
    return float(jnp.sum(losses * batch.weights) / batch.weights.sum())

  params = jax.tree.map(jnp.copy, state.params)
  decayed, _ = read_decay.decay_read_rows_in_state(
    params,
    state.opt_state,
    models.table_candidate_rows(params, batch.features),
  )
  want, undecayed = loss_at(decayed), loss_at(params)
  _, metrics = step(state, batch)
  assert abs(want - undecayed) > 1e-6  # the decay changes this batch's loss
  np.testing.assert_allclose(float(metrics["loss"]), want, rtol=1e-5)
