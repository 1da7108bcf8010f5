"""Tests of the results JSON writer/reader."""

import json
import os

import pytest

from examples.ctr import results


def _run(epochs):
  return {
    "dataset": "d",
    "model": "dnn",
    "optimizer": "adam_ar",
    "alpha": 1e-3,
    "seed": 0,
    "epochs": [
      {
        "epoch": i + 1,
        "eval_auc": 0.7,
        "eval_logloss": 0.4,
        "valid_auc": float("nan"),
        "valid_logloss": None,
        "train_loss": 0.5,
        "embedding_sq_norm": 2.0,
        "bucket_sq_norms": [1.0, 1.0],
      }
      for i in range(epochs)
    ],
  }


def test_write_then_read_round_trips_and_drops_nan(tmp_path):
  path = str(tmp_path / "sub" / "results.json")
  results.write_results(path, [_run(2)])
  with open(path) as f:
    raw = json.load(f)  # strict JSON: NaN became null
  assert raw["runs"][0]["epochs"][0]["valid_auc"] is None
  back = results.read_results(path)
  assert back[0]["epochs"][1]["epoch"] == 2
  assert os.listdir(tmp_path / "sub") == ["results.json"]  # no temp left


def test_invalid_runs_are_rejected_before_writing(tmp_path):
  path = str(tmp_path / "results.json")
  results.write_results(path, [_run(1)])
  bad = _run(1)
  del bad["epochs"][0]["eval_auc"]
  with pytest.raises(ValueError, match="eval_auc"):
    results.write_results(path, [bad])
  assert len(results.read_results(path)[0]["epochs"]) == 1  # old file intact
  assert results.read_results(str(tmp_path / "missing.json")) == []
