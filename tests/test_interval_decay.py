"""adaptive_interval_decay: the rule by hand, and composition with optax."""

import ar_reference
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar


def _jit_update(tx):
  return jax.jit(tx.update)


def _decay_only(alpha, **kwargs):
  """The interval decay around an inner step that does nothing."""
  return optax_ar.adaptive_interval_decay(alpha, optax.sgd(0.0), **kwargs)


# The rule, by hand.


def test_row_touched_every_step_is_never_decayed():
  tx = _decay_only(0.5)
  update = _jit_update(tx)
  params = jnp.full((2, 3), 2.0)
  state = tx.init(params)
  grads = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
  for _ in range(10):
    updates, state = update(grads, state, params)
    np.testing.assert_array_equal(updates, 0.0)
  # Exact: untouched rows get lam = 0 by a select, and 0 * theta = 0;
  # last_step holds integers.
  np.testing.assert_array_equal(state.last_step.ravel(), [10, 0])


def test_first_touch_at_step_k_sees_interval_k_minus_1():
  alpha = 0.01
  tx = _decay_only(alpha)
  update = _jit_update(tx)
  params = jnp.full((1, 2), 3.0)
  state = tx.init(params)
  zero, one = jnp.zeros((1, 2)), jnp.ones((1, 2))
  for _ in range(6):
    updates, state = update(zero, state, params)
    np.testing.assert_array_equal(updates, 0.0)  # untouched: no decay
  updates, state = update(one, state, params)  # k = 7, I = 6
  # float32(alpha) * 6 * 3: two roundings (2 * eps32 = 2.4e-7 < 1e-6).
  np.testing.assert_allclose(updates, -alpha * 6 * 3.0, rtol=1e-6)
  assert int(state.last_step[0, 0]) == 7


def test_decay_clips_at_one_and_wipes_the_row():
  tx = _decay_only(0.3)
  update = _jit_update(tx)
  params = jnp.array([[1.5, -2.0], [4.0, 4.0]])
  state = tx.init(params)
  grads = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  for _ in range(5):
    _, state = update(grads, state, params)
  updates, state = update(jnp.ones((2, 2)), state, params)  # row 0: I = 5
  new_params = optax.apply_updates(params, updates)
  # Exact: lam clips to 1.0 and theta - 1.0 * theta is 0 in IEEE arithmetic;
  # row 1 is touched every step (lam = 0, an exact no-op).
  np.testing.assert_array_equal(new_params[0], 0.0)
  np.testing.assert_array_equal(new_params[1], params[1])


def test_decay_is_not_scaled_by_learning_rate():
  tx = optax_ar.adaptive_interval_decay(0.1, optax.sgd(1e-6))
  params = jnp.ones((1, 1))
  state = tx.init(params)
  zero, one = jnp.zeros((1, 1)), jnp.ones((1, 1))
  _, state = tx.update(zero, state, params)
  _, state = tx.update(zero, state, params)
  updates, _ = tx.update(one, state, params)  # I = 2: lam = 0.2
  # float32(0.1) * 2 + float32(1e-6): three roundings, < 1e-6.
  np.testing.assert_allclose(updates, -0.2 - 1e-6, rtol=1e-6)


def test_alpha_schedule_is_evaluated_at_the_step_count():
  # alpha(count) with count = k - 1 (optax's convention for schedules).
  tx = _decay_only(lambda count: 0.01 * count)
  params = jnp.ones((1, 1))
  state = tx.init(params)
  zero, one = jnp.zeros((1, 1)), jnp.ones((1, 1))
  for _ in range(3):
    _, state = tx.update(zero, state, params)
  updates, _ = tx.update(one, state, params)  # k = 4, I = 3, alpha = 0.03
  # float32(0.01) * 3 * 3: a few roundings, < 1e-6 (1e-5 stated).
  np.testing.assert_allclose(updates, -0.09, rtol=1e-5)


def test_rows_of_higher_rank_leaves_and_scalars():
  tx = _decay_only(0.25)
  params = {"cube": jnp.ones((3, 2, 2)), "s": jnp.asarray(2.0)}
  state = tx.init(params)
  assert state.last_step["cube"].shape == (3, 1, 1)
  assert state.last_step["s"].shape == ()
  grads = {"cube": jnp.zeros((3, 2, 2)), "s": jnp.asarray(0.0)}
  _, state = tx.update(grads, state, params)
  grads = {"cube": jnp.zeros((3, 2, 2)).at[1, 1, 0].set(5.0), "s": 1.0}
  updates, state = tx.update(grads, state, params)
  # 0.25 * 1 and 0.25 * 2: exact in binary; untouched rows exactly 0.
  np.testing.assert_allclose(updates["cube"][1], -0.25)
  np.testing.assert_array_equal(updates["cube"][0], 0.0)
  np.testing.assert_allclose(updates["s"], -0.5)


