"""Tests for examples/ctr/data/vocab.py and assemble.py."""

import numpy as np
import pytest

from examples.ctr.data import assemble
from examples.ctr.data import schema
from examples.ctr.data import vocab


def test_ids_by_decreasing_frequency_and_oov():
  v = vocab.build_vocabulary(np.array([5, 9, 9, 9, 7, 7]))
  assert v.vocab_size == 5
  assert v.lookup(np.array([9, 7, 5, 123, -1])).tolist() == [2, 3, 4, 1, 0]


@pytest.mark.parametrize("offset", [0, 10**12])  # dense table / searchsorted
def test_lookup_paths_agree(offset):
  rng = np.random.default_rng(0)
  train = rng.integers(0, 1000, 5000) + offset
  v = vocab.build_vocabulary(train)
  test = rng.integers(0, 2000, 3000) + offset
  expect = {k: i for k, i in zip(v.keys.tolist(), v.ids.tolist(), strict=True)}
  got = v.lookup(test)
  assert got.tolist() == [expect.get(t, schema.OOV_ID) for t in test.tolist()]


def test_min_count_maps_rare_values_to_oov_and_counts_them():
  v = vocab.build_vocabulary(np.array([1, 1, 1, 2, 2, 3, 4]), min_count=2)
  assert v.vocab_size == 4  # 2 reserved + values 1, 2
  assert (v.num_filtered, v.num_filtered_occurrences) == (2, 2)
  assert v.lookup(np.array([1, 2, 3, 4])).tolist() == [2, 3, 1, 1]
  freq = v.frequencies(vocab.value_counts(np.array([1, 1, 1, 2, 2, 3, 4])))
  assert freq.tolist() == [0, 2, 3, 2]


def test_bag_values_count_once_per_example():
  raw = np.array([[3, 3, -1], [3, 4, -1]])
  keys, counts = vocab.value_counts(raw)
  assert keys.tolist() == [3, 4] and counts.tolist() == [2, 1]
  v = vocab.build_vocabulary(raw)
  assert v.lookup(raw).tolist() == [[2, 2, 0], [2, 3, 0]]
  assert vocab.id_frequencies(v.lookup(raw), v.vocab_size).tolist() == [
    0,
    0,
    2,
    1,
  ]


def test_assemble_builds_vocab_on_train_only_and_shares_groups():
  train = assemble.RawSplit(
    {"item": np.array([0, 1, 1]), "hist": np.array([[2, -1], [0, 1], [1, 1]])},
    np.array([1.0, 0.0, 1.0]),
  )
  test = assemble.RawSplit(
    {"item": np.array([2, 5]), "hist": np.array([[5, -1], [0, 2]])},
    np.array([0.0, 1.0]),
  )
  ds = assemble.assemble(
    "t",
    {"train": train, "valid": None, "test": test},
    shared=[("item", "hist")],
  )
  f = {x.name: x for x in ds.fields}
  assert f["item"].vocab_size == f["hist"].vocab_size == 5
  assert f["hist"].bag_size == 2
  # Shared counts: 1 -> 4 rows, 0 -> 2, 2 -> 1, so IDs 2, 3, 4.
  assert ds.test.features["item"].tolist() == [4, 1]
  assert ds.test.features["hist"].tolist() == [[1, 0], [3, 4]]
  assert ds.frequencies["item"].tolist() == [0, 0, 2, 1, 0]
  assert ds.frequencies["hist"].tolist() == [0, 0, 2, 1, 1]
  assert ds.valid is None and ds.metadata["split_sizes"] == {
    "train": 3,
    "test": 2,
  }
  assert ds.train.features["item"].dtype == np.int32
  assert ds.train.labels.dtype == np.float32
