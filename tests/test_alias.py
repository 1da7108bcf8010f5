"""adam_ar and adagrad_ar against the NumPy reference and optax itself."""

import functools
import inspect

import ar_reference
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar

NUM_STEPS = 80


def _factory(kind, lazy, lr, alpha):
  if kind == "adam":
    return optax_ar.adam_ar(lr, alpha, lazy=lazy)
  return optax_ar.adagrad_ar(lr, alpha)


def _run_jitted(tx, params, grads_seq):
  """Applies the gradients in order with a jitted update; returns the params."""
  state = tx.init(params)

  @jax.jit
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  history = []
  for grads in grads_seq:
    params, state = step(params, state, grads)
    history.append(params)
  return history, state


CASES = [
  ("adam", False, 1e-2, 0.05),
  ("adam", False, 1e-3, 3e-3),
  ("adam", True, 1e-2, 0.05),
  ("adam", True, 1e-3, 3e-3),
  ("adagrad", False, 1e-1, 0.05),
  ("adagrad", False, 1e-2, 3e-3),
]


@pytest.mark.parametrize(("kind", "lazy", "lr", "alpha"), CASES)
def test_matches_numpy_reference_on_sparse_stream(kind, lazy, lr, alpha):
  rng = np.random.default_rng(0)
  shapes = {"table": (48, 6), "vector": (12,), "cube": (10, 2, 3), "s": ()}
  params = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
  streams = {}
  for k, s in shapes.items():
    rows = s[0] if s else 1
    probs = ar_reference.mixed_touch_probabilities(rows)
    if not s:
      probs = np.array([0.3])
    stream = ar_reference.sparse_gradient_stream(
      rng, s or (1,), NUM_STEPS, probs
    )
    streams[k] = stream.reshape((NUM_STEPS,) + s)
  grads_seq = [
    {k: jnp.asarray(v[i]) for k, v in streams.items()} for i in range(NUM_STEPS)
  ]
  tx = _factory(kind, lazy, lr, alpha)
  history, state = _run_jitted(tx, jax.tree.map(jnp.asarray, params), grads_seq)

  refs = {
    k: ar_reference.ReferenceAR(v, kind=kind, lazy=lazy)
    for k, v in params.items()
  }
  for i in range(NUM_STEPS):
    for k, ref in refs.items():
      expected = ref.step(streams[k][i], lr=lr, alpha=alpha)
      # float32 against float64: two roundings of theta per step (update,
      # sum) over NUM_STEPS steps, 2 * 80 * eps32 = 1.9e-5; the gradients
      # are given, not summed, so Adam has no cancelled sum to amplify.
      # atol: rows wiped by a clipped decay restart from exactly 0.
      np.testing.assert_allclose(
        history[i][k], expected, rtol=2e-5, atol=2e-6, err_msg=f"{k}@{i}"
      )
  for k, ref in refs.items():
    # Integers, decided by exact tests (is a gradient row nonzero).
    np.testing.assert_array_equal(
      np.ravel(state.last_step[k]), np.ravel(ref.last)
    )
  assert int(state.count) == NUM_STEPS


def test_stream_exercises_every_regime():
  """The reference stream really has rows that are clipped, decayed, frozen."""
  rng = np.random.default_rng(0)
  probs = ar_reference.mixed_touch_probabilities(48)
  stream = ar_reference.sparse_gradient_stream(rng, (48, 6), NUM_STEPS, probs)
  touches = (np.abs(stream).sum(-1) > 0).sum(0)
  assert touches.max() == NUM_STEPS  # touched every step: never decayed
  assert (touches == 0).any()  # never touched
  assert ((touches > 0) & (touches < 5)).any()  # rare: long intervals


@pytest.mark.parametrize(
  ("ours", "theirs"),
  [
    (optax_ar.adam_ar(1e-2, 0.0), optax.adam(1e-2)),
    (optax_ar.adagrad_ar(1e-2, 0.0), optax.adagrad(1e-2)),
  ],
  ids=["adam", "adagrad"],
)
def test_alpha_zero_is_exactly_the_plain_optimizer(ours, theirs):
  # Dense moments only: lazy Adam differs from Adam by design.
  rng = np.random.default_rng(1)
  params = jnp.asarray(rng.normal(size=(20, 4)), jnp.float32)
  probs = ar_reference.mixed_touch_probabilities(20)
  grads = ar_reference.sparse_gradient_stream(rng, (20, 4), 30, probs)
  ours_history, _ = _run_jitted(ours, params, grads)
  theirs_history, _ = _run_jitted(theirs, params, grads)
  # Bitwise by contract: alpha = 0 adds an exact 0 * theta to optax's update
  # (x + 0 == x, also under fast math), so both programs round alike.
  np.testing.assert_array_equal(ours_history[-1], theirs_history[-1])


