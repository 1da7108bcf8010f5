"""Sparse train step against the peers: optax_ar (JAX), PyTorch and FBGEMM.

Usage: ``python benchmarks/peers.py --quick`` (N = 1e6, under 2 minutes on 2
cores); ``python benchmarks/peers.py --out peers.json`` (N = 1e6, 4e6, 1.6e7).
The peers are an optional extra: install PyTorch's CPU build of torch 2.13
first (a plain ``torch`` from PyPI is the CUDA build), then ``pip install
.[peers]`` (``fbgemm-gpu-cpu`` 1.8, the release paired with torch 2.13), or
point ``--peers-python`` at an interpreter that has them. A system that does
not import is skipped, and the report says why.

The workload is the same in every system: one ``(N, 32)`` float32 table; a
2048 x 20 batch of ids drawn from a Zipf law of exponent ``--zipf`` (0.5:
~39k unique rows at N = 1e6, ~41k at 1.6e7), the hot ranks spread over the
table by a multiplicative hash; each example's 20 rows summed, then an MLP
32-64-1 and the logistic loss; the MLP trained with Adam. One train step is
forward, backward and the optimizer update of the table and of the MLP.

Contenders (each system runs in its own process, with its own thread pool):

* JAX (``optax_ar``; the steps of ``benchmarks/optimizer_step.py``): dense
  ``optax.adamw``, dense ``adam_ar`` and ``adagrad_ar`` given the batch's ids
  as ``candidate_rows`` (gradient with respect to the whole table), and the
  sparse row path ``sparse_adam_ar`` / ``sparse_adagrad_ar`` (gradient with
  respect to the gathered unique rows; the host-side ``unique_rows`` belongs
  to the input pipeline and is reported apart, not timed in the step);
* PyTorch CPU, 2 threads: ``nn.EmbeddingBag(mode="sum", sparse=True)`` with
  ``torch.optim.SparseAdam`` or sparse ``torch.optim.Adagrad``;
* FBGEMM's CPU TBE (``SplitTableBatchedEmbeddingBagsCodegen``, host table,
  CPU compute), ``EXACT_ADAGRAD`` and ``EXACT_ROWWISE_ADAGRAD`` fused into
  the backward pass (FBGEMM has no Adam on CPU).

Rounds are interleaved: each round runs every contender in turn (the start
rotating from round to round), each on fresh state, ``--warmup`` untimed
steps then ``--steps`` timed steps, so a slow phase of the machine hits all
alike. The warm-up covers compilation (first round) and the first steps on
fresh state: a step's temporaries (in JAX the ``(capacity, 32)`` row
gradients, ~5 MB each) come from glibc's per-thread malloc arenas, and the
first steps that a thread's arena serves them fault their pages in (~2,700
minor faults per step at capacity 40,960), which makes those steps up to
2-3x slower. The report gives per-step medians, minima and max/median, the
minor page faults of the median and of the slowest step (what makes a slow
step slow), ratios to the JAX contenders, the load average at the start
and the end, the CPU model, and the memory floor of each step: the bytes
of the step's unique rows of the table and of the optimizer state, each
read and written once, plus one read of their gradients (dense contenders:
every row of table, state and gradient), divided by the copy bandwidth of a
NumPy memcpy of 512 MiB (random 128-byte rows reach less than that
streaming rate, so the floor is a lower bound).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
DIM, BATCH, BAG, HIDDEN = 32, 2048, 20, 64
LR, ADAGRAD_LR, ALPHA = 1e-3, 1e-2, 1e-4
HASH = 2654435761  # prime: rank -> id is a bijection of [0, N) for N < HASH
SYSTEMS = ("jax", "torch", "fbgemm")
# name: (system, floor): ("dense", arrays of table and state) or ("rows",
# bytes of a touched row of table and state), each read and written once.
CONTENDERS = {
  "adamw (dense)": ("jax", ("dense", 3)),
  "adam_ar candidates (dense)": ("jax", ("dense", 3)),
  "adagrad_ar candidates (dense)": ("jax", ("dense", 2)),
  "sparse_adam_ar": ("jax", ("rows", 3 * 4 * DIM + 4)),
  "sparse_adagrad_ar": ("jax", ("rows", 2 * 4 * DIM + 4)),
  "torch SparseAdam": ("torch", ("rows", 3 * 4 * DIM)),
  "torch Adagrad": ("torch", ("rows", 2 * 4 * DIM)),
  "fbgemm EXACT_ADAGRAD": ("fbgemm", ("rows", 2 * 4 * DIM)),
  "fbgemm EXACT_ROWWISE_ADAGRAD": ("fbgemm", ("rows", 4 * DIM + 4)),
}
RATIO_TO = ("sparse_adam_ar", "sparse_adagrad_ar", "adam_ar candidates (dense)")


def make_data(num_rows: int, count: int, zipf: float, seed: int = 0):
  """``count`` batches ``(ids (BATCH, BAG) int32, labels (BATCH,) f32)``.

  Ranks follow ``p(r) ~ (r + 1) ** -zipf`` over ``[0, num_rows)``; the id of
  rank ``r`` is ``r * HASH mod num_rows`` (hot ids spread over the table).
  """
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(np.arange(1, num_rows + 1, dtype=np.float64) ** -zipf)
  cdf /= cdf[-1]
  data = []
  for i in range(count):
    ranks = np.searchsorted(cdf, rng.random(BATCH * BAG), side="right")
    ranks = np.minimum(ranks, num_rows - 1).astype(np.int64)
    ids = (ranks * HASH % num_rows).astype(np.int32).reshape(BATCH, BAG)
    data.append((ids, _labels(i)))
  return data


def _labels(i: int) -> np.ndarray:
  """The labels of batch ``i`` (as ``optimizer_step._labels`` draws them)."""
  rng = np.random.default_rng(100 + i)
  return rng.integers(0, 2, size=(BATCH,)).astype(np.float32)


def _mlp_numpy():
  """The MLP's initial weights (as ``optimizer_step._mlp_init`` draws them)."""
  rng = np.random.default_rng(2)
  w1 = (rng.normal(size=(DIM, HIDDEN)) * 0.1).astype(np.float32)
  w2 = (rng.normal(size=(HIDDEN,)) * 0.1).astype(np.float32)
  return w1, np.full((HIDDEN,), 0.01, np.float32), w2


