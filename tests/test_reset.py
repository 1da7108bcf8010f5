"""reset_leaves: MEDA's reset of embedding tables and their optimizer state."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_ar

MASK = {"table": True, "dense": False}


def _trained(tx, steps=3):
  params = {"table": jnp.ones((5, 3)), "dense": jnp.ones((3,))}
  state = tx.init(params)
  for i in range(steps):
    grads = {
      "table": jnp.zeros((5, 3)).at[i].set(1.0),
      "dense": jnp.full((3,), 0.5),
    }
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize(
  "tx",
  [
    optax_ar.adam_ar(0.1, 0.01),
    optax_ar.adam_ar(0.1, 0.01, lazy=True, mask=MASK),
    optax_ar.adagrad_ar(0.1, 0.01),
  ],
  ids=["adam_ar", "adam_ar_lazy_masked", "adagrad_ar"],
)
def test_resets_table_moments_and_last_step(tx):
  params, state = _trained(tx)
  new_params, new_state = optax_ar.reset_leaves(tx, params, state, MASK)
  fresh = tx.init(new_params)

  # Exact: a reset copies values (init or the old ones), no arithmetic.
  np.testing.assert_array_equal(new_params["table"], 0.0)
  np.testing.assert_array_equal(new_params["dense"], params["dense"])
  np.testing.assert_array_equal(new_state.last_step["table"], 0)
  assert int(new_state.count) == 3

  # Every param-shaped copy of the table in the state is fresh; the dense
  # leaf's copies and every step count are kept.
  def copies_of(state, name, keep_non_params):
    return optax.tree_map_params(
      tx,
      lambda x, leaf_name: x if leaf_name == name else None,
      state,
      {"table": "table", "dense": "dense"},
      transform_non_params=(lambda x: x)
      if keep_non_params
      else (lambda _: None),
      is_leaf=lambda x: isinstance(x, optax.MaskedNode),
    )

  jax.tree.map(
    np.testing.assert_array_equal,
    copies_of(new_state, "table", False),
    copies_of(fresh, "table", False),
  )
  jax.tree.map(
    np.testing.assert_array_equal,
    copies_of(new_state, "dense", True),
    copies_of(state, "dense", True),
  )


def test_reset_to_given_init_and_keeps_hyperparams():
  tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
  params, state = _trained(tx)
  state.hyperparams["learning_rate"] = jnp.full_like(
    state.hyperparams["learning_rate"], 0.05
  )
  init = {"table": jnp.full((5, 3), 7.0), "dense": jnp.zeros(3)}
  new_params, new_state = optax_ar.reset_leaves(
    tx, params, state, MASK, init_params=init
  )
  # Exact: copied from init_params.
  np.testing.assert_array_equal(new_params["table"], 7.0)
  np.testing.assert_array_equal(new_state.inner_state[0].mu["table"], 0.0)
  # float32(0.05) read back: half an ulp, within approx's rel 1e-6.
  assert float(new_state.hyperparams["learning_rate"]) == pytest.approx(0.05)
  assert int(new_state.inner_state[0].count) == 3


def test_reset_is_jittable():
  tx = optax_ar.adam_ar(0.1, 0.01)
  params, state = _trained(tx)
  reset = jax.jit(lambda p, s: optax_ar.reset_leaves(tx, p, s, MASK))
  new_params, new_state = reset(params, state)
  np.testing.assert_array_equal(new_params["table"], 0.0)
  np.testing.assert_array_equal(new_state.inner_state[0].nu["table"], 0.0)


def test_reset_rejects_mismatched_mask():
  tx = optax.adam(0.1)
  params, state = _trained(tx)
  with pytest.raises(ValueError, match="mask"):
    optax_ar.reset_leaves(tx, params, state, {"table": True})


def test_reset_params_do_not_alias_init_params():
  # A jitted step donates the params it is given; on GPU/TPU that deletes
  # their buffers, so the reset must hand out copies of `init_params`.
  tx = optax.adam(0.1)
  params, state = _trained(tx)
  init = {"table": jnp.full((5, 3), 7.0), "dense": jnp.zeros(3)}
  for _ in range(2):
    params, state = optax_ar.reset_leaves(
      tx, params, state, MASK, init_params=init
    )
    assert params["table"] is not init["table"]
    assert (
      params["table"].unsafe_buffer_pointer()
      != init["table"].unsafe_buffer_pointer()
    )
    params["table"].delete()  # what donation does on an accelerator
    np.testing.assert_array_equal(init["table"], 7.0)
    params = dict(params, table=jnp.ones((5, 3)))