def test_lazy_freezes_untouched_rows_and_moments():
  tx = optax_ar.adam_ar(0.1, 0.01, lazy=True)
  params = jnp.ones((3, 2))
  state = tx.init(params)
  grads = jnp.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
  updates, state = tx.update(grads, state, params)
  params = optax.apply_updates(params, updates)
  mu_before = state.inner_state[0].mu
  updates, state = tx.update(
    grads * jnp.array([[1.0], [0.0], [0.0]]), state, params
  )
  # Exact: idle rows are selected (jnp.where), not computed.
  np.testing.assert_array_equal(updates[1:], 0.0)
  np.testing.assert_array_equal(state.inner_state[0].mu[1:], mu_before[1:])
  np.testing.assert_array_equal(state.inner_state[0].nu[2], 0.0)
  # The bias correction still counts every step.
  assert int(state.inner_state[0].count) == 2


@pytest.mark.parametrize(
  "make",
  [
    functools.partial(optax_ar.adam_ar, lazy=False),
    functools.partial(optax_ar.adam_ar, lazy=True),
    optax_ar.adagrad_ar,
  ],
  ids=["adam_ar", "adam_ar_lazy", "adagrad_ar"],
)
def test_inject_hyperparams_changes_without_recompiling(make):
  tx = optax.inject_hyperparams(make)(learning_rate=0.1, alpha=0.0)
  params = jnp.ones((4, 2))
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state, grads):
    traces.append(1)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  grads_a = jnp.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
  grads_b = jnp.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
  params, state = step(params, state, grads_a)
  params, state = step(params, state, grads_a)
  row1_before = params[1]
  state.hyperparams["alpha"] = jnp.full_like(state.hyperparams["alpha"], 0.25)
  state.hyperparams["learning_rate"] = jnp.zeros_like(
    state.hyperparams["learning_rate"]
  )
  params, state = step(params, state, grads_b)
  # Row 1 was skipped for 2 steps: lam = 0.25 * 2, and no gradient step.
  # One multiply-add by lam = 0.5 (exact) and lr = 0: a rounding, 1e-6.
  np.testing.assert_allclose(params[1], 0.5 * row1_before, rtol=1e-6)
  assert len(traces) == 1


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.adam_ar(1e-2, 1e-2),
    lambda: optax_ar.adam_ar(1e-2, 1e-2, lazy=True),
    lambda: optax_ar.adagrad_ar(1e-2, 1e-2),
    lambda: optax_ar.adam_ar(
      optax.linear_schedule(1e-2, 0.0, 10), optax.constant_schedule(1e-2)
    ),
  ],
  ids=["adam_ar", "adam_ar_lazy", "adagrad_ar", "schedules"],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtypes_stable_and_no_recompilation(make, dtype):
  tx = make()
  params = {"table": jnp.ones((16, 4), dtype), "b": jnp.zeros((3,), dtype)}
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state, grads):
    traces.append(1)
    updates, new_state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), new_state, updates

  def dtypes(tree):
    return jax.tree.map(lambda x: jnp.asarray(x).dtype, tree)

  state_dtypes = dtypes(state)
  for i in range(4):
    grads = jax.tree.map(lambda p, i=i: jnp.ones_like(p).at[i].set(0), params)
    params, state, updates = step(params, state, grads)
    assert dtypes(state) == state_dtypes
    assert dtypes(params) == {"table": dtype, "b": dtype}
    assert dtypes(updates) == {"table": dtype, "b": dtype}
  assert len(traces) == 1


def test_negative_learning_rate_is_rejected():
  with pytest.raises(ValueError, match="learning_rate"):
    optax_ar.adam_ar(-1e-3, 1e-3)
  with pytest.raises(ValueError, match="learning_rate"):
    optax_ar.adagrad_ar(-1e-2, 1e-3)
  with pytest.raises(ValueError, match="learning_rate"):
    optax_ar.adam_ar(float("nan"), 1e-3)


