"""Tests for examples/ctr/data/sequential.py (DIN-style Amazon protocol)."""

import json

import numpy as np
import pytest

from examples.ctr.data import errors
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data.sequential import load_sequential

# README of ../shared/data: users, interactions per category.
AMAZON = {
  "amazon-sports": (35_598, 296_337),
  "amazon-beauty": (22_363, 198_502),
  "amazon-toys": (19_412, 167_597),
}


@pytest.fixture()
def tiny(tmp_path):
  seq = tmp_path / "seq.txt"
  seq.write_text("u1 a b c d e\nu2 b c f g h\nu3 x y\n")
  attr = tmp_path / "attr.json"
  attr.write_text(
    json.dumps({"a": [1], "b": [1, 2], "c": [3, 4, 5], "d": [], "f": ["7"]})
  )
  return seq, attr


def test_tiny_histories_splits_and_oov(tiny):
  seq, attr = tiny
  ds = load_sequential(seq, attr, history_length=3, seed=0)
  assert [f.name for f in ds.fields] == [
    "user",
    "item",
    "item_attributes",
    "history",
  ]
  assert [f.bag_size for f in ds.fields] == [1, 1, 3, 3]
  # u1, u2: 2 train, 1 valid, 1 test positive; u3 (2 items): 1 test positive.
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (8, 4, 6)
  assert ds.train.labels.tolist() == [1, 0] * 4
  tr, te = ds.train.features, ds.test.features
  # u1's train positives are b (history a) and c (history a, b).
  assert tr["history"][0].tolist()[:2] == [0, 0]
  a = tr["history"][0, 2]
  assert tr["history"][2].tolist() == [0, a, tr["item"][0]]
  # Negatives share the user and history of their positive.
  assert np.array_equal(tr["user"][0::2], tr["user"][1::2])
  assert np.array_equal(tr["history"][0::2], tr["history"][1::2])
  # The test positives e, h, y never occur in training rows: OOV.
  assert te["item"][0::2].tolist() == [schema.OOV_ID] * 3
  # u3 has no training row: its user ID is OOV; its history is [pad, pad, x].
  assert te["user"][4] == schema.OOV_ID
  assert te["history"][4].tolist()[:2] == [0, 0]
  assert ds.metadata["users_with_two_items"] == 1
  assert ds.metadata["items_without_attributes"] == 5  # e, g, h, x, y
  # Frequencies count training rows.
  assert ds.frequencies["user"].sum() == 8
  assert ds.frequencies["item"].sum() == 8


def test_negatives_avoid_the_users_items_and_are_seeded(tmp_path):
  rng = np.random.default_rng(0)
  lines = []
  for u in range(200):
    items = rng.choice(60, size=rng.integers(3, 30), replace=False)
    lines.append(" ".join([f"user{u}", *(f"i{i}" for i in items)]))
  seq = tmp_path / "seq.txt"
  seq.write_text("\n".join(lines) + "\n")
  ds = load_sequential(seq, history_length=5, num_negatives=2, seed=1)
  again = load_sequential(seq, history_length=5, num_negatives=2, seed=1)
  other = load_sequential(seq, history_length=5, num_negatives=2, seed=2)
  s = ds.train
  assert s.labels[:3].tolist() == [1, 0, 0]
  assert np.array_equal(s.features["item"], again.train.features["item"])
  assert not np.array_equal(s.features["item"], other.train.features["item"])
  # Items seen by each user in training rows (positives and histories).
  owned = {}
  for u, it, h, y in zip(
    s.features["user"],
    s.features["item"],
    s.features["history"],
    s.labels,
    strict=True,
  ):
    if y == 1:
      owned.setdefault(u, set()).update([it, *h[h > 0]])
  negs = [
    (u, it)
    for u, it, y in zip(
      s.features["user"], s.features["item"], s.labels, strict=True
    )
    if y == 0
  ]
  assert all(it not in owned[u] for u, it in negs if it != schema.OOV_ID)
  assert ds.fields[2].bag_size == 5 and ds.fields[1].name == "item"


# Users and items are tokens (any alphabet, see userlists.py), so there is
# no integer ID to check, and a user line may hold any number of items.
@pytest.mark.parametrize(
  "text, match",
  [
    ("", r"seq.txt:1: file is empty"),
    ("u1 a b\n\nu2 c d\n", r"seq.txt:2: blank line"),
    ("u1 a b\n \t \n", r"seq.txt:2: blank line"),
    (
      "u1 a b\nu2 c\nu1 d e\n",
      r"seq.txt:3: user 'u1' already listed on line 1",
    ),
    (b"u1 a b\nu2 \xc3\n", r"seq.txt:2: not UTF-8 text \(byte 0xc3\)"),
  ],
)
def test_bad_sequence_files(tmp_path, text, match):
  p = tmp_path / "seq.txt"
  p.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    load_sequential(p)


@pytest.mark.parametrize(
  "text, match",
  [
    ('{"a": [1],\n "b": [2', r"attr.json:2: malformed JSON"),
    ("", r"attr.json:1: malformed JSON"),
    ('["a", "b"]', r"attr.json:1: expected a JSON object"),
    ('{"a": [1], "b": 2}', r"attr.json: item 'b': attributes must be a list"),
    (b'{"a": ["\xff"]}', r"attr.json: not UTF-8 text"),
  ],
)
def test_bad_attribute_json(tmp_path, text, match):
  p = tmp_path / "seq.txt"
  p.write_text("u1 a b c\n")
  j = tmp_path / "attr.json"
  j.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    load_sequential(p, j)


@pytest.mark.parametrize("name", sorted(AMAZON))
def test_amazon_matches_readme(shared_data_dir, name, tmp_path):
  users, interactions = AMAZON[name]
  ds = registry.load_dataset(name, shared_data_dir, cache_dir=tmp_path)
  assert ds.metadata["users"] == users
  assert ds.metadata["interactions"] == interactions
  assert len(ds.train) == 2 * (interactions - 3 * users)
  assert len(ds.valid) == len(ds.test) == 2 * users
  assert [f.name for f in ds.fields] == [
    "user",
    "item",
    "item_attributes",
    "history",
  ]
  assert float(np.mean(ds.train.labels)) == 0.5
  assert float(np.mean(ds.test.labels)) == 0.5
  assert ds.fields[0].vocab_size == users + 2  # every user has train rows
  assert ds.fields[3].bag_size == 20
  assert int(ds.frequencies["user"].sum()) == len(ds.train)
  # History is right-aligned: padding only on the left of each row.
  h = np.asarray(ds.train.features["history"][:5000])
  first_real = np.argmax(h > 0, axis=1)
  assert all((row[i:] > 0).all() for row, i in zip(h, first_real, strict=True))
