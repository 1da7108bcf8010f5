"""End-to-end training throughput: the DNN on Amazon Sports, Adam vs AdamAR.

Usage: ``python benchmarks/train_throughput.py --data-dir ../shared/data``
(``--optimizers adam,adam_ar,adam_ar_lazy --steps 40 --rounds 3``).

Runs the example runner's own jitted ``train_step`` (``examples.ctr.train``)
over its own shuffled, prefetching ``BatchIterator`` at batch 2048, with the
optimizers interleaved: each round runs ``--steps`` steps of every optimizer
(after one untimed warm-up step, which also compiles in the first round),
the first of them rotating from round to round. Reports examples/s (median
over rounds, compilation excluded), its ratio to the first optimizer, the
paired ratio (median over rounds of the ratio within the round), and the
share of wall time spent waiting for the next batch (time blocked in the
iterator's ``next``).

An optimizer name with the suffix ``:sparse`` (``adam_ar_lazy:sparse``,
``adagrad_ar:sparse``) runs the runner's ``--sparse-updates`` step
(``examples.ctr.sparse_train``) instead; its host-side dedup of the ids is
part of the timed step. A plain name runs the dense step with
``--no-batch-ids-as-candidates``, the suffix ``:candidates``
(``adam_ar:candidates``) with ``--batch-ids-as-candidates`` (the runner's
default).

``--dataset synthetic --dataset-options '{"vocab_sizes": [100000, 100000,
100000, 100000], "min_count": 1, ...}'`` sets the table sizes (the
synthetic dataset builds a row for every value seen ``min_count`` times in
its training split): how the dense and the sparse path scale with the rows
of the tables (``docs/perf/train_throughput_update_path.txt``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from examples.ctr import train  # noqa: E402
from examples.ctr.config import get_config  # noqa: E402
from examples.ctr.data.pipeline import BatchIterator  # noqa: E402


def timed_steps(step, state, batches, steps):
  """Runs ``steps`` steps; returns (state, wall seconds, data-wait seconds)."""
  wait = 0.0
  start = time.perf_counter()
  for _ in range(steps):
    t0 = time.perf_counter()
    batch = next(batches)
    wait += time.perf_counter() - t0
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - start, wait


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data-dir", default="../shared/data")
  parser.add_argument("--dataset", default="amazon-sports")
  parser.add_argument(
    "--dataset-options",
    type=json.loads,
    default={},
    help="JSON keyword options of the dataset loader",
  )
  parser.add_argument("--model", default="dnn")
  parser.add_argument("--optimizers", default="adam,adam_ar")
  parser.add_argument("--batch-size", type=int, default=2048)
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument(
    "--json", default="", help="save the per-round samples here (JSON)"
  )
  args = parser.parse_args(argv)

  config = get_config("default").replace(
    dataset=args.dataset,
    data_path=args.data_dir,
    dataset_options=args.dataset_options,
    model=args.model,
    batch_size=args.batch_size,
    progress=False,
  )
  start = time.perf_counter()
  dataset = train.load_dataset(config)
  print(
    f"{args.dataset}: {len(dataset.train)} training examples, "
    f"{len(dataset.fields)} fields (vocab sizes "
    f"{[f.vocab_size for f in dataset.fields]}), loaded in "
    f"{time.perf_counter() - start:.1f} s; model {args.model}, batch "
    f"{args.batch_size}, {args.rounds} rounds x {args.steps} steps"
  )
  names = args.optimizers.split(",")
  runs = {}
  for name in names:
    base, _, variant = name.partition(":")
    if variant == "sparse":
      setup = train.create_train_state(
        config.replace(sparse_updates=True),
        dataset.fields,
        base,
        config.alpha,
        0,
      )
      step = train.make_train_step(setup.graphdef, setup.spec)
    elif variant in ("", "candidates"):
      run_config = config.replace(
        batch_ids_as_candidates=variant == "candidates"
      )
      setup = train.create_train_state(
        run_config, dataset.fields, base, None, 0
      )
      step = train.make_train_step(setup.graphdef, setup.spec)
    else:
      raise ValueError(f"unknown variant {variant!r} in {name!r}")
    iterator = BatchIterator(
      dataset.train,
      args.batch_size,
      shuffle=True,
      seed=0,
      drop_remainder=True,
    )
    runs[name] = {"step": step, "state": setup.state, "iter": iterator}
  samples = {name: [] for name in names}
  for round_index in range(args.rounds):
    # The first optimizer of a round rotates, so that none always runs
    # right after the data of the previous round's last one.
    start = round_index % len(names)
    for name in names[start:] + names[:start]:
      run = runs[name]
      batches = iter(run["iter"].epoch(round_index))
      state, _, _ = timed_steps(run["step"], run["state"], batches, 1)
      state, wall, wait = timed_steps(run["step"], state, batches, args.steps)
      run["state"] = state
      samples[name].append((args.steps * args.batch_size / wall, wait / wall))
      del batches
  print(markdown_table(names, samples))
  if args.json:
    record = {
      "command": " ".join(sys.argv if argv is None else argv),
      "dataset": args.dataset,
      "model": args.model,
      "batch_size": args.batch_size,
      "steps": args.steps,
      "rounds": args.rounds,
      "optimizers": names,
      "examples_per_s": {n: [s[0] for s in samples[n]] for n in names},
      "wait_share": {n: [s[1] for s in samples[n]] for n in names},
    }
    pathlib.Path(args.json).write_text(json.dumps(record, indent=1))


def markdown_table(names, samples) -> str:
  """examples/s, its ratio to the first optimizer, the paired ratio, waits.

  ``ratio`` divides medians over rounds; ``paired`` is the median over
  rounds of the ratio within a round, which a slow phase of the machine
  (it hits one round) moves less.
  """
  base = np.median([s[0] for s in samples[names[0]]])
  lines = [
    "",
    "| optimizer | examples/s | ratio | paired ratio | waiting for data |",
    "|---|---:|---:|---:|---:|",
  ]
  for name in names:
    rate = float(np.median([s[0] for s in samples[name]]))
    wait = float(np.median([s[1] for s in samples[name]]))
    paired = float(
      np.median(
        [
          mine[0] / theirs[0]
          for mine, theirs in zip(samples[name], samples[names[0]], strict=True)
        ]
      )
    )
    lines.append(
      f"| {name} | {rate:,.0f} | {rate / base:.3f} | {paired:.3f} | "
      f"{100 * wait:.1f}% |"
    )
  return "\n".join(lines)


if __name__ == "__main__":
  main()
