"""Paper-style tables and the "shape" checks from every results JSON in a tree.

Usage: ``python -m examples.ctr.research.summarize_results docs/results --out
docs/results/SUMMARY.md``.

Reads every ``results.json`` under the root (a compare workdir's own
``runs/*/results.json`` copies are merged, keeping the copy with the most
epochs), groups the runs into experiments by dataset, dataset options,
backbone and batch size (the jobs of one experiment may live in
several workdirs, e.g. one per optimizer; a job folder named
``<name>@<variant>`` is its own experiment), and for each experiment:

* chooses each optimizer's alpha on the validation split exactly as the
  runner does (:func:`examples.ctr.compare.select_alphas`: mean over the
  seeds that every alpha has, after the last epoch or at the best epoch),
  among the runs that finished every epoch (a job stopped at its time
  limit must not compete with an earlier epoch's score);
* prints test AUC after every epoch, mean ± std over the chosen alpha's
  seeds, and the *best-epoch* test AUC: the test AUC at the epoch whose mean
  validation AUC is highest (the epoch is chosen on validation, never on
  test);
* states the shape checks as measured booleans with their numbers: does
  plain Adam's test AUC fall after its best epoch, is AdamAR's last-epoch
  AUC >= its E1, and does AdamAR's best-epoch AUC beat each baseline's.

Each table names the job folders its rows come from; each job folder's
``command.txt`` and ``wall_time.txt`` (written by
``examples/ctr/research/reproduce.sh``) are listed at the end. The tables of
docs/RESULTS.md and the README are written from this summary by
:mod:`examples.ctr.research.report`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr import compare
from examples.ctr import results as results_lib

RESULTS_FILE = "results.json"
#: Dataset options that do not change the data (left out of the grouping).
IGNORED_OPTIONS = ("cache_dir", "use_cache")
#: The AR optimizers checked against their baselines.
AR_BASELINES = {
  "adam_ar": ("adam", "adamw", "meda", "sam"),
  "adam_ar_lazy": ("adam", "adamw", "meda", "sam"),
  "adagrad_ar": ("adagrad",),
}
PLAIN = {"adam_ar": "adam", "adam_ar_lazy": "adam", "adagrad_ar": "adagrad"}


def find_results(root: str) -> list[str]:
  """Every ``results.json`` under ``root``, sorted."""
  found = []
  for folder, dirs, files in os.walk(root):
    dirs.sort()
    if RESULTS_FILE in files:
      found.append(os.path.join(folder, RESULTS_FILE))
  return sorted(found)


def experiment_key(run: dict[str, Any]) -> tuple[Any, ...]:
  """What tells experiments apart (runs of one key are compared).

  Example:
    >>> experiment_key({"dataset": "d", "model": "dnn", "hyperparams":
    ...   {"batch_size": 256}, "dataset_options": {"negatives": "uniform",
    ...   "cache_dir": "/tmp"}})
    ('d', '{"negatives": "uniform"}', 'dnn', 256)
  """
  options = {
    k: v
    for k, v in (run.get("dataset_options") or {}).items()
    if k not in IGNORED_OPTIONS
  }
  return (
    run["dataset"],
    json.dumps(options, sort_keys=True),
    run["model"],
    run.get("hyperparams", {}).get("batch_size"),
  )


def variant_of(path: str, root: str) -> str:
  """The variant of a results file: what follows ``@`` in its job folder.

  Example:
    >>> variant_of("r/sports-dnn-b256@finegrid/results.json", "r")
    'finegrid'
    >>> variant_of("r/sports-dnn-b256-adam_ar/results.json", "r")
    ''
  """
  job = os.path.relpath(path, root).split(os.sep)[0]
  return job.split("@", 1)[1] if "@" in job else ""


def load_runs(root: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
  """The runs under ``root``, deduplicated, grouped by experiment key.

  The key is :func:`experiment_key` plus the job folder's variant
  (:func:`variant_of`), so that e.g. a finer alpha grid or another init
  stays a separate experiment.
  """
  best: dict[tuple[Any, ...], dict[str, Any]] = {}
  for path in find_results(root):
    variant = variant_of(path, root)
    for run in results_lib.read_results(path):
      unit = run.get("alpha_unit", "step")
      key = (*experiment_key(run), variant, unit, *results_lib.run_key(run))
      if key not in best or len(run["epochs"]) > len(best[key]["epochs"]):
        best[key] = dict(run, source=os.path.relpath(path, root))
  groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
  for key, run in best.items():
    if run["epochs"]:
      groups.setdefault(key[:5], []).append(run)
  return groups


def _matrix(runs: Sequence[dict[str, Any]], key: str) -> np.ndarray:
  """``(seeds, epochs)`` of ``key``, NaN where missing."""
  width = max(len(r["epochs"]) for r in runs)
  out = np.full((len(runs), width), np.nan)
  for i, run in enumerate(runs):
    for j, epoch in enumerate(run["epochs"]):
      if epoch.get(key) is not None:
        out[i, j] = epoch[key]
  return out


def optimizer_row(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """Per-epoch test AUC (mean, std over seeds) and the best-epoch AUC.

  The best epoch is the one with the highest mean validation AUC (test AUC
  where no run has validation metrics).

  Example:
    >>> ep = lambda i, v, t: {"epoch": i, "valid_auc": v, "eval_auc": t}
    >>> runs = [{"seed": 0, "epochs": [ep(1, .7, .71), ep(2, .8, .79)]},
    ...         {"seed": 1, "epochs": [ep(1, .7, .73), ep(2, .8, .81)]}]
    >>> row = optimizer_row(runs)
    >>> row["mean"], row["best_epoch"], row["best_auc"]
    ([0.72, 0.8], 2, 0.8)
  """
  test = _matrix(runs, "eval_auc")
  valid = _matrix(runs, "valid_auc")
  chooser = valid if not np.all(np.isnan(valid)) else test
  with np.errstate(all="ignore"):
    score = np.nanmean(chooser, axis=0)
    mean = np.nanmean(test, axis=0)
    std = (
      np.nanstd(test, axis=0, ddof=1)
      if len(runs) > 1
      else np.zeros(test.shape[1])
    )
  best = int(np.nanargmax(score)) if not np.all(np.isnan(score)) else 0
  complete = [len(r["epochs"]) for r in runs]
  return {
    "seeds": sorted(r["seed"] for r in runs),
    "epochs_done": complete,
    "mean": [round(float(x), 6) for x in mean],
    "std": [round(float(x), 6) for x in np.nan_to_num(std)],
    "best_epoch": best + 1,
    "best_epoch_chosen_on": "valid" if chooser is valid else "test",
    "best_auc": round(float(mean[best]), 6),
    "best_std": round(float(np.nan_to_num(std[best])), 6),
    "logloss_last": float(np.nanmean(_matrix(runs, "eval_logloss")[:, -1])),
  }


def complete_runs(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """The runs with as many epochs as the longest run of their optimizer.

  A run cut short (a job stopped at its time limit) would otherwise take
  part in the alpha selection with the validation AUC of an earlier epoch
  than its rivals'. An optimizer with no complete alpha keeps all its runs.

  Example:
    >>> ep = {"valid_auc": 0.8}
    >>> runs = [{"optimizer": "o", "alpha": 1, "epochs": [ep, ep]},
    ...         {"optimizer": "o", "alpha": 2, "epochs": [ep]},
    ...         {"optimizer": "p", "alpha": None, "epochs": [ep]}]
    >>> [r["alpha"] for r in complete_runs(runs)]
    [1, None]
  """
  longest: dict[str, int] = {}
  for run in runs:
    name = run["optimizer"]
    longest[name] = max(longest.get(name, 0), len(run["epochs"]))
  return [r for r in runs if len(r["epochs"]) >= longest[r["optimizer"]]]


def summarize_experiment(
  runs: Sequence[dict[str, Any]], select_by: str = "last"
) -> dict[str, Any]:
  """Rows (alpha chosen on validation) and shape checks of one experiment.

  The alpha is chosen among the runs that finished every epoch
  (:func:`complete_runs`); the chosen alpha's row then averages all its
  seeds, partial ones included (marked *partial*).
  """
  chosen, scores, split = compare.select_alphas(complete_runs(runs), select_by)
  rows = {}
  for name, alpha in chosen.items():
    group = [r for r in runs if r["optimizer"] == name and r["alpha"] == alpha]
    row = optimizer_row(group)
    grid = sorted(a for (n, a) in scores if n == name and a is not None)
    row.update(
      jobs=sorted(
        {r["source"].split(os.sep)[0] for r in group if "source" in r}
      ),
      alpha=alpha,
      alpha_per_step=group[0].get("alpha_per_step", alpha),
      alpha_unit=group[0].get("alpha_unit", "step"),
      weight_decay=group[0].get("hyperparams", {}).get("weight_decay"),
      grid=grid,
      at_grid_edge=bool(grid) and alpha in (grid[0], grid[-1]),
    )
    rows[name] = row
  return {
    "selection_split": split,
    "select_by": select_by,
    "rows": rows,
    "checks": shape_checks(rows),
  }


def shape_checks(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
  """The paper's shape, as measured booleans with their numbers.

  Example:
    >>> row = lambda m, b: {"mean": m, "best_epoch": b, "best_auc": m[b - 1]}
    >>> rows = {"adam": row([.78, .79, .77, .76], 2),
    ...         "adam_ar": row([.77, .79, .795, .80], 4)}
    >>> for c in shape_checks(rows):
    ...   print(c["check"], c["holds"])
    adam falls after its best epoch True
    adam_ar E4 >= E1 True
    adam_ar best-epoch AUC > adam True
  """
  checks = []
  for name in ("adam", "adagrad"):
    if name in rows:
      mean = rows[name]["mean"]
      peak = int(np.nanargmax(mean))
      checks.append(
        {
          "check": f"{name} falls after its best epoch",
          "holds": bool(peak < len(mean) - 1 and mean[-1] < mean[peak]),
          "numbers": f"test-AUC peak E{peak + 1} {mean[peak]:.4f}, "
          f"E{len(mean)} {mean[-1]:.4f} (drop {mean[peak] - mean[-1]:+.4f})",
        }
      )
  for ar, baselines in AR_BASELINES.items():
    if ar not in rows:
      continue
    mean = rows[ar]["mean"]
    last = len(mean)
    checks.append(
      {
        "check": f"{ar} E{last} >= E1",
        "holds": bool(mean[-1] >= mean[0]),
        "numbers": f"E1 {mean[0]:.4f}, E{last} {mean[-1]:.4f} "
        f"({mean[-1] - mean[0]:+.4f})",
      }
    )
    for base in baselines:
      if base not in rows:
        continue
      a, b = rows[ar]["best_auc"], rows[base]["best_auc"]
      checks.append(
        {
          "check": f"{ar} best-epoch AUC > {base}",
          "holds": bool(a > b),
          "numbers": f"{a:.4f} (E{rows[ar]['best_epoch']}) vs {b:.4f} "
          f"(E{rows[base]['best_epoch']}), {a - b:+.4f}",
        }
      )
  return checks


def _alpha_text(row: dict[str, Any]) -> str:
  if row["alpha"] is None:
    return "-"
  text = f"{row['alpha']:.3g}/{row['alpha_unit']}"
  if row["alpha_unit"] != "step" and row["alpha_per_step"] is not None:
    text += f" ({row['alpha_per_step']:.2e}/step)"
  if row["weight_decay"] is not None:
    text += f" wd={row['weight_decay']:.3g}"
  if row["at_grid_edge"]:
    text += " EDGE"
  return text


def format_experiment(key: tuple[Any, ...], summary: dict[str, Any]) -> str:
  """Markdown: a heading, the table and the checks of one experiment."""
  dataset, options, model, batch, variant = key
  opts = "" if options == "{}" else f" {options}"
  opts += f" [{variant}]" if variant else ""
  rows = summary["rows"]
  epochs = max(len(r["mean"]) for r in rows.values())
  lines = [
    f"### {dataset}{opts} / {model} / batch {batch}",
    "",
    f"Alpha chosen on {summary['selection_split']} AUC "
    f"({summary['select_by']} epoch); test AUC mean ± std over seeds; "
    "best = test AUC at the epoch with the best mean validation AUC.",
    "",
    "| optimizer | alpha | seeds | "
    + " | ".join(f"E{i + 1}" for i in range(epochs))
    + " | best (epoch) | logloss last |",
    "|---" * (epochs + 5) + "|",
  ]
  for name, row in rows.items():
    cells = [
      f"{m:.4f} ± {s:.4f}" for m, s in zip(row["mean"], row["std"], strict=True)
    ]
    cells += [""] * (epochs - len(cells))
    partial = "" if min(row["epochs_done"]) >= epochs else " (partial)"
    lines.append(
      f"| {name}{partial} | {_alpha_text(row)} | {len(row['seeds'])} | "
      + " | ".join(cells)
      + f" | {row['best_auc']:.4f} (E{row['best_epoch']}) | "
      f"{row['logloss_last']:.4f} |"
    )
  jobs = [f"{name}: {', '.join(row['jobs'])}" for name, row in rows.items()]
  if any(row.get("jobs") for row in rows.values()):
    lines += ["", "Job folders: " + "; ".join(jobs) + "."]
  if summary["checks"]:
    lines += ["", "| shape check | holds | numbers |", "|---|---|---|"]
    for check in summary["checks"]:
      lines.append(
        f"| {check['check']} | {'yes' if check['holds'] else 'NO'} | "
        f"{check['numbers']} |"
      )
  return "\n".join(lines)


def job_table(root: str) -> str:
  """Markdown list of every job folder's command and wall time."""
  lines = ["| job | wall time | command |", "|---|---|---|"]
  for folder in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    path = os.path.join(root, folder)
    command = os.path.join(path, "command.txt")
    if not os.path.isfile(command):
      continue
    with open(command) as f:
      cmd = f.read().strip()
    wall = "-"
    if os.path.isfile(os.path.join(path, "wall_time.txt")):
      with open(os.path.join(path, "wall_time.txt")) as f:
        wall = f.read().strip()
    lines.append(f"| {folder} | {wall} | `{cmd}` |")
  return "\n".join(lines) if len(lines) > 2 else ""


def summarize(root: str, select_by: str = "last") -> tuple[str, dict]:
  """``(markdown, json-able summary)`` of every experiment under ``root``."""
  groups = load_runs(root)
  parts, data = [], {}
  for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
    summary = summarize_experiment(groups[key], select_by)
    parts.append(format_experiment(key, summary))
    data["|".join(str(x) for x in key)] = summary
  jobs = job_table(root)
  if jobs:
    parts.append("### Jobs (command, wall time)\n\n" + jobs)
  return "\n\n".join(parts) + "\n", data


def main(argv: Sequence[str] | None = None) -> str:
  parser = argparse.ArgumentParser(
    prog="python -m examples.ctr.research.summarize_results",
    description=__doc__.split("\n\n")[0],
  )
  parser.add_argument("root", nargs="?", default="docs/results")
  parser.add_argument("--select-by", default="last", choices=("last", "best"))
  parser.add_argument("--out", default=None, help="write the markdown here")
  parser.add_argument("--json", default=None, help="write the summary here")
  args = parser.parse_args(argv)
  text, data = summarize(args.root, args.select_by)
  if not data:
    print(f"no results under {args.root}", file=sys.stderr)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(data, f, indent=1)
  return text


if __name__ == "__main__":
  main()
