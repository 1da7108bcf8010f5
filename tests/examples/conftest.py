"""Fixtures shared by the runner tests: the ``test`` preset and its data."""

import jax
import numpy as np
import pytest

from examples.ctr import config as config_lib
from examples.ctr import train
from examples.ctr.data.pipeline import BatchIterator


@pytest.fixture(scope="module")
def config():
  return config_lib.get_config("test")


@pytest.fixture(scope="module")
def dataset(config):
  return train.load_dataset(config)


@pytest.fixture(scope="module")
def train_batches(config, dataset):
  """The first training epoch's batches (shuffled with seed 0, full only)."""
  it = BatchIterator(
    dataset.train, config.batch_size, shuffle=True, seed=0, drop_remainder=True
  )
  return list(it.epoch(1))


@pytest.fixture(scope="module")
def one_epoch_leaves(config, dataset):
  """``f(name, alpha)``: the param leaves after one epoch of ``name``."""
  config = config.replace(epochs=1, checkpoint=False)

  def run(name, alpha):
    setup = train.create_train_state(config, dataset.fields, name, alpha, 0)
    step = train.make_train_step(setup.graphdef, setup.spec)
    state, _ = train.train_epoch(
      step, setup.state, dataset.train, config.batch_size, 0, 1
    )
    return [np.asarray(x) for x in jax.tree.leaves(state.params)]

  return run
