"""libFM / libSVM files of one-hot categorical features (Frappe, iPinYou).

Usage: ``ds = load_libfm({"train": a, "test": b}, field_names=FRAPPE_FIELDS)``.

Format: one example per line, ``label idx:val idx:val ...``; the label is
1/-1 or 1/0 (-1 becomes 0); every feature is a one-hot indicator, so ``val``
must be 1. Fields are recovered in one of two ways:

* by position (default): every line has the same number of features and
  the ``j``-th feature of a line belongs to field ``j`` (Frappe's 10 fields
  and the iPinYou sample's 16 are stored this way). The loader records in
  ``metadata["position_ranges_disjoint"]`` whether the feature indices of
  different positions are disjoint across all files, which is what this
  layout implies.
* from a feature map (``featindex``, as written by make-ipinyou-data:
  ``field:value<TAB>index``): each index's field is looked up; a line has at
  most one feature per field and a field absent from a line gets the OOV ID.

  The ``featindex.txt`` shipped with the iPinYou sample in ``../shared/data``
  does not describe the sample's index layout (its positions 4-15 all map to
  its field ``8``), so that sample is read by position.

A split without its own file is carved from another one, seeded: see
``carve``. The raw feature index is the value of its field; vocabularies are
built on the training split only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np

from examples.ctr.data import assemble as assemble_lib
from examples.ctr.data import errors

FRAPPE_FIELDS = (
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
)


def read_libfm(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads a libFM file: labels (n,) float32 0/1 and indices (n, k) int64.

  Raises:
    errors.DataFileError: naming file and line: an empty file, a blank line,
      a malformed token, a label other than 1/0/-1, a feature index that is
      not a non-negative integer, a value other than 1, a line without
      features, or a line whose feature count differs from the first line's.

  Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.libfm"
    >>> _ = p.write_text("1 3:1 7:1\\n-1 4:1 7:1\\n")
    >>> y, x = read_libfm(p)
    >>> y.tolist(), x.tolist()
    ([1.0, 0.0], [[3, 7], [4, 7]])
  """
  labels, rows = [], []
  width = None
  for lineno, line in errors.read_lines(path):
    parts = line.split()
    try:
      y = float(parts[0])
      pairs = [t.split(":") for t in parts[1:]]
      idx = [int(k) for k, _ in pairs]
      ok = (
        y in (1.0, 0.0, -1.0)
        and all(float(v) == 1.0 for _, v in pairs)
        and (not idx or min(idx) >= 0)
        and (width is None or len(idx) == width)
        and len(idx) > 0
      )
    except (ValueError, IndexError):
      ok = False
    if not ok:
      raise errors.DataFileError(path, lineno, _libfm_problem(parts, width))
    width = len(idx)
    labels.append(max(y, 0.0))
    rows.append(idx)
  if not rows:
    raise errors.DataFileError(path, 1, "file is empty")
  return np.array(labels, np.float32), np.array(rows, np.int64)


def _libfm_problem(parts: list[str], width: int | None) -> str:
  """What is wrong with a libFM line (split into tokens)."""
  if not parts:
    return "blank line"
  pairs = [t.split(":") for t in parts[1:]]
  if any(len(p) != 2 for p in pairs):
    line = " ".join(parts)
    return f"malformed line, expected 'label idx:val ...': {line[:80]!r}"
  try:
    if float(parts[0]) not in (1.0, 0.0, -1.0):
      raise ValueError
  except ValueError:
    return f"label {parts[0]!r} is not 1/0/-1"
  for k, _ in pairs:
    try:
      if int(k) < 0:
        return f"feature index {k!r} is negative"
    except ValueError:
      return f"feature index {k!r} is not an integer"
  for _, v in pairs:
    try:
      if float(v) != 1.0:
        raise ValueError
    except ValueError:
      return "only one-hot features 'idx:1' are supported"
  if not pairs:
    return "no features (expected 'label idx:val ...')"
  return f"{len(pairs)} features, expected {width} (as on line 1)"


def read_featindex(path: str | os.PathLike) -> dict[int, str]:
  """Reads ``field:value<TAB>index`` lines into index -> field.

  Lines without a ``field:`` prefix (make-ipinyou-data's ``truncate``) and
  the trailing count line are skipped.
  """
  out = {}
  with open(path, encoding="utf-8", errors="replace") as f:
    for lineno, line in enumerate(f, start=1):
      line = line.rstrip("\n")
      if "\t" not in line:
        continue
      key, index = line.rsplit("\t", 1)
      if ":" not in key:
        continue
      try:
        out[int(index)] = key.split(":", 1)[0]
      except ValueError as e:
        raise errors.DataFileError(
          path, lineno, f"index {index!r} is not an integer: {line[:80]!r}"
        ) from e
  return out


