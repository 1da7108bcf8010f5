"""Optimizer-step and train-step time vs table size: dense optax vs sparse.

Usage: ``python benchmarks/optimizer_step.py`` (``--quick`` for a smoke run,
``--sizes 1e6,1.6e7 --repeats 3``, ``--plot docs/step_time_vs_n.png``).

One ``(N, 32)`` float32 table; a step touches the rows of a 2048 x 20 batch of
uniformly random ids (~40k rows). Every contender is a jitted function with
the table and the optimizer state donated (updated in place), timed after
``--warmup`` untimed calls; the reported time is the median over ``repeats``
rounds x ``--steps`` timed calls. Contenders are interleaved: each round runs
every contender once, so a slow phase of the machine hits them all alike. The
table also gives the slowest call over the median (bimodal steps show up
there), the median process CPU time of a call (all threads; less sensitive
than wall time to other processes sharing the cores) and the median minor page
faults of a call: XLA:CPU allocates a call's temporary buffers afresh, and
glibc maps an allocation above its mmap threshold (32 MB at most) from the
kernel each time, at one fault per 4 KiB page unless transparent huge pages
are enabled for it (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``).

Memory: only one contender's table and state are alive at a time (it is
re-created in each round, and its first steps after creation are the untimed
warm-up, which also pays the page faults of the fresh buffers), plus the
shared dense gradient: at N = 1.6e7 that is 6 + 2 GB for Adam.

Contenders:

* optimizer step (update + apply), dense gradient given: ``optax.adam``,
  ``optax.adamw``, ``adam_ar`` (dense and lazy moments), ``adagrad_ar``;
  ``adam_ar ... candidates``: the same, given the batch's 2048 x 20 raw ids
  as ``candidate_rows`` (the touched test reads those rows, not the table);
  sparse: ``sparse_adam_ar`` (and with ``catch_up_moments``),
  ``sparse_adagrad_ar``, given the unique row ids and their gradients;
* train step (loss gradient + update) of a small model (sum of the 20 rows
  of each example -> MLP 32-64-1 -> logistic loss): dense (gradient with
  respect to the whole table, then ``optax.adam`` or ``adam_ar``, the latter
  also with the batch's ids as ``candidate_rows``, dense or lazy) vs sparse
  (gradient with respect to the gathered unique rows, then
  ``sparse_adam_ar``; the host-side dedup is timed separately, it belongs to
  the input pipeline).

Bytes per step are lower bounds: each array element read or written once
(Adam: read g, m, v, theta, write m, v, theta = 28 N d bytes; lazy AdamAR:
the same on the ~40k touched rows only, plus one read of g for the touched
test and 9 bytes per row for the flags and ``last_step``). The fraction
of bandwidth divides them by the time and by this machine's memory bandwidth,
measured first with an in-place donated ``x * c`` over 1 GiB.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_ar

DIM, BATCH, BAG = 32, 2048, 20
DENSE_OPT = (
  "optax.adam",
  "optax.adamw",
  "adam_ar",
  "adam_ar lazy",
  "adam_ar candidates",
  "adam_ar lazy candidates",
  "adagrad_ar",
)
HIDDEN = 64


@dataclasses.dataclass
class Contender:
  """A jitted step ``run(carry) -> carry`` and how to build its carry."""

  name: str
  kind: str  # "opt" (optimizer step) or "train" (gradient + update)
  make: Callable[[], Callable[[], float]]  # returns a timed-call closure
  bytes_per_step: float


def measure_bandwidth(gib: float = 1.0, repeats: int = 7) -> float:
  """Bytes/s of an in-place donated ``x * c`` (read + write) over ``gib``."""
  n = int(gib * 2**30 / 4)
  scale = jax.jit(lambda x: x * jnp.float32(1.0000001), donate_argnums=0)
  x = scale(jnp.ones((n,), jnp.float32))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    x = scale(x)
    x.block_until_ready()
    times.append(time.perf_counter() - start)
  del x
  return 2 * n * 4 / float(np.median(times))


def make_batches(num_rows: int, count: int, seed: int = 0):
  """``count`` batches of ids (host), their dedup, and a gradient per row."""
  rng = np.random.default_rng(seed)
  capacity = BATCH * BAG
  batches = []
  for _ in range(count):
    ids = rng.integers(0, num_rows, size=(BATCH, BAG), dtype=np.int32)
    unique = optax_ar.unique_rows(ids, num_rows, capacity)
    grads = rng.normal(size=(capacity, DIM)).astype(np.float32)
    grads[unique.num_unique :] = 0.0
    batches.append((ids, unique, grads))
  return batches


def time_dedup(num_rows: int, repeats: int = 5) -> float:
  """Seconds per batch of the host-side ``unique_rows``."""
  rng = np.random.default_rng(1)
  ids = rng.integers(0, num_rows, size=(BATCH, BAG), dtype=np.int32)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    optax_ar.unique_rows(ids, num_rows, BATCH * BAG)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _timed(step, carry, inputs):
  """A closure running ``step`` on the next input; returns its seconds.

  It also appends ``(process CPU seconds, minor page faults)`` of each call
  to its attribute ``stats``: CPU time is less sensitive than wall time to
  other processes on the machine, and the faults count the fresh pages that
  XLA's per-call temporary buffers cost.
  """
  state = {"carry": carry, "i": 0}
  stats = []

  def call() -> float:
    args = inputs[state["i"] % len(inputs)]
    state["i"] += 1
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = time.process_time()
    start = time.perf_counter()
    state["carry"] = step(state["carry"], *args)
    jax.block_until_ready(state["carry"])
    seconds = time.perf_counter() - start
    stats.append(
      (
        time.process_time() - cpu,
        resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
      )
    )
    return seconds

  # Not a reference from `call` to itself: that cycle would keep a deleted
  # contender's table and state alive until the garbage collector runs.
  call.stats = stats
  return call


def dense_opt_contender(
  name, tx, num_rows, dense_grad, bytes_per_step, candidates=None
):
  """Optimizer step with a dense (N, d) gradient (and candidate row ids)."""

  def step(carry, grad, *candidate_rows):
    params, state = carry
    extra = {"candidate_rows": candidate_rows[0]} if candidate_rows else {}
    updates, state = tx.update(grad, state, params, **extra)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step, donate_argnums=0)
  inputs = [(dense_grad,) if candidates is None else (dense_grad, candidates)]

  def make():
    params = jnp.zeros((num_rows, DIM), jnp.float32)
    return _timed(step, (params, tx.init(params)), inputs)

  return Contender(name, "opt", make, bytes_per_step)


def sparse_opt_contender(name, opt, num_rows, row_inputs, bytes_per_step):
  """Optimizer step with unique row ids and their gradients."""

  def step(carry, ids, grads):
    return opt.update(*carry, ids, grads)

  step = jax.jit(step, donate_argnums=0)

  def make():
    table = jnp.zeros((num_rows, DIM), jnp.float32)
    return _timed(step, (table, opt.init(table)), row_inputs)

  return Contender(name, "opt", make, bytes_per_step)


def _mlp_init():
  rng = np.random.default_rng(2)
  return {
    "w1": jnp.asarray(rng.normal(size=(DIM, HIDDEN)) * 0.1, jnp.float32),
    "b1": jnp.full((HIDDEN,), 0.01, jnp.float32),
    "w2": jnp.asarray(rng.normal(size=(HIDDEN,)) * 0.1, jnp.float32),
    "b2": jnp.zeros((), jnp.float32),
  }


def _logits(mlp, pooled):
  hidden = jax.nn.relu(pooled @ mlp["w1"] + mlp["b1"])
  return hidden @ mlp["w2"] + mlp["b2"]


def _loss(mlp, rows_per_example, labels):
  logits = _logits(mlp, rows_per_example.sum(axis=1))
  return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


def dense_train_contender(
  name, tx, num_rows, batches, bytes_per_step, candidates=False
):
  """Gradient w.r.t. the whole table (zero fill + scatter-add) + ``tx``.

  With ``candidates``, the batch's ids are passed as ``candidate_rows``.
  """

  def step(carry, ids, labels):
    params, state = carry

    def loss_fn(p):
      return _loss(p["mlp"], p["table"][ids], labels)

    grads = jax.grad(loss_fn)(params)
    extra = (
      {"candidate_rows": {"table": ids, "mlp": None}} if candidates else {}
    )
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step, donate_argnums=0)
  inputs = [
    (jnp.asarray(ids), _labels(i)) for i, (ids, _, _) in enumerate(batches)
  ]

  def make():
    params = {"table": jnp.zeros((num_rows, DIM)), "mlp": _mlp_init()}
    return _timed(step, (params, tx.init(params)), inputs)

  return Contender(name, "train", make, bytes_per_step)


def sparse_train_contender(name, opt, num_rows, batches, bytes_per_step):
  """Gradient w.r.t. the gathered unique rows + the sparse update."""
  mlp_tx = optax.adam(1e-3)

  def step(carry, ids, inverse, labels):
    table, table_state, mlp, mlp_state = carry
    rows = optax_ar.gather_rows(table, ids)
    row_grads, mlp_grads = jax.grad(
      lambda r, m: _loss(m, r[inverse], labels), argnums=(0, 1)
    )(rows, mlp)
    table, table_state = opt.update(table, table_state, ids, row_grads)
    updates, mlp_state = mlp_tx.update(mlp_grads, mlp_state, mlp)
    return table, table_state, optax.apply_updates(mlp, updates), mlp_state

  step = jax.jit(step, donate_argnums=0)
  inputs = [
    (jnp.asarray(u.ids), jnp.asarray(u.inverse), _labels(i))
    for i, (_, u, _) in enumerate(batches)
  ]

  def make():
    table = jnp.zeros((num_rows, DIM), jnp.float32)
    mlp = _mlp_init()
    carry = (table, opt.init(table), mlp, mlp_tx.init(mlp))
    return _timed(step, carry, inputs)

  return Contender(name, "train", make, bytes_per_step)


def _labels(seed):
  rng = np.random.default_rng(100 + seed)
  return jnp.asarray(rng.integers(0, 2, size=(BATCH,)), jnp.float32)


def contenders_for(num_rows: int, batches, dense_grad, train: bool):
  """Every contender at one table size."""
  nd = num_rows * DIM
  cap = BATCH * BAG
  adam_bytes = 28 * nd
  ar_bytes = adam_bytes + 8 * num_rows  # + read and write last_step
  sparse_bytes = cap * (4 + 4 * DIM + 6 * 4 * DIM + 8)  # ids, g, 3x(r+w), last
  row_inputs = [(jnp.asarray(u.ids), jnp.asarray(g)) for _, u, g in batches]
  raw_ids = jnp.asarray(batches[0][0])  # the batch that made dense_grad
  # candidates: read ids and their gradient rows; write the (N,) bool mask.
  candidate_bytes = cap * (4 + 4 * DIM) + num_rows
  # Lazy: idle rows are left as they are (their -0.0 update lets XLA:CPU skip
  # them), so only the touched rows' theta, m, v move, plus g for the
  # touched test (unless the candidates replace it), the per-row flags and
  # last_step.
  lazy_rows_bytes = cap * 28 * DIM + 9 * num_rows
  lazy_bytes = lazy_rows_bytes + 4 * nd
  lazy_candidate_bytes = lazy_rows_bytes + candidate_bytes
  lr, alpha = 1e-3, 1e-4
  out = [
    dense_opt_contender(
      "optax.adam", optax.adam(lr), num_rows, dense_grad, adam_bytes
    ),
    dense_opt_contender(
      "optax.adamw",
      optax.adamw(lr, weight_decay=1e-4),
      num_rows,
      dense_grad,
      adam_bytes,
    ),
    dense_opt_contender(
      "adam_ar", optax_ar.adam_ar(lr, alpha), num_rows, dense_grad, ar_bytes
    ),
    dense_opt_contender(
      "adam_ar lazy",
      optax_ar.adam_ar(lr, alpha, lazy=True),
      num_rows,
      dense_grad,
      lazy_bytes,
    ),
    dense_opt_contender(
      "adam_ar candidates",
      optax_ar.adam_ar(lr, alpha),
      num_rows,
      dense_grad,
      ar_bytes + candidate_bytes,
      raw_ids,
    ),
    dense_opt_contender(
      "adam_ar lazy candidates",
      optax_ar.adam_ar(lr, alpha, lazy=True),
      num_rows,
      dense_grad,
      lazy_candidate_bytes,
      raw_ids,
    ),
    dense_opt_contender(
      "adagrad_ar",
      optax_ar.adagrad_ar(1e-2, alpha),
      num_rows,
      dense_grad,
      20 * nd + 8 * num_rows,
    ),
    sparse_opt_contender(
      "sparse_adam_ar",
      optax_ar.sparse_adam_ar(lr, alpha),
      num_rows,
      row_inputs,
      sparse_bytes,
    ),
    sparse_opt_contender(
      "sparse_adam_ar catch_up",
      optax_ar.sparse_adam_ar(lr, alpha, catch_up_moments=True),
      num_rows,
      row_inputs,
      sparse_bytes,
    ),
    sparse_opt_contender(
      "sparse_adagrad_ar",
      optax_ar.sparse_adagrad_ar(1e-2, alpha),
      num_rows,
      row_inputs,
      cap * (4 + 4 * DIM + 4 * 4 * DIM + 8),
    ),
  ]
  if train:
    # Dense gradient: zero fill + scatter-add of the (N, d) gradient, on top
    # of the optimizer's traffic.
    dense_train_bytes = adam_bytes + 4 * nd
    out += [
      dense_train_contender(
        "train dense optax.adam",
        optax.adam(lr),
        num_rows,
        batches,
        dense_train_bytes,
      ),
      dense_train_contender(
        "train dense adam_ar",
        optax_ar.adam_ar(lr, alpha),
        num_rows,
        batches,
        dense_train_bytes + 8 * num_rows,
      ),
      dense_train_contender(
        "train dense adam_ar candidates",
        optax_ar.adam_ar(lr, alpha),
        num_rows,
        batches,
        dense_train_bytes + 8 * num_rows + candidate_bytes,
        candidates=True,
      ),
      dense_train_contender(
        "train dense adam_ar lazy candidates",
        optax_ar.adam_ar(lr, alpha, lazy=True),
        num_rows,
        batches,
        dense_train_bytes + 8 * num_rows + candidate_bytes,
        candidates=True,
      ),
      sparse_train_contender(
        "train sparse_adam_ar",
        optax_ar.sparse_adam_ar(lr, alpha),
        num_rows,
        batches,
        sparse_bytes,
      ),
    ]
  return out


def _dense_gradient(num_rows, batch):
  """The (N, d) gradient of one batch: its rows' gradients, zeros elsewhere."""
  _, unique, grads = batch
  build = jax.jit(
    lambda ids, g: (
      jnp.zeros((num_rows, DIM), jnp.float32).at[ids].set(g, mode="drop")
    )
  )
  return build(jnp.asarray(unique.ids), jnp.asarray(grads))


