"""Fixtures shared by the runner tests: the ``test`` preset and its data."""

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
