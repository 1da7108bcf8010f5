"""MovieLens (and any RecBole atomic-format dataset) as a CTR dataset.

Usage: ``ds = load_atomic("movielens-100k/", "ml-100k")``.

RecBole's atomic format: ``<name>.inter`` (one interaction per line),
optional ``<name>.user`` and ``<name>.item`` side tables; tab-separated, with
a typed header ``column:type`` (``token``, ``token_seq``, ``float``,
``float_seq``). ``token`` columns become single-valued fields and
``token_seq`` columns (space-separated tokens, e.g. genres) bags padded to
their longest value; ``float`` columns are not features. The side tables
are joined on their first column (``user_id`` / ``item_id``); a user or item
missing from its table gets the empty-string value (counted in metadata).

Label: ``label_field >= threshold`` (MovieLens: rating >= 4 is a click).
Split: all interactions sorted by ``time_field`` (stable: ties keep file
order), then the first ``ratios[0]`` are training, the next ``ratios[1]``
validation and the rest test, i.e. a global time-ordered split: the model
predicts the future from the past.

Errors (``errors.DataFileError``) name the file and line: an empty file, a
header column without a known ``:type``, no data rows, a line with another
number of columns than the header, a missing column, a label or time value
that is not a finite number, a side-table key listed twice, bytes that are
not UTF-8.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from examples.ctr.data import assemble as assemble_lib
from examples.ctr.data import errors
from examples.ctr.data import vocab as vocab_lib

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


def read_atomic(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, str]]:
  """Reads one atomic file: (frame of strings, column -> type).

  Row ``i`` of the frame is line ``i + 2`` of the file.

  Raises:
    errors.DataFileError: an empty file, a header column without one of the
      ``ATOMIC_TYPES``, no data rows, or a line with the wrong number of
      columns (naming file and line).
  """
  path = pathlib.Path(path)
  lines = errors.read_lines(path)
  _, header = next(lines, (1, ""))
  if not header:
    raise errors.DataFileError(
      path, 1, "file is empty (expected a typed header)"
    )
  names, types = [], {}
  for col in header.split("\t"):
    n, _, t = col.rpartition(":")
    if not n or t not in ATOMIC_TYPES:
      raise errors.DataFileError(
        path, 1, f"header column {col!r} has no ':type' of {ATOMIC_TYPES}"
      )
    names.append(n)
    types[n] = t
  rows = []
  for lineno, line in lines:
    parts = line.split("\t")
    if len(parts) != len(names):
      raise errors.DataFileError(
        path,
        lineno,
        f"expected {len(names)} tab-separated columns, got {len(parts)}",
      )
    rows.append(parts)
  if not rows:
    raise errors.DataFileError(path, 2, "no data rows")
  return pd.DataFrame(rows, columns=names, dtype=object), types


def _numbers(frame: pd.DataFrame, column: str, path) -> np.ndarray:
  """A column as float64; DataFileError at a value that is not finite."""
  values = frame[column].to_numpy(dtype=object)
  try:
    out = values.astype(np.float64)
  except ValueError:
    out = None
  if out is None or not np.isfinite(out).all():
    for i, v in enumerate(values):
      try:
        ok = np.isfinite(float(v))
      except ValueError:
        ok = False
      if not ok:
        raise errors.DataFileError(
          path, i + 2, f"{column} {v!r} is not a finite number"
        )
  return out


def _codes(values: pd.Series, is_seq: bool) -> np.ndarray:
  """Raw int64 codes; token_seq columns become PAD_RAW-padded bags."""
  if not is_seq:
    return pd.factorize(values.to_numpy(dtype=object))[0].astype(np.int64)
  lists = [v.split() for v in values.to_numpy(dtype=object)]
  width = max(1, max((len(x) for x in lists), default=0))
  flat = np.array([t for x in lists for t in x], dtype=object)
  codes = pd.factorize(flat)[0]
  out = np.full((len(lists), width), vocab_lib.PAD_RAW, np.int64)
  lens = np.array([len(x) for x in lists], dtype=np.int64)
  rows = np.repeat(np.arange(len(lists)), lens)
  cols = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
  out[rows, cols] = codes
  return out


def load_atomic(
  directory: str | os.PathLike,
  dataset: str = "ml-100k",
  *,
  name: str = "movielens-100k",
  label_field: str = "rating",
  threshold: float = 4.0,
  time_field: str = "timestamp",
  ratios: Sequence[float] = (0.8, 0.1, 0.1),
  exclude_fields: Sequence[str] = ("movie_title",),
  min_count: int = 1,
):
  """Builds the dataset (see the module docstring).

  Args:
    directory: folder with ``<dataset>.inter`` (and ``.user``, ``.item``).
    dataset: the file stem.
    name: the dataset name.
    label_field: the column thresholded into the label.
    threshold: label is 1 where ``label_field >= threshold``.
    time_field: the column the split orders by.
    ratios: train / validation / test shares.
    exclude_fields: token columns not used as features (MovieLens titles).
    min_count: see ``vocab.build_vocabulary``.

  Returns:
    A ``CTRDataset`` with fields ``user_id``, ``item_id``, then the user and
    item side columns.
  """
  directory = pathlib.Path(directory)
  inter_path = directory / f"{dataset}.inter"
  inter, types = read_atomic(inter_path)
  for col in (label_field, time_field, "user_id", "item_id"):
    if col not in inter.columns:
      raise errors.DataFileError(
        inter_path,
        1,
        f"missing column {col!r} (have {list(inter.columns)})",
      )
  score = _numbers(inter, label_field, inter_path)
  time = _numbers(inter, time_field, inter_path)
  frame = inter
  meta = {"interactions": len(inter)}
  for side, key in (("user", "user_id"), ("item", "item_id")):
    p = directory / f"{dataset}.{side}"
    if not p.exists():
      continue
    table, side_types = read_atomic(p)
    first = table.columns[0]
    if table[first].duplicated().any():
      dup = int(np.flatnonzero(table[first].duplicated().to_numpy())[0]) + 2
      raise errors.DataFileError(
        p, dup, f"duplicate {first} {table[first][dup - 2]!r}"
      )
    table = table.rename(columns={first: key})
    side_types = {(key if k == first else k): t for k, t in side_types.items()}
    missing = ~frame[key].isin(table[key])
    meta[f"interactions_without_{side}_row"] = int(missing.sum())
    frame = frame.merge(table, on=key, how="left", sort=False).fillna("")
    types.update({k: t for k, t in side_types.items() if k != key})
  cols = [
    c
    for c in frame.columns
    if types.get(c) in ("token", "token_seq") and c not in exclude_fields
  ]
  feats = {c: _codes(frame[c], types[c] == "token_seq") for c in cols}
  labels = (score >= threshold).astype(np.float32)
  order = np.argsort(time, kind="stable")
  n = order.size
  r = np.asarray(ratios, dtype=np.float64)
  cut = np.round(np.cumsum(r / r.sum()) * n).astype(int)
  parts = {
    "train": order[: cut[0]],
    "valid": order[cut[0] : cut[1]],
    "test": order[cut[1] :],
  }
  raw = {
    s: assemble_lib.RawSplit({c: a[i] for c, a in feats.items()}, labels[i])
    for s, i in parts.items()
  }
  meta.update(
    {
      "label": f"{label_field} >= {threshold}",
      "split": f"global by {time_field}",
      "ratios": [float(x) for x in r],
    }
  )
  return assemble_lib.assemble(name, raw, min_count=min_count, metadata=meta)
