"""Tests of the shared MLP, including the zero-initialisation trap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from examples.ctr.models import HIDDEN_BIAS_INIT
from examples.ctr.models import MLP

TARGETS = jnp.array([[1.0], [-1.0], [0.5], [-2.0]])
EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


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
  # gets no gradient until the inputs (embeddings) have moved. "No gradient"
  # is zero up to float32 rounding: the kernel gradient is a batch sum of B
  # terms h * dz, with h = HIDDEN_BIAS_INIT and |dz| at most 3 |W_out| |t| /
  # sqrt(BN epsilon), that cancel exactly in real arithmetic; the rounded sum
  # is off by at most B * eps32 times their total (~1e-7 seen, by CPU).
  batch = TARGETS.shape[0]
  bn_epsilon = mlp.norms[0].epsilon if batch_norm else 1e-5
  term = (
    HIDDEN_BIAS_INIT
    * 3
    * np.abs(mlp.out.kernel[...]).max()
    * np.abs(TARGETS).max()
    / np.sqrt(bn_epsilon)
  )
  rounding = batch * EPS32 * batch * term  # ~2.6e-5; no BN: ~1e-2
  assert (np.abs(hidden[1]).max() <= rounding) == batch_norm


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
  # Exact zeros on every backend: each gradient is a product with relu'(0),
  # which is exactly 0 (no rounding can make 0 * finite nonzero).
  assert not np.any(gx)
  assert not any(np.any(h) for h in hidden)


def test_parameter_count_and_initial_biases():
  mlp = MLP(6, (5, 3), out_features=2, rngs=nnx.Rngs(0))
  n = sum(x.size for x in jax.tree.leaves(nnx.state(mlp, nnx.Param)))
  assert n == (6 * 5 + 5) + (5 * 3 + 3) + (3 * 2 + 2)
  # Constant initialisers fill float32(value): exact on every backend.
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
  # Two float32 matmuls of 3 and 4 terms: a few eps32 (1.2e-7) of |y|.
  np.testing.assert_allclose(mlp(jnp.asarray(x)), y, rtol=1e-5, atol=1e-6)


def test_dropout_is_active_in_train_mode_only():
  mlp = MLP(3, (64,), dropout_rate=0.5, rngs=nnx.Rngs(0, dropout=1))
  x = jnp.ones((2, 3))
  train_out = np.asarray(mlp(x))
  assert np.mean(train_out == 0) > 0.2  # about half the units dropped
  mlp.eval()
  # One program on one input twice: XLA:CPU is deterministic, bitwise.
  np.testing.assert_array_equal(mlp(x), mlp(x))
  assert np.mean(np.asarray(mlp(x)) == 0) < np.mean(train_out == 0)
