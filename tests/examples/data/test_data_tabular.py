"""Tests for examples/ctr/data/tabular.py and streaming.py."""

import numpy as np
import pandas as pd
import pytest

from examples.ctr.data import errors
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data import streaming
from examples.ctr.data.tabular import build_tabular


def _frame(n=3000, seed=0):
  rng = np.random.default_rng(seed)
  return pd.DataFrame(
    {
      "click": rng.integers(0, 2, n),
      "site": [f"s{v}" for v in rng.zipf(1.5, n)],
      "dev": rng.integers(0, 30, n),
      "unused": rng.random(n),
    }
  )


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_formats_agree_and_split_is_chunk_independent(tmp_path, fmt):
  df = _frame()
  path = tmp_path / f"d.{fmt}"
  if fmt == "parquet":
    df.to_parquet(path)
  else:
    df.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
  a = build_tabular(
    tmp_path / "a",
    label="click",
    categorical=["site", "dev"],
    data=path,
    chunk_rows=700,
  )
  b = build_tabular(
    tmp_path / "b",
    label="click",
    categorical=["site", "dev"],
    data=path,
    chunk_rows=1 << 20,
  )
  sizes = a.metadata["split_sizes"]
  assert sum(sizes.values()) == 3000 and sizes == b.metadata["split_sizes"]
  assert 0.75 < sizes["train"] / 3000 < 0.85
  for s in ("train", "valid", "test"):
    assert np.array_equal(
      getattr(a, s).features["site"], getattr(b, s).features["site"]
    )
  which = streaming.assign_splits(np.arange(3000), (0.8, 0.1, 0.1), 0)
  assert np.array_equal(a.test.labels, df["click"].to_numpy()[which == 2])
  assert isinstance(a.train.features["dev"], np.memmap)
  # Train-only vocabulary: the frequencies count training rows.
  assert a.frequencies["site"].sum() == sizes["train"]
  site_train = df["site"].to_numpy()[which == 0]
  assert a.fields[0].vocab_size == len(set(site_train)) + 2
  unseen = ~np.isin(df["site"].to_numpy()[which == 2], site_train)
  assert (a.test.features["site"][unseen] == schema.OOV_ID).all()


def test_separate_files_and_min_count(tmp_path):
  tr, te = tmp_path / "tr.csv", tmp_path / "te.csv"
  tr.write_text("y,a\n1,x\n0,x\n1,y\n0,z\n")
  te.write_text("y,a\n1,x\n0,q\n0,y\n")
  ds = build_tabular(
    tmp_path / "w", label="y", categorical=["a"], train=tr, test=te, min_count=2
  )
  assert ds.valid is None and len(ds.train) == 4
  assert ds.test.features["a"].tolist() == [2, 1, 1]
  assert ds.metadata["min_count_filtered"]["a"] == {
    "values_mapped_to_oov": 2,
    "train_occurrences_mapped_to_oov": 2,
  }
  assert ds.frequencies["a"].tolist() == [0, 2, 2]


@pytest.mark.parametrize(
  "text, match",
  [
    # Empty file, no rows, missing column.
    ("", r"d.csv:1: file is empty"),
    ("\n1,x\n", r"d.csv:1: blank line \(expected the header"),
    ("click,a\n", r"d.csv:2: no data rows"),
    ("click,b\n1,x\n", r"d.csv:1: missing column\(s\) \['a'\]"),
    # A label that is not 0/1.
    ("click,a\n1,x\n2,y\n", r"d.csv:3: label '2' is not 0/1"),
    ("click,a\n1,x\nnan,y\n", r"d.csv:3: label 'nan' is not 0/1"),
    ("click,a\n1,x\n,y\n", r"d.csv:3: label '' is not 0/1"),
    # A line with the wrong number of fields (quoted ones included).
    ("click,a\n1,x\n0,y,z\n", r"d.csv:3: too many fields \(3, expected 2\)"),
    ("click,a,b\n1,x,u\n0,y\n", r"d.csv:3: too few fields \(2, expected 3\)"),
    ('click,a\n1,"x,y",z\n', r"d.csv:2: too many fields \(3, expected 2\)"),
    ('click,a,b\n1,x,u\n0,"y"\n', r"d.csv:3: too few fields \(2, expected 3\)"),
    ("click,a\n1,x\n\n0,y\n", r"d.csv:3: blank line"),
    # Not CSV: an unterminated quote, bytes that are not UTF-8.
    ('click,a\n1,x\n0,"y\n', r"d.csv:3: malformed line: EOF inside string"),
    (b"\xffclick,a\n1,x\n", r"d.csv:1: not UTF-8 text \(byte 0xff\)"),
    (b"click,a\n1,x\n0,\xe9\n", r"d.csv:3: not UTF-8 text \(byte 0xe9\)"),
  ],
)
def test_bad_csv_names_file_and_line(tmp_path, text, match):
  p = tmp_path / "d.csv"
  p.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    build_tabular(tmp_path / "w", label="click", categorical=["a"], data=p)


def _parquet(path, frame):
  frame.to_parquet(path, index=False)
  return path


@pytest.mark.parametrize(
  "make, match",
  [
    (lambda p: p.write_bytes(b""), r"d.parquet: file is empty"),
    (lambda p: p.write_text("click,a\n1,x\n"), r"d.parquet: not a Parquet"),
    (
      lambda p: _parquet(p, pd.DataFrame({"click": [1], "b": ["x"]})),
      r"d.parquet: missing column\(s\) \['a'\]",
    ),
    (
      lambda p: _parquet(p, pd.DataFrame({"click": [], "a": []})),
      r"d.parquet: no data rows",
    ),
    (
      lambda p: _parquet(
        p, pd.DataFrame({"click": [1, 0, 3], "a": list("xyz")})
      ),
      r"d.parquet:row 3: label '3' is not 0/1",
    ),
    (
      lambda p: _parquet(
        p, pd.DataFrame({"click": [1.0, None], "a": list("xy")})
      ),
      r"d.parquet:row 2: label '?nan'? is not 0/1",
    ),
  ],
)
def test_bad_parquet_names_file_and_row(tmp_path, make, match):
  p = tmp_path / "d.parquet"
  make(p)
  with pytest.raises(errors.DataFileError, match=match):
    build_tabular(tmp_path / "w", label="click", categorical=["a"], data=p)


def test_registry_tabular_with_cache(tmp_path):
  df = _frame(500)
  path = tmp_path / "d.csv"
  df.to_csv(path, index=False)
  a = registry.load_dataset(
    "tabular",
    path,
    cache_dir=tmp_path / "c",
    label="click",
    categorical="site,dev",
  )
  b = registry.load_dataset(
    "tabular",
    path,
    cache_dir=tmp_path / "c",
    label="click",
    categorical="site,dev",
  )
  assert [f.name for f in a.fields] == ["site", "dev"]
  assert np.array_equal(a.train.features["site"], b.train.features["site"])
  assert len(list((tmp_path / "c").iterdir())) == 1
  # The cache entry holds only the .npy arrays and meta.json.
  entry = next((tmp_path / "c").iterdir())
  assert {p.suffix for p in entry.iterdir()} == {".npy", ".json"}
