"""Tests for examples/ctr/data/interactions.py (LightGCN format)."""

import collections

import numpy as np
import pytest

from examples.ctr.data import errors
from examples.ctr.data import registry
from examples.ctr.data.interactions import load_interactions


def _write(tmp_path, rng, users=300, items=400):
  lines = []
  popular = rng.zipf(1.3, size=(users, 40)) % items
  for u in range(users):
    own = sorted(set(popular[u, : rng.integers(0, 40)].tolist()))
    lines.append(" ".join(map(str, [u, *own])))
  p = tmp_path / "inter.txt"
  p.write_text("\n".join(lines) + "\n")
  return p, lines


def test_holdout_sizes_and_negatives(tmp_path):
  p, lines = _write(tmp_path, np.random.default_rng(0))
  lengths = np.array([len(line.split()) - 1 for line in lines])
  ds = load_interactions(p, negatives="uniform", num_negatives=3, seed=0)
  held = int((lengths >= 3).sum())
  assert len(ds.test) == len(ds.valid) == 4 * held
  assert len(ds.train) == 4 * (lengths.sum() - 2 * held)
  assert ds.metadata["users_without_holdout"] == int((lengths < 3).sum())
  assert ds.train.labels[:8].tolist() == [1, 0, 0, 0] * 2
  # Negatives are never one of the user's items (positives of any split).
  owned = collections.defaultdict(set)
  for s in (ds.train, ds.valid, ds.test):
    for u, i, y in zip(
      s.features["user"], s.features["item"], s.labels, strict=True
    ):
      if y == 1 and i > 1:
        owned[u].add(i)
  for s in (ds.train, ds.valid, ds.test):
    for u, i, y in zip(
      s.features["user"], s.features["item"], s.labels, strict=True
    ):
      assert y == 1 or i not in owned[u] or i == 1


def test_popularity_negatives_keep_rare_items_rare(tmp_path):
  p, _ = _write(tmp_path, np.random.default_rng(1), users=600, items=3000)
  share = {}
  for neg in ("uniform", "popularity"):
    ds = load_interactions(p, negatives=neg, seed=0)
    f = ds.frequencies["item"][2:]
    share[neg] = (f <= 2).mean()
    # Popularity negatives only draw items that have training positives.
    if neg == "popularity":
      pos = set(ds.train.features["item"][ds.train.labels == 1].tolist())
      neg_items = set(ds.train.features["item"][ds.train.labels == 0].tolist())
      assert neg_items <= pos
  assert share["popularity"] > share["uniform"] + 0.1


def test_bad_options(tmp_path):
  p = tmp_path / "x.txt"
  p.write_text("0 1 2 3\n")
  with pytest.raises(ValueError, match="negatives must be one of"):
    load_interactions(p, negatives="hard")


# Users and items are tokens (any alphabet, see userlists.py), so there is
# no integer ID to check, and a user may have any number of items.
@pytest.mark.parametrize(
  "text, match",
  [
    ("", r"x.txt:1: file is empty"),
    ("0 1 2 3\n  \n", r"x.txt:2: blank line"),
    ("0 1 2 3\n1 2\n\n", r"x.txt:3: blank line"),
    ("0 1 2 3\n1 2\n0 4\n", r"x.txt:3: user '0' already listed on line 1"),
    (b"0 1 2 3\n1 \xfe\n", r"x.txt:2: not UTF-8 text \(byte 0xfe\)"),
  ],
)
def test_bad_files(tmp_path, text, match):
  p = tmp_path / "x.txt"
  p.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    load_interactions(p)


def test_amazon_book_matches_readme(shared_data_dir, tmp_path):
  ds = registry.load_dataset("amazon-book", shared_data_dir, cache_dir=tmp_path)
  m = ds.metadata
  assert (m["users"], m["items"], m["interactions"]) == (
    52_643,
    82_629,
    603_378,
  )
  lengths = [
    len(line.split()) - 1
    for line in (shared_data_dir / "amazon-book" / "test.txt").open()
  ]
  held = sum(n >= 3 for n in lengths)
  assert len(ds.test) == len(ds.valid) == 2 * held
  assert len(ds.train) == 2 * (603_378 - 2 * held)
  assert m["negatives"] == "popularity"
  assert [f.name for f in ds.fields] == ["user", "item"]
  # README: 63% of items occur at most 5 times, 17% exactly once.
  pos_counts = collections.Counter(
    int(i)
    for line in (shared_data_dir / "amazon-book" / "test.txt").open()
    for i in line.split()[1:]
  )
  c = np.array(list(pos_counts.values()))
  assert round((c <= 5).mean(), 2) == 0.63 and round((c == 1).mean(), 2) == 0.17
  # Popularity negatives keep a long tail of rare item IDs in training.
  assert (ds.frequencies["item"][2:] <= 5).mean() > 0.35
