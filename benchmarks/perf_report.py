"""The generated tables of docs/PERFORMANCE.md, from the committed raw outputs.

Usage: ``PYTHONPATH=. python benchmarks/perf_report.py`` rewrites every
generated table of docs/PERFORMANCE.md in place; ``--check`` exits 1 if one
differs from what ``docs/perf/optimizer_step.json``,
``docs/perf/peers.json`` and the ``train_throughput*.json`` of
:data:`END_TO_END` give, so the document cannot drift from the measurements.

A table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->`` (the
markers of :mod:`examples.ctr.research.report`); :data:`TABLES` maps each
name to the function that writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr.research.report import BLOCK

DOC = "docs/PERFORMANCE.md"
PERF = "docs/perf"

#: Dense optimizer-step contenders, as ``optimizer_step.py`` names them.
DENSE = (
  ("optax.adamw", "optax.adamw"),
  ("adam_ar", "adam_ar"),
  ("adam_ar candidates", "adam_ar, candidates"),
  ("adam_ar lazy", "adam_ar lazy"),
  ("adam_ar lazy candidates", "adam_ar lazy, candidates"),
  ("adagrad_ar", "adagrad_ar"),
)
SPARSE = (
  ("optax.adam", "optax.adam (dense)"),
  ("sparse_adam_ar", "sparse_adam_ar"),
  ("sparse_adagrad_ar", "sparse_adagrad_ar"),
  ("train dense optax.adam", "train: dense optax.adam"),
  ("train dense adam_ar candidates", "train: dense adam_ar, candidates"),
  ("train sparse_adam_ar", "train: sparse_adam_ar"),
)


def _n(size: str) -> str:
  """``"4000000"`` -> ``"4e6"``."""
  mantissa, exponent = f"{float(size):.1e}".split("e")
  mantissa = mantissa.rstrip("0").rstrip(".")
  return f"{mantissa}e{int(exponent)}"


def _load(path: str) -> dict[str, Any]:
  with open(path) as f:
    return json.load(f)


def optimizer_step(perf: str) -> dict[str, Any]:
  """``optimizer_step.json``'s results: ``{N: {name: [median s, ...]}}``."""
  return _load(os.path.join(perf, "optimizer_step.json"))["results"]


