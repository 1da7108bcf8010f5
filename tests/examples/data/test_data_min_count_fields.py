"""Tests for the per-field min_count_fields filter (assemble, sequential)."""

import numpy as np
import pytest

from examples.ctr.data import assemble
from examples.ctr.data import schema
from examples.ctr.data import sequential
from examples.ctr.data import vocab

# Training counts: user 10 x4, 11 x2, 12 x1; item 20 x3, 21 x3, 22 x1
# (history adds 22 x2 and 23 x1 to the shared item ID space).
TRAIN = assemble.RawSplit(
  {
    "user": np.array([10, 10, 10, 10, 11, 11, 12]),
    "item": np.array([20, 20, 20, 21, 21, 21, 22]),
    "history": np.array(
      [[22, -1], [22, -1], [23, -1], [-1, -1], [-1, -1], [-1, -1], [-1, -1]]
    ),
  },
  np.array([1, 0, 1, 0, 1, 0, 1], np.float32),
)
TEST = assemble.RawSplit(
  {
    "user": np.array([10, 11, 12, 13]),
    "item": np.array([20, 22, 23, 24]),
    "history": np.array([[22, 23]] * 4),
  },
  np.array([1, 0, 1, 0], np.float32),
)


def _assemble(**kw):
  return assemble.assemble(
    "toy",
    {"train": TRAIN, "valid": None, "test": TEST},
    shared=[("item", "history")],
    **kw,
  )


def test_only_the_listed_field_is_filtered_and_counted():
  ds = _assemble(min_count_fields={"user": 3})
  # Only user 10 (4 rows) is kept; 11 (2 rows) and 12 (1 row) become OOV.
  oov = schema.OOV_ID
  assert ds.test.features["user"].tolist() == [2, oov, oov, oov]
  assert [f.vocab_size for f in ds.fields] == [3, 6, 6]
  filtered = ds.metadata["min_count_filtered"]
  assert filtered["user"] == {
    "min_count": 3,
    "values_mapped_to_oov": 2,
    "train_occurrences_mapped_to_oov": 3,
  }
  assert filtered["item+history"]["values_mapped_to_oov"] == 0
  assert ds.metadata["min_count_fields"] == {"user": 3}
  # The OOV row's training frequency sums the filtered users' rows.
  assert ds.frequencies["user"].tolist() == [0, 3, 4]
  # The items are untouched (IDs by decreasing count: 20, 21, 22, 23);
  # only the unseen test item 24 is OOV.
  assert ds.test.features["item"].tolist() == [2, 4, 5, oov]


def test_a_shared_id_space_is_filtered_on_its_combined_count():
  # item+history counts: 20 x3, 21 x3, 22 x3 (1 + 2), 23 x1.
  ds = _assemble(min_count_fields={"item": 2})
  filtered = ds.metadata["min_count_filtered"]["item+history"]
  assert filtered == {
    "min_count": 2,
    "values_mapped_to_oov": 1,
    "train_occurrences_mapped_to_oov": 1,
  }
  oov = schema.OOV_ID
  # 23 is dropped in both fields (they share IDs); 22 is kept because its
  # history occurrences count too.
  assert ds.test.features["item"].tolist()[1:] == [4, oov, oov]
  assert ds.test.features["history"][0].tolist() == [4, oov]
  assert ds.metadata["min_count_filtered"]["user"]["values_mapped_to_oov"] == 0


def test_per_field_threshold_replaces_the_global_one():
  ds = _assemble(min_count=2, min_count_fields={"user": 1})
  filtered = ds.metadata["min_count_filtered"]
  assert filtered["user"]["values_mapped_to_oov"] == 0
  assert filtered["item+history"]["values_mapped_to_oov"] == 1  # item 23


def test_matches_build_vocabulary_on_that_field():
  ds = _assemble(min_count_fields={"user": 2})
  v = vocab.build_vocabulary(TRAIN.features["user"], min_count=2)
  assert (
    ds.test.features["user"].tolist()
    == v.lookup(TEST.features["user"]).tolist()
  )
  assert ds.metadata["min_count_filtered"]["user"]["values_mapped_to_oov"] == (
    v.num_filtered
  )


def test_unknown_field_raises():
  with pytest.raises(ValueError, match="unknown fields"):
    _assemble(min_count_fields={"usr": 2})


def test_sequential_loader_passes_the_option(tmp_path):
  path = tmp_path / "seq.txt"
  # u1 has 6 items (3 training positives), u2, u3, u4 have 4 (1 each).
  path.write_text("u1 a b c d e f\nu2 b c d e\nu3 c d e f\nu4 g h i j\n")
  ds = sequential.load_sequential(path, min_count_fields={"user": 4})
  # Training rows per user (positive + negative): u1 6, u2 to u4 2 each.
  filtered = ds.metadata["min_count_filtered"]["user"]
  assert filtered["values_mapped_to_oov"] == 3
  assert filtered["train_occurrences_mapped_to_oov"] == 6
  oov = schema.OOV_ID
  assert ds.test.features["user"].tolist() == [2, 2] + [oov] * 6
