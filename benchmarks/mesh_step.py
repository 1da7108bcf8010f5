"""Training-step time of the CTR runner for each device-mesh shape.

Usage: ``python benchmarks/mesh_step.py`` (``--quick`` for a smoke run;
``--meshes none,8x1,2x4,1x8 --rows 100000 --fields 4 --steps 20``).

Times :func:`examples.ctr.train.make_train_step` (the runner's jitted step:
loss gradient, optimizer update, host batch split over the ``data`` axis)
on the DNN backbone with ``--fields`` zero-initialised tables of ``--rows``
rows (dim 32) and random Zipf-distributed ids, for one device (``none``) and
each ``DATAxMODEL`` mesh. The reported time is the median over ``--repeats``
rounds of ``--steps`` steps, after a compiled warm-up step; meshes are
interleaved round by round.

Without accelerators the script asks XLA for 8 *simulated* CPU devices
(``--xla_force_host_platform_device_count=8``). They share the host's cores
and memory, so the CPU numbers show the cost of partitioning (collectives,
per-shard kernels), not a speed-up: run it on a GPU/TPU host for real
scaling numbers.
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get(
  "XLA_FLAGS", ""
):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
  ).strip()

import argparse  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from examples.ctr import config as config_lib  # noqa: E402
from examples.ctr import sharding  # noqa: E402
from examples.ctr import train  # noqa: E402
from examples.ctr.data.pipeline import Batch  # noqa: E402
from examples.ctr.data.schema import FieldSpec  # noqa: E402


def make_batches(fields, batch_size: int, count: int, seed: int = 0):
  """Random batches: Zipf(1.1) ids per field, random labels."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    features = {
      f.name: np.minimum(rng.zipf(1.1, batch_size), f.vocab_size - 1).astype(
        np.int32
      )
      for f in fields
    }
    labels = (rng.random(batch_size) < 0.2).astype(np.float32)
    out.append(Batch(features, labels, np.ones(batch_size, np.float32)))
  return out


class Contender:
  """One mesh shape: its state, step and timings."""

  def __init__(self, name, config, fields):
    self.name = name
    mesh = None if name == "none" else sharding.create_mesh(name)
    setup = train.create_train_state(
      config, fields, config.optimizer, None, 0, mesh
    )
    self.state = setup.state
    self.step = train.make_train_step(
      setup.graphdef, setup.spec, mesh, setup.shardings
    )
    self.shard_rows = max(
      x.addressable_shards[0].data.shape[0]
      for x, m in zip(
        jax.tree.leaves(setup.state.params),
        jax.tree.leaves(setup.table_mask),
        strict=True,
      )
      if m
    )
    self.times: list[float] = []
    self.compile_s = 0.0

  def warm_up(self, batch):
    tic = time.perf_counter()
    self.state, metrics = self.step(self.state, batch)
    jax.block_until_ready(metrics)
    self.compile_s = time.perf_counter() - tic

  def run(self, batches):
    tic = time.perf_counter()
    for batch in batches:
      self.state, metrics = self.step(self.state, batch)
    jax.block_until_ready((self.state, metrics))
    self.times.append((time.perf_counter() - tic) / len(batches))


def main(argv=None) -> list[dict[str, float]]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--meshes", default="none,8x1,4x2,2x4,1x8")
  parser.add_argument("--rows", type=int, default=100_000)
  parser.add_argument("--fields", type=int, default=4)
  parser.add_argument("--batch-size", type=int, default=2048)
  parser.add_argument("--optimizer", default="adam_ar")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args(argv)
  if args.quick:
    args.rows, args.steps, args.repeats, args.batch_size = 4096, 3, 1, 256

  config = config_lib.get_config("default").replace(
    optimizer=args.optimizer, batch_size=args.batch_size, checkpoint=False
  )
  fields = [FieldSpec(f"f{i}", args.rows) for i in range(args.fields)]
  batches = make_batches(fields, args.batch_size, args.steps + 1)
  contenders = [Contender(m, config, fields) for m in args.meshes.split(",")]
  for c in contenders:
    c.warm_up(batches[-1])
  for _ in range(args.repeats):
    for c in contenders:
      c.run(batches[:-1])

  platform = jax.devices()[0].platform.upper()
  simulated = "simulated " if platform == "CPU" else ""
  print(
    f"Runner train step ({args.optimizer}, DNN, {args.fields} tables x "
    f"{args.rows} rows x 32, batch {args.batch_size}) on "
    f"{jax.device_count()} {simulated}{platform} device(s); "
    f"{platform} numbers, median of {args.repeats} x {args.steps} steps"
  )
  header = (
    f"{'mesh':>6} {'devices':>7} {'rows/shard':>10} {'step ms':>9} "
    f"{'examples/s':>11} {'compile s':>9}"
  )
  print(header)
  rows = []
  for c in contenders:
    ms = 1e3 * statistics.median(c.times)
    devices = (
      1 if c.name == "none" else np.prod(sharding.parse_mesh_shape(c.name))
    )
    rows.append({"mesh": c.name, "step_ms": ms})
    print(
      f"{c.name:>6} {devices:>7} {c.shard_rows:>10} {ms:>9.1f} "
      f"{args.batch_size / ms * 1e3:>11.0f} {c.compile_s:>9.1f}"
    )
  sys.stdout.flush()
  return rows


if __name__ == "__main__":
  main()
