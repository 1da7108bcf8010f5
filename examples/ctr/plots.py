"""PNG plots of a results file (matplotlib, Agg backend: no display needed).

Usage: ``paths = write_plots(runs, "runs/demo")``, or from the shell, one
figure set over several results files (e.g. the jobs of one experiment)::

  python -m examples.ctr.plots docs/results/a/results.json \
    docs/results/b/results.json --out docs/results/figures/a

* ``auc_per_epoch.png``: test AUC after each epoch, one line per optimizer
  (its alpha chosen on validation; error bars = std over seeds).
* ``norm_vs_auc.png``: total squared embedding norm against test AUC over
  training, one trajectory per optimizer.
* ``bucket_norms.png``: squared norm of each frequency bucket of the bucket
  field per epoch, one panel per optimizer.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from examples.ctr import compare  # noqa: E402
from examples.ctr import results as results_lib  # noqa: E402

PLOT_FILES = ("auc_per_epoch.png", "norm_vs_auc.png", "bucket_norms.png")


def _chosen_runs(
  runs: Sequence[dict[str, Any]], select_by: str
) -> dict[str, list[dict[str, Any]]]:
  chosen, _, _ = compare.select_alphas(runs, select_by)
  return {
    name: [r for r in runs if r["optimizer"] == name and r["alpha"] == alpha]
    for name, alpha in chosen.items()
  }


def _label(name: str, group: list[dict[str, Any]]) -> str:
  alpha = group[0]["alpha"]
  return name if alpha is None else f"{name} (alpha={alpha:.3g})"


def _series(group: list[dict[str, Any]], key: str) -> np.ndarray:
  """``(seeds, epochs)`` values of ``key`` (NaN where missing)."""
  num_epochs = max(len(r["epochs"]) for r in group)
  out = np.full((len(group), num_epochs), np.nan)
  for i, run in enumerate(group):
    for j, epoch in enumerate(run["epochs"]):
      out[i, j] = np.nan if epoch[key] is None else epoch[key]
  return out


def plot_auc_per_epoch(groups: dict[str, list[dict[str, Any]]], path: str):
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, group in groups.items():
    values = _series(group, "eval_auc")
    epochs = np.arange(1, values.shape[1] + 1)
    ax.errorbar(
      epochs,
      values.mean(0),
      yerr=values.std(0),
      marker="o",
      capsize=3,
      label=_label(name, group),
    )
  ax.set_xlabel("epoch")
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.set_ylabel("test AUC")
  ax.set_title("Test AUC per epoch")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_norm_vs_auc(groups: dict[str, list[dict[str, Any]]], path: str):
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, group in groups.items():
    norms = _series(group, "embedding_sq_norm").mean(0)
    aucs = _series(group, "eval_auc").mean(0)
    ax.plot(norms, aucs, marker="o", label=_label(name, group))
    for i, (x, y) in enumerate(zip(norms, aucs, strict=True)):
      ax.annotate(f"E{i + 1}", (x, y), fontsize=7)
  ax.set_xscale("log")
  ax.set_xlabel("squared L2 norm of the embedding tables")
  ax.set_ylabel("test AUC")
  ax.set_title("Embedding norm vs test AUC over training")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_bucket_norms(groups: dict[str, list[dict[str, Any]]], path: str):
  fig, axes = plt.subplots(
    1,
    len(groups),
    figsize=(4 * len(groups), 3.5),
    squeeze=False,
    sharey=True,
  )
  for ax, (name, group) in zip(axes[0], groups.items(), strict=True):
    norms = np.mean(
      [[e["bucket_sq_norms"] for e in r["epochs"]] for r in group], axis=0
    )  # (epochs, buckets)
    epochs = np.arange(1, norms.shape[0] + 1)
    ranges = group[0].get("bucket_frequency_ranges")
    for b in range(norms.shape[1]):
      label = f"bucket {b + 1}"
      if ranges:
        label += f" (freq {ranges[b][0]}-{ranges[b][1]})"
      ax.plot(epochs, norms[:, b], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_title(_label(name, group), fontsize=9)
  axes[0, 0].set_ylabel(f"squared norm ({group[0].get('bucket_field', '')})")
  axes[0, -1].legend(title="1 = rarest", fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_plots(
  runs: Sequence[dict[str, Any]], outdir: str, select_by: str = "last"
) -> list[str]:
  """Writes the three PNGs for the chosen alpha of every optimizer.

  Args:
    runs: run records (see :mod:`examples.ctr.results`).
    outdir: destination folder.
    select_by: how alphas are chosen (see :func:`compare.select_alphas`).

  Returns:
    The paths written.
  """
  os.makedirs(outdir, exist_ok=True)
  groups = _chosen_runs([r for r in runs if r["epochs"]], select_by)
  paths = [os.path.join(outdir, f) for f in PLOT_FILES]
  plot_auc_per_epoch(groups, paths[0])
  plot_norm_vs_auc(groups, paths[1])
  plot_bucket_norms(groups, paths[2])
  return paths


def load_runs(paths: Sequence[str]) -> list[dict[str, Any]]:
  """The ``runs`` of several results files, in order (each validated).

  Raises:
    ValueError: naming the file, if one is missing or not a results file.
  """
  runs: list[dict[str, Any]] = []
  for path in paths:
    if not os.path.exists(path):
      raise ValueError(f"{path}: no such results file")
    try:
      runs.extend(results_lib.read_results(path))
    except (KeyError, TypeError, ValueError) as error:
      raise ValueError(f"{path}: not a results file ({error})") from error
  return runs


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    prog="python -m examples.ctr.plots",
    description="The three plots over the runs of several results files.",
  )
  parser.add_argument("results", nargs="+", help="results.json files")
  parser.add_argument("--out", required=True, help="folder for the PNGs")
  parser.add_argument("--select-by", default="last", choices=("last", "best"))
  args = parser.parse_args(argv)
  for path in write_plots(load_runs(args.results), args.out, args.select_by):
    print(path)


if __name__ == "__main__":
  main()
