"""``--skip-nonfinite``: a step with a non-finite gradient is skipped, counted.

One training label is NaN, which makes the loss and every gradient of its
batch NaN. With ``skip_nonfinite`` that step must leave the whole state as
it was, so the epoch ends exactly (bitwise: the same compiled step on the
same other batches, in the same order) where an epoch without that batch
ends, and the count of skipped steps is 1, in the run's results too.
Without the flag the NaN reaches the params.
"""

import dataclasses

import jax
import numpy as np
import pytest

from examples.ctr import results
from examples.ctr import train
from examples.ctr.data import schema
from examples.ctr.data.pipeline import BatchIterator

SEED = 0
EPOCH = 1
NAN_EXAMPLE = 100

CASES = {
  "dense": dict(optimizer="adam_ar"),
  "candidates": dict(optimizer="adam_ar_lazy", batch_ids_as_candidates=True),
  "sparse": dict(optimizer="adam_ar", sparse_updates=True),
}


@pytest.fixture(scope="module")
def nan_dataset(dataset):
  labels = np.array(dataset.train.labels, np.float32)
  labels[NAN_EXAMPLE] = np.nan
  train_split = schema.Split(dataset.train.features, labels)
  return dataclasses.replace(dataset, train=train_split)


def _nan_batch(config, split):
  """The index of the epoch's batch that holds the NaN example."""
  it = BatchIterator(split, config.batch_size, shuffle=True, seed=SEED)
  position = int(np.flatnonzero(it.order(EPOCH) == NAN_EXAMPLE)[0])
  assert position < len(split) // config.batch_size * config.batch_size
  return position // config.batch_size


def _setup(config, dataset):
  setup = train.create_train_state(
    config, dataset.fields, config.optimizer, config.alpha, SEED
  )
  return setup, train.make_train_step(setup.graphdef, setup.spec)


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _inner(opt_state):
  """The optimizer state without apply_if_finite's counters."""
  return getattr(opt_state, "inner_state", opt_state)


@pytest.mark.parametrize("case", list(CASES))
def test_nan_step_is_skipped_like_a_missing_batch(
  case, config, dataset, nan_dataset
):
  config = config.replace(
    skip_nonfinite=True, epochs=1, checkpoint=False, **CASES[case]
  )
  skip = _nan_batch(config, nan_dataset.train)

  setup, step = _setup(config, nan_dataset)
  totals = train.EpochTotals()
  state, loss = train.train_epoch(
    step,
    setup.state,
    nan_dataset.train,
    config.batch_size,
    SEED,
    EPOCH,
    totals=totals,
  )
  steps = len(nan_dataset.train) // config.batch_size
  assert (totals.steps, totals.skipped, totals.applied) == (steps, 1, steps - 1)
  assert np.isfinite(loss)

  # The same epoch without the NaN example's batch.
  setup, step = _setup(config, nan_dataset)
  want, want_totals = setup.state, train.EpochTotals()
  batches = BatchIterator(
    nan_dataset.train,
    config.batch_size,
    shuffle=True,
    seed=SEED,
    drop_remainder=True,
  )
  for k, batch in enumerate(batches.epoch(EPOCH)):
    if k != skip:
      want, metrics = step(want, batch)
      want_totals.add(metrics)
  assert loss == want_totals.train_loss
  for got_leaf, want_leaf in zip(
    _leaves((state.params, state.rest, _inner(state.opt_state))),
    _leaves((want.params, want.rest, _inner(want.opt_state))),
    strict=True,
  ):
    np.testing.assert_array_equal(got_leaf, want_leaf)
  if case != "sparse":  # apply_if_finite counts it too
    assert int(state.opt_state.total_notfinite) == 1


def test_runner_counts_skipped_steps_in_results(config, nan_dataset, tmp_path):
  config = config.replace(
    skip_nonfinite=True, epochs=2, checkpoint_every=7, optimizer="adam_ar"
  )
  run = train.train_and_evaluate(config, nan_dataset, str(tmp_path))
  (saved,) = results.read_results(str(tmp_path / train.RESULTS_FILE))
  for record in (run, saved):
    assert record["skipped_nonfinite_steps"] == 2  # once per epoch
    assert [e["skipped_nonfinite_steps"] for e in record["epochs"]] == [1, 1]
    assert all(np.isfinite(e["train_loss"]) for e in record["epochs"])
  assert run["hyperparams"]["skip_nonfinite"] is True


def test_without_the_flag_the_nan_reaches_the_params(config, nan_dataset):
  config = config.replace(epochs=1, checkpoint=False, optimizer="adam_ar")
  setup, step = _setup(config, nan_dataset)
  state, loss = train.train_epoch(
    step, setup.state, nan_dataset.train, config.batch_size, SEED, EPOCH
  )
  assert np.isnan(loss)
  assert not all(np.isfinite(x).all() for x in _leaves(state.params))
