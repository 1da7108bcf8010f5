"""Batches for training and evaluation, with seeded shuffling and prefetch.

Usage::

  it = BatchIterator(dataset.train, batch_size=2048, shuffle=True, seed=0)
  for batch in it.epoch(0):
    state, metrics = train_step(state, batch.features, batch.labels)

* Shuffling: epoch ``e`` uses the permutation of
  ``np.random.default_rng([seed, e])``, so every epoch differs and any epoch
  can be replayed. Indices inside a batch are sorted before the gather (the
  batch's *set* of rows is unchanged; reads from a memory-mapped split stay
  local).
* The last partial batch: ``drop_remainder=True`` drops it (training);
  otherwise it is padded to ``batch_size`` with padding rows (ID 0, label 0)
  and ``Batch.weights`` is 1 for real rows and 0 for padding, so every batch
  has one shape (one jit compilation) and an evaluation weighted by
  ``weights`` covers every example exactly once. ``pad_remainder=False``
  yields it short instead.
* Prefetch: a background thread assembles up to ``prefetch`` batches ahead
  (numpy gathers release the GIL), so the accelerator does not wait for the
  host. ``prefetch=0`` assembles batches in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from examples.ctr.data import schema


class Batch(NamedTuple):
  """One batch: ``features[name]`` int32, ``labels`` and ``weights`` float32.

  ``weights`` is 1 for real examples and 0 for padding rows.
  """

  features: dict[str, np.ndarray]
  labels: np.ndarray
  weights: np.ndarray


class BatchIterator:
  """Iterates over a ``Split`` in fixed-size batches.

  Example:
    >>> split = schema.Split({"a": np.arange(5, dtype=np.int32)},
    ...                      np.ones(5, np.float32))
    >>> it = BatchIterator(split, batch_size=2)
    >>> [b.weights.tolist() for b in it.epoch(0)]
    [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
  """

  def __init__(
    self,
    split: schema.Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    pad_remainder: bool = True,
    prefetch: int = 2,
  ):
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    self.split = split
    self.batch_size = batch_size
    self.shuffle = shuffle
    self.seed = seed
    self.drop_remainder = drop_remainder
    self.pad_remainder = pad_remainder
    self.prefetch = prefetch

  def __len__(self) -> int:
    """Batches per epoch."""
    n, b = len(self.split), self.batch_size
    return n // b if self.drop_remainder else -(-n // b)

  def order(self, epoch: int) -> np.ndarray:
    """The example order of an epoch (a seeded permutation if shuffling)."""
    n = len(self.split)
    if not self.shuffle:
      return np.arange(n)
    return np.random.default_rng([self.seed, epoch]).permutation(n)

  def _batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
    order = self.order(epoch)
    b = self.batch_size
    for k in range(start, len(self)):
      idx = order[k * b : (k + 1) * b]
      if self.shuffle:
        idx = np.sort(idx)
      yield self._gather(idx)

  def _gather(self, idx: np.ndarray) -> Batch:
    n, b = idx.size, self.batch_size
    pad = b - n if (n < b and self.pad_remainder) else 0
    feats = {}
    for name, arr in self.split.features.items():
      x = np.take(arr, idx, axis=0)
      if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
      feats[name] = x
    labels = np.take(self.split.labels, idx)
    weights = np.ones(n + pad, np.float32)
    if pad:
      labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
      weights[n:] = 0.0
    return Batch(feats, labels.astype(np.float32, copy=False), weights)

  def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
    """The batches of one epoch, assembled ahead in a background thread.

    Args:
      epoch: the epoch (fixes the permutation when shuffling).
      start: skip the epoch's first ``start`` batches (a run resumed in the
        middle of an epoch); the others are those of ``epoch(epoch)``.

    Returns:
      An iterator over the batches ``start, start + 1, ...`` of the epoch.

    Example:
      >>> split = schema.Split({"a": np.arange(6, dtype=np.int32)},
      ...                      np.ones(6, np.float32))
      >>> it = BatchIterator(split, 2, shuffle=True, seed=1)
      >>> full = [b.features["a"].tolist() for b in it.epoch(3)]
      >>> full[1:] == [b.features["a"].tolist() for b in it.epoch(3, 1)]
      True
    """
    if not 0 <= start <= len(self):
      raise ValueError(f"start must be in 0..{len(self)}, got {start}")
    if self.prefetch <= 0:
      yield from self._batches(epoch, start)
      return
    q: queue.Queue = queue.Queue(maxsize=self.prefetch)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
      while not stop.is_set():
        try:
          q.put(item, timeout=0.1)
          return True
        except queue.Full:
          continue
      return False

    def worker():
      try:
        for batch in self._batches(epoch, start):
          if not put(batch):
            return
        put(done)
      except BaseException as e:  # re-raised in the consumer
        put(e)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
      while True:
        item = q.get()
        if item is done:
          return
        if isinstance(item, BaseException):
          raise item
        yield item
    finally:
      stop.set()
      thread.join(timeout=5)

  def __iter__(self) -> Iterator[Batch]:
    return self.epoch(0)
