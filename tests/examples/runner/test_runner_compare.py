"""Tests of the compare mode's grid, alpha selection and table (no training)."""

import pytest

from examples.ctr import compare
from examples.ctr import config as config_lib


def _run(optimizer, alpha, seed, valid, test):
  return {
    "optimizer": optimizer,
    "alpha": alpha,
    "seed": seed,
    "epochs": [
      {"epoch": i + 1, "valid_auc": v, "eval_auc": t, "eval_logloss": 0.5}
      for i, (v, t) in enumerate(zip(valid, test, strict=True))
    ],
  }


def test_alpha_is_chosen_on_validation_never_on_test():
  runs = [
    # alpha 0.1: best on test, worse on validation.
    _run("adam_ar", 0.1, 0, valid=[0.70, 0.70], test=[0.80, 0.80]),
    _run("adam_ar", 0.01, 0, valid=[0.72, 0.71], test=[0.60, 0.60]),
  ]
  chosen, scores, split = compare.select_alphas(runs)
  assert chosen == {"adam_ar": 0.01} and split == "valid"
  assert scores[("adam_ar", 0.1)] == 0.70


def test_select_by_last_or_best_epoch_and_seed_mean():
  runs = [
    _run("o", 1.0, 0, valid=[0.80, 0.60], test=[0.5, 0.5]),
    _run("o", 1.0, 1, valid=[0.80, 0.62], test=[0.5, 0.5]),
    _run("o", 2.0, 0, valid=[0.70, 0.68], test=[0.5, 0.5]),
    _run("o", 2.0, 1, valid=[0.70, 0.66], test=[0.5, 0.5]),
  ]
  assert compare.select_alphas(runs, "last")[0] == {"o": 2.0}
  assert compare.select_alphas(runs, "best")[0] == {"o": 1.0}
  # A float64 mean of two values: approx's default rel 1e-6 is ample.
  assert compare.select_alphas(runs, "last")[1][("o", 1.0)] == pytest.approx(
    0.61
  )


def test_without_validation_the_table_says_test():
  runs = [_run("adam", None, 0, valid=[None], test=[0.7])]
  assert compare.select_alphas(runs)[2] == "test"
  assert "alpha chosen on test AUC" in compare.format_table(runs)


def test_table_rows_mean_and_spread_over_seeds():
  runs = [
    _run("adam", None, 0, valid=[0.7], test=[0.70]),
    _run("adam", None, 1, valid=[0.7], test=[0.72]),
    _run("adam_ar", 1e-3, 0, valid=[0.7], test=[0.75]),
    _run("adam_ar", 1e-3, 1, valid=[0.7], test=[0.75]),
    _run("adam_ar", 1e-2, 0, valid=[0.8], test=[0.74]),
    _run("adam_ar", 1e-2, 1, valid=[0.8], test=[0.76]),
  ]
  lines = compare.format_table(runs).splitlines()
  assert "over 2 seed(s)" in lines[0]
  assert lines[2].split()[:5] == ["adam", "-", "0.7100", "±", "0.0141"]
  assert lines[3].split()[:5] == ["adam_ar", "0.01", "0.7500", "±", "0.0141"]
  assert [line.split()[-1] for line in lines[-2:]] == ["0.7000", "*"]


def test_experiment_grid_covers_alphas_and_seeds():
  c = config_lib.get_config("default").replace(
    mode="compare",
    optimizers=("adam", "adamw", "adam_ar"),
    alphas=(1e-4, 1e-3),
    seeds=(0, 1),
  )
  grid = compare.experiment_grid(c)
  assert len(grid) == 2 + 2 * 2 + 2 * 2
  assert ("adamw", 1e-3, 1) in grid and ("adam", None, 1) in grid
  # A fixed AdamW weight decay is not searched.
  fixed = compare.experiment_grid(c.replace(weight_decay=0.1))
  assert [g for g in fixed if g[0] == "adamw"] == [
    ("adamw", c.alpha, 0),
    ("adamw", c.alpha, 1),
  ]
  train = compare.experiment_grid(c.replace(mode="train", optimizer="adam"))
  assert train == [("adam", None, 0)]
