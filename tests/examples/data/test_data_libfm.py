"""Tests for examples/ctr/data/libfm.py (Frappe, iPinYou sample)."""

import numpy as np
import pytest

from examples.ctr.data import errors
from examples.ctr.data import libfm
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data.libfm import load_libfm


def _write(path, rows):
  path.write_text(
    "".join(f"{y} " + " ".join(f"{i}:1" for i in x) + "\n" for y, x in rows)
  )
  return path


def test_fields_by_position_train_only_vocab(tmp_path):
  tr = _write(
    tmp_path / "tr.libfm", [(1, [0, 10]), (-1, [1, 10]), (-1, [0, 11])]
  )
  te = _write(tmp_path / "te.libfm", [(1, [2, 10]), (-1, [0, 12])])
  ds = load_libfm({"train": tr, "test": te}, field_names=("a", "b"))
  assert ds.train.labels.tolist() == [1, 0, 0]
  assert [f.vocab_size for f in ds.fields] == [4, 4]
  assert ds.test.features["a"].tolist() == [schema.OOV_ID, 2]
  assert ds.test.features["b"].tolist() == [2, schema.OOV_ID]
  assert ds.valid is None and ds.metadata["position_ranges_disjoint"]


def test_carve_valid_is_seeded(tmp_path):
  rng = np.random.default_rng(0)
  tr = _write(
    tmp_path / "tr",
    [(int(rng.integers(2)), [int(rng.integers(9)), 20]) for _ in range(50)],
  )
  a = load_libfm(
    {"train": tr, "test": tr},
    carve_valid_from="train",
    valid_fraction=0.2,
    seed=0,
  )
  b = load_libfm(
    {"train": tr, "test": tr},
    carve_valid_from="train",
    valid_fraction=0.2,
    seed=0,
  )
  assert (len(a.train), len(a.valid), len(a.test)) == (40, 10, 50)
  assert np.array_equal(a.valid.features["f00"], b.valid.features["f00"])


def test_featindex_fields(tmp_path):
  fi = tmp_path / "featindex.txt"
  fi.write_text("truncate\t0\n1:mon\t1\n1:tue\t2\n3:x\t3\n3:y\t4\n5\n")
  tr = _write(tmp_path / "tr", [(1, [1, 3]), (0, [4, 2])])
  te = _write(tmp_path / "te", [(0, [2, 4])])
  ds = load_libfm({"train": tr, "test": te}, featindex=fi)
  assert [f.name for f in ds.fields] == ["field_1", "field_3"]
  assert ds.train.features["field_1"].tolist() == [2, 3]
  assert ds.test.features["field_3"].tolist() == [3]
  bad = _write(tmp_path / "bad", [(1, [1, 2])])
  with pytest.raises(ValueError, match=r"bad:1: two features of field '1'"):
    load_libfm({"train": bad, "test": bad}, featindex=fi)


@pytest.mark.parametrize(
  "text, match",
  [
    # Empty file, blank line.
    ("", r"x.libfm:1: file is empty"),
    ("1 1:1 2:1\n\n", r"x.libfm:2: blank line"),
    # A line with the wrong number of fields (features), or malformed.
    ("1 1:1 2:1\n0 1:1\n", r"x.libfm:2: 1 features, expected 2"),
    ("1\n", r"x.libfm:1: no features"),
    ("1 1:1 2:1\n1 1:1 2\n", r"x.libfm:2: malformed line"),
    ("1 1:1 2:1\n1 1:1 2:1:1\n", r"x.libfm:2: malformed line"),
    # A feature index (the ID) that is not a non-negative integer.
    ("1 1:1 2:1\n1 1:1 b:1\n", r"x.libfm:2: feature index 'b' is not an int"),
    ("1 1:1 2.5:1\n", r"x.libfm:1: feature index '2.5' is not an integer"),
    ("1 1:1 -2:1\n", r"x.libfm:1: feature index '-2' is negative"),
    ("1 1:1 2:0.5\n", r"x.libfm:1: only one-hot"),
    ("1 1:1 2:x\n", r"x.libfm:1: only one-hot"),
    # A label that is not 1/0/-1.
    ("1 1:1 2:1\n2 1:1 2:1\n", r"x.libfm:2: label '2' is not 1/0/-1"),
    ("yes 1:1 2:1\n", r"x.libfm:1: label 'yes' is not 1/0/-1"),
    ("nan 1:1 2:1\n", r"x.libfm:1: label 'nan' is not 1/0/-1"),
    # Not text.
    (b"1 1:1 2:1\n\x80 1:1\n", r"x.libfm:2: not UTF-8 text"),
  ],
)
def test_bad_input(tmp_path, text, match):
  p = tmp_path / "x.libfm"
  p.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    load_libfm({"train": p, "test": p})


def test_files_with_different_widths(tmp_path):
  a = _write(tmp_path / "a.libfm", [(1, [1, 2]), (0, [1, 3])])
  b = _write(tmp_path / "b.libfm", [(1, [1, 2, 4])])
  with pytest.raises(errors.DataFileError, match=r"b.libfm:1: 3 features, "):
    load_libfm({"train": a, "test": b})


def test_featindex_errors(tmp_path):
  fi = tmp_path / "featindex.txt"
  fi.write_text("1:a\t1\n1:b\tx\n")
  with pytest.raises(errors.DataFileError, match=r"featindex.txt:2: index 'x'"):
    libfm.read_featindex(fi)
  fi.write_text("1:a\t1\n2:b\t2\n")
  x = _write(tmp_path / "x.libfm", [(1, [1, 2]), (0, [1, 5])])
  with pytest.raises(errors.DataFileError, match=r"x.libfm:2: index 5 not in"):
    load_libfm({"train": x, "test": x}, featindex=fi)


def _labels(path):
  return np.array([float(line.split()[0]) for line in path.open()])


def test_frappe_matches_readme(shared_data_dir, tmp_path):
  ds = registry.load_dataset("frappe", shared_data_dir, cache_dir=tmp_path)
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (
    46_178,
    11_544,
    28_860,
  )
  assert len(ds.train) + len(ds.valid) == 57_722
  assert [f.name for f in ds.fields] == [
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
  ]
  d = shared_data_dir / "frappe"
  y = np.concatenate(
    [_labels(d / "frappe.validation.libfm"), _labels(d / "frappe.test.libfm")]
  )
  got = np.concatenate([ds.train.labels, ds.valid.labels, ds.test.labels])
  assert got.sum() == (y == 1).sum()
  # 2 sampled negatives per positive: a third of the rows are positive.
  assert abs(got.mean() - 1 / 3) < 0.005
  assert ds.metadata["position_ranges_disjoint"]


def test_ipinyou_sample_matches_readme(shared_data_dir, tmp_path):
  ds = registry.load_dataset(
    "ipinyou-sample", shared_data_dir, cache_dir=tmp_path
  )
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (24_096, 2_677, 21_150)
  assert len(ds.fields) == 16
  d = shared_data_dir / "ipinyou-sample"
  clicks = _labels(d / "train.fm.txt").sum() + _labels(d / "test.fm.txt").sum()
  got = sum(float(np.sum(s.labels)) for s in (ds.train, ds.valid, ds.test))
  assert got == clicks and abs(got / 47_923 - 0.006) < 0.001
  assert ds.metadata["position_ranges_disjoint"]
