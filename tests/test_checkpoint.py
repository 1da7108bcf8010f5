"""The whole optimizer state round-trips through Orbax."""

import jax
import numpy as np
import optax
import pytest

import optax_ar

ocp = pytest.importorskip("orbax.checkpoint")

MASK = {"table": True, "dense": False}


def _grads(step):
  rng = np.random.default_rng(step)
  touched = rng.random(32) < 0.2
  return {
    "table": (rng.normal(size=(32, 8)) * touched[:, None]).astype(np.float32),
    "dense": rng.normal(size=(8,)).astype(np.float32),
  }


def _train(tx, params, state, steps):
  update = jax.jit(tx.update)
  for step in steps:
    updates, state = update(_grads(step), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_ar.adam_ar(1e-2, 0.05),
    lambda: optax_ar.adam_ar(1e-2, 0.05, lazy=True, mask=MASK),
    lambda: optax_ar.adagrad_ar(1e-1, 0.05),
  ],
  ids=["adam_ar", "adam_ar_lazy_masked", "adagrad_ar"],
)
def test_save_restore_continue_is_bitwise_uninterrupted(make, tmp_path):
  init_params = {
    "table": np.zeros((32, 8), np.float32),
    "dense": np.ones((8,), np.float32),
  }
  tx = make()
  uninterrupted, _ = _train(tx, init_params, tx.init(init_params), range(20))

  params, state = _train(tx, init_params, tx.init(init_params), range(10))
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
  checkpointer.wait_until_finished()
  del params, state

  # A fresh optimizer and a target built from scratch, as a new process has.
  fresh_tx = make()
  target = jax.eval_shape(
    lambda p: {"params": p, "opt_state": fresh_tx.init(p)}, init_params
  )
  restored = ocp.StandardCheckpointer().restore(tmp_path / "ckpt", target)
  assert int(restored["opt_state"].count) == 10
  resumed, _ = _train(
    fresh_tx, restored["params"], restored["opt_state"], range(10, 20)
  )
  for k in init_params:
    # Bitwise by contract: the restored values are the saved ones, and the
    # same compiled step runs on them (XLA:CPU is deterministic).
    np.testing.assert_array_equal(resumed[k], uninterrupted[k])
