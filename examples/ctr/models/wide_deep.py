"""Wide & Deep backbone (Cheng et al. 2016): per-ID linear part + DNN.

Usage: ``model = WideAndDeep(fields, mlp_widths=(256, 128), rngs=rngs)``.
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


class WideAndDeep(CTRModel):
  """Wide & Deep: ``logit = sum_f w_f[id_f] + MLP(concat_f e_f)``.

  Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
  The wide part is a linear model over the one-hot sparse IDs, i.e. one
  scalar weight per ID of every field, stored as per-ID tables of shape
  ``(vocab_size, 1)`` in ``self.wide`` (zero-initialised), so AdamAR decays
  its rows exactly like embedding rows. Multi-valued fields pool the wide
  weights like the embeddings. The deep part is :class:`~.dnn.DNN`'s MLP; its
  output bias is the model's only bias.

  Parameters: ``sum_f V_f * (d + 1)`` per-ID values plus the MLP.

  Args: as :class:`~examples.ctr.models.dnn.DNN`.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> model = WideAndDeep([FieldSpec("user", 10)], embedding_dim=4,
    ...                     mlp_widths=(8,), rngs=nnx.Rngs(0))
    >>> model({"user": jnp.array([2, 3, 4])}).shape
    (3,)
  """

  table_groups = ("embedding", "wide")

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
    self.wide = per_id_weights(
      fields, pooling=pooling, param_dtype=param_dtype, rngs=rngs
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
    wide = self.wide.pool(rows["wide"], features).sum(axis=(1, 2))
    x = self.embedding.pool(rows["embedding"], features)
    deep = self.mlp.logit(x)
    return wide + deep
