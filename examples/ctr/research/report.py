"""The generated tables of docs/RESULTS.md and README.md, from the results.

Usage: ``python -m examples.ctr.research.report`` rewrites every generated
table in place; ``python -m examples.ctr.research.report --check`` exits 1
if a table, ``docs/results/SUMMARY.md`` or ``docs/results/summary.json``
differs from what the results files give (so the reports cannot drift from
the data).

A generated table sits between two markers in a Markdown file::

  <!-- table:headline -->
  ...
  <!-- /table -->

and :data:`TABLES` maps the name to the function that writes it. Every
function reads ``summary.json`` (written by
:mod:`examples.ctr.research.summarize_results`) and, for the alpha grids,
the runs themselves.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr.research import summarize_results

DOCS = ("README.md", "docs/RESULTS.md")
ROOT = "docs/results"
BLOCK = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table -->)", re.S)
#: Display names and order of the main grid's data sets.
SETS = {
  "amazon-sports|{}": "Sports",
  "amazon-beauty|{}": "Beauty",
  "amazon-toys|{}": "Toys",
  'amazon-book|{"negatives": "popularity"}': "Books, popularity neg.",
  'amazon-book|{"negatives": "uniform"}': "Books, uniform neg.",
  "movielens-100k|{}": "MovieLens-100k",
  "frappe|{}": "Frappe",
  "ipinyou-sample|{}": "iPinYou sample",
}
BACKBONES = ("dnn", "wdl", "xdeepfm", "wukong")
#: The synthetic tail: what ``min_count`` leaves as rows of their own.
SYNTHETIC = {
  20: "20 (no rare rows)",
  5: "5 (the rarest rows touched every ~55 steps)",
  1: "1 (the rarest seen once per epoch)",
}


class Context:
  """What the tables read: the summary, the runs, where links point."""

  def __init__(self, root: str, link_prefix: str):
    with open(os.path.join(root, "summary.json")) as f:
      self.summary: dict[str, Any] = json.load(f)
    self.root = root
    self.link_prefix = link_prefix
    self._runs: dict[tuple[Any, ...], list[dict[str, Any]]] | None = None

  @property
  def runs(self) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    if self._runs is None:
      self._runs = summarize_results.load_runs(self.root)
    return self._runs

  def link(self, job: str) -> str:
    return f"[{job}]({self.link_prefix}{job}/)"


def _f(x: float | None) -> str:
  return "-" if x is None or math.isnan(x) else f"{x:.4f}"


def _a(alpha: float | None) -> str:
  return "-" if alpha is None else f"{alpha:.3g}"


def _main_grid(ctx: Context):
  """``(set name, backbone, batch, rows)`` of the main grid, in order."""
  found = []
  for key, exp in ctx.summary.items():
    dataset, options, model, batch, variant = key.split("|")
    name = SETS.get(f"{dataset}|{options}")
    if name is None or variant:
      continue
    order = (list(SETS).index(f"{dataset}|{options}"), BACKBONES.index(model))
    found.append((order, -int(batch), name, model, int(batch), exp["rows"]))
  return [f[2:] for f in sorted(found, key=lambda f: f[:2])]


def headline(ctx: Context) -> str:
  """Every main-grid experiment: test AUC E1 / best / E4 per optimizer."""
  lines = [
    "| set | backbone | batch | Adam E1 / best / E4 | AdamW best (a) | "
    "MEDA best | SAM best | AdamAR E1 / best / E4 (a) | lazy AdamAR best "
    "(a) | seeds |",
    "|---" * 10 + "|",
  ]
  for name, model, batch, rows in _main_grid(ctx):
    shown = ("adam", "adamw", "meda", "sam", "adam_ar", "adam_ar_lazy")
    best = {
      n: r["best_auc"]
      for n, r in rows.items()
      if n in shown and min(r["epochs_done"]) >= 4
    }
    top = max(best.values()) if best else None

    def cell(opt, curve=False, alpha=False, rows=rows, best=best, top=top):
      row = rows.get(opt)
      if row is None:
        return "not run"
      partial = min(row["epochs_done"]) < 4
      b = _f(row["best_auc"])
      b = f"**{b}**" if best.get(opt) == top else b
      text = b
      if curve:
        m = row["mean"] + [float("nan")] * 4
        text = f"{_f(m[0])} / {b} / {_f(m[3])}"
      if alpha:
        text += f" ({_a(row['alpha'])})"
      return text + (" partial" if partial else "")

    counts = sorted({len(r["seeds"]) for r in rows.values()})
    seeds = "-".join(str(c) for c in sorted({counts[0], counts[-1]}))
    lines.append(
      f"| {name} | {model} | {batch} | {cell('adam', curve=True)} | "
      f"{cell('adamw', alpha=True)} | {cell('meda')} | {cell('sam')} | "
      f"{cell('adam_ar', curve=True, alpha=True)} | "
      f"{cell('adam_ar_lazy', alpha=True)} | "
      f"{seeds} |"
    )
  return "\n".join(lines)


def synthetic(ctx: Context) -> str:
  """The synthetic tail by ``min_count``: test AUC E1 -> E4 per optimizer."""
  names = ("adam", "meda", "adamw", "adam_ar", "adam_ar_lazy")
  names += ("adam_ar_decay_on_read",)
  lines = [
    "| min_count | " + " | ".join(names) + " | seeds | jobs |",
    "|---" * (len(names) + 3) + "|",
  ]
  for min_count, label in SYNTHETIC.items():
    key = f'synthetic|{{"min_count": {min_count}}}|dnn|512|'
    rows = ctx.summary[key]["rows"]
    cells = []
    for n in names:
      if n not in rows:
        cells.append("not run")
        continue
      m = rows[n]["mean"]
      alpha = f" ({_a(rows[n]['alpha'])})" if rows[n]["alpha"] else ""
      cells.append(f"{_f(m[0])} -> {_f(m[-1])}{alpha}")
    jobs = sorted({j for r in rows.values() for j in r["jobs"]})
    seeds = max(len(r["seeds"]) for r in rows.values())
    lines.append(
      f"| {label} | "
      + " | ".join(cells)
      + f" | {seeds} | {', '.join(ctx.link(j) for j in jobs)} |"
    )
  return "\n".join(lines)


def alpha_rows(ctx: Context, default: float = 1.0) -> list[dict[str, Any]]:
  """AdamAR's E4 test AUC at ``default`` per epoch vs the chosen alpha.

  One entry per main-grid or synthetic experiment whose AdamAR grid (stated
  per epoch) holds ``default`` and two other values; seed 0, whose runs
  cover the grid.
  """
  synthetic = [
    (f"synthetic, min_count {m}", "dnn", 512, ctx.summary[key]["rows"])
    for m in SYNTHETIC
    if (key := f'synthetic|{{"min_count": {m}}}|dnn|512|') in ctx.summary
  ]
  out = []
  for name, model, batch, rows in _main_grid(ctx) + synthetic:
    row = rows.get("adam_ar")
    if row is None or row["alpha_unit"] != "epoch" or len(row["grid"]) < 3:
      continue
    if not any(math.isclose(a, default, rel_tol=1e-4) for a in row["grid"]):
      continue
    job = row["jobs"][0]
    key = next(
      k
      for k, runs in ctx.runs.items()
      if k[2:4] == (model, batch)
      and not k[4]
      and any(r.get("source", "").startswith(job + os.sep) for r in runs)
    )
    last = {}
    for run in ctx.runs[key]:
      if run["optimizer"] == "adam_ar" and run["seed"] == 0:
        if len(run["epochs"]) >= 4:
          last[run["alpha"]] = run["epochs"][-1]["eval_auc"]
    at_default = next(
      v for a, v in last.items() if math.isclose(a, default, rel_tol=1e-4)
    )
    chosen = row["alpha"]
    out.append(
      dict(
        name=name,
        model=model,
        batch=batch,
        steps=ctx.runs[key][0].get("steps_per_epoch"),
        grid=(min(row["grid"]), max(row["grid"]), len(row["grid"])),
        chosen=chosen,
        adamw=rows.get("adamw", {}).get("alpha"),
        at_chosen=last[chosen],
        at_default=at_default,
        job=job,
      )
    )
  return out


def alpha_table(ctx: Context) -> str:
  """How far a = 1 per epoch is from the alpha chosen on validation."""
  rows = alpha_rows(ctx)
  lines = [
    "| set | backbone | batch | steps/epoch | grid (a per epoch) | "
    "a chosen on valid (AdamW's) | E4 test AUC at chosen a | at a = 1 | "
    "difference | job |",
    "|---" * 10 + "|",
  ]
  for r in rows:
    lo, hi, n = r["grid"]
    lines.append(
      f"| {r['name']} | {r['model']} | {r['batch']} | {r['steps']} | "
      f"{_a(lo)} .. {_a(hi)} ({n}) | {_a(r['chosen'])} ({_a(r['adamw'])}) | "
      f"{_f(r['at_chosen'])} | {_f(r['at_default'])} | "
      f"{r['at_default'] - r['at_chosen']:+.4f} | {ctx.link(r['job'])} |"
    )
  others = [r for r in rows if not math.isclose(r["chosen"], 1.0, rel_tol=1e-4)]
  diffs = np.array([r["at_default"] - r["at_chosen"] for r in others])
  ones = len(rows) - len(others)
  lines += [
    "",
    f"a = 1 per epoch is the validation choice in {ones} of {len(rows)} "
    f"settings; elsewhere its E4 test AUC differs from the chosen a's by "
    f"{diffs.min():+.4f} .. {diffs.max():+.4f} (median "
    f"{np.median(diffs):+.4f}; seed 0).",
  ]
  return "\n".join(lines)


def demo(ctx: Context) -> str:
  """``make demo``'s table: test AUC per epoch, alpha chosen on valid."""
  rows = ctx.summary["synthetic|{}|dnn|512|"]["rows"]
  lines = [
    "| optimizer | decay per epoch (chosen on valid) | E1 | E2 | E3 | E4 |",
    "|---|---|---|---|---|---|",
  ]
  for name in ("adam", "adamw", "adam_ar"):
    row = rows[name]
    lines.append(
      f"| {name} | {_a(row['alpha'])} | "
      + " | ".join(_f(m) for m in row["mean"])
      + " |"
    )
  return "\n".join(lines)


