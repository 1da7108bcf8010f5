"""Runs a grid of optimizers x alphas x seeds and prints the paper's table.

Usage: ``runs = run_experiment(config); print(format_table(runs, config))``.

Layout of ``config.workdir``: ``results.json`` (every run, rewritten after
every epoch of every run), one folder per run under ``runs/`` (its own
results file and checkpoint, for ``resume``), and the plots.

The best alpha of each optimizer (and AdamW's weight decay, stated as
``alpha / lr``) is chosen on the validation split: the highest mean (over
seeds) validation AUC, after the last epoch (``select_by="last"``) or at
its best epoch (``"best"``). The table then reports the *test* AUC of that
alpha after every epoch, mean and spread over seeds. Without a validation
split the selection falls back to test AUC, and the table says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr import optimizers
from examples.ctr import progress
from examples.ctr import results as results_lib
from examples.ctr import train
from examples.ctr.config import Config
from examples.ctr.data import schema

RUNS_DIR = "runs"


def experiment_grid(config: Config) -> list[tuple[str, float | None, int]]:
  """``(optimizer, alpha, seed)`` of every run of ``config``.

  Train mode is one run; compare mode searches ``alphas`` for the
  optimizers that have an alpha (AdamW only when no ``weight_decay`` is
  fixed) and runs every seed.

  Example:
    >>> from examples.ctr.config import get_config
    >>> c = get_config("test").replace(mode="compare", seeds=(0,))
    >>> experiment_grid(c)
    [('adam', None, 0), ('adam_ar', 0.001, 0), ('adam_ar', 0.01, 0)]
  """
  if config.mode == "train":
    has_alpha = optimizers.searches_alpha(config.optimizer)
    return [
      (config.optimizer, config.alpha if has_alpha else None, config.seed)
    ]
  grid = []
  for name in config.optimizers:
    searched = optimizers.searches_alpha(name) and not (
      name == "adamw" and config.weight_decay is not None
    )
    alphas = config.alphas if searched else (None,)
    if name == "adamw" and not searched:
      alphas = (config.alpha,)
    for alpha in alphas:
      for seed in config.seeds:
        grid.append((name, alpha, seed))
  return grid


def run_experiment(
  config: Config,
  dataset: schema.CTRDataset | None = None,
  hooks: Sequence[progress.Hook] = (),
) -> list[dict[str, Any]]:
  """Trains every run of :func:`experiment_grid` (skipping finished ones).

  Then, for ``config.confirm_seeds``, each optimizer's alpha chosen on
  validation (over ``config.seeds``) is run with those further seeds.

  Args:
    config: the experiment.
    dataset: the data; default :func:`examples.ctr.train.load_dataset`.
    hooks: extra hooks for every run (a progress bar per run is added when
      ``config.progress``).

  Returns:
    The run records, in grid order (also in ``<workdir>/results.json``).
  """
  dataset = dataset or train.load_dataset(config)
  workdir = config.resolved_workdir
  results_path = os.path.join(workdir, train.RESULTS_FILE)
  done: dict[tuple[str, float | None, int], dict[str, Any]] = {}

  def save(current: dict[str, Any] | None = None) -> None:
    runs = list(done.values()) + ([current] if current else [])
    results_lib.write_results(results_path, runs)

  def run_one(name: str, alpha: float | None, seed: int) -> None:
    label = results_lib.run_name(name, alpha, seed)
    run_dir = os.path.join(workdir, RUNS_DIR, label)
    previous = results_lib.read_results(
      os.path.join(run_dir, train.RESULTS_FILE)
    )
    if (
      config.resume
      and previous
      and (len(previous[0]["epochs"]) >= config.epochs)
    ):
      run = previous[0]
      run["epochs"] = run["epochs"][: config.epochs]
    else:
      run_hooks = list(hooks)
      if config.progress:
        run_hooks.append(progress.ProgressBar(label))
      else:
        run_hooks.append(progress.EpochLog(label))
      run = train.train_and_evaluate(
        config,
        dataset,
        run_dir,
        optimizer=name,
        alpha=alpha,
        seed=seed,
        hooks=run_hooks,
        on_epoch_end=save,
      )
    done[(name, alpha, seed)] = run
    save()

  for name, alpha, seed in experiment_grid(config):
    run_one(name, alpha, seed)
  extra_seeds = [s for s in config.confirm_seeds if s not in config.seeds]
  if config.mode == "compare" and extra_seeds:
    chosen, _, _ = select_alphas(list(done.values()), config.select_by)
    for name in config.optimizers:
      for seed in extra_seeds:
        run_one(name, chosen[name], seed)
  return list(done.values())


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  arr = np.asarray([np.nan if v is None else v for v in values], float)
  std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
  return float(arr.mean()), std


def select_alphas(
  runs: Sequence[dict[str, Any]], select_by: str = "last"
) -> tuple[dict[str, float | None], dict[tuple[str, Any], float], str]:
  """Chooses each optimizer's alpha on the validation split.

  Args:
    runs: run records.
    select_by: ``"last"`` (validation AUC after the last epoch) or
      ``"best"`` (the best epoch), each averaged over the seeds that every
      alpha of the optimizer has (so extra seeds of one alpha do not count).

  Returns:
    ``(chosen, scores, split)``: the alpha chosen per optimizer, the
    selection score of every ``(optimizer, alpha)``, and the split used
    (``"valid"``, or ``"test"`` when no run has validation metrics).

  Example:
    >>> ep = lambda v: {"valid_auc": v, "eval_auc": 0.5}
    >>> runs = [{"optimizer": "o", "alpha": a, "epochs": [ep(v)]}
    ...         for a, v in [(0.1, 0.7), (0.01, 0.8)]]
    >>> select_alphas(runs)[0]
    {'o': 0.01}
  """
  has_valid = any(
    e.get("valid_auc") is not None for r in runs for e in r["epochs"]
  )
  split = "valid" if has_valid else "test"
  key = "valid_auc" if has_valid else "eval_auc"
  # Seeds that every alpha of an optimizer has (extra seeds run at the
  # chosen alpha only, as ``confirm_seeds`` does, must not tilt the choice).
  seeds_of: dict[tuple[str, Any], set[int]] = {}
  for run in runs:
    key_ = (run["optimizer"], run["alpha"])
    seeds_of.setdefault(key_, set()).add(run.get("seed"))
  common: dict[str, set[int]] = {}
  for (name, _), seeds in seeds_of.items():
    common[name] = common[name] & seeds if name in common else set(seeds)
  per_config: dict[tuple[str, Any], list[float]] = {}
  for run in runs:
    shared = common[run["optimizer"]]
    if shared and run.get("seed") not in shared:
      continue
    values = [np.nan if e[key] is None else e[key] for e in run["epochs"]]
    if not values:
      continue
    score = values[-1] if select_by == "last" else np.nanmax(values)
    per_config.setdefault((run["optimizer"], run["alpha"]), []).append(score)
  scores = {k: float(np.mean(v)) for k, v in per_config.items()}
  chosen: dict[str, float | None] = {}
  best: dict[str, float] = {}
  for (name, alpha), score in scores.items():
    if name not in chosen or (not math.isnan(score) and score > best[name]):
      chosen[name], best[name] = alpha, score
  return chosen, scores, split


def _alpha_str(alpha: float | None) -> str:
  return "-" if alpha is None else f"{alpha:.3g}"


def format_table(
  runs: Sequence[dict[str, Any]], select_by: str = "last"
) -> str:
  """The paper-style table: test AUC per epoch of each optimizer.

  One row per optimizer at the alpha chosen on validation (marked ``*`` in
  the grid below the table), ``mean ± std`` over seeds, and the test
  logloss after the last epoch.

  Example:
    >>> ep = lambda i, a: {"epoch": i, "eval_auc": a, "valid_auc": a,
    ...                    "eval_logloss": 0.4}
    >>> runs = [{"optimizer": "adam", "alpha": None, "seed": 0,
    ...          "epochs": [ep(1, 0.75), ep(2, 0.70)]}]
    >>> print(format_table(runs).splitlines()[2])
    adam         -        0.7500 ± 0.0000  0.7000 ± 0.0000  0.4000
  """
  chosen, scores, split = select_alphas(runs, select_by)
  num_epochs = max(len(r["epochs"]) for r in runs)
  seeds = sorted({r["seed"] for r in runs})
  header = (
    f"{'optimizer':<12} {'alpha':<8} "
    + " ".join(f"{'E' + str(i + 1):<16}" for i in range(num_epochs))
    + f" logloss E{num_epochs}"
  )
  lines = [
    f"Test AUC, mean ± std over {len(seeds)} seed(s); alpha chosen on "
    f"{split} AUC ({select_by} epoch)",
    header,
  ]
  for name, alpha in chosen.items():
    chosen_runs = [
      r for r in runs if r["optimizer"] == name and r["alpha"] == alpha
    ]
    cells = []
    for i in range(num_epochs):
      values = [
        r["epochs"][i]["eval_auc"] for r in chosen_runs if len(r["epochs"]) > i
      ]
      mean, std = _mean_std(values)
      cells.append(f"{mean:.4f} ± {std:.4f}".ljust(16))
    last = [r["epochs"][-1]["eval_logloss"] for r in chosen_runs]
    lines.append(
      f"{name:<12} {_alpha_str(alpha):<8} "
      + " ".join(cells)
      + f" {_mean_std(last)[0]:.4f}"
    )
  grid = [k for k in scores if k[1] is not None]
  if grid:
    lines.append("")
    lines.append(f"{split} AUC by alpha ({select_by} epoch; * = chosen)")
    for name, alpha in grid:
      mark = "*" if chosen.get(name) == alpha else " "
      lines.append(
        f"{name:<12} {_alpha_str(alpha):<8} {scores[(name, alpha)]:.4f} {mark}"
      )
  return "\n".join(lines)
