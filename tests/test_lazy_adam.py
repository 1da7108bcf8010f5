"""scale_by_lazy_adam, adam_ar(lazy=True)'s direction, against optax."""

import ar_reference
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar


def _train(tx, params, grads):
  state = tx.init(params)
  update = jax.jit(tx.update)
  for g in grads:
    updates, state = update(g, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def _stream(steps=80, rows=32, dim=3):
  rng = np.random.default_rng(3)
  probs = ar_reference.mixed_touch_probabilities(rows)
  grads = ar_reference.sparse_gradient_stream(rng, (rows, dim), steps, probs)
  params = jnp.asarray(rng.normal(size=(rows, dim)), jnp.float32)
  return params, [jnp.asarray(g) for g in grads]


def test_equals_the_generic_lazy_wrapper_around_optax_adam():
  params, grads = _stream()
  lr, alpha = 1e-2, 0.02
  want_p, want_s = _train(
    optax_ar.adaptive_interval_decay(alpha, optax.adam(lr), lazy=True),
    params,
    grads,
  )
  got_p, got_s = _train(optax_ar.adam_ar(lr, alpha, lazy=True), params, grads)
  # The same optax arithmetic on touched rows in two programs (selects on
  # idle rows): an ulp now and then, not compounding (gradients are given).
  np.testing.assert_allclose(got_p, want_p, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(got_s.last_step, want_s.last_step)
  want_adam, got_adam = want_s.inner_state[0], got_s.inner_state[0]
  assert type(got_adam) is optax.ScaleByAdamState
  np.testing.assert_allclose(got_adam.mu, want_adam.mu, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(got_adam.nu, want_adam.nu, rtol=1e-6, atol=1e-12)
  # Rows never touched kept their moments at zero: the stream is lazy.
  never = ~np.any(np.stack([np.asarray(g) for g in grads]) != 0, axis=(0, 2))
  assert never.any()
  np.testing.assert_array_equal(np.asarray(got_adam.mu)[never], 0.0)


def test_idle_rows_keep_their_params_bitwise_including_negative_zero():
  tx = optax_ar.adam_ar(1e-2, 0.5, lazy=True)
  params = jnp.array([[-0.0, 1.0], [-0.0, -2.0]])
  state = tx.init(params)
  grads = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  updates, _ = tx.update(grads, state, params)
  new = optax.apply_updates(params, updates)
  # Exact: idle rows are selected, never computed.
  assert np.signbit(np.asarray(new)[0, 0])  # -0.0 stays -0.0
  np.testing.assert_array_equal(new[0], params[0])
  assert not np.array_equal(new[1], params[1])


def test_without_the_mask_it_is_optax_scale_by_adam():
  params, grads = _stream(steps=10)
  want_p, want_s = _train(optax.scale_by_adam(), params, grads)
  got_p, got_s = _train(optax_ar.scale_by_lazy_adam(), params, grads)
  # Bitwise by contract: without touched_rows it runs optax's arithmetic
  # unchanged (no select is inserted).
  np.testing.assert_array_equal(got_p, want_p)
  for got, want in zip(
    jax.tree.leaves(got_s), jax.tree.leaves(want_s), strict=True
  ):
    np.testing.assert_array_equal(got, want)


LAZY_ADAM_OPTIONS = {
  "defaults": {},
  "eps_root": {"eps_root": 1e-6},
  "mu_dtype": {"mu_dtype": jnp.bfloat16},
  "nesterov": {"nesterov": True},
}


@pytest.mark.parametrize(
  "options", LAZY_ADAM_OPTIONS.values(), ids=LAZY_ADAM_OPTIONS
)
def test_every_row_touched_is_optax_scale_by_adam(options):
  """touched_rows=None and touched_rows of all True: scale_by_adam itself."""
  params, grads = _stream(steps=10)
  want_p, want_s = _train(optax.scale_by_adam(**options), params, grads)
  got_p, got_s = _train(optax_ar.scale_by_lazy_adam(**options), params, grads)
  np.testing.assert_array_equal(got_p, want_p)
  assert jax.tree.map(lambda x: x.dtype, got_s) == jax.tree.map(
    lambda x: x.dtype, want_s
  )
  tx = optax_ar.scale_by_lazy_adam(**options)
  state = tx.init(params)
  want = optax.scale_by_adam(**options)
  want_state = want.init(params)
  all_rows = jnp.ones((params.shape[0], 1), bool)
  for g in grads:
    got_u, state = tx.update(g, state, touched_rows=all_rows)
    want_u, want_state = want.update(g, want_state)
    # Bitwise: selects that keep every row change no arithmetic (eager).
    np.testing.assert_array_equal(got_u, want_u)
  np.testing.assert_array_equal(state.mu, want_state.mu)


def test_touched_rows_as_a_prefix_or_true_and_a_bad_tree():
  tx = optax_ar.scale_by_lazy_adam()
  params = {"t": jnp.zeros((2, 1)), "w": jnp.zeros((3,))}
  grads = jax.tree.map(jnp.ones_like, params)
  state = tx.init(params)
  touched = {"t": jnp.array([[False], [True]]), "w": True}
  _, new = tx.update(grads, state, touched_rows=touched)
  # (1 - b1) * 1 = float32(0.1): half an ulp (the default rtol is 1e-7).
  np.testing.assert_allclose(new.mu["t"].ravel(), [0.0, 0.1])
  np.testing.assert_allclose(new.mu["w"], 0.1)
  _, new = tx.update(grads, state, touched_rows=True)
  np.testing.assert_allclose(new.mu["t"].ravel(), [0.1, 0.1])
  with pytest.raises(ValueError, match="touched_rows does not match"):
    tx.update(grads, state, touched_rows={"t": True})
