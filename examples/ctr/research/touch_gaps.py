"""How many steps pass between two touches of an embedding row in training.

Usage: ``python -m examples.ctr.research.touch_gaps --dataset amazon-sports
--data-path ../shared/data --batch-sizes 2048,256``.

AdamAR decays a row by ``min(1, alpha * I)`` when it is touched after ``I``
skipped steps (the AdamAR rule), so the distribution of ``I`` over the
training order says what the decay does on a dataset: where every row is
touched every few dozen steps, AdamAR is a lazy uniform weight decay (the
total decay of a row over an epoch is about ``alpha * steps_per_epoch``
whatever its frequency); only rows unseen for ``1 / alpha`` steps or more
are treated differently (wiped).

The training order is the runner's (:class:`BatchIterator`, shuffled with
``seed``, epochs counted from 1, the last partial batch dropped), and a row
counts as touched in a step when its ID occurs in the batch (reserved IDs 0
and 1 excluded; the step's gradient for it can still be zero). The gaps are
``I = k - last - 1`` between consecutive touches of the same row (a row's
first touch has none); frequency buckets are equal-count splits of the
field's IDs by training frequency, as in the results files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr import metrics as metrics_lib
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data.pipeline import BatchIterator


def touches(
  ids: np.ndarray, batch_size: int, seed: int = 0, epochs: int = 1
) -> tuple[np.ndarray, np.ndarray]:
  """``(row, step)`` of every touch, in the runner's training order.

  Args:
    ids: the field's column of the training split, ``(n,)`` or ``(n, L)``.
    batch_size: training batch size (the last partial batch is dropped).
    seed: the shuffle seed (the runner's run seed).
    epochs: epochs to replay; steps count on across epochs from 1.

  Returns:
    Two int64 arrays sorted by row, then step: each ``(row, step)`` pair
    once, where step ``k`` (1-based) is the batch that holds the row.

  Example:
    >>> rows, steps = touches(np.array([5, 5, 7, 0]), batch_size=4, epochs=2)
    >>> rows.tolist(), steps.tolist()
    ([5, 5, 7, 7], [1, 2, 1, 2])
  """
  ids = np.asarray(ids)
  n = ids.shape[0]
  per_epoch = n // batch_size
  if per_epoch < 1:
    raise ValueError(f"no full batch of {batch_size} in {n} examples")
  dummy = schema.Split({}, np.zeros(n, np.float32))
  iterator = BatchIterator(
    dummy, batch_size, shuffle=True, seed=seed, drop_remainder=True
  )
  keys = []
  total_steps = per_epoch * epochs
  for e in range(epochs):
    order = iterator.order(e + 1)[: per_epoch * batch_size]
    step = np.arange(order.size) // batch_size + 1 + e * per_epoch
    rows = ids[order].reshape(order.size, -1)
    step = np.broadcast_to(step[:, None], rows.shape)
    keep = rows >= schema.NUM_RESERVED_IDS
    keys.append(rows[keep].astype(np.int64) * (total_steps + 1) + step[keep])
  key = np.unique(np.concatenate(keys))
  return key // (total_steps + 1), key % (total_steps + 1)


def gaps(rows: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(row, I)`` of every touch after a row's first (``I = k - last - 1``).

  Example:
    >>> gaps(np.array([3, 3, 3, 4]), np.array([1, 2, 9, 4]))
    (array([3, 3]), array([0, 6]))
  """
  same = rows[1:] == rows[:-1]
  return rows[1:][same], (steps[1:] - steps[:-1] - 1)[same]


def _describe(values: np.ndarray) -> dict[str, float | None]:
  if values.size == 0:
    return {"median": None, "mean": None, "p90": None, "p99": None}
  return {
    "median": float(np.median(values)),
    "mean": float(values.mean()),
    "p90": float(np.percentile(values, 90)),
    "p99": float(np.percentile(values, 99)),
  }


def gap_statistics(
  dataset: schema.CTRDataset,
  field: str,
  batch_size: int,
  *,
  seed: int = 0,
  epochs: int = 1,
  num_buckets: int = 5,
) -> dict[str, Any]:
  """Touch-gap statistics of one field's rows at one batch size.

  Args:
    dataset: the data (its training split is replayed).
    field: the field whose table is studied.
    batch_size: training batch size.
    seed: shuffle seed.
    epochs: epochs replayed.
    num_buckets: frequency buckets for the per-bucket medians.

  Returns:
    A JSON-able dict: ``steps_per_epoch``, ``rows`` (real IDs of the field),
    ``rows_touched``, ``gap`` (median, mean, p90, p99 of ``I`` over all
    touches after the first), ``row_mean_gap_median`` (median over rows of
    a row's mean gap), ``touches_per_row_median``, ``frac_gaps_over_epoch``
    (share of gaps longer than an epoch) and ``bucket_gap_median`` (median
    gap per frequency bucket, rarest first) with ``bucket_frequency_ranges``.

  Example:
    >>> split = schema.Split({"f": np.array([2, 2, 3, 2])},
    ...                      np.zeros(4, np.float32))
    >>> ds = schema.CTRDataset("toy", (schema.FieldSpec("f", 4),), split,
    ...                        None, split, {"f": np.array([0, 0, 3, 1])})
    >>> gap_statistics(ds, "f", 1, epochs=2, num_buckets=2)["rows_touched"]
    2
  """
  column = dataset.train.features[field]
  rows, steps = touches(column, batch_size, seed=seed, epochs=epochs)
  gap_rows, gap_values = gaps(rows, steps)
  per_epoch = len(dataset.train) // batch_size
  vocab = len(dataset.frequencies[field])
  touched = np.bincount(rows, minlength=vocab)
  gap_sum = np.bincount(gap_rows, weights=gap_values, minlength=vocab)
  gap_count = np.bincount(gap_rows, minlength=vocab)
  with_gap = gap_count > 0
  freq = dataset.frequencies[field]
  buckets = metrics_lib.frequency_buckets(freq, num_buckets)
  bucket_of = np.full(vocab, -1)
  for b, ids in enumerate(buckets):
    bucket_of[ids] = b
  bucket_medians = []
  for b in range(len(buckets)):
    values = gap_values[bucket_of[gap_rows] == b]
    bucket_medians.append(float(np.median(values)) if values.size else None)
  return {
    "dataset": dataset.name,
    "field": field,
    "batch_size": batch_size,
    "epochs": epochs,
    "seed": seed,
    "steps_per_epoch": per_epoch,
    "rows": int(vocab - schema.NUM_RESERVED_IDS),
    "rows_touched": int((touched > 0).sum()),
    "touches_per_row_median": float(np.median(touched[touched > 0])),
    "gap": _describe(gap_values),
    "row_mean_gap_median": (
      float(np.median(gap_sum[with_gap] / gap_count[with_gap]))
      if with_gap.any()
      else None
    ),
    "frac_gaps_over_epoch": (
      float(np.mean(gap_values > per_epoch)) if gap_values.size else None
    ),
    "bucket_gap_median": bucket_medians,
    "bucket_frequency_ranges": [
      [int(freq[ids].min()), int(freq[ids].max())] if len(ids) else [0, 0]
      for ids in buckets
    ],
  }


def format_line(stats: dict[str, Any]) -> str:
  """One human-readable line of :func:`gap_statistics`.

  Example:
    >>> s = {"dataset": "d", "field": "item", "batch_size": 256,
    ...      "steps_per_epoch": 10, "rows": 5, "rows_touched": 4,
    ...      "gap": {"median": 3.0, "mean": 4.0, "p90": 8.0, "p99": 9.0},
    ...      "frac_gaps_over_epoch": 0.0, "bucket_gap_median": [7.0, 2.0]}
    >>> format_line(s)  # doctest: +NORMALIZE_WHITESPACE
    'd item b256: 10 steps/epoch, 4/5 rows touched, gap I median 3 mean 4
    p90 8 p99 9, >1 epoch 0.0%, median by bucket (rarest first) [7, 2]'
  """

  def num(x):
    return "-" if x is None else f"{x:.3g}"

  gap = stats["gap"]
  frac = stats["frac_gaps_over_epoch"]
  buckets = ", ".join(num(x) for x in stats["bucket_gap_median"])
  return (
    f"{stats['dataset']} {stats['field']} b{stats['batch_size']}: "
    f"{stats['steps_per_epoch']} steps/epoch, {stats['rows_touched']}/"
    f"{stats['rows']} rows touched, gap I median {num(gap['median'])} "
    f"mean {num(gap['mean'])} p90 {num(gap['p90'])} p99 {num(gap['p99'])}, "
    f">1 epoch {0.0 if frac is None else 100 * frac:.1f}%, "
    f"median by bucket (rarest first) [{buckets}]"
  )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Prints one line per (batch size, field); ``--json`` writes them all."""
  parser = argparse.ArgumentParser(
    prog="python -m examples.ctr.research.touch_gaps",
    description=__doc__.split("\n\n")[0],
  )
  parser.add_argument("--dataset", required=True)
  parser.add_argument("--data-path", default=None)
  parser.add_argument(
    "--dataset-options", default="{}", help="JSON loader options"
  )
  parser.add_argument("--batch-sizes", default="2048,256")
  parser.add_argument(
    "--fields", default="item", help="comma-separated, or 'all'"
  )
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num-buckets", type=int, default=5)
  parser.add_argument("--json", default=None, help="write the stats here")
  args = parser.parse_args(argv)
  dataset = registry.load_dataset(
    args.dataset, args.data_path, **json.loads(args.dataset_options)
  )
  fields = [f.name for f in dataset.fields]
  if args.fields != "all":
    fields = [f for f in args.fields.split(",") if f]
  out = []
  for batch_size in (int(b) for b in args.batch_sizes.split(",") if b):
    for field in fields:
      stats = gap_statistics(
        dataset,
        field,
        batch_size,
        seed=args.seed,
        epochs=args.epochs,
        num_buckets=args.num_buckets,
      )
      stats["dataset_options"] = json.loads(args.dataset_options)
      print(format_line(stats), flush=True)
      out.append(stats)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)
    print(f"wrote {args.json}", file=sys.stderr)
  return out


if __name__ == "__main__":
  main()
