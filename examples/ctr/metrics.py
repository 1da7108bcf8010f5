"""Exact evaluation metrics on the host, and embedding-norm diagnostics.

Usage: ``auc = roc_auc(labels, logits); loss = log_loss(labels, logits)``.

CTR differences live at the 1e-4 AUC level, so AUC is the exact
Mann-Whitney statistic over all collected outputs (ties get half credit),
never a bucketed approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from examples.ctr.data import schema


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """Exact area under the ROC curve (tied scores count one half).

  Args:
    labels: 0/1 labels, shape ``(n,)``.
    scores: any monotone score (logits or probabilities), shape ``(n,)``.

  Returns:
    The AUC; NaN when only one class is present.

  Example:
    >>> roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.4, 0.4, 0.8]))
    0.875
  """
  labels = np.asarray(labels).reshape(-1) > 0.5
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  num_pos = int(labels.sum())
  num_neg = labels.size - num_pos
  if num_pos == 0 or num_neg == 0:
    return float("nan")
  order = np.argsort(scores, kind="mergesort")
  sorted_scores = scores[order]
  # Average 1-based rank of each group of tied scores.
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], scores.size]
  group_rank = (starts + ends + 1) / 2.0
  ranks = np.empty(scores.size)
  ranks[order] = np.repeat(group_rank, ends - starts)
  rank_sum = ranks[labels].sum()
  return float((rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg))


def log_loss(labels: np.ndarray, logits: np.ndarray) -> float:
  """Mean binary cross-entropy of sigmoid(logits), computed stably.

  Example:
    >>> round(log_loss(np.array([1.0, 0.0]), np.array([0.0, 0.0])), 6)
    0.693147
  """
  y = np.asarray(labels, dtype=np.float64).reshape(-1)
  z = np.asarray(logits, dtype=np.float64).reshape(-1)
  losses = np.maximum(z, 0.0) - y * z + np.log1p(np.exp(-np.abs(z)))
  return float(losses.mean())


def path_names(path: Sequence[Any]) -> list[Any]:
  """Key names of a tree path (an ``nnx.Variable``'s ``value`` dropped).

  Example:
    >>> import jax
    >>> path_names((jax.tree_util.DictKey("emb"), jax.tree_util.DictKey("f")))
    ['emb', 'f']
  """
  names = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        names.append(getattr(key, attr))
        break
    else:
      names.append(key)
  if names and names[-1] == "value":  # the array inside an nnx.Variable
    names = names[:-1]
  return names


def _masked_tables(params: Any, mask: Any) -> list[tuple[list[Any], Any]]:
  """``(path names, array)`` of every leaf of ``params`` selected by mask."""
  flat_params = jax.tree_util.tree_flatten_with_path(params)[0]
  flat_mask = jax.tree.leaves(mask)
  if len(flat_params) != len(flat_mask):
    raise ValueError("mask and params have different numbers of leaves")
  return [
    (path_names(p), x)
    for (p, x), m in zip(flat_params, flat_mask, strict=True)
    if m
  ]


def embedding_sq_norm(params: Any, mask: Any) -> float:
  """Total squared L2 norm of the masked leaves (the per-ID tables).

  Example:
    >>> import jax.numpy as jnp
    >>> params = {"t": jnp.ones((3, 2)), "w": jnp.ones(4)}
    >>> embedding_sq_norm(params, {"t": True, "w": False})
    6.0
  """
  return float(
    sum(
      np.sum(np.square(np.asarray(x, np.float64)))
      for _, x in _masked_tables(params, mask)
    )
  )


def frequency_buckets(
  frequencies: np.ndarray, num_buckets: int = 5
) -> list[np.ndarray]:
  """Splits a field's real IDs into equal-count buckets by frequency.

  Args:
    frequencies: training count of each ID, length ``vocab_size``.
    num_buckets: number of buckets.

  Returns:
    ``num_buckets`` int arrays of IDs (reserved IDs 0 and 1 excluded), from
    the rarest bucket to the most frequent; sizes differ by at most one.

  Example:
    >>> freq = np.array([0, 0, 9, 1, 5, 3])
    >>> [b.tolist() for b in frequency_buckets(freq, 2)]
    [[3, 5], [4, 2]]
  """
  ids = np.arange(schema.NUM_RESERVED_IDS, len(frequencies))
  order = ids[np.argsort(frequencies[ids], kind="stable")]
  return [np.asarray(b) for b in np.array_split(order, num_buckets)]


def bucket_sq_norms(
  params: Any, mask: Any, field: str, buckets: Sequence[np.ndarray]
) -> list[float]:
  """Squared L2 norm of each bucket's rows, over every table of ``field``.

  A per-ID table of field ``f`` is a masked leaf whose path ends in ``f``
  (``<group>.tables.<f>``: the embedding table, and e.g. the wide weights).

  Args:
    params: the params tree.
    mask: per-ID table mask of ``params``.
    field: the field name.
    buckets: ID arrays from :func:`frequency_buckets`.

  Returns:
    One squared norm per bucket.

  Example:
    >>> import jax.numpy as jnp
    >>> params = {"emb": {"f": jnp.arange(8.0).reshape(4, 2)}}
    >>> bucket_sq_norms(params, {"emb": {"f": True}}, "f",
    ...                 [np.array([2]), np.array([3])])
    [41.0, 85.0]
  """
  tables = [
    np.asarray(x, np.float64)
    for names, x in _masked_tables(params, mask)
    if names and names[-1] == field
  ]
  if not tables:
    raise ValueError(f"no per-ID table for field {field!r}")
  return [
    float(sum(np.sum(np.square(t[ids])) for t in tables)) for ids in buckets
  ]


def largest_field(frequencies: dict[str, np.ndarray]) -> str:
  """The field with the most IDs (the default bucket field).

  Example:
    >>> largest_field({"a": np.zeros(3), "b": np.zeros(9)})
    'b'
  """
  return max(frequencies, key=lambda name: len(frequencies[name]))
