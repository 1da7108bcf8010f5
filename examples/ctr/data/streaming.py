"""Bounded-memory preprocessing of large files into memory-mapped arrays.

Usage::

  builder = StreamingBuilder(workdir, {"site": 1, "tags": 5})
  for split, features, labels in chunks:   # e.g. 1M rows at a time
    builder.add(split, features, labels)
  dataset = builder.finish("avazu")

Used by the tabular and raw-format loaders (Avazu, Criteo, iPinYou), whose
files may be larger than RAM. Pass 1 (``add``) gives every raw value a
provisional integer code (a growing per-field dictionary, so memory grows
with the number of *distinct* values, not rows), appends the codes of each
split to a scratch file on disk and counts, per code, the training rows it
occurs in. Pass 2 (``finish``) builds each field's train-only vocabulary
from those counts (IDs by decreasing count, ties by the value's string, so
the result does not depend on the chunk size) and maps the scratch files
chunk by chunk into int32 ``.npy`` files (at ``cache.array_path``),
returned memory-mapped.

Raw values are any hashable scalars (loaders pass strings); ``None`` marks
padding in a bag.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from examples.ctr.data import cache
from examples.ctr.data import schema
from examples.ctr.data import vocab as vocab_lib

SPLITS = ("train", "valid", "test")
_MAP_ROWS = 1 << 20


def row_uniform(rows: np.ndarray, seed: int) -> np.ndarray:
  """A uniform [0, 1) number per row number (splitmix64), chunk-independent.

  Example:
    >>> u = row_uniform(np.arange(100000), seed=0)
    >>> again = row_uniform(np.arange(100000), seed=0)
    >>> bool(0.49 < u.mean() < 0.51), bool((u == again).all())
    (True, True)
  """
  with np.errstate(over="ignore"):
    z = rows.astype(np.uint64) + np.uint64(
      (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64
    )
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
  return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign_splits(rows: np.ndarray, ratios, seed: int) -> np.ndarray:
  """Per row number, 0 (train), 1 (valid) or 2 (test), seeded by ``seed``."""
  r = np.asarray(ratios, np.float64)
  cut = np.cumsum(r / r.sum())
  return np.minimum(np.searchsorted(cut, row_uniform(rows, seed), "right"), 2)


class StreamingBuilder:
  """Accumulates raw chunks of several splits; see the module docstring.

  Args:
    workdir: folder for scratch files and the final ``.npy`` arrays.
    bags: field name -> bag size (1 for single-valued), in field order.
  """

  def __init__(self, workdir: str | os.PathLike, bags: Mapping[str, int]):
    self.workdir = pathlib.Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    self.bags = dict(bags)
    self.names = list(self.bags)
    self._index = {f: pd.Index([], dtype=object) for f in self.names}
    self._counts = {f: np.zeros(0, np.int64) for f in self.names}
    self._rows = dict.fromkeys(SPLITS, 0)
    self._files = {}

  def _file(self, split: str, key) -> Any:
    if (split, key) not in self._files:
      path = self.workdir / f"scratch.{split}.{key}.bin"
      self._files[split, key] = open(path, "wb")  # noqa: SIM115
    return self._files[split, key]

  def _codes(self, field: str, values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=object).reshape(-1)
    pad = pd.isna(flat)
    idx = self._index[field]
    codes = idx.get_indexer(flat)
    new = (codes < 0) & ~pad
    if new.any():
      uniq = pd.unique(flat[new])
      idx = self._index[field] = idx.append(pd.Index(uniq, dtype=object))
      codes[new] = idx.get_indexer(flat[new])
    codes = codes.astype(np.int64)
    codes[pad] = vocab_lib.PAD_RAW
    return codes.reshape(np.shape(values))

  def add(
    self, split: str, features: Mapping[str, np.ndarray], labels: np.ndarray
  ) -> None:
    """Appends a chunk of rows to ``split``."""
    n = int(np.shape(labels)[0])
    if n == 0:
      return
    for f in self.names:
      values = features[f]
      if self.bags[f] > 1 and np.ndim(values) == 1:
        raise ValueError(f"field {f!r} is a bag; pass (n, bag) values")
      codes = self._codes(f, values)
      if split == "train":
        keys, c = vocab_lib.value_counts(codes)
        size = len(self._index[f])
        if self._counts[f].size < size:
          self._counts[f] = np.pad(
            self._counts[f], (0, size - self._counts[f].size)
          )
        np.add.at(self._counts[f], keys, c)
      self._file(split, f).write(codes.astype(np.int64).tobytes())
    self._file(split, "labels").write(np.asarray(labels, np.float32).tobytes())
    self._rows[split] += n

  @property
  def rows(self) -> dict[str, int]:
    """Rows added so far per split."""
    return dict(self._rows)

  def finish(
    self,
    name: str,
    *,
    min_count: int = 1,
    metadata: Mapping[str, Any] | None = None,
  ) -> schema.CTRDataset:
    """Builds vocabularies on train and writes the memory-mapped arrays."""
    for f in self._files.values():
      f.close()
    if self._rows["train"] == 0:
      raise ValueError("no training rows")
    vocabs, freqs, filtered = {}, {}, {}
    code_ids = {}
    for f in self.names:
      # Rank codes by the value's string so that ID ties (equal counts) are
      # broken by value, not by the order in which chunks were read.
      values = np.asarray(self._index[f], dtype=str)
      rank = np.empty(values.size, np.int64)
      rank[np.argsort(values, kind="stable")] = np.arange(values.size)
      c = np.pad(self._counts[f], (0, values.size - self._counts[f].size))
      keys = np.flatnonzero(c)
      counts = (rank[keys], c[keys])
      v = vocab_lib.build_vocabulary(counts=[counts], min_count=min_count)
      vocabs[f], freqs[f] = v, v.frequencies(counts)
      code_ids[f] = np.append(v.lookup(rank), np.int32(schema.PAD_ID))
      filtered[f] = {
        "values_mapped_to_oov": v.num_filtered,
        "train_occurrences_mapped_to_oov": v.num_filtered_occurrences,
      }
    splits = {}
    for split in SPLITS:
      n = self._rows[split]
      if n == 0:
        splits[split] = None
        continue
      feats = {}
      for i, f in enumerate(self.names):
        shape = (n,) if self.bags[f] == 1 else (n, self.bags[f])
        src = np.memmap(
          self.workdir / f"scratch.{split}.{f}.bin",
          dtype=np.int64,
          mode="r",
          shape=shape,
        )
        dst = np.lib.format.open_memmap(
          cache.array_path(self.workdir, split, i),
          mode="w+",
          dtype=np.int32,
          shape=shape,
        )
        for s in range(0, n, _MAP_ROWS):
          dst[s : s + _MAP_ROWS] = code_ids[f][src[s : s + _MAP_ROWS]]
        dst.flush()
        del src, dst
        feats[f] = np.load(
          cache.array_path(self.workdir, split, i), mmap_mode="r"
        )
      lab = np.fromfile(
        self.workdir / f"scratch.{split}.labels.bin", dtype=np.float32
      )
      np.save(cache.array_path(self.workdir, split, "labels"), lab)
      labels = np.load(
        cache.array_path(self.workdir, split, "labels"), mmap_mode="r"
      )
      splits[split] = schema.Split(features=feats, labels=labels)
    for p in self.workdir.glob("scratch.*.bin"):
      p.unlink()
    fields = tuple(
      schema.FieldSpec(f, vocabs[f].vocab_size, self.bags[f])
      for f in self.names
    )
    meta = dict(metadata or {})
    meta.update(
      min_count=min_count,
      min_count_filtered=filtered,
      split_sizes={k: v for k, v in self._rows.items() if v},
    )
    if splits["test"] is None:
      raise ValueError("no test rows")
    return schema.CTRDataset(
      name=name,
      fields=fields,
      train=splits["train"],
      valid=splits["valid"],
      test=splits["test"],
      frequencies=freqs,
      metadata=meta,
    )