#: Where AdamAR helps: (label, summary key, what the data are like).
REGIMES = (
  (
    "synthetic, rare rows kept (min_count 5)",
    'synthetic|{"min_count": 5}|dnn|512|',
    "rare rows touched every ~55 steps, frequent ones every 1-2",
  ),
  (
    "Books, popularity negatives, batch 2048",
    'amazon-book|{"negatives": "popularity"}|dnn|2048|',
    "long item tail (rarest bucket's median gap 10x the median)",
  ),
  (
    "Amazon Toys (5-core), batch 256",
    "amazon-toys|{}|dnn|256|",
    "every ID seen >= 5 times; p99 gap < 1/3 epoch",
  ),
  (
    "Amazon Sports (5-core), batch 256",
    "amazon-sports|{}|dnn|256|",
    "every ID seen >= 5 times; p99 gap < 1/2 epoch",
  ),
  (
    "Books, uniform negatives, batch 2048",
    'amazon-book|{"negatives": "uniform"}|dnn|2048|',
    "short item tail (median gap 21 steps)",
  ),
  (
    "synthetic, every value a row (min_count 1)",
    'synthetic|{"min_count": 1}|dnn|512|',
    "the rarest rows seen once per epoch",
  ),
  (
    "MovieLens-100k, batch 2048",
    "movielens-100k|{}|dnn|2048|",
    "small, dense data: nothing overfits in 4 epochs",
  ),
)


