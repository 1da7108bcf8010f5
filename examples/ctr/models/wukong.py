"""WuKong backbone (Zhang et al. 2024): stacked FM and linear compression.

Usage: ``model = WuKong(fields, num_layers=2, rngs=nnx.Rngs(0))``.

Zhang, Luo, Chen, Nie, Liu, Guo, Zhao, Li, Hao, Yao, Lakshminarayanan, Wen,
Park, Naumov, Chen, "Wukong: Towards a Scaling Law for Large-Scale
Recommendation", ICML 2024 (arXiv:2403.02545), Section 3. No reference JAX
implementation exists; this one implements the paper's equations as follows
(``X_i`` is the ``(n_i, d)`` matrix of embeddings entering layer ``i``;
``X_0`` stacks the pooled field embeddings, ``n_0 = F``):

* Interaction layer (:class:`WuKongLayer`)::

    X_{i+1} = LN(concat(FMB_i(X_i), LCB_i(X_i)) + R_i X_i)

  ``R_i`` is the identity when ``n_{i+1} = n_F + n_L`` equals ``n_i`` and a
  learned ``(n_{i+1}, n_i)`` projection otherwise (the paper's residual,
  projected when the number of embeddings changes). ``LN`` normalises each
  embedding over its ``d`` entries.
* Factorization Machine Block (:class:`FactorizationMachineBlock`)::

    FMB(X) = reshape(MLP(LN(flatten(FM(X)))), (n_F, d))

  with the paper's optimised FM ``FM(X) = X X^T Y``, ``Y`` a learned
  ``(n_i, k)`` projection, computed as ``X (X^T Y)`` in ``O(n d k)``.
* Linear Compression Block (:class:`LinearCompressionBlock`)::

    LCB(X) = W_L X,   W_L of shape (n_L, n_i)

  (a linear recombination of embeddings, no new interactions).
* Output: ``logit = MLP(flatten(X_l))``.

The paper's dense features (embedded by an MLP) are absent: every input
here is a categorical field.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from examples.ctr.data.schema import FieldSpec
from examples.ctr.models.base import CTRModel
from examples.ctr.models.base import Rows
from examples.ctr.models.embedding import FieldEmbedding
from examples.ctr.models.layers import HIDDEN_BIAS_INIT
from examples.ctr.models.layers import MLP
from examples.ctr.models.layers import MLPTower

_LECUN = nnx.initializers.lecun_normal(in_axis=0, out_axis=1)


class LinearCompressionBlock(nnx.Module):
  """``LCB(X) = W_L X``: ``(batch, n_in, d) -> (batch, n_out, d)``.

  Zhang et al. 2024, Section 3 (Linear Compression Block). Parameters:
  ``n_in * n_out``.

  Example:
    >>> from flax import nnx
    >>> lcb = LinearCompressionBlock(5, 3, rngs=nnx.Rngs(0))
    >>> lcb(jnp.ones((2, 5, 4))).shape
    (2, 3, 4)
  """

  def __init__(
    self,
    n_in: int,
    n_out: int,
    *,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.weight = nnx.Param(_LECUN(rngs.params(), (n_in, n_out), param_dtype))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.einsum("bnd,nm->bmd", x, self.weight[...])


class FactorizationMachineBlock(nnx.Module):
  """``FMB(X) = reshape(MLP(LN(flatten(X X^T Y))), (n_out, d))``.

  Zhang et al. 2024, Section 3 (Factorization Machine Block, with the
  optimised FM ``X X^T Y``). Parameters: ``n_in * k`` (``Y``) +
  ``2 * n_in * k`` (LN) + the MLP from ``n_in * k`` to ``n_out * d``.

  Args:
    n_in: embeddings in.
    n_out: ``n_F``, embeddings out.
    dim: ``d``.
    rank: ``k``, columns of ``Y``.
    mlp_widths: hidden widths of the MLP.
    hidden_bias_init: initial hidden bias of the MLP.
    param_dtype: parameter dtype.
    rngs: random streams.

  Example:
    >>> from flax import nnx
    >>> fmb = FactorizationMachineBlock(5, 3, 4, rank=2, mlp_widths=(8,),
    ...                                 rngs=nnx.Rngs(0))
    >>> fmb(jnp.ones((2, 5, 4))).shape
    (2, 3, 4)
  """

  def __init__(
    self,
    n_in: int,
    n_out: int,
    dim: int,
    *,
    rank: int,
    mlp_widths: Sequence[int],
    hidden_bias_init: float = HIDDEN_BIAS_INIT,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.n_out = n_out
    self.dim = dim
    self.projection = nnx.Param(
      _LECUN(rngs.params(), (n_in, rank), param_dtype)
    )
    self.norm = nnx.LayerNorm(n_in * rank, param_dtype=param_dtype, rngs=rngs)
    self.mlp = MLP(
      n_in * rank,
      mlp_widths,
      out_features=n_out * dim,
      hidden_bias_init=hidden_bias_init,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def fm(self, x: jax.Array) -> jax.Array:
    """The optimised FM ``X (X^T Y)``: ``(batch, n, d) -> (batch, n, k)``."""
    xty = jnp.einsum("bnd,nk->bdk", x, self.projection[...])
    return jnp.einsum("bnd,bdk->bnk", x, xty)

  def __call__(self, x: jax.Array) -> jax.Array:
    z = self.fm(x).reshape(x.shape[0], -1)
    return self.mlp(self.norm(z)).reshape(x.shape[0], self.n_out, self.dim)


class WuKongLayer(nnx.Module):
  """``X' = LN(concat(FMB(X), LCB(X)) + R X)`` (see the module docstring).

  Parameters: FMB + LCB + ``2 * d`` (LN) + ``n_in * (n_F + n_L)`` for ``R``
  when ``n_in != n_F + n_L``.

  Example:
    >>> from flax import nnx
    >>> layer = WuKongLayer(5, 2, 3, 4, rank=2, mlp_widths=(8,),
    ...                     rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((2, 5, 4))).shape
    (2, 5, 4)
  """

  def __init__(
    self,
    n_in: int,
    num_fmb: int,
    num_lcb: int,
    dim: int,
    *,
    rank: int,
    mlp_widths: Sequence[int],
    hidden_bias_init: float = HIDDEN_BIAS_INIT,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    n_out = num_fmb + num_lcb
    self.fmb = FactorizationMachineBlock(
      n_in,
      num_fmb,
      dim,
      rank=rank,
      mlp_widths=mlp_widths,
      hidden_bias_init=hidden_bias_init,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.lcb = LinearCompressionBlock(
      n_in, num_lcb, param_dtype=param_dtype, rngs=rngs
    )
    self.residual = (
      LinearCompressionBlock(n_in, n_out, param_dtype=param_dtype, rngs=rngs)
      if n_in != n_out
      else None
    )
    self.norm = nnx.LayerNorm(dim, param_dtype=param_dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    residual = x if self.residual is None else self.residual(x)
    y = jnp.concatenate([self.fmb(x), self.lcb(x)], axis=1)
    return self.norm(y + residual)


class WuKong(CTRModel):
  """WuKong: field embeddings -> interaction stack -> MLP -> logit.

  See the module docstring for the equations (Zhang et al. 2024, Sec. 3).

  Args:
    fields, embedding_dim, mlp_widths, embedding_init, embedding_init_stddev,
    pooling, hidden_bias_init, param_dtype, rngs: as
    :class:`~examples.ctr.models.dnn.DNN` (``mlp_widths`` is the final MLP).
    num_layers: ``l``, interaction layers.
    num_fmb_embeddings: ``n_F``, FMB output embeddings per layer.
    num_lcb_embeddings: ``n_L``, LCB output embeddings per layer.
    fm_rank: ``k``, columns of the optimised FM projection ``Y``.
    fmb_mlp_widths: hidden widths of each FMB's MLP.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> model = WuKong([FieldSpec("user", 10), FieldSpec("item", 5)],
    ...                embedding_dim=4, num_layers=1, num_fmb_embeddings=2,
    ...                num_lcb_embeddings=2, fm_rank=2, fmb_mlp_widths=(8,),
    ...                mlp_widths=(8,), rngs=nnx.Rngs(0))
    >>> model({"user": jnp.array([2, 3]), "item": jnp.array([4, 1])}).shape
    (2,)
  """

  def __init__(
    self,
    fields: Sequence[FieldSpec],
    *,
    embedding_dim: int = 32,
    num_layers: int = 2,
    num_fmb_embeddings: int = 8,
    num_lcb_embeddings: int = 8,
    fm_rank: int = 8,
    fmb_mlp_widths: Sequence[int] = (128,),
    mlp_widths: Sequence[int] = (256, 128),
    embedding_init: str = "zeros",
    embedding_init_stddev: float = 0.01,
    pooling: str = "mean",
    hidden_bias_init: float = HIDDEN_BIAS_INIT,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.embedding = FieldEmbedding(
      fields,
      embedding_dim,
      init=embedding_init,
      init_stddev=embedding_init_stddev,
      pooling=pooling,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    layers = []
    n = len(fields)
    for _ in range(num_layers):
      layers.append(
        WuKongLayer(
          n,
          num_fmb_embeddings,
          num_lcb_embeddings,
          embedding_dim,
          rank=fm_rank,
          mlp_widths=fmb_mlp_widths,
          hidden_bias_init=hidden_bias_init,
          param_dtype=param_dtype,
          rngs=rngs,
        )
      )
      n = num_fmb_embeddings + num_lcb_embeddings
    self.layers = nnx.List(layers)
    self.mlp = MLPTower(
      n,
      embedding_dim,
      mlp_widths,
      hidden_bias_init=hidden_bias_init,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def forward_from_embeddings(
    self, rows: Rows, features: Mapping[str, jax.Array]
  ) -> jax.Array:
    x = self.embedding.pool(rows["embedding"], features)
    for layer in self.layers:
      x = layer(x)
    return self.mlp.logit(x)