def run_size(num_rows, repeats, steps, train, only, warmup=2):
  """Times every contender at one size; returns {name: (seconds, bytes)}."""
  batches = make_batches(num_rows, count=4)
  names = [c.name for c in contenders_for(num_rows, batches, None, train)]
  if only:
    names = [name for name in names if name in only]
  needs_dense = any(name in DENSE_OPT for name in names)
  dense_grad = _dense_gradient(num_rows, batches[0]) if needs_dense else None
  contenders = [
    c
    for c in contenders_for(num_rows, batches, dense_grad, train)
    if c.name in names
  ]
  samples = {c.name: [] for c in contenders}
  stats = {c.name: [] for c in contenders}
  for _ in range(repeats):
    for c in contenders:
      call = c.make()
      # Warm-up: compilation (first round), the faults of the fresh buffers
      # and of the first steps' temporaries (see peers.py's docstring).
      for _ in range(warmup):
        call()
      samples[c.name] += [call() for _ in range(steps)]
      stats[c.name] += call.stats[warmup:]
      del call
  return {
    c.name: (
      float(np.median(samples[c.name])),
      c.bytes_per_step,
      float(np.median([cpu for cpu, _ in stats[c.name]])),
      float(np.median([faults for _, faults in stats[c.name]])),
      float(np.max(samples[c.name]) / np.median(samples[c.name])),
    )
    for c in contenders
  }


