"""Where dense ``adam_ar``'s remaining cost goes with candidate rows given.

Usage::

  python benchmarks/probes/candidate_cost_probe.py --rows 4e6 --rounds 10

One ``(N, 32)`` table, the gradient of one 2048 x 20 batch of random ids.
Times, interleaved over ``--rounds`` rounds (3 calls each after a warm-up,
medians), the donated optimizer step of ``optax.adamw``, ``adam_ar`` with the
full touched test, ``adam_ar`` given the batch's ids as ``candidate_rows``,
and the same with ``alpha = 0`` (no decay term: the touched mask and the
``last_step`` bookkeeping only); then the touched mask alone
(``touched_rows_among``, added to an int32 ``(N, 1)`` array).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_ar

DIM, BATCH, BAG = 32, 2048, 20


def _step(tx, with_candidates):
  def step(carry, grad, ids):
    params, state = carry
    extra = {"candidate_rows": ids} if with_candidates else {}
    updates, state = tx.update(grad, state, params, **extra)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=0)


def _time_calls(step, carry, args, calls):
  carry = step(carry, *args)
  jax.block_until_ready(carry)
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    carry = step(carry, *args)
    jax.block_until_ready(carry)
    times.append(time.perf_counter() - start)
  return times


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default="4e6", help="table rows N")
  parser.add_argument("--rounds", type=int, default=10)
  args = parser.parse_args(argv)
  n = int(float(args.rows))
  rng = np.random.default_rng(0)
  ids = jnp.asarray(rng.integers(0, n, (BATCH, BAG)), jnp.int32)
  rows = jnp.asarray(rng.normal(size=(BATCH * BAG, DIM)), jnp.float32)
  grad = jnp.zeros((n, DIM)).at[ids.ravel()].set(rows)
  contenders = {
    "optax.adamw": (optax.adamw(1e-3, weight_decay=1e-4), False),
    "adam_ar (full test)": (optax_ar.adam_ar(1e-3, 1e-4), False),
    "adam_ar candidates": (optax_ar.adam_ar(1e-3, 1e-4), True),
    "adam_ar candidates, alpha 0": (optax_ar.adam_ar(1e-3, 0.0), True),
  }
  steps = {k: _step(tx, c) for k, (tx, c) in contenders.items()}
  times = {k: [] for k in contenders}
  for _ in range(args.rounds):
    for name, (tx, _) in contenders.items():
      params = jnp.zeros((n, DIM))
      times[name] += _time_calls(
        steps[name], (params, tx.init(params)), (grad, ids), 3
      )
  mask_step = jax.jit(
    lambda last, g, i: (
      last + optax_ar.touched_rows_among(g, i).astype(jnp.int32)
    ),
    donate_argnums=0,
  )
  mask_times = _time_calls(
    mask_step, jnp.zeros((n, 1), jnp.int32), (grad, ids), 3 * args.rounds
  )
  base = np.median(times["optax.adamw"])
  print(f"N = {n}, {args.rounds} rounds x 3 calls, medians")
  print("| step | ms | / adamw |\n|---|---:|---:|")
  for name, samples in times.items():
    ms = np.median(samples) * 1e3
    print(f"| {name} | {ms:.2f} | {np.median(samples) / base:.3f} |")
  ms = np.median(mask_times) * 1e3
  print(
    f"| touched mask alone | {ms:.2f} | {np.median(mask_times) / base:.3f} |"
  )


if __name__ == "__main__":
  main()
