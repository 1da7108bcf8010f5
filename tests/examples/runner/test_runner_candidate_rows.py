"""The runner's ``candidate_rows`` option: same training, tables' IDs passed."""

import jax
import numpy as np
import pytest

from examples.ctr import train

ALPHA = 0.05
STEPS = 8


def _run(config, dataset, batches, optimizer):
  setup = train.create_train_state(config, dataset.fields, optimizer, ALPHA, 0)
  step = train.make_train_step(setup.graphdef, setup.spec)
  state = setup.state
  for batch in batches[:STEPS]:
    state, _ = step(state, batch)
  return setup.spec, state


@pytest.mark.parametrize(
  "model, optimizer",
  [("dnn", "adam_ar"), ("wdl", "adam_ar_lazy"), ("dnn", "adagrad_ar")],
)
def test_candidate_rows_train_like_the_full_test(
  config, dataset, train_batches, model, optimizer
):
  config = config.replace(model=model)
  spec_full, full = _run(config, dataset, train_batches, optimizer)
  spec_cand, cand = _run(
    config.replace(candidate_rows=True), dataset, train_batches, optimizer
  )
  assert not spec_full.takes_candidate_rows and spec_cand.takes_candidate_rows
  assert spec_full.static_key != spec_cand.static_key
  for want, got in zip(
    jax.tree.leaves((full.params, full.opt_state)),
    jax.tree.leaves((cand.params, cand.opt_state)),
    strict=True,
  ):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  # The decay acted on rows that skipped steps.
  last = np.concatenate(
    [
      np.ravel(x)
      for x in jax.tree.leaves(cand.opt_state)
      if np.asarray(x).dtype == np.int32 and np.ndim(x) == 2
    ]
  )
  assert ((last > 0) & (last < STEPS)).any()


def test_other_optimizers_ignore_the_option(config):
  spec = train.create_optimizer(
    config.replace(candidate_rows=True), "adamw", 1e-3, {"t": True}
  )
  assert not spec.takes_candidate_rows
