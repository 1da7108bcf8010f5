"""Tests of research/touch_gaps.py against a brute-force replay."""

import numpy as np
import pytest

from examples.ctr.data import schema
from examples.ctr.data.pipeline import BatchIterator
from examples.ctr.research import touch_gaps


def _brute_force(ids, batch_size, seed, epochs):
  """(row, I) of every repeated touch, replaying the runner's batches."""
  split = schema.Split({"f": ids}, np.zeros(len(ids), np.float32))
  it = BatchIterator(
    split, batch_size, shuffle=True, seed=seed, drop_remainder=True, prefetch=0
  )
  last, out, k = {}, [], 0
  for e in range(1, epochs + 1):
    for batch in it.epoch(e):
      k += 1
      for row in sorted(set(batch.features["f"].reshape(-1).tolist())):
        if row < schema.NUM_RESERVED_IDS:
          continue
        if row in last:
          out.append((row, k - last[row] - 1))
        last[row] = k
  return sorted(out)


@pytest.mark.parametrize("shape", [(50,), (50, 3)])
def test_gaps_match_a_replay_of_the_training_batches(shape):
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 12, size=shape).astype(np.int32)
  rows, steps = touch_gaps.touches(ids, batch_size=8, seed=3, epochs=3)
  gap_rows, gap_values = touch_gaps.gaps(rows, steps)
  got = sorted(zip(gap_rows.tolist(), gap_values.tolist(), strict=True))
  assert got == _brute_force(ids, 8, 3, 3)
  assert rows.min() >= schema.NUM_RESERVED_IDS  # padding and OOV excluded
  assert steps.max() == 3 * (50 // 8)  # the partial batch is dropped


def test_statistics_of_a_hand_computed_case():
  # Every example holds row 4, so every step touches it: 3 steps per epoch,
  # 6 touches in 2 epochs, all 5 gaps 0; rows 2 and 3 are never touched.
  split = schema.Split({"f": np.full(6, 4, np.int32)}, np.zeros(6, np.float32))
  ds = schema.CTRDataset(
    "toy",
    (schema.FieldSpec("f", 5),),
    split,
    None,
    split,
    {"f": np.array([0, 0, 0, 0, 6])},
  )
  stats = touch_gaps.gap_statistics(ds, "f", 2, epochs=2, num_buckets=1)
  assert stats["steps_per_epoch"] == 3
  assert stats["rows"] == 3 and stats["rows_touched"] == 1
  assert stats["touches_per_row_median"] == 6.0
  assert stats["gap"] == {"median": 0.0, "mean": 0.0, "p90": 0.0, "p99": 0.0}
  assert stats["frac_gaps_over_epoch"] == 0.0
  assert touch_gaps.format_line(stats).startswith("toy f b2: 3 steps/epoch")


def test_rare_rows_have_longer_gaps_on_real_data(shared_data_dir):
  from examples.ctr.data import registry

  ds = registry.load_dataset("amazon-toys", shared_data_dir)
  stats = touch_gaps.gap_statistics(ds, "item", 2048, epochs=1)
  assert stats["steps_per_epoch"] == len(ds.train) // 2048
  medians = stats["bucket_gap_median"]
  assert medians[0] > medians[-1]  # rarest bucket first
  assert 0 < stats["gap"]["median"] < stats["steps_per_epoch"]