def test_mask_restricts_decay_to_selected_leaves():
  params = {"table": jnp.ones((2, 2)), "dense": jnp.ones((2, 2))}
  for mask in (
    {"table": True, "dense": False},
    lambda p: {"table": True, "dense": False},
  ):
    tx = _decay_only(0.5, mask=mask)
    state = tx.init(params)
    assert isinstance(state.last_step["dense"], optax.MaskedNode)
    grads = {k: jnp.zeros((2, 2)) for k in params}
    _, state = tx.update(grads, state, params)
    grads = {k: jnp.ones((2, 2)) for k in params}
    updates, _ = tx.update(grads, state, params)
    # 0.5 * 1: exact; the masked leaf gets no decay: exactly 0.
    np.testing.assert_allclose(updates["table"], -0.5)
    np.testing.assert_array_equal(updates["dense"], 0.0)


# Composition with optax.


def _sparse_problem(seed=0, steps=40):
  rng = np.random.default_rng(seed)
  params = {
    "table": jnp.asarray(rng.normal(size=(24, 4)), jnp.float32),
    "dense": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
  }
  probs = ar_reference.mixed_touch_probabilities(24)
  table = ar_reference.sparse_gradient_stream(rng, (24, 4), steps, probs)
  dense = rng.normal(size=(steps, 4, 3)).astype(np.float32)
  grads = [{"table": table[i], "dense": dense[i]} for i in range(steps)]
  return params, grads


def _train(tx, params, grads_seq):
  state = tx.init(params)
  update = jax.jit(tx.update)
  for grads in grads_seq:
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def test_after_clip_by_global_norm_matches_reference():
  params, grads_seq = _sparse_problem()
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax_ar.adam_ar(1e-2, 0.05))
  ours, _ = _train(tx, params, grads_seq)
  refs = {k: ar_reference.ReferenceAR(np.asarray(v)) for k, v in params.items()}
  for grads in grads_seq:
    norm = np.sqrt(
      sum(np.sum(np.square(g, dtype=np.float64)) for g in grads.values())
    )
    scale = min(1.0, 1.0 / norm)
    for k, ref in refs.items():
      ref.step(grads[k] * scale, lr=1e-2, alpha=0.05)
  for k, ref in refs.items():
    # float32 against the float64 reference over 40 steps: two roundings of
    # theta per step, 2 * 40 * eps32 = 1e-5 (the clip norm is one more);
    # gradients are given, not summed: no cancellation for Adam to amplify.
    np.testing.assert_allclose(ours[k], ref.theta, rtol=2e-5, atol=2e-6)


def test_inside_partition_and_masked():
  params, grads_seq = _sparse_problem(1)
  labels = {"table": "ar", "dense": "plain"}
  partitioned = optax.partition(
    {"ar": optax_ar.adam_ar(1e-2, 0.05), "plain": optax.adam(1e-2)}, labels
  )
  masked = optax.chain(
    optax.masked(optax_ar.adam_ar(1e-2, 0.05), {"table": True, "dense": False}),
    optax.masked(optax.adam(1e-2), {"table": False, "dense": True}),
  )
  via_mask_arg = optax_ar.adam_ar(
    1e-2, 0.05, mask={"table": True, "dense": False}
  )
  table_alone, _ = _train(
    optax_ar.adam_ar(1e-2, 0.05),
    params["table"],
    [g["table"] for g in grads_seq],
  )
  dense_alone, _ = _train(
    optax.adam(1e-2), params["dense"], [g["dense"] for g in grads_seq]
  )
  for tx in (partitioned, masked, via_mask_arg):
    result, _ = _train(tx, params, grads_seq)
    # The same elementwise arithmetic in three compositions: an ulp or so,
    # and nothing feeds back (the gradients are given).
    np.testing.assert_allclose(result["table"], table_alone, rtol=1e-6)
    np.testing.assert_allclose(result["dense"], dense_alone, rtol=1e-6)


