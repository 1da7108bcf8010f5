"""Where the slow steps of the sparse train step come from: probe.

Usage::

  python benchmarks/probes/step_phases.py [--rows 4e6] [--seconds 15]

Runs ``benchmarks/peers.py``'s JAX ``sparse_adagrad_ar`` train step (the
same state throughout, after three warm-up steps), or with ``--numpy`` a
NumPy gather, scale and scatter of the same unique rows (one thread, no
JAX), back to back for
``--seconds`` and prints, per half-second window, the median step time, the
number of steps, the minor page faults of the process and the CPU time stolen
by the hypervisor (``/proc/stat``). If the window medians move while faults
and steal stay at zero, the slow steps are phases of the machine (memory
shared with other tenants), not of the step: the same state, the same
compiled program and the same batches run at different speeds.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import optax_ar  # noqa: E402
from benchmarks import optimizer_step as steps  # noqa: E402
from benchmarks import peers  # noqa: E402

WINDOW = 0.5


def stolen_ticks() -> int:
  """Clock ticks stolen by the hypervisor since boot (0 if unknown)."""
  try:
    fields = pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8])
  except (OSError, IndexError, ValueError):
    return 0


def _minor_faults() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def numpy_step(num_rows: int, batches):
  """A step of NumPy only: gather, update and scatter the unique rows."""
  rng = np.random.default_rng(0)
  table = rng.normal(size=(num_rows, peers.DIM)).astype(np.float32)
  position = {"i": 0}

  def call() -> float:
    ids = batches[position["i"] % len(batches)][1]
    position["i"] += 1
    ids = ids.ids[: ids.num_unique]
    start = time.perf_counter()
    table[ids] = table[ids] * np.float32(0.999)
    return time.perf_counter() - start

  return call


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", type=float, default=4e6)
  parser.add_argument("--seconds", type=float, default=15.0)
  parser.add_argument(
    "--numpy",
    action="store_true",
    help="time a NumPy gather-scale-scatter of the same rows instead",
  )
  args = parser.parse_args(argv)
  num_rows = int(args.rows)
  data = peers.make_data(num_rows, 8, 0.5)
  capacity = peers.BATCH * peers.BAG
  batches = [
    (ids, optax_ar.unique_rows(ids, num_rows, capacity), None)
    for ids, _ in data
  ]
  if args.numpy:
    what = "NumPy table[ids] = table[ids] * c"
    call = numpy_step(num_rows, batches)
  else:
    what = "sparse_adagrad_ar train step"
    opt = optax_ar.sparse_adagrad_ar(peers.ADAGRAD_LR, peers.ALPHA)
    make = steps.sparse_train_contender("step", opt, num_rows, batches, 0).make
    call = make()
  for _ in range(3):
    call()
  windows = {}
  start = time.perf_counter()
  while time.perf_counter() - start < args.seconds:
    key = int((time.perf_counter() - start) / WINDOW)
    faults = _minor_faults()
    steal = stolen_ticks()
    seconds = call()
    entry = windows.setdefault(key, {"ms": [], "faults": 0, "steal": 0})
    entry["ms"].append(seconds * 1e3)
    entry["faults"] += _minor_faults() - faults
    entry["steal"] += stolen_ticks() - steal
  print(f"N = {num_rows}, {what}, {WINDOW} s windows\n")
  print("| t (s) | median ms | steps | page faults | stolen ticks |")
  print("|---:|---:|---:|---:|---:|")
  medians = []
  for key, entry in sorted(windows.items()):
    median = float(np.median(entry["ms"]))
    medians.append(median)
    print(
      f"| {key * WINDOW:.1f} | {median:.1f} | {len(entry['ms'])} | "
      f"{entry['faults']} | {entry['steal']} |"
    )
  every = [ms for entry in windows.values() for ms in entry["ms"]]
  print(
    f"\nwindow medians {min(medians):.1f}-{max(medians):.1f} ms "
    f"(slowest / fastest {max(medians) / min(medians):.2f}); all steps: "
    f"median {np.median(every):.1f} ms, max / median "
    f"{max(every) / np.median(every):.2f}"
  )


if __name__ == "__main__":
  main()
