"""Tests of ``--catch-up-moments`` (the sparse path's catch-up Adam moments).

From one state, a catch-up step and a lazy step see the same gradients, so
the flag's whole effect is the library's rule on the touched rows: each
moment is decayed by the steps its row skipped before the update,
``mu <- b1^I mu``, ``nu <- b2^I nu`` (``optax_ar.sparse_adam_ar(...,
catch_up_moments=True)``). The flag also reaches the results' hyperparameters,
and it is rejected where no sparse Adam would use it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.ctr import config as config_lib
from examples.ctr import main
from examples.ctr import train

ALPHA = 0.05
WARMUP = 6  # lazy steps before the compared step: some rows skip steps
B1, B2 = 0.9, 0.999  # optax_ar.sparse_adam_ar's defaults


def _leaves(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _copy(tree):
  return jax.tree.map(jnp.copy, tree)


def test_catch_up_step_decays_the_moments_by_the_skipped_steps(
  config, dataset, train_batches
):
  sparse = config.replace(sparse_updates=True)
  lazy = train.create_train_state(sparse, dataset.fields, "adam_ar", ALPHA, 0)
  catch_up = train.create_train_state(
    sparse.replace(catch_up_moments=True), dataset.fields, "adam_ar", ALPHA, 0
  )
  assert catch_up.spec.hyperparams["catch_up_moments"] is True
  assert "catch_up_moments" not in lazy.spec.hyperparams
  lazy_step = train.make_train_step(lazy.graphdef, lazy.spec)
  catch_up_step = train.make_train_step(catch_up.graphdef, catch_up.spec)
  state = lazy.state
  for batch in train_batches[:WARMUP]:
    state, _ = lazy_step(state, batch)
  before = state.opt_state.tables
  batch = train_batches[WARMUP]
  got, _ = catch_up_step(_copy(state), batch)
  want, _ = lazy_step(_copy(state), batch)

  k = WARMUP + 1
  last = _leaves(before.last_step)
  touched = [x == k for x in _leaves(got.opt_state.tables.last_step)]
  assert int(got.opt_state.tables.count) == k
  skipped = [
    np.where(t, k - 1 - ell, 0) for t, ell in zip(touched, last, strict=True)
  ]
  assert max(int(s.max()) for s in skipped) > 0  # some rows caught up
  for name, b in (("mu", B1), ("nu", B2)):
    old = _leaves(getattr(before, name))
    lazy_m = _leaves(getattr(want.opt_state.tables, name))
    got_m = _leaves(getattr(got.opt_state.tables, name))
    for o, lm, gm, s in zip(old, lazy_m, got_m, skipped, strict=True):
      # Lazy: b o + (1 - b) g; catch-up: b (b^s o) + (1 - b) g.
      expected = lm - b * (1.0 - b**s) * o
      scale = np.abs(lm).max() + np.abs(o).max()
      np.testing.assert_allclose(gm, expected, rtol=0, atol=1e-6 * scale)
      still = s.reshape(s.shape[0]) == 0
      np.testing.assert_array_equal(gm[still], lm[still])
  # The caught-up moments move the touched rows differently; the dense
  # weights' optax Adam is the same.
  got_params = jax.tree.leaves(got.params)
  want_params = jax.tree.leaves(want.params)
  assert any(
    not np.array_equal(g, w)
    for g, w in zip(got_params, want_params, strict=True)
  )
  for g, w in zip(
    jax.tree.leaves(got.opt_state.dense),
    jax.tree.leaves(want.opt_state.dense),
    strict=True,
  ):
    np.testing.assert_array_equal(g, w)


def test_flag_is_parsed_and_checked():
  config = main.parse_config(
    [
      "compare",
      "--config",
      "test",
      "--optimizers",
      "adam_ar",
      "--sparse-updates",
    ]
    + ["--catch-up-moments"]
  )
  assert config.catch_up_moments and config.sparse_updates
  test = config_lib.get_config("test")
  with pytest.raises(ValueError, match="add --sparse-updates"):
    test.replace(catch_up_moments=True)
  with pytest.raises(ValueError, match="decays Adam moments"):
    test.replace(
      sparse_updates=True, catch_up_moments=True, optimizer="adagrad_ar"
    )
  with pytest.raises(ValueError, match="decays Adam moments"):
    test.replace(
      mode="compare",
      sparse_updates=True,
      catch_up_moments=True,
      optimizers=("adam_ar", "adagrad_ar"),
    )
