"""Per-field embedding tables, shared by every CTR backbone.

Usage: ``emb = FieldEmbedding(fields, dim=32, rngs=nnx.Rngs(0));
x = emb(features)  # (batch, num_fields, 32)``.

Design: one ``nnx.Param`` table of shape ``(vocab_size, dim)`` per field,
stored under ``<module>.tables[<field name>]``. A *row* of a table is the
vector of one ID of one field, which is exactly what AdamAR decays and what
``per_id_table_mask`` marks. (A single concatenated table with per-field
offsets would hold the same rows; separate tables keep the row index equal to
the dataset's ID and let each field have its own size.)

Lookup and pooling are separate steps so that a training step can
differentiate with respect to the gathered rows instead of the whole tables:

* :meth:`FieldEmbedding.lookup` gathers ``tables[f][ids]`` for every field
  into shape ``(batch, bag_size, dim)`` (``bag_size = 1`` for single-valued
  fields); nothing else.
* :meth:`FieldEmbedding.pool` reduces the bag axis with a masked mean or sum.
  Positions holding the padding ID 0 are multiplied by 0, so they contribute
  neither value nor gradient: the gradient of the PAD row is exactly zero even
  when its value is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from examples.ctr.data.schema import PAD_ID
from examples.ctr.data.schema import FieldSpec

#: Attribute holding the per-ID tables; ``per_id_table_mask`` relies on it.
TABLES = "tables"

POOLINGS = ("mean", "sum")
INITS = ("zeros", "normal")


def as_bag(ids: jax.Array) -> jax.Array:
  """Returns ids as ``(batch, bag_size)``: single-valued fields get a bag of 1.

  Example:
    >>> as_bag(jnp.array([3, 4])).shape
    (2, 1)
  """
  ids = jnp.asarray(ids)
  return ids[:, None] if ids.ndim == 1 else ids


def pooled(rows: jax.Array, ids: jax.Array, pooling: str = "mean") -> jax.Array:
  """Masked mean or sum of gathered rows over the bag axis.

  Args:
    rows: ``(batch, bag_size, dim)`` gathered rows.
    ids: ``(batch,)`` or ``(batch, bag_size)`` IDs the rows were gathered at.
    pooling: ``"mean"`` (over the non-padding IDs; 0 for an all-padding bag)
      or ``"sum"``.

  Returns:
    ``(batch, dim)``; padding positions contribute no value and no gradient.

  Example:
    >>> rows = jnp.ones((1, 3, 2))
    >>> pooled(rows, jnp.array([[5, 6, 0]]), "sum")
    Array([[2., 2.]], dtype=float32)
  """
  mask = (as_bag(ids) != PAD_ID).astype(rows.dtype)
  total = jnp.einsum("bnd,bn->bd", rows, mask)
  if pooling == "sum":
    return total
  if pooling == "mean":
    count = jnp.maximum(mask.sum(axis=1, keepdims=True), 1.0)
    return total / count
  raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


class FieldEmbedding(nnx.Module):
  """One embedding table per categorical field.

  Args:
    fields: the fields, in model input order.
    dim: embedding dimension (32 in the paper).
    init: ``"zeros"`` (the paper's setting) or ``"normal"`` (small normal
      with standard deviation ``init_stddev``).
    init_stddev: standard deviation of the normal init.
    pooling: ``"mean"`` or ``"sum"`` over the IDs of a multi-valued field.
    param_dtype: table dtype.
    rngs: random streams (``params`` is used by the normal init).

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> fields = [FieldSpec("user", 10), FieldSpec("genres", 6, bag_size=3)]
    >>> emb = FieldEmbedding(fields, dim=4, rngs=nnx.Rngs(0))
    >>> feats = {"user": jnp.array([2, 3]),
    ...          "genres": jnp.array([[2, 3, 0], [4, 0, 0]])}
    >>> emb(feats).shape
    (2, 2, 4)
  """

  def __init__(
    self,
    fields: Sequence[FieldSpec],
    dim: int = 32,
    *,
    init: str = "zeros",
    init_stddev: float = 0.01,
    pooling: str = "mean",
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if init not in INITS:
      raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if pooling not in POOLINGS:
      raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    names = [f.name for f in fields]
    if len(set(names)) != len(names) or not names:
      raise ValueError(f"field names must be unique and non-empty: {names}")
    self.fields = tuple(fields)
    self.dim = dim
    self.pooling = pooling
    tables = {}
    for f in self.fields:
      shape = (f.vocab_size, dim)
      if init == "zeros":
        value = jnp.zeros(shape, param_dtype)
      else:
        value = init_stddev * jax.random.normal(
          rngs.params(), shape, param_dtype
        )
      tables[f.name] = nnx.Param(value)
    setattr(self, TABLES, nnx.Dict(tables))

  @property
  def num_fields(self) -> int:
    return len(self.fields)

  def lookup(self, features: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Gathers the rows of every field: ``{name: (batch, bag_size, dim)}``."""
    tables = getattr(self, TABLES)
    return {
      f.name: jnp.take(tables[f.name][...], as_bag(features[f.name]), axis=0)
      for f in self.fields
    }

  def pool(
    self, rows: Mapping[str, jax.Array], features: Mapping[str, jax.Array]
  ) -> jax.Array:
    """Pools gathered rows into ``(batch, num_fields, dim)``."""
    return jnp.stack(
      [
        pooled(rows[f.name], features[f.name], self.pooling)
        for f in self.fields
      ],
      axis=1,
    )

  def __call__(self, features: Mapping[str, jax.Array]) -> jax.Array:
    return self.pool(self.lookup(features), features)


def per_id_weights(
  fields: Sequence[FieldSpec],
  *,
  pooling: str = "mean",
  param_dtype: jnp.dtype = jnp.float32,
  rngs: nnx.Rngs,
) -> FieldEmbedding:
  r"""The first-order part :math:`\sum_f w_f[x_f]` of a CTR model.

  One zero-initialised scalar per ID, stored as ``(vocab_size, 1)`` tables,
  so AR decays them like embedding rows.

  Shared by Wide&Deep (its wide part) and xDeepFM (its linear part).

  Example:
    >>> from flax import nnx
    >>> w = per_id_weights([FieldSpec("user", 10)], rngs=nnx.Rngs(0))
    >>> w.tables["user"].shape
    (10, 1)
  """
  return FieldEmbedding(
    fields,
    1,
    init="zeros",
    pooling=pooling,
    param_dtype=param_dtype,
    rngs=rngs,
  )
