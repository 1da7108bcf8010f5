"""Tests of examples.ctr.optimizers: every name builds and updates correctly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from examples.ctr import optimizers
from examples.ctr import research  # noqa: F401 (registers the variants)

PARAMS = {"table": jnp.ones((4, 2)), "w": jnp.ones(3)}
MASK = {"table": True, "w": False}


def _loss(params):
  return jnp.sum(params["table"][2] ** 2) + jnp.sum(params["w"] ** 2)


@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_every_optimizer_takes_a_step(name):
  spec = optimizers.create_optimizer(name, MASK, alpha=1e-2)
  state = spec.tx.init(PARAMS)
  grads = jax.grad(_loss)(PARAMS)
  extra = (
    {"grad_fn": lambda p, _: jax.grad(_loss)(p)} if spec.needs_grad_fn else {}
  )
  updates, _ = jax.jit(lambda g, s, p: spec.tx.update(g, s, p, **extra))(
    grads, state, PARAMS
  )
  new = optax.apply_updates(PARAMS, updates)
  assert float(_loss(new)) < float(_loss(PARAMS))
  assert spec.needs_grad_fn == (name == "sam")
  assert spec.reset_tables_each_epoch == (name == "meda")
  assert (spec.decay_on_read is not None) == (name == "adam_ar_decay_on_read")
  expected_lr = 1e-2 if name.startswith("adagrad") else 1e-3
  assert spec.hyperparams["learning_rate"] == expected_lr


def test_adamw_decays_tables_only_by_alpha_per_step():
  alpha, lr = 1e-2, 1e-3
  spec = optimizers.create_optimizer("adamw", MASK, alpha=alpha)
  # Python floats (float64): the same division, default rel 1e-6.
  assert spec.hyperparams["weight_decay"] == pytest.approx(alpha / lr)
  zero = jax.tree.map(jnp.zeros_like, PARAMS)
  updates, _ = spec.tx.update(zero, spec.tx.init(PARAMS), PARAMS)
  # Zero gradient: the update is the decay alone, -lr * wd * param.
  # float32(lr) * float32(wd) * param: two roundings and lr's own, against
  # the float64 product: 3 * eps32 = 3.6e-7 (the default rtol, 1e-7, is not).
  np.testing.assert_allclose(
    updates["table"],
    -alpha * PARAMS["table"],
    rtol=3 * float(np.finfo(np.float32).eps),
  )
  # Exact: w is not decayed, and Adam moves a zero gradient by 0 / eps = 0.
  np.testing.assert_allclose(updates["w"], 0.0)


def test_adam_ar_decays_untouched_then_touched_table_rows_only():
  spec = optimizers.create_optimizer("adam_ar", MASK, alpha=0.25)
  state = spec.tx.init(PARAMS)
  params = PARAMS
  for _ in range(3):  # row 2 of the table and w are touched every step
    grads = jax.grad(_loss)(params)
    updates, state = spec.tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  grads = {"table": jnp.ones((4, 2)), "w": jnp.ones(3)}  # all rows touched
  updates, _ = spec.tx.update(grads, state, params)
  # Rows 0, 1, 3 skipped 3 steps: decay min(1, 0.25 * 3) = 0.75, plus Adam.
  adam_part = updates["table"][0] + 0.75 * params["table"][0]
  assert float(jnp.abs(adam_part).max()) < 2e-3
  # Dense w is outside the AR mask: Adam alone (|step| <= ~lr).
  assert float(jnp.abs(updates["w"]).max()) < 2e-3


def test_weight_decay_flag_overrides_alpha():
  spec = optimizers.create_optimizer("adamw", MASK, weight_decay=0.5)
  assert spec.hyperparams["weight_decay"] == 0.5


def test_unknown_optimizer_raises():
  with pytest.raises(ValueError, match="unknown optimizer"):
    optimizers.create_optimizer("lion", MASK)
