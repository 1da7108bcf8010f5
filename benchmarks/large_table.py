"""A table larger than one device's share: the sparse path on a mesh.

Usage::

  python benchmarks/large_table.py --rows 20000000 --mesh none
  python benchmarks/large_table.py --rows 20000000 --mesh 1x8
  python benchmarks/large_table.py --rows 20000000 --mesh 2x4 --processes 2

Builds a dataset with one field of ``--rows`` IDs drawn from Zipf(1.1) over
all of them (ranks mapped to IDs by a random permutation, so the touched rows
spread over the whole table; the table has ``rows + 2`` rows, the reserved
IDs included) and two small fields of 100 and 1000 IDs, with random labels
(a memory and time benchmark, not a quality one), and trains the
runner's sparse path (``--sparse-updates``, AdamAR with lazy moments, DNN,
``--dim``) for ``--steps`` timed steps after a compiled warm-up step: on one
device (``none``), or on a ``DATAxMODEL`` mesh of simulated CPU devices, the
big table and its state split by rows over ``model``. With ``--processes P``
the script starts itself ``P`` times under ``jax.distributed`` on 127.0.0.1
(``8 / P`` devices each), each process reading only its rows of every batch.

Each process reports the per-row bytes of docs/SCALING.md (params ``4 d``,
Adam moments ``8 d``, ``last_step`` 4) times the rows it holds, its resident
memory before building the model (the dataset and the runtime), after the
steps, and at its peak (``VmHWM``), and the median step time.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def _memory_mb() -> dict[str, float]:
  """``VmRSS`` and ``VmHWM`` (peak) of this process, in MB."""
  found = {}
  with open("/proc/self/status") as f:
    for line in f:
      key, _, value = line.partition(":")
      if key in ("VmRSS", "VmHWM"):
        found[key] = int(value.split()[0]) / 1024
  return found


def _dataset(rows: int, examples: int, seed: int = 0):
  """One Zipf field of ``rows`` IDs, two small uniform ones, random labels."""
  import numpy as np  # noqa: PLC0415

  from examples.ctr.data import schema  # noqa: PLC0415
  from examples.ctr.data import synthetic  # noqa: PLC0415

  rng = np.random.default_rng(seed)
  reserved = schema.NUM_RESERVED_IDS
  ranks = np.searchsorted(synthetic._zipf_cdf(rows, 1.1), rng.random(examples))
  ids_of_rank = rng.permutation(rows).astype(np.int32) + reserved
  features = {"f00": ids_of_rank[np.minimum(ranks, rows - 1)]}
  del ids_of_rank
  fields = [schema.FieldSpec("f00", rows + reserved)]
  for name, vocab in (("f01", 100), ("f02", 1000)):
    features[name] = rng.integers(reserved, vocab + reserved, examples)
    features[name] = features[name].astype(np.int32)
    fields.append(schema.FieldSpec(name, vocab + reserved))
  labels = (rng.random(examples) < 0.2).astype(np.float32)
  split = schema.Split(features, labels)
  return schema.CTRDataset("zipf_table", tuple(fields), split, None, split, {})


def _run(args) -> dict:
  import jax  # noqa: PLC0415

  if args.coordinator:
    jax.distributed.initialize(
      coordinator_address=args.coordinator,
      num_processes=args.processes,
      process_id=args.process_id,
    )
  import numpy as np  # noqa: PLC0415

  from examples.ctr import config as config_lib  # noqa: PLC0415
  from examples.ctr import sharding  # noqa: PLC0415
  from examples.ctr import train  # noqa: PLC0415

  config = config_lib.get_config("test").replace(
    embedding_dim=args.dim,
    batch_size=args.batch_size,
    optimizer="adam_ar",
    sparse_updates=True,
    mesh=None if args.mesh == "none" else args.mesh,
    checkpoint=False,
  )
  dataset = _dataset(args.rows, args.examples)
  before = _memory_mb()
  mesh = None if config.mesh is None else sharding.create_mesh(config.mesh)
  setup = train.create_train_state(
    config, dataset.fields, "adam_ar", 1e-3, 0, mesh
  )
  step = train.make_train_step(
    setup.graphdef, setup.spec, setup.mesh, setup.shardings
  )
  batches = sharding.process_batches(
    dataset.train, config.batch_size, mesh, shuffle=True, drop_remainder=True
  ).epoch(1)
  state, metrics = step(setup.state, next(batches))  # compiles
  jax.block_until_ready(metrics)
  times = []
  for _ in range(args.steps):
    batch = next(batches)
    tic = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - tic)
  after = _memory_mb()

  table_rows = max(rows for rows, _ in setup.spec.capacities.values())
  model = 1 if mesh is None else sharding.model_axis_size(mesh)
  local_devices = 1 if mesh is None else jax.local_device_count()
  # Rows of the big table this process holds: its devices' shards, of which
  # those with the same model index are copies (the data axis).
  shards = (
    1
    if mesh is None
    else len(
      {
        pos[1]
        for pos, d in np.ndenumerate(mesh.devices)
        if d.process_index == jax.process_index()
      }
    )
  )
  copies = local_devices // shards if mesh is not None else 1
  held_rows = table_rows // model * shards
  bytes_per_row = 12 * args.dim + 4  # params, Adam moments, last_step
  return {
    "process": jax.process_index(),
    "mesh": args.mesh,
    "devices": jax.device_count(),
    "table_rows": table_rows,
    "dim": args.dim,
    "rows_held": held_rows,
    "copies_held": copies,
    "state_mb_by_arithmetic": held_rows * copies * bytes_per_row / 2**20,
    "whole_table_state_mb": table_rows * bytes_per_row / 2**20,
    "rss_before_model_mb": before["VmRSS"],
    "rss_after_steps_mb": after["VmRSS"],
    "peak_rss_mb": after["VmHWM"],
    "step_ms_median": 1e3 * statistics.median(times),
    "steps": args.steps,
    "batch_size": args.batch_size,
    "loss": float(metrics["loss"]),
  }


def _launch(args) -> list[dict]:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = dict(
    os.environ,
    XLA_FLAGS=f"--xla_force_host_platform_device_count={8 // args.processes}",
    JAX_PLATFORMS="cpu",
  )
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        __file__,
        *sys.argv[1:],
        "--coordinator",
        f"127.0.0.1:{port}",
        "--process-id",
        str(i),
      ],
      env=env,
      stdout=subprocess.PIPE,
      text=True,
    )
    for i in range(args.processes)
  ]
  reports = []
  try:
    for proc in procs:
      out, _ = proc.communicate(timeout=args.timeout)
      reports.append(json.loads(out.strip().splitlines()[-1]))
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  return reports


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", type=int, default=20_000_000)
  parser.add_argument("--dim", type=int, default=8)
  parser.add_argument("--examples", type=int, default=100_000)
  parser.add_argument("--batch-size", type=int, default=512)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--mesh", default="1x8")
  parser.add_argument("--processes", type=int, default=1)
  parser.add_argument("--timeout", type=float, default=1200)
  parser.add_argument("--coordinator", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.processes > 1 and args.coordinator is None:
    for report in _launch(args):
      print(json.dumps(report))
    return
  if args.coordinator is None and args.mesh != "none":
    os.environ.setdefault(
      "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
    )
  print(json.dumps(_run(args)))


if __name__ == "__main__":
  main()
