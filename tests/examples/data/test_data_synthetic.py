"""Tests for examples.ctr.data.synthetic."""

import numpy as np
import pytest

from examples.ctr.data import schema
from examples.ctr.data import synthetic

_SMALL = dict(
  num_train=20_000,
  num_valid=4_000,
  num_test=5_000,
  vocab_sizes=(5, 50, 500, 5_000),
)


@pytest.fixture(scope="module")
def default_dataset() -> schema.CTRDataset:
  return synthetic.make_synthetic_dataset(seed=0)


@pytest.fixture(scope="module")
def small_dataset() -> schema.CTRDataset:
  return synthetic.make_synthetic_dataset(seed=3, min_count=1, **_SMALL)


def _splits(ds):
  return {"train": ds.train, "valid": ds.valid, "test": ds.test}


def test_same_seed_same_dataset(small_dataset):
  again = synthetic.make_synthetic_dataset(seed=3, min_count=1, **_SMALL)
  assert again.fields == small_dataset.fields
  for name, split in _splits(small_dataset).items():
    other = _splits(again)[name]
    np.testing.assert_array_equal(other.labels, split.labels)
    for field in small_dataset.fields:
      np.testing.assert_array_equal(
        other.features[field.name], split.features[field.name]
      )
  for field in small_dataset.fields:
    np.testing.assert_array_equal(
      again.frequencies[field.name], small_dataset.frequencies[field.name]
    )


def test_different_seeds_differ(small_dataset):
  other = synthetic.make_synthetic_dataset(seed=4, min_count=1, **_SMALL)
  assert not np.array_equal(other.train.labels, small_dataset.train.labels)
  name = small_dataset.fields[-1].name
  assert not np.array_equal(
    other.train.features[name], small_dataset.train.features[name]
  )


def test_shapes_dtypes_and_id_ranges(small_dataset):
  ds = small_dataset
  assert [f.name for f in ds.fields] == ["f00", "f01", "f02", "f03"]
  assert all(f.bag_size == 1 for f in ds.fields)
  sizes = {"train": 20_000, "valid": 4_000, "test": 5_000}
  for name, split in _splits(ds).items():
    assert len(split) == sizes[name]
    assert split.labels.dtype == np.float32
    assert split.labels.shape == (sizes[name],)
    assert set(np.unique(split.labels)) <= {0.0, 1.0}
    assert set(split.features) == {f.name for f in ds.fields}
    for field in ds.fields:
      ids = split.features[field.name]
      assert ids.dtype == np.int32 and ids.shape == (sizes[name],)
      assert ids.min() >= schema.OOV_ID  # No padding in single-valued fields.
      assert ids.max() < field.vocab_size
      if name == "train":  # min_count=1: every training value has an ID.
        assert ids.min() >= schema.NUM_RESERVED_IDS
  # The vocabulary is never larger than the population plus reserved IDs.
  for field, vocab in zip(ds.fields, _SMALL["vocab_sizes"], strict=True):
    assert field.vocab_size <= vocab + schema.NUM_RESERVED_IDS


def test_frequencies_count_the_train_split(default_dataset):
  for field in default_dataset.fields:
    freq = default_dataset.frequencies[field.name]
    ids = default_dataset.train.features[field.name]
    assert freq.dtype == np.int64 and freq.shape == (field.vocab_size,)
    np.testing.assert_array_equal(
      freq, np.bincount(ids, minlength=field.vocab_size)
    )
    assert freq[schema.PAD_ID] == 0
    # Every real ID exists in the training split at least min_count times.
    assert freq[schema.NUM_RESERVED_IDS :].min() >= 5


def test_valid_and_test_ids_unseen_in_train_are_oov():
  ds = synthetic.make_synthetic_dataset(seed=5, min_count=1, **_SMALL)
  for field in ds.fields:
    seen = ds.frequencies[field.name] > 0
    for split in (ds.valid, ds.test):
      ids = split.features[field.name]
      assert seen[ids[ids != schema.OOV_ID]].all()
  # The largest field has values that only the held-out splits draw.
  last = ds.fields[-1].name
  assert (ds.test.features[last] == schema.OOV_ID).mean() > 0.01


def test_zipf_long_tail_before_the_min_count_cut():
  # Documented: over 80% of the drawn values appear at most 5 times and
  # about half only once (defaults, min_count=1).
  ds = synthetic.make_synthetic_dataset(seed=0, min_count=1)
  freq = np.concatenate(
    [ds.frequencies[f.name][schema.NUM_RESERVED_IDS :] for f in ds.fields]
  )
  freq = freq[freq > 0]
  assert np.mean(freq <= 5) > 0.75
  assert 0.35 < np.mean(freq == 1) < 0.6
  # The head is heavy: the top value of the smallest field covers a large
  # share of the examples, as Zipf(1.1) over 8 values implies (~0.39).
  top = ds.frequencies["f00"].max() / len(ds.train)
  assert 0.3 < top < 0.5


def test_default_tail_kept_after_min_count(default_dataset):
  ds = default_dataset
  freq = np.concatenate(
    [ds.frequencies[f.name][schema.NUM_RESERVED_IDS :] for f in ds.fields]
  )
  # Most kept IDs are rare (5..20 training examples).
  assert np.mean(freq <= 20) > 0.6
  # The OOV ID absorbs the cut tail: a few percent of the training slots.
  slots = len(ds.train) * len(ds.fields)
  oov = sum(ds.frequencies[f.name][schema.OOV_ID] for f in ds.fields)
  assert 0.02 < oov / slots < 0.1


def test_default_sizes_and_click_rate(default_dataset):
  ds = default_dataset
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (
    200_000,
    50_000,
    50_000,
  )
  assert len(ds.fields) == len(synthetic.DEFAULT_VOCAB_SIZES)
  # The bias is fitted so that the training click rate is 0.2.
  assert abs(ds.train.labels.mean() - 0.2) < 0.005
  for split in (ds.valid, ds.test):
    assert abs(split.labels.mean() - 0.2) < 0.01


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_click_rate_is_respected(rate):
  ds = synthetic.make_synthetic_dataset(seed=1, click_rate=rate, **_SMALL)
  assert abs(ds.train.labels.mean() - rate) < 0.01


def test_labels_follow_the_teacher():
  # A frequent value's empirical click rate tracks its hidden effect, so the
  # per-value click rates of the smallest field must differ far beyond noise.
  ds = synthetic.make_synthetic_dataset(
    seed=2, noise_scale=0.0, field_scales=1.0, **_SMALL
  )
  ids, labels = ds.train.features["f00"], ds.train.labels
  rates = [labels[ids == j].mean() for j in np.unique(ids)]
  assert max(rates) - min(rates) > 0.1


def test_no_valid_split():
  ds = synthetic.make_synthetic_dataset(
    num_train=100, num_valid=0, num_test=10, vocab_sizes=(4,), min_count=1
  )
  assert ds.valid is None and len(ds.test) == 10


@pytest.mark.parametrize(
  "kwargs",
  [
    dict(vocab_sizes=()),
    dict(num_train=0),
    dict(click_rate=1.0),
    dict(min_count=0),
    dict(zipf_exponent=(1.0, 1.1)),
  ],
)
def test_invalid_arguments(kwargs):
  with pytest.raises(ValueError):
    synthetic.make_synthetic_dataset(**{**_SMALL, **kwargs})