def dense(perf: str) -> str:
  """Dense optimizer step: ms and the ratio to ``optax.adamw``."""
  results = optimizer_step(perf)
  lines = [
    "| N | " + " | ".join(label for _, label in DENSE) + " |",
    "|---|" + "---:|" * len(DENSE),
  ]
  for size, row in results.items():
    if int(size) < 1_000_000:
      continue
    base = row["optax.adamw"][0]
    cells = [f"{row['optax.adamw'][0] * 1e3:.1f}"]
    for name, _ in DENSE[1:]:
      cells.append(f"{row[name][0] * 1e3:.1f} ({row[name][0] / base:.2f})")
    lines.append(f"| {_n(size)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def sparse(perf: str) -> str:
  """Sparse row path against the dense step: ms (max / median)."""
  results = optimizer_step(perf)
  lines = [
    "| N | " + " | ".join(label for _, label in SPARSE) + " |",
    "|---|" + "---:|" * len(SPARSE),
  ]
  for size, row in results.items():
    cells = [
      f"{row[name][0] * 1e3:.1f} ({row[name][4]:.1f})" if name in row else ""
      for name, _ in SPARSE
    ]
    lines.append(f"| {_n(size)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def peers(perf: str) -> str:
  """Train step of every system: median (min) ms, / sparse_adam_ar, floor."""
  run = _load(os.path.join(perf, "peers.json"))
  sizes = list(run["results"])
  names = list(run["results"][sizes[0]]["contenders"])
  lines = [
    "| contender | "
    + " | ".join(f"N = {_n(s)}: median (min) ms" for s in sizes)
    + " | "
    + " | ".join(f"/ sparse_adam_ar, {_n(s)}" for s in sizes)
    + " |",
    "|---|" + "---:|" * (2 * len(sizes)),
  ]
  for name in names:
    times, ratios = [], []
    for size in sizes:
      row = run["results"][size]["contenders"].get(name)
      ref = run["results"][size]["contenders"].get("sparse_adam_ar")
      if row is None:
        times.append("skipped")
        ratios.append("")
        continue
      times.append(f"{row['median_s'] * 1e3:.1f} ({row['min_s'] * 1e3:.1f})")
      ratios.append(f"{row['median_s'] / ref['median_s']:.2f}" if ref else "")
    lines.append(f"| {name} | " + " | ".join(times + ratios) + " |")
  floor = [
    f"{_n(s)}: "
    + ", ".join(
      f"{c['floor_s'] * 1e3:.2f} ms ({name})"
      for name, c in run["results"][s]["contenders"].items()
      if name in ("sparse_adam_ar", "sparse_adagrad_ar")
    )
    for s in sizes
  ]
  start, end = run["loadavg_start"][0], run["loadavg_end"][0]
  lines += [
    "",
    f"{run['cpu']}, {run['cpus']} cores, revision {run['revision']}; load "
    f"average {start:.1f} at the start, {end:.1f} at the end; copy bandwidth "
    f"{run['copy_bandwidth'] / 1e9:.1f} GB/s; memory floor "
    + "; ".join(floor)
    + ".",
  ]
  return "\n".join(lines)


#: The performance targets: (what, results file, numerator, denominator,
#: bound, ``"max"`` if the ratio must stay at or below the bound, ``"min"``
#: if at or above). A ``"max/median"`` denominator means the numerator's
#: slowest step over its median step.
TARGETS = (
  ("adam_ar, candidates / optax.adamw (optimizer step)", "optimizer_step",
   "adam_ar candidates", "optax.adamw", 1.03, "max"),
  ("adam_ar lazy / optax.adamw (optimizer step)", "optimizer_step",
   "adam_ar lazy", "optax.adamw", 1.0, "max"),
  ("adam_ar, full touched test / optax.adamw (optimizer step)",
   "optimizer_step", "adam_ar", "optax.adamw", 1.15, "max"),
  ("sparse_adagrad_ar / fbgemm EXACT_ADAGRAD (train step)", "peers",
   "sparse_adagrad_ar", "fbgemm EXACT_ADAGRAD", 1.0, "max"),
  ("sparse_adam_ar / fbgemm EXACT_ADAGRAD (train step)", "peers",
   "sparse_adam_ar", "fbgemm EXACT_ADAGRAD", 1.5, "max"),
  ("torch SparseAdam / sparse_adam_ar (train step)", "peers",
   "torch SparseAdam", "sparse_adam_ar", 2.0, "min"),
  ("sparse_adam_ar: slowest / median step", "peers", "sparse_adam_ar",
   "max/median", 1.3, "max"),
  ("sparse_adagrad_ar: slowest / median step", "peers", "sparse_adagrad_ar",
   "max/median", 1.3, "max"),
)  # fmt: skip


def _ratio(perf: str, source: str, size: str, num: str, den: str):
  """The ratio of a target at one size, or None if a contender is missing."""
  if source == "optimizer_step":
    row = optimizer_step(perf).get(size, {})
    if num not in row or den not in row:
      return None
    return row[num][0] / row[den][0]
  row = _load(os.path.join(perf, "peers.json"))["results"].get(size)
  rows = (row or {}).get("contenders", {})
  if num not in rows:
    return None
  if den == "max/median":
    return rows[num]["max_over_median"]
  return rows[num]["median_s"] / rows[den]["median_s"] if den in rows else None


def targets(perf: str) -> str:
  """Each target of the benchmarks against its measured ratio per size."""
  sizes = sorted(
    {s for s in optimizer_step(perf) if int(s) >= 1_000_000}
    | set(_load(os.path.join(perf, "peers.json"))["results"]),
    key=int,
  )
  lines = [
    "| target | bound | " + " | ".join(f"N = {_n(s)}" for s in sizes) + " |",
    "|---|---:|" + "---:|" * len(sizes),
  ]
  for what, source, num, den, bound, kind in TARGETS:
    cells = []
    for size in sizes:
      ratio = _ratio(perf, source, size, num, den)
      if ratio is None:
        cells.append("")
        continue
      met = ratio <= bound if kind == "max" else ratio >= bound
      cells.append(f"{ratio:.2f} {'met' if met else 'missed'}")
    sign = "<=" if kind == "max" else ">="
    lines.append(f"| {what} | {sign} {bound:g} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


#: The end-to-end runs of ``train_throughput.py`` (``--json``), in order.
END_TO_END = ("train_throughput.json", "train_throughput_b256.json")


def _paired(run: dict[str, Any], name: str) -> float:
  """Median over rounds of ``name``'s rate over the first optimizer's."""
  base = run["examples_per_s"][run["optimizers"][0]]
  mine = run["examples_per_s"][name]
  return float(np.median([m / b for m, b in zip(mine, base, strict=True)]))


def end_to_end(perf: str) -> str:
  """Runner train step: the first optimizer's examples/s, paired ratios."""
  runs = [_load(os.path.join(perf, name)) for name in END_TO_END]
  names = runs[0]["optimizers"]
  lines = [
    f"| batch | {names[0]} examples/s | "
    + " | ".join(names[1:])
    + " | raw output |",
    "|---:|---:|" + "---:|" * (len(names) - 1) + "---|",
  ]
  for file, run in zip(END_TO_END, runs, strict=True):
    rate = float(np.median(run["examples_per_s"][names[0]]))
    cells = [f"{_paired(run, n):.3f}" for n in names[1:]]
    text = file.replace(".json", ".txt")
    lines.append(
      f"| {run['batch_size']} | {rate:,.0f} | "
      + " | ".join(cells)
      + f" | [{text}](perf/{text}) |"
    )
  return "\n".join(lines)


TABLES: dict[str, Callable[[str], str]] = {
  "dense": dense,
  "sparse": sparse,
  "peers": peers,
  "targets": targets,
  "end_to_end": end_to_end,
}


def render(text: str, perf: str) -> str:
  """``text`` with every marked table regenerated from ``perf``."""

  def replace(match) -> str:
    return f"{match.group(1)}{TABLES[match.group(2)](perf)}\n{match.group(4)}"

  return BLOCK.sub(replace, text)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--doc", default=DOC)
  parser.add_argument("--perf", default=PERF)
  parser.add_argument("--check", action="store_true")
  args = parser.parse_args(argv)
  with open(args.doc) as f:
    old = f.read()
  new = render(old, args.perf)
  if new == old:
    print("up to date", args.doc)
    return 0
  if args.check:
    print("stale (PYTHONPATH=. python benchmarks/perf_report.py):", args.doc)
    return 1
  with open(args.doc, "w") as f:
    f.write(new)
  print("updated:", args.doc)
  return 0


if __name__ == "__main__":
  sys.exit(main())
