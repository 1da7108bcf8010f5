"""DNN backbone: concatenated field embeddings -> MLP -> logit.

Usage: ``model = DNN(fields, mlp_widths=(256, 128), rngs=nnx.Rngs(0))``.
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
from examples.ctr.models.layers import MLPTower


class DNN(CTRModel):
  """Embedding + MLP ("embedding & MLP", the paper's DNN backbone).

  ``logit = MLP(concat_f e_f)`` where ``e_f`` is the pooled embedding of
  field ``f``. Hidden layers use ReLU and start with a small positive bias so
  that zero-initialised embeddings still train (see
  :mod:`examples.ctr.models.layers`).

  Parameters: ``sum_f V_f * d`` embedding rows plus the MLP over
  ``F * d`` inputs.

  Args:
    fields: the categorical fields, in input order.
    embedding_dim: ``d``, 32 in the paper.
    mlp_widths: hidden widths.
    batch_norm: batch normalisation in the hidden layers.
    dropout_rate: dropout after each hidden activation.
    embedding_init: ``"zeros"`` (paper) or ``"normal"``.
    embedding_init_stddev: standard deviation of the normal init.
    pooling: ``"mean"`` or ``"sum"`` for multi-valued fields.
    hidden_bias_init: initial hidden bias.
    param_dtype: parameter dtype.
    rngs: random streams.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> model = DNN([FieldSpec("user", 10), FieldSpec("item", 5)],
    ...             embedding_dim=4, mlp_widths=(8,), rngs=nnx.Rngs(0))
    >>> model({"user": jnp.array([2, 3]), "item": jnp.array([4, 1])}).shape
    (2,)
  """

  def __init__(
    self,
    fields: Sequence[FieldSpec],
    *,
    embedding_dim: int = 32,
    mlp_widths: Sequence[int] = (256, 128),
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
    x = self.embedding.pool(rows["embedding"], features)
    return self.mlp.logit(x)