def test_multi_steps_counts_optimizer_steps_not_micro_batches():
  params, grads_seq = _sparse_problem(2, steps=24)
  # Multiples of 1/8 averaged in pairs: MultiSteps' running mean and np.mean
  # are both exact, so both paths see the same gradients (an inexact mean
  # that nearly cancels would differ by an ulp, which Adam amplifies).
  grads_seq = jax.tree.map(lambda g: np.round(g * 8) / 8, grads_seq)
  every = 2
  tx = optax.MultiSteps(optax_ar.adam_ar(1e-2, 0.05), every_k_schedule=every)
  ours, state = _train(tx, params, grads_seq)
  assert int(state.inner_opt_state.count) == len(grads_seq) // every

  averaged = [
    jax.tree.map(
      lambda *g: np.mean(np.stack(g), axis=0), *grads_seq[i : i + every]
    )
    for i in range(0, len(grads_seq), every)
  ]
  expected, expected_state = _train(
    optax_ar.adam_ar(1e-2, 0.05), params, averaged
  )
  for k in params:
    # The same gradients (exact means): an ulp or so per step of elementwise
    # arithmetic over 12 optimizer steps, 12 * eps32 = 1.4e-6 (rtol 1e-5).
    np.testing.assert_allclose(ours[k], expected[k], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(
    state.inner_opt_state.last_step["table"],
    expected_state.last_step["table"],
  )


def test_apply_if_finite_skips_a_nan_step_entirely():
  params, grads_seq = _sparse_problem(3, steps=5)
  tx = optax.apply_if_finite(optax_ar.adam_ar(1e-2, 0.05), 3)
  params, state = _train(tx, params, grads_seq)
  bad = jax.tree.map(
    lambda g: jnp.asarray(g).at[0, 0].set(jnp.nan), grads_seq[0]
  )
  updates, new_state = jax.jit(tx.update)(bad, state, params)
  jax.tree.map(
    # Exact: apply_if_finite selects zeros and the old state.
    np.testing.assert_array_equal,
    updates,
    jax.tree.map(jnp.zeros_like, params),
  )
  jax.tree.map(
    np.testing.assert_array_equal, new_state.inner_state, state.inner_state
  )
  assert int(new_state.notfinite_count) == 1


@pytest.mark.parametrize("lazy", [False, True])
def test_tree_map_params_reaches_moments_and_last_step(lazy):
  params = {"table": jnp.ones((6, 4)), "dense": jnp.ones((4,))}
  tx = optax_ar.adam_ar(1e-3, 1e-3, lazy=lazy)
  state = tx.init(params)
  labels = {"table": "T", "dense": "D"}
  mapped = optax.tree_map_params(
    tx,
    lambda _, label: label,
    state,
    labels,
    transform_non_params=lambda _: "other",
  )
  assert mapped.last_step == labels
  assert mapped.inner_state[0].mu == labels
  assert mapped.inner_state[0].nu == labels
  assert mapped.count == "other"


# Bad input.


@pytest.mark.parametrize("alpha", [-1e-3, float("nan"), 1.0, 2.0])
def test_bad_alpha_is_rejected(alpha):
  with pytest.raises(ValueError, match="alpha"):
    optax_ar.adam_ar(1e-3, alpha)
  with pytest.raises(ValueError, match="alpha"):
    optax_ar.adagrad_ar(1e-2, alpha)


def test_non_numeric_arguments_are_rejected():
  with pytest.raises(TypeError, match="alpha"):
    optax_ar.adam_ar(1e-3, "1e-3")
  with pytest.raises(TypeError, match="lazy"):
    optax_ar.adaptive_interval_decay(1e-3, optax.sgd(0.1), lazy="yes")


def test_zero_alpha_is_valid():
  tx = optax_ar.adam_ar(1e-3, 0.0)
  params = jnp.ones((2, 2))
  tx.update(params, tx.init(params), params)


def test_missing_params_are_rejected():
  tx = optax_ar.adam_ar(1e-3, 1e-3)
  params = jnp.ones((2, 2))
  with pytest.raises(ValueError, match="params"):
    tx.update(params, tx.init(params))


def test_mismatched_mask_is_rejected():
  params = {"table": jnp.ones((2, 2)), "dense": jnp.ones((2,))}
  tx = optax_ar.adam_ar(1e-3, 1e-3, mask={"table": True, "other": False})
  with pytest.raises(ValueError, match="mask"):
    tx.init(params)
  tx = optax_ar.adam_ar(1e-3, 1e-3, mask={"table": 1.0, "dense": False})
  with pytest.raises(TypeError, match="mask"):
    tx.init(params)


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.adam_ar(1e-3, 1e-3),
    lambda: optax_ar.adam_ar(1e-3, 1e-3, lazy=True),
    lambda: optax_ar.adagrad_ar(1e-2, 1e-3),
  ],
  ids=["adam_ar", "adam_ar_lazy", "adagrad_ar"],
)
def test_gradient_tree_unlike_the_params_is_rejected(make):
  tx = make()
  params = {"table": jnp.ones((4, 2)), "dense": {"w": jnp.ones((3,))}}
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  tx.update(grads, state, params)  # well-formed: accepted
  with pytest.raises(ValueError, match="updates does not match the params"):
    tx.update({"table": grads["table"]}, state, params)
  with pytest.raises(ValueError, match="leaf dense/w has shape"):
    tx.update({**grads, "dense": {"w": jnp.ones((2,))}}, state, params)
  with pytest.raises(ValueError, match="leaf table has shape"):
    jax.jit(tx.update)({**grads, "table": jnp.ones((4, 3))}, state, params)


