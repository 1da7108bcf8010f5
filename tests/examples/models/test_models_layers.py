"""Tests of the shared MLP, including the zero-initialisation trap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from examples.ctr.models import HIDDEN_BIAS_INIT
from examples.ctr.models import MLP

TARGETS = jnp.array([[1.0], [-1.0], [0.5], [-2.0]])


def _input_and_kernel_grads(mlp):
  """Gradients at an all-zero input (what zero embeddings feed the MLP)."""
  graphdef, params, rest = nnx.split(mlp, nnx.Param, ...)

  def f(p, x, r):
    return (nnx.merge(graphdef, p, r, copy=True)(x) * TARGETS).sum()

  grad_fn = jax.jit(jax.grad(f, argnums=(0, 1)))
  gp, gx = grad_fn(params, jnp.zeros((4, 6)), rest)
  hidden = [
    np.asarray(layer["kernel"])
    for layer in nnx.to_pure_dict(gp)["hidden"].values()
  ]
  return np.asarray(gx), hidden


@pytest.mark.parametrize("batch_norm", [False, True])
def test_positive_hidden_bias_lets_zero_inputs_train(batch_norm):
  mlp = MLP(6, (5, 3), out_features=1, batch_norm=batch_norm, rngs=nnx.Rngs(0))
  gx, hidden = _input_and_kernel_grads(mlp)
  assert np.all(np.any(gx != 0, axis=1))  # every example's input moves
  # Without BN the second layer sees the nonzero activations relu(0.01). With
  # BN its input is constant over the batch, which BN cancels, so its kernel
  # gets no gradient until the inputs (embeddings) have moved.
  assert np.any(hidden[1] != 0) != batch_norm


@pytest.mark.parametrize("batch_norm", [False, True])
def test_zero_hidden_bias_reproduces_the_trap(batch_norm):
  """ReLU'(0) = 0 in JAX: zero inputs and zero biases give zero gradients."""
  assert jax.grad(jax.nn.relu)(0.0) == 0.0
  mlp = MLP(
    6,
    (5, 3),
    out_features=1,
    batch_norm=batch_norm,
    hidden_bias_init=0.0,
    rngs=nnx.Rngs(0),
  )
  gx, hidden = _input_and_kernel_grads(mlp)
  assert not np.any(gx)
  assert not any(np.any(h) for h in hidden)


def test_parameter_count_and_initial_biases():
  mlp = MLP(6, (5, 3), out_features=2, rngs=nnx.Rngs(0))
  n = sum(x.size for x in jax.tree.leaves(nnx.state(mlp, nnx.Param)))
  assert n == (6 * 5 + 5) + (5 * 3 + 3) + (3 * 2 + 2)
  np.testing.assert_allclose(mlp.hidden[0].bias[...], HIDDEN_BIAS_INIT)
  np.testing.assert_array_equal(mlp.out.bias[...], 0.0)
  bn = MLP(6, (5, 3), out_features=2, batch_norm=True, rngs=nnx.Rngs(0))
  n = sum(x.size for x in jax.tree.leaves(nnx.state(bn, nnx.Param)))
  assert n == (6 * 5 + 2 * 5) + (5 * 3 + 2 * 3) + (3 * 2 + 2)
  np.testing.assert_allclose(bn.norms[0].bias[...], HIDDEN_BIAS_INIT)


def test_forward_matches_numpy():
  mlp = MLP(3, (4,), out_features=1, rngs=nnx.Rngs(1))
  x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  h = np.maximum(
    x @ np.asarray(mlp.hidden[0].kernel[...]) + mlp.hidden[0].bias[...], 0
  )
  y = h @ np.asarray(mlp.out.kernel[...]) + np.asarray(mlp.out.bias[...])
  np.testing.assert_allclose(mlp(jnp.asarray(x)), y, rtol=1e-5, atol=1e-6)


def test_dropout_is_active_in_train_mode_only():
  mlp = MLP(3, (64,), dropout_rate=0.5, rngs=nnx.Rngs(0, dropout=1))
  x = jnp.ones((2, 3))
  train_out = np.asarray(mlp(x))
  assert np.mean(train_out == 0) > 0.2  # about half the units dropped
  mlp.eval()
  np.testing.assert_array_equal(mlp(x), mlp(x))
  assert np.mean(np.asarray(mlp(x)) == 0) < np.mean(train_out == 0)