def _timed(step, inputs):
  """A closure running ``step`` on the next input; returns its seconds."""
  position = {"i": 0}

  def call() -> float:
    args = inputs[position["i"] % len(inputs)]
    position["i"] += 1
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start

  return call


def jax_contenders(num_rows, data):
  """JAX steps from ``optimizer_step.py``: {name: make}, info."""
  sys.path.insert(0, str(REPO))
  import jax  # noqa: PLC0415
  import optax  # noqa: PLC0415

  import optax_ar  # noqa: PLC0415
  from benchmarks import optimizer_step as steps  # noqa: PLC0415

  assert (steps.DIM, steps.BATCH, steps.BAG) == (DIM, BATCH, BAG)
  batches = [
    (ids, optax_ar.unique_rows(ids, num_rows, BATCH * BAG), None)
    for ids, _ in data
  ]
  dedup = []
  for ids, _ in data:
    start = time.perf_counter()
    optax_ar.unique_rows(ids, num_rows, BATCH * BAG)
    dedup.append(time.perf_counter() - start)
  dense = steps.dense_train_contender
  contenders = [
    dense(
      "adamw (dense)", optax.adamw(LR, weight_decay=1e-4), num_rows, batches, 0
    ),
    dense(
      "adam_ar candidates (dense)",
      optax_ar.adam_ar(LR, ALPHA),
      num_rows,
      batches,
      0,
      candidates=True,
    ),
    dense(
      "adagrad_ar candidates (dense)",
      optax_ar.adagrad_ar(ADAGRAD_LR, ALPHA),
      num_rows,
      batches,
      0,
      candidates=True,
    ),
    steps.sparse_train_contender(
      "sparse_adam_ar", optax_ar.sparse_adam_ar(LR, ALPHA), num_rows, batches, 0
    ),
    steps.sparse_train_contender(
      "sparse_adagrad_ar",
      optax_ar.sparse_adagrad_ar(ADAGRAD_LR, ALPHA),
      num_rows,
      batches,
      0,
    ),
  ]
  info = {
    "versions": f"jax {jax.__version__}, optax {optax.__version__}, "
    f"backend {jax.default_backend()}",
    "unique_rows_s": float(np.median(dedup)),
  }
  return {c.name: c.make for c in contenders}, info


