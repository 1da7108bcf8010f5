"""The runner's ``candidate_rows`` option: same training, tables' IDs passed."""

import jax
import numpy as np
import pytest

from examples.ctr import config as config_lib
from examples.ctr import train
from examples.ctr.data.pipeline import BatchIterator

ALPHA = 0.05
STEPS = 8


@pytest.fixture(scope="module")
def config():
  return config_lib.get_config("test")


@pytest.fixture(scope="module")
def dataset(config):
  return train.load_dataset(config)


def _run(config, dataset, optimizer):
  setup = train.create_train_state(config, dataset.fields, optimizer, ALPHA, 0)
  step = train.make_train_step(setup.graphdef, setup.spec)
  it = BatchIterator(
    dataset.train, config.batch_size, shuffle=True, seed=0, drop_remainder=True
  )
  state = setup.state
  for batch in list(it.epoch(1))[:STEPS]:
    state, _ = step(state, batch)
  return setup.spec, state


@pytest.mark.parametrize(
  "model, optimizer",
  [("dnn", "adam_ar"), ("wdl", "adam_ar_lazy"), ("dnn", "adagrad_ar")],
)
def test_candidate_rows_train_like_the_full_test(
  config, dataset, model, optimizer
):
  config = config.replace(model=model)
  spec_full, full = _run(config, dataset, optimizer)
  spec_cand, cand = _run(
    config.replace(candidate_rows=True), dataset, optimizer
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