def test_signatures_follow_optax():
  """adam_ar is optax.adamw with alpha for weight_decay; adagrad_ar adagrad."""
  for ours, theirs, added, removed in [
    (optax_ar.adam_ar, optax.adamw, ["alpha", "lazy"], ["weight_decay"]),
    (optax_ar.adagrad_ar, optax.adagrad, ["alpha", "mask"], []),
  ]:
    ours = inspect.signature(ours).parameters
    theirs = inspect.signature(theirs).parameters
    shared = [name for name in theirs if name not in removed]
    assert [name for name in ours if name not in added] == shared
    for name in shared:
      assert ours[name].kind == theirs[name].kind, name
      assert ours[name].default == theirs[name].default, name
    assert ours["alpha"].default is inspect.Parameter.empty  # required


ADAM_OPTIONS = {
  "eps_root": {"eps_root": 1e-6},
  "nesterov": {"nesterov": True},
  "mu_dtype": {"mu_dtype": jnp.bfloat16},
  "all": {
    "b1": 0.8,
    "b2": 0.99,
    "eps": 1e-6,
    "eps_root": 1e-8,
    "mu_dtype": jnp.bfloat16,
    "nesterov": True,
  },
}


def _dense_stream(seed, shape=(12, 3), steps=30):
  rng = np.random.default_rng(seed)
  params = jnp.asarray(rng.normal(size=shape), jnp.float32)
  grads = rng.normal(size=(steps,) + shape).astype(np.float32)
  return params, [jnp.asarray(g) for g in grads]


@pytest.mark.parametrize("options", ADAM_OPTIONS.values(), ids=ADAM_OPTIONS)
def test_adam_options_are_optax_adams(options):
  params, grads = _dense_stream(2)
  want, want_state = _run_jitted(optax.adam(1e-2, **options), params, grads)
  # Dense moments and alpha 0: the same optax blocks, so bitwise equal.
  got, got_state = _run_jitted(
    optax_ar.adam_ar(1e-2, 0.0, **options), params, grads
  )
  np.testing.assert_array_equal(got[-1], want[-1])
  np.testing.assert_array_equal(got_state.inner_state[0].mu, want_state[0].mu)
  assert got_state.inner_state[0].mu.dtype == want_state[0].mu.dtype
  # Lazy moments on a gradient that touches every row every step: the same
  # arithmetic through selects that keep every row, which XLA may fuse
  # differently (FMA contraction), so float32 rounding over 30 steps.
  got, got_state = _run_jitted(
    optax_ar.adam_ar(1e-2, 0.0, **options, lazy=True), params, grads
  )
  np.testing.assert_allclose(got[-1], want[-1], rtol=1e-6, atol=1e-7)
  assert got_state.inner_state[0].mu.dtype == want_state[0].mu.dtype


REFERENCE_OPTIONS = {
  "eps_root": {"eps_root": 1e-4},
  "nesterov": {"nesterov": True},
  "both": {"eps_root": 1e-6, "nesterov": True, "b1": 0.8},
}


@pytest.mark.parametrize("lazy", [False, True], ids=["dense", "lazy"])
@pytest.mark.parametrize(
  "options", REFERENCE_OPTIONS.values(), ids=REFERENCE_OPTIONS
)
def test_adam_options_match_numpy_reference(options, lazy):
  rng = np.random.default_rng(4)
  probs = ar_reference.mixed_touch_probabilities(24)
  stream = ar_reference.sparse_gradient_stream(rng, (24, 4), NUM_STEPS, probs)
  theta = rng.normal(size=(24, 4)).astype(np.float32)
  lr, alpha = 1e-2, 0.05
  tx = optax_ar.adam_ar(lr, alpha, **options, lazy=lazy)
  history, _ = _run_jitted(tx, jnp.asarray(theta), list(stream))
  ref = ar_reference.ReferenceAR(theta, kind="adam", lazy=lazy, **options)
  for i in range(NUM_STEPS):
    expected = ref.step(stream[i], lr=lr, alpha=alpha)
    # Same tolerance as test_matches_numpy_reference_on_sparse_stream.
    np.testing.assert_allclose(
      history[i], expected, rtol=2e-5, atol=2e-6, err_msg=f"step {i}"
    )


@pytest.mark.parametrize(
  "kwargs",
  [{}, {"initial_accumulator_value": 0.5, "eps": 1e-4}],
  ids=["defaults", "accumulator_eps"],
)
def test_adagrad_options_are_optax_adagrads(kwargs):
  params, grads = _dense_stream(3)
  want, _ = _run_jitted(optax.adagrad(1e-2, **kwargs), params, grads)
  got, _ = _run_jitted(optax_ar.adagrad_ar(1e-2, 0.0, **kwargs), params, grads)
  np.testing.assert_array_equal(got[-1], want[-1])
