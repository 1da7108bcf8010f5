"""Tests for examples/ctr/data/registry.py and summary.py."""

import json
import sys
import types

import numpy as np
import pytest

from examples.ctr import data as data_lib
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data import summary


def _layout(root):
  """A tiny data root in the layout of ../shared/data."""
  (root / "amazon").mkdir(parents=True)
  lines = [
    f"{u} " + " ".join(str(i) for i in range(u, u + 6)) for u in range(1, 9)
  ]
  (root / "amazon" / "Beauty.txt").write_text("\n".join(lines) + "\n")
  (root / "amazon" / "Beauty_item2attributes.json").write_text(
    json.dumps({str(i): [i % 3, 7] for i in range(1, 15)})
  )
  (root / "amazon-book").mkdir()
  (root / "amazon-book" / "test.txt").write_text(
    "\n".join(
      f"{u} " + " ".join(str((u * 7 + k) % 40) for k in range(6))
      for u in range(20)
    )
    + "\n"
  )
  (root / "frappe").mkdir()
  for split, n in (("validation", 50), ("test", 20)):
    (root / "frappe" / f"frappe.{split}.libfm").write_text(
      "".join(
        f"{1 if i % 3 == 0 else -1} "
        + " ".join(f"{10 * j + i % 4}:1" for j in range(10))
        + "\n"
        for i in range(n)
      )
    )
  return root


def test_load_by_name_uses_the_data_root_and_cache(tmp_path):
  root = _layout(tmp_path / "data")
  cache_dir = tmp_path / "cache"
  ds = data_lib.load_dataset("amazon-beauty", root, cache_dir=cache_dir)
  assert ds.name == "amazon-beauty" and len(ds.test) == 2 * 8
  assert len(ds.train) == 2 * 8 * 3
  again = registry.load_dataset(
    "amazon-beauty", root / "amazon", cache_dir=cache_dir
  )
  assert np.array_equal(
    ds.train.features["history"], again.train.features["history"]
  )
  book = registry.load_dataset(
    "amazon-book",
    root,
    cache_dir=cache_dir,
    negatives="uniform",
    num_negatives=2,
  )
  assert len(book.test) == 3 * 20 and book.metadata["num_negatives"] == 2
  fr = registry.load_dataset("frappe", root, cache_dir=cache_dir)
  assert (len(fr.train), len(fr.valid), len(fr.test)) == (40, 10, 20)
  assert fr.fields[0].name == "user"


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    registry.load_dataset("nope", tmp_path)
  with pytest.raises(FileNotFoundError, match="Sports_and_Outdoors.txt"):
    registry.load_dataset("amazon-sports", tmp_path)


def test_synthetic_slot_imports_lazily(monkeypatch):
  fake = types.ModuleType("examples.ctr.data.synthetic")
  split = schema.Split({"a": np.array([2])}, np.array([1.0]))
  fake.make_synthetic_dataset = lambda **kw: schema.CTRDataset(
    "synthetic",
    (schema.FieldSpec("a", 3),),
    split,
    None,
    split,
    {"a": np.array([0, 0, 1])},
    metadata=kw,
  )
  monkeypatch.setitem(sys.modules, "examples.ctr.data.synthetic", fake)
  ds = registry.load_dataset("synthetic", seed=3)
  assert ds.metadata == {"seed": 3}
  assert "synthetic" in registry.DATASETS


def test_summary_prints_vocab_and_rare_share(tmp_path, capsys):
  root = _layout(tmp_path / "data")
  summary.main(
    [
      "--data-dir",
      str(root),
      "--cache-dir",
      str(tmp_path / "c"),
      "--datasets",
      "frappe,amazon-book,movielens-100k",
    ]
  )
  out = capsys.readouterr().out
  assert "== frappe: train 40, valid 10, test 20" in out
  assert "movielens-100k: skipped" in out
  fr = registry.load_dataset("frappe", root, cache_dir=tmp_path / "c")
  rows = {r["field"]: r for r in summary.field_rows(fr)}
  # Field "user" holds values i % 4: each of the 4 IDs occurs 10 times.
  assert rows["user"]["vocab_size"] == 6 and rows["user"]["rare_share"] == 0.0
  line = next(x for x in out.splitlines() if x.strip().startswith("user "))
  assert line.split()[1:] == ["6", "1", "0.0%", "0.0%"]