def helps(ctx: Context) -> str:
  """AdamAR's best-epoch test AUC minus each baseline's, per regime."""
  lines = [
    "| data | touch gaps | AdamAR E1 -> E4 | AdamAR best | - Adam | "
    "- AdamW | - MEDA | job |",
    "|---" * 8 + "|",
  ]
  for label, key, gaps in REGIMES:
    rows = ctx.summary[key]["rows"]
    ar = rows["adam_ar"]["best_auc"]
    mean = rows["adam_ar"]["mean"]
    diffs = [
      f"{ar - rows[b]['best_auc']:+.4f}" if b in rows else "not run"
      for b in ("adam", "adamw", "meda")
    ]
    job = rows["adam_ar"]["jobs"][0]
    lines.append(
      f"| {label} | {gaps} | {_f(mean[0])} -> {_f(mean[-1])} | {_f(ar)} | "
      + " | ".join(diffs)
      + f" | {ctx.link(job)} |"
    )
  return "\n".join(lines)


def buckets(ctx: Context) -> str:
  """Bucket substitution: AR on one table, AdamW's decay on the others."""
  parts = ("user-k0", "user-k5", "item-k5", "history-k5", "item_attributes-k5")
  lines = [
    "| set | AdamW everywhere | AR on user | AR on item | AR on history | "
    "AR on item_attributes | AdamAR everywhere | jobs |",
    "|---" * 8 + "|",
  ]
  for dataset in ("amazon-beauty", "amazon-toys"):
    cells, jobs = [], []
    for part in parts:
      exp = ctx.summary.get(f"{dataset}|{{}}|dnn|256|{part}")
      if exp is None:
        cells.append("not run")
        continue
      row = exp["rows"]["bucket_sub"]
      cells.append(f"{_f(row['mean'][-1])} ± {row['std'][-1]:.4f}")
      jobs += row["jobs"]
    row = ctx.summary[f"{dataset}|{{}}|dnn|256|"]["rows"]["adam_ar"]
    cells.append(f"{_f(row['mean'][-1])} ± {row['std'][-1]:.4f}")
    lines.append(
      f"| {SETS[dataset + '|{}']} | "
      + " | ".join(cells)
      + f" | {', '.join(ctx.link(j) for j in jobs)} |"
    )
  return "\n".join(lines)