def format_size(num_rows: int) -> str:
  exponent = int(np.floor(np.log10(num_rows)))
  mantissa = num_rows / 10**exponent
  return f"{mantissa:g}e{exponent}"


def markdown_table(num_rows, results, bandwidth):
  base = results.get("optax.adamw", (None,))[0]
  lines = [
    f"N = {format_size(num_rows)}",
    "",
    "| contender | ms | / adamw | max / median | CPU ms | page faults | "
    "GB moved | % of bandwidth |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for name, (seconds, nbytes, cpu, faults, spread) in results.items():
    ratio = f"{seconds / base:.3f}" if base and name[:5] != "train" else ""
    lines.append(
      f"| {name} | {seconds * 1e3:.2f} | {ratio} | {spread:.2f} | "
      f"{cpu * 1e3:.1f} | {faults:.0f} | {nbytes / 1e9:.3f} | "
      f"{100 * nbytes / seconds / bandwidth:.0f}% |"
    )
  return "\n".join(lines)


def summary(all_results, dedup):
  """The issue's targets, as ratios measured in this run."""
  lines = [
    "| N | adam_ar / adamw | adam_ar candidates / adamw | "
    "adam / sparse_adam_ar (opt) | "
    "train dense adam_ar / train sparse | train dense adam / train sparse | "
    "host dedup ms |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]

  def ratio(res, a, b):
    if a in res and b in res:
      return f"{res[a][0] / res[b][0]:.2f}"
    return ""

  for n, res in all_results.items():
    lines.append(
      f"| {format_size(n)} | {ratio(res, 'adam_ar', 'optax.adamw')} | "
      f"{ratio(res, 'adam_ar candidates', 'optax.adamw')} | "
      f"{ratio(res, 'optax.adam', 'sparse_adam_ar')} | "
      f"{ratio(res, 'train dense adam_ar', 'train sparse_adam_ar')} | "
      f"{ratio(res, 'train dense optax.adam', 'train sparse_adam_ar')} | "
      f"{dedup[n] * 1e3:.2f} |"
    )
  sizes = sorted(all_results)
  if 10**6 in all_results and sizes[-1] > 10**6:
    big = sizes[-1]
    for name in ("sparse_adam_ar", "train sparse_adam_ar"):
      if name in all_results[big] and name in all_results[10**6]:
        growth = all_results[big][name][0] / all_results[10**6][name][0]
        lines.append(
          f"\n{name}: time at N = {format_size(big)} / time at N = 1e6 = "
          f"{growth:.2f}"
        )
  return "\n".join(lines)


def plot(all_results, path):
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  sizes = sorted(all_results)
  names = list(all_results[sizes[0]])
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for ax, kind in zip(axes, ("opt", "train"), strict=True):
    for name in names:
      if (name.startswith("train")) != (kind == "train"):
        continue
      ms = [
        all_results[n][name][0] * 1e3 for n in sizes if name in all_results[n]
      ]
      style = "--" if "sparse" in name else "-"
      ax.loglog(sizes[: len(ms)], ms, style, marker="o", label=name)
    ax.set_xlabel("table rows N (d = 32)")
    ax.set_title("optimizer step" if kind == "opt" else "train step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
  axes[0].set_ylabel("ms per step (median)")
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--sizes", default="1e5,1e6,4e6,1.6e7", help="comma-separated table sizes N"
  )
  parser.add_argument(
    "--repeats", type=int, default=3, help="rounds over all contenders"
  )
  parser.add_argument(
    "--steps", type=int, default=3, help="timed calls per contender per round"
  )
  parser.add_argument(
    "--warmup",
    type=int,
    default=2,
    help="untimed calls on fresh state before the timed ones",
  )
  parser.add_argument(
    "--quick", action="store_true", help="sizes 1e5,1e6, 2 rounds x 2 steps"
  )
  parser.add_argument(
    "--no-train", action="store_true", help="skip the train-step contenders"
  )
  parser.add_argument(
    "--only", default="", help="comma-separated contender names (default: all)"
  )
  parser.add_argument("--plot", default="", help="save a plot (PNG) here")
  parser.add_argument("--json", default="", help="save raw results here")
  args = parser.parse_args(argv)
  if args.quick:
    args.sizes, args.repeats, args.steps = "1e5,1e6", 2, 2
  sizes = [int(float(s)) for s in args.sizes.split(",")]
  only = [o for o in args.only.split(",") if o]

  print(
    f"jax {jax.__version__}, optax {optax.__version__}, "
    f"backend {jax.default_backend()}, {jax.device_count()} device(s)"
  )
  bandwidth = measure_bandwidth()
  print(
    f"measured memory bandwidth (in-place x*c, 1 GiB, read+write): "
    f"{bandwidth / 1e9:.1f} GB/s"
  )
  print(
    f"batch {BATCH} x {BAG} ids, d = {DIM}; median of {args.repeats} "
    f"rounds x {args.steps} calls, each round after {args.warmup} "
    "untimed calls\n"
  )
  all_results, dedup = {}, {}
  for n in sizes:
    start = time.perf_counter()
    all_results[n] = run_size(
      n, args.repeats, args.steps, not args.no_train, only, args.warmup
    )
    dedup[n] = time_dedup(n)
    print(markdown_table(n, all_results[n], bandwidth))
    print(f"({time.perf_counter() - start:.0f} s for this size)\n", flush=True)
  print(summary(all_results, dedup))
  if args.plot:
    plot(all_results, args.plot)
    print(f"\nplot saved to {args.plot}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(
        {"bandwidth": bandwidth, "dedup_s": dedup, "results": all_results},
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
