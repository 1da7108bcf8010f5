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
    ValueError: an empty file, a malformed token, a non-binary label, a value
      other than 1, or a line whose feature count differs from the first
      line's (naming file and line).
  """
  labels, rows = [], []
  width = None
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, start=1):
      parts = line.split()
      if not parts:
        raise ValueError(f"{path}:{lineno}: blank line")
      try:
        y = float(parts[0])
        pairs = [t.split(":") for t in parts[1:]]
        idx = [int(p[0]) for p in pairs]
        vals = [float(p[1]) for p in pairs]
      except (ValueError, IndexError) as e:
        raise ValueError(
          f"{path}:{lineno}: malformed line, expected "
          f"'label idx:val ...': {line.strip()[:80]!r}"
        ) from e
      if y not in (1.0, 0.0, -1.0):
        raise ValueError(f"{path}:{lineno}: label {parts[0]!r} is not 1/0/-1")
      if any(v != 1.0 for v in vals) or any(len(p) != 2 for p in pairs):
        raise ValueError(
          f"{path}:{lineno}: only one-hot features 'idx:1' are supported"
        )
      if width is None:
        width = len(idx)
      elif len(idx) != width:
        raise ValueError(
          f"{path}:{lineno}: {len(idx)} features, expected "
          f"{width} (as on line 1)"
        )
      labels.append(max(y, 0.0))
      rows.append(idx)
  if not rows:
    raise ValueError(f"{path}: file is empty")
  return np.array(labels, np.float32), np.array(rows, np.int64)


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
        raise ValueError(
          f"{path}:{lineno}: malformed featindex line {line[:80]!r}"
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
        raise ValueError(f"{path}:{i + 1}: index {idx} not in featindex")
      j = col[f]
      if out[i, j] != -2:
        raise ValueError(f"{path}:{i + 1}: two features of field {f!r}")
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
  widths = {x.shape[1] for _, x in per_split.values()}
  if len(widths) != 1:
    raise ValueError(
      f"files have different feature counts: "
      f"{ {s: x.shape[1] for s, (_, x) in per_split.items()} }"
    )
  width = widths.pop()
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