#: The sparse path's settings: (label, summary key without the variant).
SPARSE_SETTINGS = (
  ("Sports, batch 256", "amazon-sports|{}|dnn|256|"),
  ("Beauty, batch 256", "amazon-beauty|{}|dnn|256|"),
  ("Toys, batch 256", "amazon-toys|{}|dnn|256|"),
  ("Toys, batch 2048", "amazon-toys|{}|dnn|2048|"),
  (
    "Books, popularity neg., batch 2048",
    'amazon-book|{"negatives": "popularity"}|dnn|2048|',
  ),
)


def sparse(ctx: Context) -> str:
  """Sparse path quality: lazy and catch-up moments against dense AdamAR.

  Lazy is the ``sparse`` variant's ``adam_ar_lazy`` where it was run, else
  the dense path's ``adam_ar_lazy`` (the same rule, marked "dense path");
  catch-up is the ``sparse-catchup`` variant's ``adam_ar``.
  """
  lines = [
    "| setting | dense AdamAR (a) | lazy (a) | catch-up (a) | lazy - dense | "
    "catch-up - dense | seeds | jobs |",
    "|---" * 8 + "|",
  ]
  for label, key in SPARSE_SETTINGS:
    dense = ctx.summary[key]["rows"]["adam_ar"]
    lazy = ctx.summary.get(key + "sparse", {}).get("rows", {})
    lazy = lazy.get("adam_ar_lazy")
    where = ""
    if lazy is None:
      lazy, where = ctx.summary[key]["rows"]["adam_ar_lazy"], ", dense path"
    catch_up = ctx.summary.get(key + "sparse-catchup", {}).get("rows", {})
    catch_up = catch_up.get("adam_ar")
    rows = [r for r in (dense, lazy, catch_up) if r is not None]

    def cell(row, where=""):
      if row is None:
        return "not run"
      partial = " partial" if min(row["epochs_done"]) < 4 else ""
      return f"{_f(row['best_auc'])} ({_a(row['alpha'])}{where}){partial}"

    def diff(row, dense=dense):
      return (
        "-" if row is None else f"{row['best_auc'] - dense['best_auc']:+.4f}"
      )

    counts = sorted({len(r["seeds"]) for r in rows})
    seeds = "-".join(str(c) for c in sorted({counts[0], counts[-1]}))
    jobs = [j for r in rows for j in r["jobs"]]
    lines.append(
      f"| {label} | {cell(dense)} | {cell(lazy, where)} | {cell(catch_up)} | "
      f"{diff(lazy)} | {diff(catch_up)} | {seeds} | "
      f"{', '.join(ctx.link(j) for j in jobs)} |"
    )
  return "\n".join(lines)


TABLES: dict[str, Callable[[Context], str]] = {
  "sparse": sparse,
  "buckets": buckets,
  "headline": headline,
  "synthetic": synthetic,
  "alpha": alpha_table,
  "demo": demo,
  "helps": helps,
}


def render(text: str, ctx: Context) -> str:
  """``text`` with every marked table regenerated.

  Example:
    >>> ctx = type("C", (), {})()
    >>> TABLES["x"] = lambda ctx: "| a |"
    >>> render("t\\n<!-- table:x -->\\nold\\n<!-- /table -->\\n", ctx)
    't\\n<!-- table:x -->\\n| a |\\n<!-- /table -->\\n'
    >>> del TABLES["x"]
  """

  def replace(match: re.Match) -> str:
    return f"{match.group(1)}{TABLES[match.group(2)](ctx)}\n{match.group(4)}"

  return BLOCK.sub(replace, text)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m examples.ctr.research.report",
    description=__doc__.split("\n\n")[0],
  )
  parser.add_argument("docs", nargs="*", default=list(DOCS))
  parser.add_argument("--root", default=ROOT)
  parser.add_argument("--check", action="store_true")
  args = parser.parse_args(argv)
  stale = []
  summary_md, summary = summarize_results.summarize(args.root)
  for path, new in (
    (os.path.join(args.root, "SUMMARY.md"), summary_md),
    (os.path.join(args.root, "summary.json"), json.dumps(summary, indent=1)),
  ):
    with open(path) as f:
      if f.read() != new:
        stale.append(path)
        if not args.check:
          with open(path, "w") as out:
            out.write(new)
  for path in args.docs:
    prefix = os.path.relpath(args.root, os.path.dirname(path) or ".") + "/"
    with open(path) as f:
      old = f.read()
    new = render(old, Context(args.root, prefix))
    if new != old:
      stale.append(path)
      if not args.check:
        with open(path, "w") as f:
          f.write(new)
  if args.check and stale:
    print("stale (run python -m examples.ctr.research.report):", *stale)
    return 1
  print("updated:" if stale else "up to date", *stale)
  return 0


if __name__ == "__main__":
  sys.exit(main())
