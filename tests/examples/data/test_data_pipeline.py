"""Tests for examples/ctr/data/pipeline.py."""

import numpy as np
import pytest

from examples.ctr.data import pipeline
from examples.ctr.data import schema


def _split(n):
  feats = {
    "a": np.arange(n, dtype=np.int32) + 2,
    "b": np.stack([np.arange(n), np.arange(n)], 1).astype(np.int32) + 2,
  }
  return schema.Split(feats, (np.arange(n) % 2).astype(np.float32))


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_padded_epoch_covers_every_example_once(prefetch, shuffle):
  split = _split(10)
  it = pipeline.BatchIterator(
    split, 4, shuffle=shuffle, seed=3, prefetch=prefetch
  )
  batches = list(it.epoch(0))
  assert len(batches) == len(it) == 3
  assert all(b.features["a"].shape == (4,) for b in batches)
  assert all(b.features["b"].shape == (4, 2) for b in batches)
  a = np.concatenate([b.features["a"] for b in batches])
  w = np.concatenate([b.weights for b in batches])
  assert sorted(a[w == 1].tolist()) == list(range(2, 12))
  assert w.sum() == 10 and a[w == 0].tolist() == [0, 0]
  labels = np.concatenate([b.labels for b in batches])
  assert np.array_equal(labels[w == 1], (a[w == 1] - 2) % 2)


def test_drop_and_short_remainder():
  split = _split(10)
  it = pipeline.BatchIterator(split, 4, drop_remainder=True)
  assert [b.weights.size for b in it.epoch(0)] == [4, 4] and len(it) == 2
  it = pipeline.BatchIterator(split, 4, pad_remainder=False)
  assert [b.weights.size for b in it.epoch(0)] == [4, 4, 2]


def test_shuffle_is_seeded_and_differs_per_epoch():
  split = _split(1000)
  it = pipeline.BatchIterator(split, 100, shuffle=True, seed=7)
  e0 = [b.features["a"].tolist() for b in it.epoch(0)]
  e0b = [b.features["a"].tolist() for b in it.epoch(0)]
  e1 = [b.features["a"].tolist() for b in it.epoch(1)]
  other = pipeline.BatchIterator(split, 100, shuffle=True, seed=8)
  assert e0 == e0b and e0 != e1
  assert e0 != [b.features["a"].tolist() for b in other.epoch(0)]
  assert sorted(sum(e1, [])) == list(range(2, 1002))
  # Batch composition follows the epoch permutation.
  perm = it.order(1)
  assert e1[0] == sorted((perm[:100] + 2).tolist())


def test_prefetch_matches_inline_and_propagates_errors():
  split = _split(50)
  a = [
    b.features["a"]
    for b in pipeline.BatchIterator(split, 8, shuffle=True, prefetch=3).epoch(2)
  ]
  b = [
    b.features["a"]
    for b in pipeline.BatchIterator(split, 8, shuffle=True, prefetch=0).epoch(2)
  ]
  assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
  bad = schema.Split({"a": np.arange(3)}, np.zeros(5, np.float32))
  with pytest.raises(IndexError):
    list(pipeline.BatchIterator(bad, 5, prefetch=2).epoch(0))


def test_early_break_stops_the_worker():
  it = pipeline.BatchIterator(_split(10_000), 10, prefetch=2)
  for i, _ in enumerate(it.epoch(0)):
    if i == 3:
      break
  assert len(list(it.epoch(0))) == 1000
