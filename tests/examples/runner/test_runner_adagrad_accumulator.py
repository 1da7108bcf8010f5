"""Tests of the ``--adagrad-initial-accumulator`` flag (Adagrad, AdagradAR).

The flag must reach ``optax.adagrad`` / ``optax_ar.adagrad_ar`` (first step
``-lr g / sqrt(acc + g^2 + eps)``, checked against NumPy), keep optax's 0.1
as default, be recorded in the hyperparameters and parse from the command
line.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.ctr import main
from examples.ctr import optimizers
from examples.ctr import sparse_train
from examples.ctr.config import get_config

PARAMS = {"table": jnp.zeros((3, 2)), "w": jnp.zeros(2)}
MASK = {"table": True, "w": False}
GRADS = {
  "table": jnp.array([[1e-4, -2e-4], [0.0, 0.0], [3e-4, 0.0]]),
  "w": jnp.array([1e-4, 5e-2]),
}
EPS = 1e-7  # optax's default for adagrad


def _first_update(name, **kw):
  spec = optimizers.create_optimizer(name, MASK, **kw)
  state = spec.tx.init(PARAMS)
  updates, _ = jax.jit(spec.tx.update)(GRADS, state, PARAMS)
  return spec, updates


@pytest.mark.parametrize("name", ["adagrad", "adagrad_ar"])
@pytest.mark.parametrize("acc", [None, 1e-6, 1e-2])
def test_first_step_uses_the_initial_accumulator(name, acc):
  kw = {} if acc is None else {"adagrad_initial_accumulator": acc}
  spec, updates = _first_update(name, alpha=0.0, **kw)
  expected_acc = 0.1 if acc is None else acc
  assert spec.hyperparams["initial_accumulator_value"] == expected_acc
  lr = optimizers.ADAGRAD_LEARNING_RATE
  for key in ("table", "w"):
    g = np.asarray(GRADS[key], np.float64)
    want = -lr * g / np.sqrt(expected_acc + g**2 + EPS)
    # One float32 step against float64: a few roundings, 8 * eps32 = 1e-6.
    np.testing.assert_allclose(updates[key], want, rtol=1e-5, atol=1e-12)


def test_small_accumulator_gives_much_larger_steps_on_tiny_gradients():
  _, default = _first_update("adagrad")
  _, small = _first_update("adagrad", adagrad_initial_accumulator=1e-6)
  ratio = float(jnp.abs(small["table"][0, 0]) / jnp.abs(default["table"][0, 0]))
  # sqrt(0.1 + 1e-8 + 1e-7) / sqrt(1e-6 + 1e-8 + 1e-7) = 300.2
  # 300.2 is itself rounded to 4 digits: rel 1e-3 is the value's precision.
  assert ratio == pytest.approx(300.2, rel=1e-3)


def test_flag_parses_and_defaults_to_optax_value():
  assert get_config("default").adagrad_initial_accumulator == 0.1
  config = main.parse_config(["--adagrad-initial-accumulator", "1e-6"])
  assert config.adagrad_initial_accumulator == 1e-6


def test_sparse_path_gets_the_accumulator():
  config = get_config("test").replace(adagrad_initial_accumulator=1e-3)
  spec = sparse_train.create_optimizers(config, "adagrad_ar", 0.0, {})
  assert spec.hyperparams["initial_accumulator_value"] == 1e-3
  table_state = spec.table_opt.init({"t": jnp.zeros((3, 2))})
  # float32(1e-3) against 1e-3: half an ulp, eps32 / 2 = 6e-8.
  np.testing.assert_allclose(table_state.sum_of_squares["t"], 1e-3, rtol=1e-6)
  dense_state = spec.dense_tx.init({"w": jnp.zeros(2)})
  np.testing.assert_allclose(
    dense_state[0].sum_of_squares["w"], 1e-3, rtol=1e-6
  )