def test_inner_receives_touched_rows_when_lazy():
  """The public contract with a lazy inner step: the keyword touched_rows."""
  seen = []

  def update_fn(updates, state, params=None, *, touched_rows=None, **extra):
    del params, extra
    seen.append(touched_rows)
    return updates, state

  inner = optax.GradientTransformationExtraArgs(
    lambda params: optax.EmptyState(), update_fn
  )
  params = {"table": jnp.ones((3, 2)), "w": jnp.ones((2,))}
  grads = {
    "table": jnp.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]),
    "w": jnp.ones((2,)),
  }
  for lazy in (False, True):
    tx = optax_ar.adaptive_interval_decay(
      0.1, inner, lazy=lazy, mask={"table": True, "w": False}
    )
    tx.update(grads, tx.init(params), params)
  assert seen[0] is None  # not lazy: nothing passed
  np.testing.assert_array_equal(seen[1]["table"].ravel(), [True, False, True])
  assert seen[1]["w"] is True  # a leaf without the decay


def test_inner_is_lazy_needs_lazy_and_skips_the_wrappers_restore():
  with pytest.raises(ValueError, match="inner_is_lazy"):
    optax_ar.adaptive_interval_decay(0.1, optax.sgd(0.1), inner_is_lazy=True)
  with pytest.raises(TypeError, match="inner_is_lazy"):
    optax_ar.adaptive_interval_decay(
      0.1, optax.sgd(0.1), lazy=True, inner_is_lazy=1
    )
  # A stock inner declared lazy keeps its moments moving on idle rows: the
  # declaration, not the wrapper, decides who keeps them.
  params = jnp.ones((2, 2))
  grads = jnp.array([[1.0, 1.0], [0.0, 0.0]])
  moments = {}
  for inner_is_lazy in (False, True):
    tx = optax_ar.adaptive_interval_decay(
      0.1,
      optax.sgd(0.1, momentum=0.9),
      lazy=True,
      inner_is_lazy=inner_is_lazy,
    )
    state = tx.init(params)
    _, state = tx.update(grads, state, params)
    _, state = tx.update(grads[::-1], state, params)
    moments[inner_is_lazy] = np.asarray(state.inner_state[0].trace)
  np.testing.assert_array_equal(moments[False][0], 1.0)  # row 0 idle: kept
  np.testing.assert_array_equal(moments[True][0], np.float32(0.9))  # by sgd
  # adam_ar(lazy=True) is the public composition with scale_by_lazy_adam.
  composed = optax_ar.adaptive_interval_decay(
    0.05,
    optax.chain(
      optax_ar.scale_by_lazy_adam(), optax.scale_by_learning_rate(1e-2)
    ),
    lazy=True,
    inner_is_lazy=True,
  )
  rng = np.random.default_rng(0)
  probs = ar_reference.mixed_touch_probabilities(16)
  stream = ar_reference.sparse_gradient_stream(rng, (16, 2), 20, probs)
  results = []
  for tx in (composed, optax_ar.adam_ar(1e-2, 0.05, lazy=True)):
    p, state = jnp.ones((16, 2)), tx.init(jnp.ones((16, 2)))
    for g in stream:
      updates, state = jax.jit(tx.update)(g, state, p)
      p = optax.apply_updates(p, updates)
    results.append(p)
  # Bitwise: adam_ar(lazy=True) is this composition, the same program.
  np.testing.assert_array_equal(results[0], results[1])  # the same program