def _torch_mlp(torch):
  w1, b1, w2 = _mlp_numpy()
  mlp = torch.nn.Sequential(
    torch.nn.Linear(DIM, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1)
  )
  with torch.no_grad():
    mlp[0].weight.copy_(torch.from_numpy(w1.T))
    mlp[0].bias.copy_(torch.from_numpy(b1))
    mlp[2].weight.copy_(torch.from_numpy(w2[None]))
    mlp[2].bias.zero_()
  return mlp


def _torch_step(torch, pool, table_opt, mlp):
  """Forward, backward, updates; ``table_opt=None``: fused into backward."""
  mlp_opt = torch.optim.Adam(mlp.parameters(), lr=LR)
  bce = torch.nn.functional.binary_cross_entropy_with_logits

  def step(*args):
    labels = args[-1]
    loss = bce(mlp(pool(*args[:-1])).squeeze(-1), labels)
    mlp_opt.zero_grad(set_to_none=True)
    if table_opt is not None:
      table_opt.zero_grad(set_to_none=True)
    loss.backward()
    if table_opt is not None:
      table_opt.step()
    mlp_opt.step()

  return step


def torch_contenders(num_rows, data):
  """``nn.EmbeddingBag(sparse=True)`` + SparseAdam / sparse Adagrad."""
  import torch  # noqa: PLC0415

  torch.set_num_threads(2)
  inputs = [
    (torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(labels))
    for ids, labels in data
  ]

  def make_for(make_opt):
    def make():
      weight = torch.zeros(num_rows, DIM)
      bag = torch.nn.EmbeddingBag(
        num_rows, DIM, mode="sum", sparse=True, _weight=weight
      )
      step = _torch_step(
        torch, bag, make_opt(bag.parameters()), _torch_mlp(torch)
      )
      return _timed(step, inputs)

    return make

  makes = {
    "torch SparseAdam": make_for(lambda p: torch.optim.SparseAdam(p, lr=LR)),
    "torch Adagrad": make_for(
      lambda p: torch.optim.Adagrad(
        p, lr=ADAGRAD_LR, initial_accumulator_value=0.1, eps=1e-7
      )
    ),
  }
  info = {
    "versions": f"torch {torch.__version__}, {torch.get_num_threads()} threads"
  }
  return makes, info


def fbgemm_contenders(num_rows, data):
  """FBGEMM's CPU TBE, Adagrad fused into the backward pass."""
  import fbgemm_gpu  # noqa: PLC0415
  import torch  # noqa: PLC0415
  from fbgemm_gpu import split_embedding_configs as configs  # noqa: PLC0415
  from fbgemm_gpu import split_table_batched_embeddings_ops_common as common  # noqa: PLC0415, E501
  from fbgemm_gpu import split_table_batched_embeddings_ops_training as tbe  # noqa: PLC0415, E501

  torch.set_num_threads(2)
  offsets = torch.arange(0, BATCH * BAG + 1, BAG, dtype=torch.int64)
  inputs = [
    (
      torch.from_numpy(ids.astype(np.int64).ravel()),
      offsets,
      torch.from_numpy(labels),
    )
    for ids, labels in data
  ]

  def make_for(optimizer):
    def make():
      bags = tbe.SplitTableBatchedEmbeddingBagsCodegen(
        [(num_rows, DIM, common.EmbeddingLocation.HOST, tbe.ComputeDevice.CPU)],
        optimizer=optimizer,
        learning_rate=ADAGRAD_LR,
        eps=1e-7,
        pooling_mode=common.PoolingMode.SUM,
      )
      step = _torch_step(torch, bags, None, _torch_mlp(torch))
      return _timed(step, inputs)

    return make

  makes = {
    "fbgemm EXACT_ADAGRAD": make_for(configs.EmbOptimType.EXACT_ADAGRAD),
    "fbgemm EXACT_ROWWISE_ADAGRAD": make_for(
      configs.EmbOptimType.EXACT_ROWWISE_ADAGRAD
    ),
  }
  info = {
    "versions": f"fbgemm_gpu {fbgemm_gpu.__version__}, "
    f"torch {torch.__version__}, {torch.get_num_threads()} threads"
  }
  return makes, info


BUILDERS = {
  "jax": jax_contenders,
  "torch": torch_contenders,
  "fbgemm": fbgemm_contenders,
}


