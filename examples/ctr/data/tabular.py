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

Errors (``errors.DataFileError``) name the file and line (CSV, counting the
header as line 1) or row (Parquet): an empty file, a blank line, a missing
column, a line with too many or too few fields (quoted fields included), a
non-binary label, bytes that are not UTF-8, a file that is not Parquet. No
row is dropped.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import re
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np
import pandas as pd

from examples.ctr.data import errors
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
    raise errors.DataFileError(
      path,
      first_line + i,
      f"label {s.iloc[i]!r} is not 0/1 ({bad.size} bad labels in this chunk)",
      unit,
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
  """Raises DataFileError naming the first line without ``width`` fields.

  Blank lines are errors too (a CSV reader would skip them silently). With a
  comma (or any separator but tab) a field may be quoted and hold the
  separator: a line with quotes is counted by ``csv.reader``, unless its
  quotes are unbalanced (a quoted field spanning lines, left to the CSV
  reader). Tab-separated files are read without quoting, so quotes there
  are plain characters.

  Example:
    >>> check_field_counts(b'1,a\\n0,"b,c"\\n', ",", 2, "f.csv", 2)
    >>> check_field_counts(b'1,a\\n0,"b",c\\n', ",", 2, "f.csv", 2)
    Traceback (most recent call last):
    ...
    examples.ctr.data.errors.DataFileError: f.csv:3: too many fields (3, ...
  """
  a = np.frombuffer(block, np.uint8)
  ends = np.flatnonzero(a == 10)
  starts = np.concatenate([[0], ends[:-1] + 1])
  seps = np.concatenate([[0], np.cumsum(a == ord(sep))])
  count = seps[ends] - seps[starts] + 1
  empty = (ends - starts) - (a[np.maximum(ends - 1, 0)] == 13) <= 0
  unsure = np.zeros(ends.size, bool)
  if sep != "\t" and b'"' in block:
    q = np.concatenate([[0], np.cumsum(a == 34)])
    for i in np.flatnonzero((q[ends] - q[starts]) > 0):
      if (q[ends[i]] - q[starts[i]]) % 2:
        unsure[i] = True
        continue
      text = block[starts[i] : ends[i]].decode("utf-8", "replace")
      count[i] = len(next(csv.reader([text.rstrip("\r")], delimiter=sep)))
  bad = np.flatnonzero(empty | ((count != width) & ~unsure))
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
    raise errors.DataFileError(path, first_line + i, what)


def _parser_error(path, line: int, e: Exception):
  """The pandas parser's error, at the file line it names if it names one."""
  m = re.search(r"in line (\d+)|at row (\d+)", str(e))
  if m and m.group(1):
    at = line + int(m.group(1)) - 1
  elif m:
    at = line + int(m.group(2))
  else:
    at = None
  msg = str(e).replace("Error tokenizing data. C error: ", "").strip()
  if at is None:
    return errors.DataFileError(path, line, f"malformed line from here: {msg}")
  return errors.DataFileError(path, at, f"malformed line: {msg}")


def _decode_error(path, block: bytes, line: int):
  """DataFileError at the first line of ``block`` that is not UTF-8."""
  try:
    block.decode("utf-8")
  except UnicodeDecodeError as e:
    return errors.DataFileError(
      path,
      line + block[: e.start].count(b"\n"),
      f"not UTF-8 text (byte {block[e.start]:#04x})",
    )
  return errors.DataFileError(path, line, "not UTF-8 text")


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
    errors.DataFileError: naming file and line, for an empty file, a blank
      or missing header, a missing column, a blank line, a line with a wrong
      number of fields, a line that is not UTF-8 or a CSV syntax error.
  """
  path = pathlib.Path(path)
  if path.stat().st_size == 0:
    raise errors.DataFileError(path, 1, "file is empty")
  with open(path, "rb") as f:
    first = f.readline()
  if header:
    if not first.strip():
      raise errors.DataFileError(
        path, 1, "blank line (expected the header of column names)"
      )
    try:
      head = pd.read_csv(io.BytesIO(first), sep=sep, nrows=0, dtype=str).columns
    except UnicodeDecodeError:
      raise _decode_error(path, first, 1) from None
    missing = [c for c in columns if c not in head]
    if missing:
      raise errors.DataFileError(
        path, 1, f"missing column(s) {missing}; the header has {list(head)}"
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
      raise _parser_error(path, line, e) from e
    except UnicodeDecodeError:
      raise _decode_error(path, block, line) from None
    if frame.shape[1] != len(names):  # only multi-line quoted fields get here
      raise errors.DataFileError(
        path,
        line,
        f"malformed lines from here: {frame.shape[1]} fields, expected "
        f"{len(names)}",
      )
    frame.columns = names
    got_rows = got_rows or len(frame) > 0
    yield line, frame[list(columns)]
  if not got_rows:
    raise errors.DataFileError(path, 2, "no data rows")


def parquet_chunks(path, *, columns, chunk_rows):
  """Yields (row number of the chunk's first row (1-based), frame)."""
  import pyarrow as pa  # noqa: PLC0415
  import pyarrow.parquet as pq  # noqa: PLC0415

  path = pathlib.Path(path)
  if path.stat().st_size == 0:
    raise errors.DataFileError(path, None, "file is empty")
  try:
    f = pq.ParquetFile(path)
  except pa.ArrowException as e:
    raise errors.DataFileError(path, None, f"not a Parquet file: {e}") from e
  missing = [c for c in columns if c not in f.schema_arrow.names]
  if missing:
    raise errors.DataFileError(
      path,
      None,
      f"missing column(s) {missing}; the file has {f.schema_arrow.names}",
    )
  if f.metadata.num_rows == 0:
    raise errors.DataFileError(path, None, "no data rows")
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
