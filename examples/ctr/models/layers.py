"""Dense building blocks shared by the CTR backbones.

Usage: ``mlp = MLP(64, (32, 16), out_features=1, rngs=nnx.Rngs(0))``;
``tower = MLPTower(4, 16, (32, 16), rngs=nnx.Rngs(0))``.

The zero-initialisation trap and how these layers avoid it
----------------------------------------------------------
The paper initialises embeddings to zero. With zero embeddings, zero hidden
biases and ReLU, every hidden pre-activation is exactly 0, and JAX defines
``relu'(0) = 0``: no gradient reaches the embeddings or any hidden weight, only
the output bias trains, and test AUC stays at 0.5 forever.

Fix used here: hidden biases start at a small positive constant
(:data:`HIDDEN_BIAS_INIT` = 0.01). With zero inputs every first-layer unit then
outputs ``relu(0.01) = 0.01 > 0``, sits on the linear side of ReLU and passes
gradient back to its inputs, so every embedding row present in a batch gets a
nonzero gradient at step 1. The network function is otherwise unchanged (plain
ReLU, standard Lecun-normal kernels); the constant is small enough not to
bias the logit noticeably. With batch normalisation the linear bias is dropped
(BN's mean subtraction would cancel it) and BN's shift ``beta`` gets the
positive constant instead, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

#: Initial value of hidden-layer biases (see the module docstring).
HIDDEN_BIAS_INIT = 0.01


class MLP(nnx.Module):
  """A multilayer perceptron: ``[Linear -> (BatchNorm) -> act -> (Dropout)]*``.

  Hidden layers use ReLU by default and start with bias
  :data:`HIDDEN_BIAS_INIT` so that zero inputs still pass gradient. An
  optional output layer (no activation, zero bias) follows.

  Parameters: a hidden layer from ``a`` to ``b`` units has ``a*b + b``
  parameters (``a*b + 2*b`` with batch norm: no linear bias, BN scale and
  shift); the output layer has ``a*out + out``.

  Args:
    in_features: input width.
    widths: hidden widths, possibly empty.
    out_features: width of a final linear layer, or None for none.
    activation: hidden activation.
    batch_norm: add batch normalisation before each activation.
    dropout_rate: dropout after each activation (0 disables it).
    hidden_bias_init: initial hidden bias (or BN shift).
    param_dtype: parameter dtype.
    rngs: random streams; ``params`` initialises kernels, ``dropout`` is used
      in train mode when ``dropout_rate > 0``.

  Example:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> mlp = MLP(4, (8,), out_features=1, rngs=nnx.Rngs(0))
    >>> mlp(jnp.zeros((2, 4))).shape
    (2, 1)
  """

  def __init__(
    self,
    in_features: int,
    widths: Sequence[int],
    *,
    out_features: int | None = None,
    activation: Callable[[jax.Array], jax.Array] = nnx.relu,
    batch_norm: bool = False,
    dropout_rate: float = 0.0,
    hidden_bias_init: float = HIDDEN_BIAS_INIT,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.activation = activation
    bias_init = nnx.initializers.constant(hidden_bias_init)
    linears, norms = [], []
    width = in_features
    for w in widths:
      linears.append(
        nnx.Linear(
          width,
          w,
          use_bias=not batch_norm,
          bias_init=bias_init,
          param_dtype=param_dtype,
          rngs=rngs,
        )
      )
      if batch_norm:
        norms.append(
          nnx.BatchNorm(
            w, bias_init=bias_init, param_dtype=param_dtype, rngs=rngs
          )
        )
      width = w
    self.hidden = nnx.List(linears)
    self.norms = nnx.List(norms)
    self.dropout = (
      nnx.Dropout(dropout_rate, rngs=rngs) if dropout_rate > 0 else None
    )
    self.out = (
      nnx.Linear(width, out_features, param_dtype=param_dtype, rngs=rngs)
      if out_features is not None
      else None
    )
    self.out_features = width if out_features is None else out_features

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, linear in enumerate(self.hidden):
      x = linear(x)
      if self.norms:
        x = self.norms[i](x)
      x = self.activation(x)
      if self.dropout is not None:
        x = self.dropout(x)
    if self.out is not None:
      x = self.out(x)
    return x


class MLPTower(MLP):
  """The backbones' deep head: ``logit = MLP(flatten(X))``.

  An :class:`MLP` over ``n * d`` inputs with one output unit; :meth:`logit`
  maps ``n`` embeddings of dimension ``d``, ``X`` of shape ``(batch, n, d)``,
  to one logit per example. DNN, Wide & Deep and xDeepFM apply it to the
  pooled field embeddings (``n = F``), WuKong to the output of its
  interaction stack. Called directly it is the :class:`MLP` (flat inputs,
  ``(batch, 1)`` outputs), with the same parameter names (``hidden``,
  ``norms``, ``out``).

  Args:
    num_embeddings: ``n``.
    embedding_dim: ``d``.
    widths: hidden widths.
    batch_norm: batch normalisation in the hidden layers.
    dropout_rate: dropout after each hidden activation.
    hidden_bias_init: initial hidden bias (or BN shift).
    param_dtype: parameter dtype.
    rngs: random streams.

  Example:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> tower = MLPTower(3, 4, (8,), rngs=nnx.Rngs(0))
    >>> tower.logit(jnp.zeros((2, 3, 4))).shape
    (2,)
  """

  def __init__(
    self,
    num_embeddings: int,
    embedding_dim: int,
    widths: Sequence[int],
    *,
    batch_norm: bool = False,
    dropout_rate: float = 0.0,
    hidden_bias_init: float = HIDDEN_BIAS_INIT,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    super().__init__(
      num_embeddings * embedding_dim,
      widths,
      out_features=1,
      batch_norm=batch_norm,
      dropout_rate=dropout_rate,
      hidden_bias_init=hidden_bias_init,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def logit(self, x: jax.Array) -> jax.Array:
    """Maps ``(batch, n, d)`` embeddings to ``(batch,)`` logits."""
    return self(x.reshape(x.shape[0], -1))[:, 0]
