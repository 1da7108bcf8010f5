"""Per dataset and field: vocabulary size and the share of rare IDs.

Usage: ``python -m examples.ctr.data.summary --data-dir ../shared/data``.

For every dataset of ``registry.DATASETS`` whose files are under
``--data-dir`` (others are listed as skipped), prints the split sizes, the
training label balance and, per field, the vocabulary size (reserved IDs
included), the share of real IDs (2 ..) seen in at most ``--rare`` (5)
training examples, and the share seen exactly once. Uses the cache, so a
second run takes seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

from examples.ctr.data import registry
from examples.ctr.data import schema

SHARED_DATASETS = (
  "amazon-sports",
  "amazon-beauty",
  "amazon-toys",
  "amazon-book",
  "movielens-100k",
  "frappe",
  "ipinyou-sample",
)


def field_rows(ds: schema.CTRDataset, rare: int = 5) -> list[dict]:
  """One row per field: name, vocab size, bag size, rare and once shares.

  Example:
    >>> import numpy as np
    >>> f = schema.FieldSpec("a", 5)
    >>> s = schema.Split({"a": np.array([2, 2, 3, 4])}, np.zeros(4))
    >>> ds = schema.CTRDataset("t", (f,), s, None, s,
    ...                        {"a": np.array([0, 0, 9, 1, 1])})
    >>> field_rows(ds)[0]["rare_share"]
    0.6666666666666666
  """
  rows = []
  for f in ds.fields:
    freq = np.asarray(ds.frequencies[f.name])[schema.NUM_RESERVED_IDS :]
    rows.append(
      {
        "field": f.name,
        "vocab_size": f.vocab_size,
        "bag_size": f.bag_size,
        "rare_share": float((freq <= rare).mean()) if freq.size else 0.0,
        "once_share": float((freq == 1).mean()) if freq.size else 0.0,
      }
    )
  return rows


def format_dataset(ds: schema.CTRDataset, rare: int = 5) -> str:
  """A printable block for one dataset."""
  sizes = {
    k: len(s)
    for k in ("train", "valid", "test")
    if (s := getattr(ds, k)) is not None
  }
  pos = float(np.asarray(ds.train.labels).mean())
  lines = [
    f"== {ds.name}: "
    + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
    + f"; train positives {pos:.2%}",
    f"  {'field':<18}{'vocab':>10}{'bag':>5}{f'<={rare}':>9}{'=1':>8}",
  ]
  for r in field_rows(ds, rare):
    lines.append(
      f"  {r['field']:<18}{r['vocab_size']:>10,}{r['bag_size']:>5}"
      f"{r['rare_share']:>9.1%}{r['once_share']:>8.1%}"
    )
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", default=os.environ.get("OPTAX_AR_DATA"))
  parser.add_argument("--datasets", default=",".join(SHARED_DATASETS))
  parser.add_argument("--cache-dir", default=None)
  parser.add_argument("--rare", type=int, default=5)
  args = parser.parse_args(argv)
  if not args.data_dir:
    parser.error("--data-dir (or $OPTAX_AR_DATA) is required")
  for name in args.datasets.split(","):
    try:
      ds = registry.load_dataset(name, args.data_dir, cache_dir=args.cache_dir)
    except FileNotFoundError as e:
      print(f"== {name}: skipped ({e})")
      continue
    print(format_dataset(ds, args.rare))
  return 0


if __name__ == "__main__":
  sys.exit(main())
