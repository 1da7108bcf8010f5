"""Runs examples/quickstart.py at a small size and checks what it returns."""

import itertools

import numpy as np
import pytest

from examples import quickstart

SMALL = [
  "--num-train=4000",
  "--vocab-sizes",
  "10",
  "100",
  "1000",
  "--batch-size=128",
  "--epochs=2",
]


def _pairwise_auc(y, scores):
  """AUC by counting every (positive, negative) pair; ties count 1/2."""
  pos, neg = scores[y == 1], scores[y == 0]
  wins = [
    float(p > n) + 0.5 * float(p == n) for p, n in itertools.product(pos, neg)
  ]
  return np.mean(wins)


def test_auc_matches_pairwise_count_with_ties():
  rng = np.random.default_rng(0)
  y = (rng.random(200) < 0.3).astype(np.float32)
  scores = rng.integers(0, 20, size=200).astype(np.float32)  # many ties
  assert quickstart.auc(y, scores) == pytest.approx(_pairwise_auc(y, scores))


def test_make_data_maps_rare_ids_to_zero():
  ids, y = quickstart.make_data(2000, [10, 500], min_count=3)
  assert ids.shape == (2000, 2) and y.shape == (2000,)
  assert set(np.unique(y)) <= {0.0, 1.0}
  counts = np.bincount(ids[:1000, 1], minlength=501)
  kept = np.flatnonzero(counts[1:]) + 1
  assert counts[kept].min() >= 3  # every kept ID was seen >= 3 times
  assert (ids[:, 1] == 0).any() and ids[:, 1].max() <= 500


def test_quickstart_prints_both_curves(capsys):
  results = quickstart.main(SMALL)
  assert set(results) == {"adam", "adam_ar"}
  for aucs in results.values():
    assert len(aucs) == 2
    assert all(np.isfinite(a) and 0.5 < a <= 1.0 for a in aucs)
  out = capsys.readouterr().out.splitlines()
  assert out[0].split() == ["test", "AUC", "E1", "E2"]
  assert out[1].startswith("adam ") and out[2].startswith("adam_ar ")


def test_zero_decay_is_plain_adam():
  results = quickstart.main([*SMALL, "--decay-per-epoch=0"])
  np.testing.assert_allclose(results["adam_ar"], results["adam"], atol=1e-6)