def _minor_faults() -> int:
  """Minor page faults of this process so far (every thread)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def serve(system: str, num_rows: int, batches: int, zipf: float) -> None:
  """Worker: builds one system's contenders, runs them on request.

  Protocol (one JSON object per line): the worker sends ``{"ready": names,
  "info": ...}`` or ``{"skipped": reason}``; then, for each request
  ``{"name": ..., "steps": k, "warmup": w}``, it builds fresh state, runs
  ``w`` untimed steps and ``k`` timed ones, and sends ``{"times": [...],
  "faults": [...]}`` (seconds and minor page faults of the process per timed
  step) or ``{"error": ...}``; an empty request ends it.
  """
  channel = os.fdopen(os.dup(1), "w", buffering=1)
  os.dup2(2, 1)  # stray prints of the libraries go to stderr

  def send(message):
    channel.write(json.dumps(message) + "\n")

  data = make_data(num_rows, batches, zipf)
  try:
    makes, info = BUILDERS[system](num_rows, data)
  except Exception as e:  # noqa: BLE001 (any import failure skips)
    send({"skipped": f"{type(e).__name__}: {e}"})
    return
  send({"ready": list(makes), "info": info})
  for line in sys.stdin:
    request = json.loads(line)
    if not request:
      break
    try:
      call = makes[request["name"]]()
      for _ in range(request.get("warmup", 1)):
        call()
      times, faults = [], []
      for _ in range(request["steps"]):
        before = _minor_faults()
        times.append(call())
        faults.append(_minor_faults() - before)
      send({"times": times, "faults": faults})
    except Exception as e:  # noqa: BLE001 (reported, the run goes on)
      send({"error": f"{type(e).__name__}: {e}"})
    call = None
    gc.collect()


class Worker:
  """One system's process, driven over its stdin and stdout."""

  def __init__(self, python, system, num_rows, args):
    self.system = system
    self.log = tempfile.TemporaryFile("w+")
    command = [
      python,
      str(pathlib.Path(__file__).resolve()),
      "--worker",
      system,
      "--sizes",
      str(num_rows),
      "--batches",
      str(args.batches),
      "--zipf",
      str(args.zipf),
    ]
    self.process = subprocess.Popen(
      command,
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      stderr=self.log,
      text=True,
      cwd=REPO,
    )
    self.hello = self._receive()

  def _receive(self):
    line = self.process.stdout.readline()
    if line:
      return json.loads(line)
    self.process.wait()
    self.log.seek(0)
    tail = self.log.read()[-600:].strip().replace("\n", " | ")
    return {"error": f"worker exited ({self.process.returncode}): {tail}"}

  def alive(self) -> bool:
    return self.process.poll() is None

  def run(self, name, steps, warmup):
    request = {"name": name, "steps": steps, "warmup": warmup}
    try:
      self.process.stdin.write(json.dumps(request))
      self.process.stdin.write("\n")
      self.process.stdin.flush()
    except BrokenPipeError:
      pass  # it died: _receive reports how
    return self._receive()

  def close(self):
    if self.alive():
      self.process.stdin.write("{}\n")
      self.process.stdin.flush()
      self.process.wait(timeout=120)
    self.log.close()


