"""xDeepFM backbone (Lian et al. 2018): linear + CIN + DNN.

Usage: ``model = XDeepFM(fields, cin_layer_sizes=(128, 128), rngs=rngs)``.
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
from examples.ctr.models.embedding import per_id_weights
from examples.ctr.models.layers import HIDDEN_BIAS_INIT
from examples.ctr.models.layers import MLPTower


class CIN(nnx.Module):
  """Compressed Interaction Network (Lian et al. 2018, Section 3.2).

  Lian, Zhou, Zhang, Chen, Xie, Sun, "xDeepFM: Combining Explicit and
  Implicit Feature Interactions for Recommender Systems", KDD 2018.
  With ``X^0`` the ``(m, D)`` matrix of the ``m`` field embeddings, layer
  ``k`` computes ``H_k`` feature maps (paper Eq. 6)::

    X^k[h, :] = sum_{i < H_{k-1}} sum_{j < m} W^{k,h}[i, j] *
                (X^{k-1}[i, :] o X^0[j, :])

  (``o`` is the Hadamard product; no bias and no activation, as in Eq. 6),
  then sum-pools each feature map over the embedding axis (Eq. 7),
  ``p^k[h] = sum_d X^k[h, d]``, and returns ``p+ = [p^1, ..., p^T]``.

  With ``split_half`` (as in the authors' code, not in the equations) half of
  the maps of every layer but the last go to the output and the other half
  to the next layer; layer sizes must then be even.

  Parameters: ``sum_k H_k * H'_{k-1} * m`` where ``H'_0 = m`` and
  ``H'_k = H_k`` (``H_k / 2`` with ``split_half``).

  Args:
    num_fields: ``m``.
    layer_sizes: ``(H_1, ..., H_T)``.
    split_half: see above.
    param_dtype: parameter dtype.
    rngs: random streams.

  Example:
    >>> from flax import nnx
    >>> cin = CIN(3, (4, 2), rngs=nnx.Rngs(0))
    >>> cin(jnp.ones((5, 3, 8))).shape
    (5, 6)
  """

  def __init__(
    self,
    num_fields: int,
    layer_sizes: Sequence[int],
    *,
    split_half: bool = False,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if split_half and any(h % 2 for h in layer_sizes[:-1]):
      raise ValueError(f"split_half needs even layer sizes: {layer_sizes}")
    self.split_half = split_half
    init = nnx.initializers.lecun_normal(in_axis=(1, 2), out_axis=0)
    weights = []
    prev = num_fields
    out_features = 0
    for k, h in enumerate(layer_sizes):
      weights.append(
        nnx.Param(init(rngs.params(), (h, prev, num_fields), param_dtype))
      )
      last = k == len(layer_sizes) - 1
      prev = h // 2 if split_half and not last else h
      out_features += h // 2 if split_half and not last else h
    self.weights = nnx.List(weights)
    self.out_features = out_features

  def __call__(self, x0: jax.Array) -> jax.Array:
    """Maps ``(batch, m, D)`` embeddings to ``(batch, sum of pooled maps)``."""
    x = x0
    pooled = []
    for k, w in enumerate(self.weights):
      xk = jnp.einsum("hij,bid,bjd->bhd", w[...], x, x0)
      last = k == len(self.weights) - 1
      if self.split_half and not last:
        x, out = jnp.split(xk, 2, axis=1)
      else:
        x = out = xk
      pooled.append(out.sum(axis=-1))
    return jnp.concatenate(pooled, axis=-1)


class XDeepFM(CTRModel):
  """xDeepFM: ``logit = w_lin^T a + w_dnn^T x_dnn + w_cin^T p+ + b``.

  Lian et al., KDD 2018, output equation (Eq. 9, before the sigmoid): ``a``
  is the one-hot raw input, so ``w_lin^T a`` is a sum of per-ID weights,
  stored as zero-initialised ``(vocab_size, 1)`` tables in ``self.linear``
  (rows decayed by AdamAR like embeddings); ``x_dnn`` is the last hidden
  layer of the DNN, whose output layer holds ``w_dnn`` and the bias ``b``;
  ``p+`` is the :class:`CIN` output and ``w_cin`` has no bias.

  At zero-initialised embeddings the CIN (a product of embeddings) has zero
  gradient; the linear and DNN parts move the embeddings off zero in the
  first step, after which the CIN trains too.

  Parameters: ``sum_f V_f * (d + 1)`` per-ID values + CIN + ``w_cin`` +
  the MLP over ``F * d`` inputs.

  Args:
    fields, embedding_dim, mlp_widths, batch_norm, dropout_rate,
    embedding_init, embedding_init_stddev, pooling, hidden_bias_init,
    param_dtype, rngs: as :class:`~examples.ctr.models.dnn.DNN`.
    cin_layer_sizes: CIN feature maps per layer.
    cin_split_half: see :class:`CIN`.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> model = XDeepFM([FieldSpec("user", 10), FieldSpec("item", 5)],
    ...                 embedding_dim=4, mlp_widths=(8,), cin_layer_sizes=(3,),
    ...                 rngs=nnx.Rngs(0))
    >>> model({"user": jnp.array([2, 3]), "item": jnp.array([4, 1])}).shape
    (2,)
  """

  table_groups = ("embedding", "linear")

  def __init__(
    self,
    fields: Sequence[FieldSpec],
    *,
    embedding_dim: int = 32,
    mlp_widths: Sequence[int] = (256, 128),
    cin_layer_sizes: Sequence[int] = (128, 128),
    cin_split_half: bool = False,
    batch_norm: bool = False,
    dropout_rate: float = 0.0,
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
    self.linear = per_id_weights(
      fields, pooling=pooling, param_dtype=param_dtype, rngs=rngs
    )
    self.cin = CIN(
      len(fields),
      cin_layer_sizes,
      split_half=cin_split_half,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.cin_out = nnx.Linear(
      self.cin.out_features,
      1,
      use_bias=False,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.mlp = MLPTower(
      len(fields),
      embedding_dim,
      mlp_widths,
      batch_norm=batch_norm,
      dropout_rate=dropout_rate,
      hidden_bias_init=hidden_bias_init,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def forward_from_embeddings(
    self, rows: Rows, features: Mapping[str, jax.Array]
  ) -> jax.Array:
    linear = self.linear.pool(rows["linear"], features).sum(axis=(1, 2))
    x = self.embedding.pool(rows["embedding"], features)
    cin = self.cin_out(self.cin(x))[:, 0]
    dnn = self.mlp.logit(x)
    return linear + cin + dnn
