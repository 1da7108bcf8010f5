"""Comparing two training paths of the runner where their difference is bounded.

In float32, two paths that sum a row's gradient in different orders (dense vs
sparse, one device vs a mesh, a different compiled program) differ by an ulp
in a nearly cancelling sum, and Adam divides that sum by its own magnitude:
after a few steps a few entries differ by 1e-4 relative or more, by amounts
that depend on the CPU's instruction set. Run both paths in float64 instead
(:func:`float64_state`), where the summation order costs ~1e-16 and what is
left is deterministic: a few scalars (hyperparameters, Adam's bias
correction) computed in float32, off by at most one float32 ulp. Each step's
update of an entry then differs by at most a few eps32 times its size, and
the paths may drift apart by at most ``ulps * eps32`` times the entry's path
length, the sum of its update sizes over the steps (:func:`run_float64`,
:func:`assert_within_path_length`).
"""

import jax
import jax.numpy as jnp
import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
EPS64 = float(np.finfo(np.float64).eps)  # 2.2e-16
# One float32 ulp in a scalar of each path's update, doubled for the terms
# the other path's update feeds into later gradients.
TOL_ULPS = 4


def flat(params):
  """``{"path/to/leaf": np.ndarray}`` of a tree."""
  return {
    "/".join(map(str, path)): np.asarray(leaf)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
  }


def _to_float64(tree):
  return jax.tree.map(
    lambda x: (
      x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x
    ),
    tree,
  )


def float64_state(state):
  """A ``TrainState`` whose floating params and optimizer state are float64.

  Call it inside ``jax.enable_x64(True)``.
  """
  return state._replace(
    params=_to_float64(state.params), opt_state=_to_float64(state.opt_state)
  )


def run_float64(step, state, batches):
  """Runs ``step`` over ``batches`` from ``state`` cast to float64.

  Call it inside ``jax.enable_x64(True)``.

  Returns:
    ``(state, path_length, losses)``: the final state, ``{leaf: sum over the
    steps of |params_k+1 - params_k|}`` (see :func:`flat`), and the losses.
  """
  state = float64_state(state)
  before = flat(state.params)
  path_length = {k: np.zeros_like(v) for k, v in before.items()}
  losses = []
  for batch in batches:
    state, metrics = step(state, batch)
    after = flat(state.params)
    for key, value in after.items():
      path_length[key] += np.abs(value - before[key])
    before = after
    losses.append(float(metrics["loss"]))
  return state, path_length, losses


def assert_within_path_length(got, want, path_length, steps, ulps=TOL_ULPS):
  """Each entry of ``got`` is within ``ulps`` float32 ulps of its path."""
  got, want = flat(got), flat(want)
  assert got.keys() == want.keys()
  for key in want:
    assert got[key].dtype == np.float64, key
    bound = ulps * EPS32 * path_length[key] + steps * EPS64
    assert np.all(np.abs(got[key] - want[key]) <= bound), key
