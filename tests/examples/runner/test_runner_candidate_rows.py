"""``batch_ids_as_candidates`` (the default): same training, the IDs passed."""

import jax
import numpy as np
import pytest
import runner_testlib

from examples.ctr import main
from examples.ctr import train

ALPHA = 0.05
STEPS = 8


def _run(config, dataset, batches, optimizer):
  """STEPS steps in float64 (see runner_testlib)."""
  setup = train.create_train_state(config, dataset.fields, optimizer, ALPHA, 0)
  step = train.make_train_step(setup.graphdef, setup.spec)
  state, path_length, losses = runner_testlib.run_float64(
    step, setup.state, batches[:STEPS]
  )
  return setup.spec, state, path_length, losses


@pytest.mark.parametrize(
  "model, optimizer",
  [("dnn", "adam_ar"), ("wdl", "adam_ar_lazy"), ("dnn", "adagrad_ar")],
)
def test_candidate_rows_train_like_the_full_test(
  config, dataset, train_batches, model, optimizer
):
  config = config.replace(model=model)
  with jax.enable_x64(True):
    spec_full, full, path_length, full_losses = _run(
      config.replace(batch_ids_as_candidates=False),
      dataset,
      train_batches,
      optimizer,
    )
    spec_cand, cand, _, cand_losses = _run(
      config.replace(batch_ids_as_candidates=True),
      dataset,
      train_batches,
      optimizer,
    )
  assert not spec_full.takes_candidate_rows and spec_cand.takes_candidate_rows
  assert spec_full.static_key != spec_cand.static_key
  # Two compiled programs, in float64: see runner_testlib.
  runner_testlib.assert_within_path_length(
    cand.params, full.params, path_length, STEPS
  )
  np.testing.assert_allclose(
    cand_losses, full_losses, rtol=STEPS * runner_testlib.EPS32
  )
  for want, got in zip(
    jax.tree.leaves(full.opt_state),
    jax.tree.leaves(cand.opt_state),
    strict=True,
  ):
    if np.asarray(want).dtype.kind in "iu":
      # Counts and last_step: integers, set by exact tests (grad != 0).
      np.testing.assert_array_equal(got, want)
  # The decay acted on rows that skipped steps.
  last = np.concatenate(
    [
      np.ravel(x)
      for x in jax.tree.leaves(cand.opt_state)
      if np.asarray(x).dtype == np.int32 and np.ndim(x) == 2
    ]
  )
  assert ((last > 0) & (last < STEPS)).any()


@pytest.mark.parametrize(
  "model, optimizer",
  [("dnn", "adam_ar"), ("wdl", "adam_ar_lazy"), ("dnn", "adagrad_ar")],
)
def test_default_step_passes_candidates_bitwise(
  config, dataset, train_batches, model, optimizer
):
  """Candidates by default; float32 params bitwise those of the full test."""
  assert config.batch_ids_as_candidates
  config = config.replace(model=model)
  states = {}
  for name, run_config in (
    ("default", config),
    ("full", config.replace(batch_ids_as_candidates=False)),
  ):
    setup = train.create_train_state(
      run_config, dataset.fields, optimizer, ALPHA, 0
    )
    assert setup.spec.takes_candidate_rows == (name == "default")
    step = train.make_train_step(setup.graphdef, setup.spec)
    state = setup.state
    for batch in train_batches[:STEPS]:
      state, _ = step(state, batch)
    states[name] = state
  for want, got in zip(
    jax.tree.leaves(states["full"].params),
    jax.tree.leaves(states["default"].params),
    strict=True,
  ):
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_the_flag_opts_out():
  assert main.parse_config([]).batch_ids_as_candidates
  c = main.parse_config(["--no-batch-ids-as-candidates"])
  assert not c.batch_ids_as_candidates
  spec = train.create_optimizer(c, "adam_ar", 1e-3, {"t": True})
  assert not spec.takes_candidate_rows


def test_other_optimizers_ignore_the_option(config):
  spec = train.create_optimizer(
    config.replace(batch_ids_as_candidates=True), "adamw", 1e-3, {"t": True}
  )
  assert not spec.takes_candidate_rows
