"""Tests for examples/ctr/data/cache.py."""

import os

import numpy as np

from examples.ctr.data import cache
from examples.ctr.data import schema


def _dataset():
  f = (schema.FieldSpec("a", 4), schema.FieldSpec("b", 5, 2))
  s = schema.Split(
    {
      "a": np.array([2, 3], np.int32),
      "b": np.array([[2, 0], [3, 4]], np.int32),
    },
    np.array([1.0, 0.0], np.float32),
  )
  return schema.CTRDataset(
    "toy",
    f,
    s,
    None,
    s,
    {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 0, 1, 1, 1])},
    metadata={"k": 1},
  )


def test_build_once_then_open_memory_mapped(tmp_path):
  src = tmp_path / "src.txt"
  src.write_text("x")
  calls = []

  def build(workdir):
    calls.append(workdir)
    return _dataset()

  a = cache.load_or_build(
    "toy", [src], {"seed": 0}, build, cache_dir=tmp_path / "c"
  )
  b = cache.load_or_build(
    "toy", [src], {"seed": 0}, build, cache_dir=tmp_path / "c"
  )
  assert len(calls) == 1
  assert isinstance(b.train.features["b"], np.memmap)
  assert b.fields == a.fields == _dataset().fields
  assert b.valid is None and b.metadata == {"k": 1}
  assert np.array_equal(b.test.features["b"], [[2, 0], [3, 4]])
  assert np.array_equal(b.frequencies["b"], [0, 0, 1, 1, 1])
  # Another option or a modified source builds a new entry.
  cache.load_or_build(
    "toy", [src], {"seed": 1}, build, cache_dir=tmp_path / "c"
  )
  assert len(calls) == 2
  st = src.stat()
  os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
  cache.load_or_build(
    "toy", [src], {"seed": 0}, build, cache_dir=tmp_path / "c"
  )
  assert len(calls) == 3
  entries = [
    p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")
  ]
  assert len(entries) == 3


def test_failed_build_leaves_no_entry(tmp_path):
  def build(workdir):
    raise ValueError("boom")

  try:
    cache.load_or_build("toy", [], {}, build, cache_dir=tmp_path)
  except ValueError:
    pass
  assert list(tmp_path.iterdir()) == []


def test_env_cache_dir_and_no_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("OPTAX_AR_CACHE", str(tmp_path / "env"))
  assert cache.default_cache_dir() == tmp_path / "env"
  ds = cache.load_or_build("toy", [], {}, lambda w: _dataset(), use_cache=False)
  assert not (tmp_path / "env").exists()
  assert not isinstance(ds.train.labels, np.memmap)
