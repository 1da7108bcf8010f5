"""Bring-your-own data: CSV / TSV / Parquet with categorical columns.

Usage (command line of the examples)::

  --data clicks.csv --label click --categorical site,app,device

Every ``categorical`` column is one single-valued field (values are read as
strings; an empty cell is the value ""). The ``label`` column must hold 0/1
(``0``, ``1``, ``0.0``, ``1.0``, ``true``/``false``).

Splits: either one file, split per row by a seeded hash of the row number
into ``ratios`` (default 80/10/10; independent of the chunk size), or
separate ``train`` / ``valid`` / ``test`` files. Files are read in chunks of
``chunk_rows`` through ``streaming.StreamingBuilder``, so memory stays
bounded by the number of distinct values. The separator is inferred from
the extension (``.tsv``/``.tab``: tab, else comma) unless ``sep`` is given;
``.parquet``/``.pq`` files are read with pyarrow.

Errors name the file and line (CSV, counting the header as line 1) or row
(Parquet): a missing column, a line with too many or too few fields, a
non-binary label, an empty file. No row is dropped.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np
import pandas as pd

from examples.ctr.data import streaming

_TRUE = {"1", "1.0", "true", "True"}
_FALSE = {"0", "0.0", "false", "False"}


def parse_labels(
  values: np.ndarray, path, first_line: int, unit: str = ""
) -> np.ndarray:
  """0/1 strings (or numbers) -> float32, else ValueError naming the line.

  Example:
    >>> parse_labels(np.array(["1", "0", "0.0"]), "f.csv", 2).tolist()
    [1.0, 0.0, 0.0]
  """
  s = pd.Series(values).astype(str)
  pos, neg = s.isin(_TRUE).to_numpy(), s.isin(_FALSE).to_numpy()
  bad = np.flatnonzero(~(pos | neg))
  if bad.size:
    i = int(bad[0])
    raise ValueError(
      f"{path}:{unit}{first_line + i}: label {s.iloc[i]!r} is "
      f"not 0/1 ({bad.size} bad labels in this chunk)"
    )
  return pos.astype(np.float32)


def _line_blocks(path, block_bytes: int) -> Iterator[tuple[int, bytes]]:
  """Yields (file line of the block's first line, whole lines as bytes)."""
  line, rest = 1, b""
  with open(path, "rb") as f:
    while True:
      data = f.read(block_bytes)
      if not data:
        break
      data = rest + data
      cut = data.rfind(b"\n") + 1
      if cut == 0:
        rest = data
        continue
      block, rest = data[:cut], data[cut:]
      yield line, block
      line += block.count(b"\n")
  if rest:
    yield line, rest + b"\n"


def check_field_counts(
  block: bytes, sep: str, width: int, path, first_line: int
) -> None:
  """Raises ValueError naming the first line without ``width`` fields.

  Blank lines are errors too (a CSV reader would skip them silently). Lines
  with a quote character are not counted (a quoted field may hold the
  separator); the CSV reader still rejects lines with too many fields.
  """
  a = np.frombuffer(block, np.uint8)
  ends = np.flatnonzero(a == 10)
  starts = np.concatenate([[0], ends[:-1] + 1])
  seps = np.concatenate([[0], np.cumsum(a == ord(sep))])
  count = seps[ends] - seps[starts] + 1
  empty = (ends - starts) - (a[np.maximum(ends - 1, 0)] == 13) <= 0
  quoted = np.zeros(ends.size, bool)
  if b'"' in block:
    q = np.concatenate([[0], np.cumsum(a == 34)])
    quoted = (q[ends] - q[starts]) > 0
  bad = np.flatnonzero(empty | ((count != width) & ~quoted))
  if bad.size:
    i = int(bad[0])
    what = (
      "blank line"
      if empty[i]
      else (
        f"{'too few' if count[i] < width else 'too many'} fields ({count[i]}, "
        f"expected {width})"
      )
    )
    raise ValueError(f"{path}:{first_line + i}: {what}")


def csv_chunks(
  path: str | os.PathLike,
  *,
  sep: str,
  columns: Sequence[str],
  chunk_rows: int,
  header: bool = True,
  names: Sequence[str] | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
  """Yields (file line of the chunk's first row, frame of strings).

  With ``header``, ``columns`` must be in the header; otherwise ``names``
  names the columns. The file is read in blocks of about ``chunk_rows``
  lines; every line's field count is checked (``check_field_counts``).

  Raises:
    ValueError: naming file and line, for an empty file, a missing column,
      a blank line or a line with a wrong number of fields.
  """
  path = pathlib.Path(path)
  if path.stat().st_size == 0:
    raise ValueError(f"{path}:1: file is empty")
  with open(path, "rb") as f:
    first = f.readline()
  if header:
    head = pd.read_csv(io.BytesIO(first), sep=sep, nrows=0, dtype=str).columns
    missing = [c for c in columns if c not in head]
    if missing:
      raise ValueError(
        f"{path}:1: missing column(s) {missing}; the header has {list(head)}"
      )
    names = list(head)
  names = list(names)
  avg = max(16, len(first))
  got_rows = False
  skip = len(first) if header else 0
  for line, block in _line_blocks(path, max(1 << 16, chunk_rows * avg)):
    if skip:
      block, skip, line = block[skip:], 0, line + 1
      if not block:
        continue
    check_field_counts(block, sep, len(names), path, line)
    try:
      frame = pd.read_csv(
        io.BytesIO(block),
        sep=sep,
        header=None,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        engine="c",
        quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
      )
    except pd.errors.ParserError as e:
      raise ValueError(f"{path}: malformed line near line {line}: {e}") from e
    if frame.shape[1] != len(names):  # only quoted lines get here
      raise ValueError(
        f"{path}: malformed line near line {line}: "
        f"{frame.shape[1]} fields, expected {len(names)}"
      )
    frame.columns = names
    got_rows = got_rows or len(frame) > 0
    yield line, frame[list(columns)]
  if not got_rows:
    raise ValueError(f"{path}:2: no data rows")


def parquet_chunks(path, *, columns, chunk_rows):
  """Yields (row number of the chunk's first row (1-based), frame)."""
  import pyarrow.parquet as pq  # noqa: PLC0415

  path = pathlib.Path(path)
  if path.stat().st_size == 0:
    raise ValueError(f"{path}: file is empty")
  f = pq.ParquetFile(path)
  missing = [c for c in columns if c not in f.schema_arrow.names]
  if missing:
    raise ValueError(
      f"{path}: missing column(s) {missing}; the file has "
      f"{f.schema_arrow.names}"
    )
  if f.metadata.num_rows == 0:
    raise ValueError(f"{path}: no data rows")
  row = 1
  for batch in f.iter_batches(batch_size=chunk_rows, columns=list(columns)):
    frame = batch.to_pandas()
    yield row, frame
    row += len(frame)


def _chunks(path, columns, sep, chunk_rows):
  path = pathlib.Path(path)
  if path.suffix in (".parquet", ".pq"):
    for row, frame in parquet_chunks(
      path, columns=columns, chunk_rows=chunk_rows
    ):
      yield row, "row ", frame
    return
  if sep is None:
    sep = "\t" if path.suffix in (".tsv", ".tab") else ","
  for line, frame in csv_chunks(
    path, sep=sep, columns=columns, chunk_rows=chunk_rows
  ):
    yield line, "", frame


def _as_str(col: pd.Series) -> np.ndarray:
  """Values as strings; missing (Parquet null) becomes ""."""
  return (
    col.astype(object).where(col.notna(), "").astype(str).to_numpy(dtype=object)
  )


def build_tabular(
  workdir: str | os.PathLike,
  *,
  label: str,
  categorical: Sequence[str],
  data: str | os.PathLike | None = None,
  train: str | os.PathLike | None = None,
  valid: str | os.PathLike | None = None,
  test: str | os.PathLike | None = None,
  name: str = "tabular",
  sep: str | None = None,
  ratios: Sequence[float] = (0.8, 0.1, 0.1),
  seed: int = 0,
  chunk_rows: int = 1 << 20,
  min_count: int = 1,
):
  """Streams the file(s) into a dataset under ``workdir``.

  Args:
    workdir: where the memory-mapped arrays are written.
    label: the 0/1 label column.
    categorical: the feature columns.
    data: one file to split by ``ratios``; or give ``train`` and ``test``
      (and optionally ``valid``) files instead.
    train, valid, test: per-split files.
    name: the dataset name.
    sep: CSV separator (default: by extension).
    ratios: train / valid / test shares for ``data``.
    seed: seed of the split of ``data``.
    chunk_rows: rows read at a time.
    min_count: see ``vocab.build_vocabulary``.

  Returns:
    A ``CTRDataset`` of memory-mapped arrays.
  """
  categorical = list(categorical)
  if not categorical:
    raise ValueError("no categorical columns given")
  if label in categorical:
    raise ValueError(f"label column {label!r} is also listed as categorical")
  if (data is None) == (train is None):
    raise ValueError("give either data=PATH or train=PATH (and test=PATH)")
  if train is not None and test is None:
    raise ValueError("test=PATH is required with train=PATH")
  builder = streaming.StreamingBuilder(workdir, dict.fromkeys(categorical, 1))
  columns = [label, *categorical]
  sources = (
    {"data": data}
    if data is not None
    else {
      k: v
      for k, v in (("train", train), ("valid", valid), ("test", test))
      if v is not None
    }
  )
  for role, path in sources.items():
    row0 = 0
    for first, unit, frame in _chunks(path, columns, sep, chunk_rows):
      y = parse_labels(frame[label].to_numpy(), path, first, unit)
      feats = {c: _as_str(frame[c]) for c in categorical}
      if role != "data":
        builder.add(role, feats, y)
      else:
        which = streaming.assign_splits(
          np.arange(row0, row0 + len(y)), ratios, seed
        )
        for code, split in enumerate(streaming.SPLITS):
          m = which == code
          builder.add(split, {c: v[m] for c, v in feats.items()}, y[m])
      row0 += len(y)
  meta = {
    "sources": {k: str(v) for k, v in sources.items()},
    "label": label,
    "ratios": list(ratios) if data else None,
    "seed": seed,
  }
  return builder.finish(name, min_count=min_count, metadata=meta)
