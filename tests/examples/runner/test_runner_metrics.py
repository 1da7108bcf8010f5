"""Tests of examples.ctr.metrics against sklearn and hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from examples.ctr import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_with_ties(seed):
  rng = np.random.default_rng(seed)
  labels = (rng.random(2000) < 0.3).astype(np.float32)
  scores = np.round(rng.normal(size=2000) + labels, 1)  # many ties
  # float64 rank statistics on the same inputs: equal up to a few eps64.
  assert metrics.roc_auc(labels, scores) == pytest.approx(
    sk_metrics.roc_auc_score(labels, scores), abs=1e-12
  )


def test_roc_auc_hand_values():
  # Exact: counts of ordered pairs, 1 / 1.
  assert metrics.roc_auc(np.array([0, 1]), np.array([0.2, 0.9])) == 1.0
  assert metrics.roc_auc(np.array([0, 1]), np.array([0.9, 0.2])) == 0.0
  assert metrics.roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
  assert np.isnan(metrics.roc_auc(np.ones(3), np.arange(3.0)))


def test_log_loss_matches_sklearn_and_is_stable():
  rng = np.random.default_rng(0)
  labels = (rng.random(500) < 0.4).astype(np.float32)
  logits = rng.normal(scale=3.0, size=500)
  expected = sk_metrics.log_loss(labels, 1 / (1 + np.exp(-logits)))
  # float64, two formulas of the same sum over 500 terms: 500 * eps64 ~ 1e-13.
  assert metrics.log_loss(labels, logits) == pytest.approx(expected, rel=1e-9)
  # Huge logits: no overflow, the exact asymptotic value.
  # Exact: softplus(1000) = 1000 + log1p(exp(-1000)) = 1000 in float64.
  assert metrics.log_loss(np.array([0.0]), np.array([1000.0])) == 1000.0


def test_frequency_buckets_are_equal_count_and_sorted():
  freq = np.array([0, 5, 10, 1, 7, 3, 3, 8, 2, 9, 4, 6])  # IDs 2..11 real
  buckets = metrics.frequency_buckets(freq, 5)
  assert [len(b) for b in buckets] == [2] * 5
  flat = np.concatenate(buckets)
  assert sorted(flat.tolist()) == list(range(2, 12))  # reserved excluded
  counts = freq[flat]
  assert np.all(np.diff(counts) >= 0)
  assert buckets[0].tolist() == [3, 8]  # the two rarest IDs


def test_norms_of_masked_tables_and_buckets():
  table = jnp.arange(12.0).reshape(6, 2)
  params = {"emb": {"tables": {"f": table}}, "mlp": {"w": jnp.ones(3)}}
  mask = {"emb": {"tables": {"f": True}}, "mlp": {"w": False}}
  assert metrics.embedding_sq_norm(params, mask) == float(np.sum(table**2))
  buckets = [np.array([2, 3]), np.array([5])]
  assert metrics.bucket_sq_norms(params, mask, "f", buckets) == [
    4.0**2 + 5**2 + 6**2 + 7**2,
    10.0**2 + 11**2,
  ]
  with pytest.raises(ValueError, match="no per-ID table"):
    metrics.bucket_sq_norms(params, mask, "g", buckets)
