"""Why dense ``adam_ar`` costs more than ``optax.adamw`` on XLA:CPU: probes.

Usage::

  python benchmarks/probes/dense_fusion_probe.py [--rows 1e6] [--block 16384]

Prints, for one ``(N, 32)`` float32 array, medians of interleaved calls:

1. the row reductions that find touched rows: ``any(g != 0)`` per row (what
   ``adam_ar`` uses), the packed code ``min(-last - 1 if g != 0 else last)``
   (touched flag and ``last_step`` in one reduction, slower), and a flat
   ``sum(g)`` (the bandwidth a read of g could reach);
2. one donated optimizer step of ``optax.adamw``, ``optax_ar.adam_ar`` and a
   hand-blocked single-pass Adam + AR kernel (a ``lax.fori_loop`` over row
   blocks with dynamic-update-slice in place), which would move 7 array
   passes instead of XLA's 10 + 1 if XLA:CPU compiled it well.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_ar

DIM = 32
B1, B2, EPS, LR, ALPHA = 0.9, 0.999, 1e-8, 1e-3, 1e-3


def reductions(grad, last, rounds):
  fns = {
    "any(g != 0) per row": jax.jit(
      lambda g, last: jnp.any(g != 0, axis=1, keepdims=True)
    ),
    "packed code": jax.jit(
      lambda g, last: jnp.min(
        jnp.where(g != 0, -last - 1, last), axis=1, keepdims=True
      )
    ),
    "flat sum(g)": jax.jit(lambda g, last: jnp.sum(g)),
  }
  out = {k: [] for k in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      fn(grad, last).block_until_ready()
      start = time.perf_counter()
      fn(grad, last).block_until_ready()
      out[name].append(time.perf_counter() - start)
  return {k: 1e3 * float(np.median(v)) for k, v in out.items()}


def blocked_step(num_rows, block):
  """Adam + AR decay over row blocks, state updated in place."""

  def rows_update(g, m, v, p, code, step, bc1, bc2):
    touched = code < 0
    last = jnp.where(touched, -code - 1, code)
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    lam = jnp.where(
      touched,
      jnp.minimum(1.0, ALPHA * (step - last - 1).astype(jnp.float32)),
      0,
    )
    p = p - LR * (m / bc1) / (jnp.sqrt(v / bc2) + EPS) - lam * p
    return m, v, p, jnp.where(touched, step, last)

  def step_fn(carry, grad):
    p, m, v, last, count = carry
    step = count + 1
    bc1 = 1 - B1 ** step.astype(jnp.float32)
    bc2 = 1 - B2 ** step.astype(jnp.float32)

    def body(i, c):
      m, v, p, last = c
      start = i * block
      sl = lambda x: jax.lax.dynamic_slice_in_dim(x, start, block, 0)  # noqa: E731
      put = lambda x, y: jax.lax.dynamic_update_slice_in_dim(x, y, start, 0)  # noqa: E731
      g = sl(grad)
      # One reduction reads last_step (packed with the touched flag), so
      # the in-place update of last_step needs no copy.
      code = jnp.min(
        jnp.where(g != 0, -sl(last) - 1, sl(last)), 1, keepdims=True
      )
      m = put(m, B1 * sl(m) + (1 - B1) * g)
      v = put(v, B2 * sl(v) + (1 - B2) * g * g)
      touched = code < 0
      old = jnp.where(touched, -code - 1, code)
      lam = jnp.where(
        touched,
        jnp.minimum(1.0, ALPHA * (step - old - 1).astype(jnp.float32)),
        0,
      )
      pb = sl(p)
      # theta's pass reads the *updated* m and v: no hazard, no copy.
      pb = pb - LR * (sl(m) / bc1) / (jnp.sqrt(sl(v) / bc2) + EPS) - lam * pb
      return m, v, put(p, pb), put(last, jnp.where(touched, step, old))

    num_blocks = num_rows // block
    m, v, p, last = jax.lax.fori_loop(0, num_blocks, body, (m, v, p, last))
    s = num_blocks * block
    if s < num_rows:
      code = jnp.min(
        jnp.where(grad[s:] != 0, -last[s:] - 1, last[s:]), 1, keepdims=True
      )
      tail = rows_update(grad[s:], m[s:], v[s:], p[s:], code, step, bc1, bc2)
      m, v, p, last = (
        x.at[s:].set(y) for x, y in zip((m, v, p, last), tail, strict=True)
      )
    return p, m, v, last, step

  return jax.jit(step_fn, donate_argnums=0)


def optax_step(tx):
  def step(carry, grad):
    params, state = carry
    updates, state = tx.update(grad, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=0)


def steps(num_rows, block, grad, rounds):
  zeros = lambda: jnp.zeros((num_rows, DIM))  # noqa: E731
  adamw = optax.adamw(LR, weight_decay=1.0)
  adam_ar = optax_ar.adam_ar(LR, ALPHA)
  contenders = {
    "optax.adamw": (optax_step(adamw), lambda: (zeros(), adamw.init(zeros()))),
    "adam_ar": (optax_step(adam_ar), lambda: (zeros(), adam_ar.init(zeros()))),
    "blocked single pass": (
      blocked_step(num_rows, block),
      lambda: (
        zeros(),
        zeros(),
        zeros(),
        jnp.zeros((num_rows, 1), jnp.int32),
        jnp.zeros([], jnp.int32),
      ),
    ),
  }
  out = {k: [] for k in contenders}
  for _ in range(rounds):
    for name, (fn, make) in contenders.items():
      carry = jax.block_until_ready(fn(make(), grad))
      for _ in range(3):
        start = time.perf_counter()
        carry = jax.block_until_ready(fn(carry, grad))
        out[name].append(time.perf_counter() - start)
      del carry
  return {k: 1e3 * float(np.median(v)) for k, v in out.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=float, default=1e6)
  parser.add_argument("--block", type=int, default=16384)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  num_rows = int(args.rows)
  rng = np.random.default_rng(0)
  grad = np.zeros((num_rows, DIM), np.float32)
  rows = rng.integers(0, num_rows, 2048 * 20)
  grad[rows] = rng.standard_normal((rows.size, DIM))
  grad = jnp.asarray(grad)
  last = jnp.zeros((num_rows, 1), jnp.int32)
  mib = grad.nbytes / 2**20
  print(f"N = {num_rows:.0e}, d = {DIM}; g is {mib:.0f} MiB\n")
  print("| row reduction | ms | GB/s read |\n|---|---:|---:|")
  for name, ms in reductions(grad, last, 4 * args.rounds).items():
    print(f"| {name} | {ms:.2f} | {grad.nbytes / ms / 1e6:.1f} |")
  print(f"\n| optimizer step (block {args.block}) | ms | / adamw |")
  print("|---|---:|---:|")
  res = steps(num_rows, args.block, grad, args.rounds)
  for name, ms in res.items():
    print(f"| {name} | {ms:.2f} | {ms / res['optax.adamw']:.2f} |")


if __name__ == "__main__":
  main()
