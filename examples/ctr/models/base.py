"""What every CTR backbone shares: the lookup/head split and the table mask.

Usage: ``mask = per_id_table_mask(nnx.state(model, nnx.Param))``.

A backbone is a :class:`CTRModel`: ``model(features)`` returns logits of
shape ``(batch,)`` and is, by definition,

    model.forward_from_embeddings(model.lookup(features), features)

``lookup`` gathers raw rows from every per-ID table and does nothing else;
``forward_from_embeddings`` pools them (masking padding) and runs the rest of
the network. A training step may therefore take gradients with respect to the
gathered rows (small) instead of the full tables (large) and scatter-add them
into the tables itself: ``rows[group][field]`` has shape
``(batch, bag_size, k)`` and was gathered from
``getattr(model, group).tables[field]`` at ``as_bag(features[field])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

from examples.ctr.models.embedding import TABLES

Rows = dict[str, dict[str, jax.Array]]


def _key_name(key: Any) -> Any:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return getattr(key, attr)
  return key


def _table_field(path: tuple[Any, ...]) -> str | None:
  """The field of a per-ID table path ``<module>.tables[<field>]``, or None."""
  names = [_key_name(k) for k in path]
  if names and names[-1] == "value":  # the array inside an nnx.Variable
    names = names[:-1]
  if len(names) >= 2 and names[-2] == TABLES:
    return names[-1]
  return None


def _is_table_path(path: tuple[Any, ...]) -> bool:
  return _table_field(path) is not None


def is_per_id_table(path: tuple[Any, ...], value: Any) -> bool:
  """An ``nnx`` filter selecting the per-ID tables of a model.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> from examples.ctr.models import create_model
    >>> model = create_model("wdl", [FieldSpec("user", 10)],
    ...                      rngs=nnx.Rngs(0), mlp_widths=(4,))
    >>> state = nnx.state(model, is_per_id_table)
    >>> sorted(path for path, _ in nnx.to_flat_state(state))
    [('embedding', 'tables', 'user'), ('wide', 'tables', 'user')]
  """
  return isinstance(value, nnx.Param) and _is_table_path(tuple(path))


def per_id_table_mask(params: Any) -> Any:
  """Marks the per-ID tables (embedding tables, wide per-ID weights).

  A leaf is a per-ID table when it is stored as ``<module>.tables[<field>]``
  (see :class:`~examples.ctr.models.embedding.FieldEmbedding`), i.e. the
  second-to-last key of its path is ``"tables"``.

  Args:
    params: an ``nnx.State`` (e.g. ``nnx.state(model, nnx.Param)``) or the
      same tree as a plain nested dict (``nnx.to_pure_dict``).

  Returns:
    A tree of bools with the structure of ``params``, usable as an optax mask.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> from examples.ctr.models import create_model
    >>> model = create_model("dnn", [FieldSpec("user", 10)],
    ...                      rngs=nnx.Rngs(0), mlp_widths=(4,))
    >>> mask = per_id_table_mask(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    >>> mask["embedding"]["tables"]["user"], mask["mlp"]["out"]["kernel"]
    (True, False)
  """
  return jax.tree_util.tree_map_with_path(
    lambda path, _: _is_table_path(path), params
  )


def table_candidate_rows(params: Any, features: Mapping[str, jax.Array]) -> Any:
  """The ``candidate_rows`` of ``optax_ar``'s update: IDs per per-ID table.

  Each per-ID table ``<module>.tables[<field>]`` gets ``features[<field>]``
  (the rows a batch can touch; padding id 0 is a real row and is tested
  like the others); every other leaf gets None (its touched test reads the
  whole gradient).

  Example:
    >>> import jax.numpy as jnp
    >>> params = {"embedding": {"tables": {"user": jnp.zeros((10, 4))}},
    ...           "mlp": {"w": jnp.zeros((4, 1))}}
    >>> rows = table_candidate_rows(params, {"user": jnp.array([3, 7])})
    >>> rows["embedding"]["tables"]["user"], rows["mlp"]["w"]
    (Array([3, 7], dtype=int32), None)
  """

  def ids_or_none(path, _):
    field = _table_field(path)
    return None if field is None else features[field]

  return jax.tree_util.tree_map_with_path(ids_or_none, params)


class CTRModel(nnx.Module):
  """Base class: ``__call__ = forward_from_embeddings o lookup``.

  Subclasses set ``table_groups`` (names of their
  :class:`~examples.ctr.models.embedding.FieldEmbedding` attributes) and
  implement :meth:`forward_from_embeddings`.
  """

  table_groups: tuple[str, ...] = ("embedding",)

  def lookup(self, features: Mapping[str, jax.Array]) -> Rows:
    """Gathers ``{group: {field: (batch, bag_size, k)}}`` from every table."""
    return {g: getattr(self, g).lookup(features) for g in self.table_groups}

  def forward_from_embeddings(
    self, rows: Rows, features: Mapping[str, jax.Array]
  ) -> jax.Array:
    """Logits ``(batch,)`` from gathered rows; ``features`` give the masks."""
    raise NotImplementedError

  def __call__(self, features: Mapping[str, jax.Array]) -> jax.Array:
    return self.forward_from_embeddings(self.lookup(features), features)