def copy_bandwidth(mib: int = 512, repeats: int = 5) -> float:
  """Bytes/s of ``np.copyto`` over ``mib`` MiB (bytes read + written)."""
  src = np.ones(mib * 2**20 // 4, np.float32)
  dst = np.zeros_like(src)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    np.copyto(dst, src)
    times.append(time.perf_counter() - start)
  return 2 * src.nbytes / float(np.median(times))


def floor_bytes(name: str, num_rows: int, unique: float) -> float:
  """Bytes each read and written once by the step of contender ``name``."""
  kind, size = CONTENDERS[name][1]
  if kind == "dense":  # read g and every state array, write the state
    return num_rows * 4 * DIM * (2 * size + 1)
  return unique * (2 * size + 4 * DIM)  # state rows r + w, gradient rows r


def cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def revision() -> str:
  """The commit measured, and whether ``optax_ar/`` differs from it."""

  def git(*args: str) -> str:
    return subprocess.run(
      ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()

  try:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "optax_ar")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return head + (" + uncommitted changes in optax_ar/" if dirty else "")


def run_size(num_rows, args, bandwidth):
  """Every selected contender at one table size, in interleaved rounds."""
  load_start = os.getloadavg()
  result = {"info": {}, "skipped": {}, "contenders": {}}
  unique = [
    np.unique(ids).size
    for ids, _ in make_data(num_rows, args.batches, args.zipf)
  ]
  result["unique_rows"] = unique
  workers, order = {}, []
  for system in args.systems:
    python = args.python if system == "jax" else args.peers_python
    worker = Worker(python, system, num_rows, args)
    hello = worker.hello
    if "ready" not in hello:
      result["skipped"][system] = hello.get("skipped") or hello.get("error")
      worker.close()
      continue
    workers[system] = worker
    result["info"][system] = hello["info"]
    order += [(system, n) for n in hello["ready"] if _selected(n, args.only)]
  samples = {name: [] for _, name in order}
  faults = {name: [] for _, name in order}
  for r in range(args.rounds):
    start = r % len(order) if order else 0
    for system, name in order[start:] + order[:start]:
      if name in result["skipped"] or system in result["skipped"]:
        continue
      print(f"N = {num_rows}, round {r + 1}: {name}", file=sys.stderr)
      reply = workers[system].run(name, args.steps, args.warmup)
      if "times" in reply:
        samples[name] += reply["times"]
        faults[name] += reply["faults"]
      elif workers[system].alive():
        result["skipped"][name] = reply.get("error")
      else:  # e.g. out of memory: the system's later contenders are lost
        result["skipped"][system] = reply.get("error")
  for worker in workers.values():
    worker.close()
  for name, times in samples.items():
    if not times:
      continue
    median = float(np.median(times))
    floor = floor_bytes(name, num_rows, float(np.mean(unique))) / bandwidth
    result["contenders"][name] = {
      "system": CONTENDERS[name][0],
      "times_s": times,
      "median_s": median,
      "min_s": float(np.min(times)),
      "max_over_median": float(np.max(times)) / median,
      "faults": faults[name],
      "median_faults": float(np.median(faults[name])),
      "slowest_faults": faults[name][int(np.argmax(times))],
      "floor_s": floor,
    }
  result["loadavg"] = [load_start, os.getloadavg()]
  return result


def _selected(name, only):
  return not only or name in only


def format_size(num_rows: int) -> str:
  exponent = int(np.floor(np.log10(num_rows)))
  return f"{num_rows / 10**exponent:g}e{exponent}"


def markdown_table(num_rows: int, result: dict) -> str:
  """Per contender: ms, min, max/median, ratios to the JAX ones, floor."""
  rows = result["contenders"]
  present = [name for name in RATIO_TO if name in rows]
  header = ["contender", "ms", "min ms", "max / median", "faults: median"]
  header += ["slowest"]
  header += [f"/ {name.removesuffix(' (dense)')}" for name in present]
  header += ["floor ms", "/ floor"]
  lines = [
    f"N = {format_size(num_rows)}, unique rows per batch "
    f"{int(np.mean(result['unique_rows']))}, load average "
    f"{_load(result['loadavg'][0])} -> {_load(result['loadavg'][1])}",
    "",
    "| " + " | ".join(header) + " |",
    "|---|" + "---:|" * (len(header) - 1),
  ]
  for name, row in rows.items():
    cells = [
      name,
      f"{row['median_s'] * 1e3:.2f}",
      f"{row['min_s'] * 1e3:.2f}",
      f"{row['max_over_median']:.2f}",
      f"{row['median_faults']:.0f}",
      f"{row['slowest_faults']}",
    ]
    cells += [f"{row['median_s'] / rows[p]['median_s']:.2f}" for p in present]
    cells += [
      f"{row['floor_s'] * 1e3:.2f}",
      f"{row['median_s'] / row['floor_s']:.1f}",
    ]
    lines.append("| " + " | ".join(cells) + " |")
  for system, info in result["info"].items():
    lines.append(f"\n{system}: {info['versions']}")
    if "unique_rows_s" in info:
      lines.append(
        f"host unique_rows (input pipeline of the sparse path, not in the "
        f"step): {info['unique_rows_s'] * 1e3:.2f} ms per batch"
      )
  for what, why in result["skipped"].items():
    lines.append(f"skipped {what}: {why}")
  return "\n".join(lines)


def summary_table(results: dict, statistic: str = "median_s") -> str:
  """ms per table size (rows) and contender (columns): median or min."""
  names = [
    n for n in CONTENDERS if any(n in r["contenders"] for r in results.values())
  ]
  lines = [
    "| N | " + " | ".join(names) + " |",
    "|---|" + "---:|" * len(names),
  ]
  for num_rows, result in results.items():
    cells = [
      f"{result['contenders'][n][statistic] * 1e3:.1f}"
      if n in result["contenders"]
      else ""
      for n in names
    ]
    lines.append(f"| {format_size(num_rows)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _load(load) -> str:
  return "/".join(f"{x:.2f}" for x in load)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--sizes", default="1e6,4e6,1.6e7", help="comma-separated table sizes N"
  )
  parser.add_argument(
    "--rounds",
    type=int,
    default=5,
    help="interleaved rounds over all contenders",
  )
  parser.add_argument(
    "--steps", type=int, default=4, help="timed steps per contender per round"
  )
  parser.add_argument(
    "--warmup",
    type=int,
    default=3,
    help="untimed steps on fresh state before the timed ones",
  )
  parser.add_argument(
    "--quick", action="store_true", help="N = 1e6, 3 rounds x 4 steps"
  )
  parser.add_argument(
    "--systems",
    default=",".join(SYSTEMS),
    help="comma-separated subset of jax,torch,fbgemm",
  )
  parser.add_argument(
    "--only", default="", help="comma-separated contender names (default: all)"
  )
  parser.add_argument(
    "--batches", type=int, default=8, help="distinct batches cycled through"
  )
  parser.add_argument(
    "--zipf", type=float, default=0.5, help="Zipf exponent of the ids"
  )
  parser.add_argument(
    "--python", default=sys.executable, help="interpreter of the JAX worker"
  )
  parser.add_argument(
    "--peers-python",
    default=sys.executable,
    help="interpreter of the torch and fbgemm workers",
  )
  parser.add_argument(
    "--copy-mib", type=int, default=512, help="array size of the memcpy probe"
  )
  parser.add_argument("--out", default="", help="write raw numbers (JSON)")
  parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.quick:
    args.sizes, args.rounds, args.steps = "1e6", 3, 4
  args.sizes = [int(float(s)) for s in args.sizes.split(",")]
  args.systems = [s for s in args.systems.split(",") if s]
  unknown = set(args.systems) - set(SYSTEMS)
  if unknown:
    parser.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
  args.only = [o for o in args.only.split(",") if o]
  return args


def main(argv=None) -> dict:
  """Runs the benchmark, prints the tables; returns the raw numbers."""
  args = parse_args(argv)
  if args.worker:
    serve(args.worker, args.sizes[0], args.batches, args.zipf)
    return {}
  report = {
    "command": " ".join(sys.argv if argv is None else ["peers.py", *argv]),
    "cpu": cpu_model(),
    "cpus": os.cpu_count(),
    "revision": revision(),
    "loadavg_start": os.getloadavg(),
  }
  report["copy_bandwidth"] = bandwidth = copy_bandwidth(args.copy_mib)
  print(
    f"CPU: {report['cpu']} ({report['cpus']} cores); load average "
    f"{_load(report['loadavg_start'])}; NumPy memcpy bandwidth "
    f"(read + write) {bandwidth / 1e9:.1f} GB/s",
    f"\nrevision {report['revision']}",
    f"\nbatch {BATCH} x {BAG} ids (Zipf {args.zipf}), d = {DIM}, "
    f"MLP {DIM}-{HIDDEN}-1; {args.rounds} rounds x {args.steps} steps "
    f"(after {args.warmup} warm-up steps)\n",
    sep="",
    flush=True,
  )
  results = {}
  for num_rows in args.sizes:
    start = time.perf_counter()
    results[num_rows] = run_size(num_rows, args, bandwidth)
    print(markdown_table(num_rows, results[num_rows]))
    print(f"({time.perf_counter() - start:.0f} s)\n", flush=True)
  report["loadavg_end"] = os.getloadavg()
  report["results"] = results
  print("median ms per train step\n")
  print(summary_table(results))
  print("\nmin ms per train step (the least disturbed by other load)\n")
  print(summary_table(results, "min_s"))
  print(f"\nload average at the end {_load(report['loadavg_end'])}")
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(report, indent=1))
  return report


if __name__ == "__main__":
  main()
