"""Train-only vocabularies: raw values -> integer IDs, with frequencies.

Usage: ``vocab = build_vocabulary(train_raw); ids = vocab.lookup(test_raw)``.

Raw values are non-negative int64 codes (loaders factorise strings first);
the raw value ``PAD_RAW`` (-1) marks padding in multi-valued fields and maps
to ``schema.PAD_ID``. A vocabulary is built from the *training split only*:

* every distinct training value seen at least ``min_count`` times gets an ID
  ``2 .. vocab_size - 1``, ordered by decreasing training count (ties by raw
  value), so ID order is frequency order;
* values unseen in training, and training values below ``min_count``, map to
  ``schema.OOV_ID`` (1). ``min_count`` defaults to 1, i.e. no filtering: the
  long tail is what the experiments study. ``Vocabulary.num_filtered`` and
  ``num_filtered_occurrences`` count what the option mapped to OOV; nothing
  is dropped.

Counts are per training *example*: a value repeated inside one bag counts
once, matching ``CTRDataset.frequencies``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from examples.ctr.data import schema

PAD_RAW = -1


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """A raw-value -> ID mapping of one field (or of fields sharing IDs).

  Attributes:
    keys: sorted distinct raw training values (int64).
    ids: int32 ID of each key (``OOV_ID`` for keys below ``min_count``).
    vocab_size: table rows, reserved IDs included.
    num_filtered: distinct training values mapped to OOV by ``min_count``.
    num_filtered_occurrences: training examples those values occurred in.
  """

  keys: np.ndarray
  ids: np.ndarray
  vocab_size: int
  num_filtered: int = 0
  num_filtered_occurrences: int = 0

  def lookup(self, raw: np.ndarray) -> np.ndarray:
    """Maps raw values (any shape) to int32 IDs; ``PAD_RAW`` -> ``PAD_ID``.

    Example:
      >>> v = build_vocabulary(np.array([7, 7, 3]))
      >>> v.lookup(np.array([7, 3, 5, -1])).tolist()
      [2, 3, 1, 0]
    """
    raw = np.asarray(raw, dtype=np.int64)
    if self.keys.size == 0:
      out = np.full(raw.shape, schema.OOV_ID, np.int32)
      out[raw == PAD_RAW] = schema.PAD_ID
      return out
    kmax = int(self.keys[-1])
    if kmax <= 4 * self.keys.size + 1024:  # dense codes: a direct table
      table = np.full(kmax + 3, schema.OOV_ID, np.int32)
      table[0] = schema.PAD_ID
      table[self.keys + 1] = self.ids
      return table[np.clip(raw + 1, 0, kmax + 2)]
    pos = np.searchsorted(self.keys, raw)
    pos = np.minimum(pos, self.keys.size - 1)
    found = self.keys[pos] == raw
    out = np.where(found, self.ids[pos], schema.OOV_ID).astype(np.int32)
    out[raw == PAD_RAW] = schema.PAD_ID
    return out

  def frequencies(self, counts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per-ID training frequencies from a field's ``value_counts``.

    The OOV entry sums the counts of the values mapped to OOV.

    Example:
      >>> raw = np.array([7, 7, 3])
      >>> build_vocabulary(raw).frequencies(value_counts(raw)).tolist()
      [0, 0, 2, 1]
    """
    keys, n = counts
    return np.bincount(
      self.lookup(keys), weights=n, minlength=self.vocab_size
    ).astype(np.int64)


def example_values(raw: np.ndarray) -> np.ndarray:
  """The distinct non-padding values of each row, flattened.

  Example:
    >>> example_values(np.array([[4, 4, -1], [5, 4, 4]])).tolist()
    [4, 4, 5]
  """
  raw = np.asarray(raw, dtype=np.int64)
  if raw.ndim == 1:
    return raw[raw != PAD_RAW]
  s = np.sort(raw, axis=1)
  first = np.ones(s.shape, bool)
  first[:, 1:] = s[:, 1:] != s[:, :-1]
  return s[first & (s != PAD_RAW)]


def value_counts(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Distinct raw values and the number of rows each occurs in.

  Example:
    >>> [a.tolist() for a in value_counts(np.array([[4, 4], [5, -1]]))]
    [[4, 5], [1, 1]]
  """
  return np.unique(example_values(raw), return_counts=True)


def build_vocabulary(
  *train_raw: np.ndarray,
  min_count: int = 1,
  counts: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Vocabulary:
  """Builds a vocabulary from training raw values of one or more fields.

  Args:
    *train_raw: arrays of raw values from the training split, ``(n,)`` or
      ``(n, bag)``; several arrays share one ID space (e.g. a target item
      and a behaviour history of items).
    min_count: training values seen in fewer examples map to OOV.
    counts: instead of ``train_raw``, their ``value_counts``.

  Returns:
    The vocabulary.

  Example:
    >>> v = build_vocabulary(np.array([5, 5, 9, 2]), min_count=2)
    >>> v.vocab_size, v.num_filtered, v.lookup(np.array([5, 9])).tolist()
    (3, 2, [2, 1])
  """
  if min_count < 1:
    raise ValueError(f"min_count must be >= 1, got {min_count}")
  if counts is None:
    counts = [value_counts(r) for r in train_raw]
  all_keys = np.concatenate([k for k, _ in counts]).astype(np.int64)
  all_n = np.concatenate([n for _, n in counts]).astype(np.int64)
  if all_keys.size and all_keys.min() < 0:
    raise ValueError("raw values must be >= 0 (or PAD_RAW for padding)")
  keys, inv = np.unique(all_keys, return_inverse=True)
  total = np.bincount(inv, weights=all_n, minlength=keys.size).astype(np.int64)
  keep = total >= min_count
  order = np.lexsort((keys, -total))  # decreasing count, then raw value
  order = order[keep[order]]
  ids = np.full(keys.shape, schema.OOV_ID, np.int32)
  ids[order] = np.arange(
    schema.NUM_RESERVED_IDS,
    schema.NUM_RESERVED_IDS + order.size,
    dtype=np.int32,
  )
  return Vocabulary(
    keys=keys,
    ids=ids,
    vocab_size=schema.NUM_RESERVED_IDS + int(order.size),
    num_filtered=int((~keep).sum()),
    num_filtered_occurrences=int(total[~keep].sum()),
  )


def id_frequencies(ids: np.ndarray, vocab_size: int) -> np.ndarray:
  """Per ID, the number of rows of ``ids`` it occurs in (padding: 0).

  Example:
    >>> id_frequencies(np.array([[2, 2], [3, 0]]), 4).tolist()
    [0, 0, 1, 1]
  """
  values = example_values(np.where(ids == schema.PAD_ID, PAD_RAW, ids))
  return np.bincount(values, minlength=vocab_size).astype(np.int64)


def rare_share(freq: np.ndarray, at_most: int = 5) -> float:
  """Share of real IDs (2 ..) whose training frequency is <= ``at_most``.

  Example:
    >>> rare_share(np.array([0, 0, 1, 9, 5, 6]))
    0.5
  """
  real = np.asarray(freq)[schema.NUM_RESERVED_IDS :]
  return float((real <= at_most).mean()) if real.size else 0.0