def carve(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Seeded split of ``range(n)`` into (rest, carved) sorted index arrays.

  ``round(fraction * n)`` rows are carved.

  Example:
    >>> rest, part = carve(10, 0.2, seed=0)
    >>> len(rest), len(part), sorted([*rest, *part]) == list(range(10))
    (8, 2, True)
  """
  perm = np.random.default_rng(seed).permutation(n)
  k = int(round(fraction * n))
  return np.sort(perm[k:]), np.sort(perm[:k])


def _by_featindex(indices, index_field, fields, path):
  out = np.full((indices.shape[0], len(fields)), -2, np.int64)
  col = {f: j for j, f in enumerate(fields)}
  for i, row in enumerate(indices):
    for idx in row:
      f = index_field.get(int(idx))
      if f is None:
        raise errors.DataFileError(path, i + 1, f"index {idx} not in featindex")
      j = col[f]
      if out[i, j] != -2:
        raise errors.DataFileError(path, i + 1, f"two features of field {f!r}")
      out[i, j] = idx
  return out


def load_libfm(
  files: Mapping[str, str | os.PathLike],
  *,
  name: str = "libfm",
  field_names: Sequence[str] | None = None,
  featindex: str | os.PathLike | None = None,
  carve_valid_from: str | None = None,
  carve_test_from: str | None = None,
  valid_fraction: float = 0.1,
  test_fraction: float = 0.1,
  min_count: int = 1,
  seed: int = 0,
):
  """Builds a dataset from libFM files.

  Args:
    files: split name (``train``, ``valid``, ``test``) -> file.
    name: the dataset name.
    field_names: names of the positional fields (default ``f00, f01, ...``).
    featindex: a make-ipinyou-data feature map; fields by lookup, not
      position.
    carve_valid_from: a split in ``files`` from which ``valid_fraction`` of
      the rows become the validation split (seeded).
    carve_test_from: likewise for the test split (carved first).
    valid_fraction, test_fraction: shares carved.
    min_count: see ``vocab.build_vocabulary``.
    seed: seed of the carving.

  Returns:
    A ``CTRDataset``.
  """
  raw, meta = {}, {"files": {k: str(v) for k, v in files.items()}}
  per_split = {s: read_libfm(p) for s, p in files.items()}
  if featindex is not None:
    index_field = read_featindex(featindex)
    fields = sorted(
      set(index_field.values()),
      key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f),
    )
    per_split = {
      s: (y, _by_featindex(x, index_field, fields, files[s]))
      for s, (y, x) in per_split.items()
    }
    field_names = [f"field_{f}" for f in fields]
  (first, (_, x0)), *others = per_split.items()
  width = x0.shape[1]
  for s, (_, x) in others:
    if x.shape[1] != width:
      raise errors.DataFileError(
        files[s],
        1,
        f"{x.shape[1]} features, expected {width} (as in {files[first]})",
      )
  if field_names is None:
    field_names = [f"f{j:02d}" for j in range(width)]
  if len(field_names) != width:
    raise ValueError(f"{len(field_names)} field names for {width} features")
  if featindex is None:
    owner = {}
    disjoint = True
    for _, x in per_split.values():
      for j in range(width):
        for v in np.unique(x[:, j]).tolist():
          if owner.setdefault(v, j) != j:
            disjoint = False
    meta["position_ranges_disjoint"] = disjoint
  for target, source, frac, off in (
    ("test", carve_test_from, test_fraction, 1),
    ("valid", carve_valid_from, valid_fraction, 2),
  ):
    if source is None:
      continue
    y, x = per_split[source]
    rest, part = carve(y.size, frac, seed + off)
    per_split[source] = (y[rest], x[rest])
    per_split[target] = (y[part], x[part])
    meta[f"{target}_carved_from"] = f"{source} ({frac:.0%}, seed {seed + off})"
  for split, (y, x) in per_split.items():
    x = np.where(x == -2, np.iinfo(np.int64).max, x)  # featindex: absent
    raw[split] = assemble_lib.RawSplit(
      {f: x[:, j] for j, f in enumerate(field_names)}, y
    )
  raw.setdefault("valid", None)
  return assemble_lib.assemble(name, raw, min_count=min_count, metadata=meta)
