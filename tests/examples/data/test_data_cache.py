"""Tests for examples/ctr/data/cache.py."""

import json
import logging
import os
import re

import numpy as np
import pytest

from examples.ctr.data import cache
from examples.ctr.data import registry
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


def _entry(root):
  (entry,) = [p for p in root.iterdir() if not p.name.startswith(".")]
  return entry


def _truncate(entry):
  p = entry / "train.1.npy"
  p.write_bytes(p.read_bytes()[:-3])
  return "train.1.npy has .* bytes, expected .* \\(truncated\\)"


def _flip_a_byte(entry):
  p = entry / "test.labels.npy"
  b = bytearray(p.read_bytes())
  b[-1] ^= 0xFF  # the last label's bytes: same size, other value
  p.write_bytes(bytes(b))
  return "test.labels.npy does not match its SHA-256 \\(corrupted\\)"


def _delete_a_file(entry):
  (entry / "freq.0.npy").unlink()
  return "freq.0.npy is missing"


def _no_marker(entry):
  (entry / "meta.json").unlink()
  return "incomplete \\(no meta.json\\)"


def _cut_marker(entry):
  p = entry / "meta.json"
  p.write_text(p.read_text()[:40])
  return "unreadable meta.json \\(JSONDecodeError"


def _other_version(entry):
  p = entry / "meta.json"
  meta = json.loads(p.read_text())
  meta["version"] = 1
  p.write_text(json.dumps(meta))
  return "cache version 1, expected 2"


@pytest.mark.parametrize(
  "damage",
  [
    _truncate,
    _flip_a_byte,
    _delete_a_file,
    _no_marker,
    _cut_marker,
    _other_version,
  ],
)
def test_damaged_entry_is_rebuilt_not_loaded(tmp_path, caplog, damage):
  calls = []

  def build(workdir):
    calls.append(workdir)
    return _dataset()

  root = tmp_path / "c"
  cache.load_or_build("toy", [], {}, build, cache_dir=root)
  entry = _entry(root)
  problem = damage(entry)
  with pytest.raises(cache.CacheEntryError, match=problem):
    cache.open_dataset(entry)
  with caplog.at_level(logging.WARNING, logger=cache.__name__):
    ds = cache.load_or_build("toy", [], {}, build, cache_dir=root)
  assert len(calls) == 2
  (record,) = caplog.records
  assert str(entry) in record.getMessage()
  assert re.search(problem, record.getMessage())
  # Rebuilt in place, with the same data, and intact again.
  assert _entry(root) == entry
  assert [p.name for p in root.iterdir()] == [entry.name]
  want = _dataset()
  assert ds.fields == want.fields and ds.metadata == want.metadata
  for split in ("train", "test"):
    got, exp = getattr(ds, split), getattr(want, split)
    assert np.array_equal(got.labels, exp.labels)
    for k, v in exp.features.items():
      assert np.array_equal(got.features[k], v)
  cache.check_entry(entry, checksum=True)
  caplog.clear()
  with caplog.at_level(logging.WARNING, logger=cache.__name__):
    cache.load_or_build("toy", [], {}, build, cache_dir=root)
  assert len(calls) == 2 and not caplog.records


def test_large_entries_are_checked_by_size_and_shape(tmp_path, monkeypatch):
  root = tmp_path / "c"
  cache.load_or_build("toy", [], {}, lambda w: _dataset(), cache_dir=root)
  entry = _entry(root)
  monkeypatch.setattr(cache, "VERIFY_MAX_BYTES", 0)
  # Without checksums a flipped data byte goes unseen (the documented
  # trade-off), but a truncated file or a changed array shape does not.
  _flip_a_byte(entry)
  cache.open_dataset(entry)
  with pytest.raises(cache.CacheEntryError, match="SHA-256"):
    cache.open_dataset(entry, checksum=True)
  p = entry / "train.0.npy"
  size = p.stat().st_size
  np.save(p, np.zeros(3, np.int32))  # one row too many
  assert p.stat().st_size == size + 4
  meta = json.loads((entry / "meta.json").read_text())
  meta["files"]["train.0.npy"]["bytes"] = size + 4  # a matching manifest
  (entry / "meta.json").write_text(json.dumps(meta))
  with pytest.raises(cache.CacheEntryError, match=r"shape \(3,\), expected"):
    cache.open_dataset(entry)


def test_manifest_lists_every_array_and_is_written_last(tmp_path):
  seen = []

  def build(workdir):
    seen.append(sorted(p.name for p in workdir.iterdir()))
    return _dataset()

  cache.load_or_build("toy", [], {}, build, cache_dir=tmp_path)
  entry = _entry(tmp_path)
  assert seen == [[]]  # built in an empty staging folder, not in the entry
  meta = json.loads((entry / "meta.json").read_text())
  npys = sorted(entry.glob("*.npy"))
  assert sorted(meta["files"]) == [p.name for p in npys]
  marker = (entry / "meta.json").stat().st_mtime_ns
  assert all(p.stat().st_mtime_ns <= marker for p in npys)
  assert not list(entry.glob(".*"))


def test_registry_rebuilds_a_truncated_streaming_entry(tmp_path, caplog):
  rng = np.random.default_rng(0)
  rows = [f"{rng.integers(2)},s{rng.integers(30)}" for _ in range(400)]
  data = tmp_path / "d.csv"
  data.write_text("click,site\n" + "\n".join(rows) + "\n")
  opts = dict(cache_dir=tmp_path / "c", label="click", categorical="site")
  a = registry.load_dataset("tabular", data, **opts)
  want = np.array(a.train.features["site"])
  entry = _entry(tmp_path / "c")
  p = entry / "train.0.npy"
  p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
  with caplog.at_level(logging.WARNING, logger=cache.__name__):
    b = registry.load_dataset("tabular", data, **opts)
  assert np.array_equal(b.train.features["site"], want)
  (record,) = caplog.records
  assert f"{entry}: train.0.npy has" in record.getMessage()
