"""CTR examples from unordered user-item interaction sets (LightGCN format).

Usage: ``ds = load_interactions("amazon-book/test.txt", name="amazon-book")``.

Input: one line per user, ``user item item ...`` (an unordered set; a user
may have no items). Any dataset in this format works.

Splits: per user with at least 3 interactions, one interaction chosen at
random (seeded) is held out as the test positive and another as the
validation positive; the rest, and all interactions of users with fewer
than 3, are training positives (those users are counted in ``metadata``).
``holdout`` > 1 holds out that many per split instead (users need
``2 * holdout + 1`` interactions).

Negatives: each positive gets ``num_negatives`` negatives (label 0) for the
same user, items the user never interacted with, drawn (seeded) either

* ``"uniform"``: uniformly over all items. On a long-tailed item set this
  touches every item row about ``num_negatives * N / I`` times per epoch
  (about 6 on amazon-book) and so erases the tail the experiments study;
* ``"popularity"`` (default): proportionally to the item's number of
  training positives, so each item appears about as often as a negative as
  it does as a positive and rare items stay rare (items without training
  positives are never drawn).

Rows are ordered positive, its negatives, next positive, ... Fields:
``user``, ``item``.
"""

from __future__ import annotations

import os

import numpy as np

from examples.ctr.data import assemble as assemble_lib
from examples.ctr.data.userlists import read_user_lists
from examples.ctr.data.userlists import sample_negatives

NEGATIVE_SAMPLERS = ("uniform", "popularity")


def load_interactions(
  path: str | os.PathLike,
  *,
  name: str = "interactions",
  negatives: str = "popularity",
  num_negatives: int = 1,
  holdout: int = 1,
  min_count: int = 1,
  seed: int = 0,
):
  """Builds the dataset (see the module docstring).

  Args:
    path: the ``user item item ...`` file.
    name: the dataset name.
    negatives: ``"uniform"`` or ``"popularity"``.
    num_negatives: negatives per positive.
    holdout: positives per user held out for validation and for test.
    min_count: see ``vocab.build_vocabulary``.
    seed: seed of the hold-out choice and of the negative sampling.

  Returns:
    A ``CTRDataset``.

  Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "inter.txt"
    >>> _ = p.write_text("0 1 2 3 4\\n1 2 5\\n2 7 8 9\\n")
    >>> ds = load_interactions(p, negatives="uniform")
    >>> len(ds.train) // 2, len(ds.valid) // 2, len(ds.test) // 2
    (5, 2, 2)
  """
  if negatives not in NEGATIVE_SAMPLERS:
    raise ValueError(
      f"negatives must be one of {NEGATIVE_SAMPLERS}, got {negatives!r}"
    )
  if num_negatives < 1 or holdout < 1:
    raise ValueError("num_negatives and holdout must be >= 1")
  lists = read_user_lists(path)
  n_items = lists.num_items
  user_of = lists.user_of
  rng = np.random.default_rng(seed)
  # A random rank of each interaction inside its user: ranks 0 .. h-1 are
  # test, h .. 2h-1 validation, the rest training.
  order = np.lexsort((rng.random(lists.items.size), user_of))
  rank = np.empty_like(order)
  rank[order] = np.arange(order.size) - np.repeat(lists.starts, lists.lengths)
  eligible = np.repeat(lists.lengths >= 2 * holdout + 1, lists.lengths)
  split_of = np.where(
    ~eligible | (rank >= 2 * holdout), 0, np.where(rank < holdout, 2, 1)
  )
  own = np.unique(user_of * n_items + lists.items)
  train_pos = lists.items[split_of == 0]
  probs = None
  if negatives == "popularity":
    probs = np.bincount(train_pos, minlength=n_items).astype(np.float64)
  k = 1 + num_negatives
  raw = {}
  for code, split in enumerate(("train", "valid", "test")):
    idx = np.flatnonzero(split_of == code)
    users = user_of[idx]
    negs = [
      sample_negatives(rng, users, own, n_items, probs)
      for _ in range(num_negatives)
    ]
    items = np.stack([lists.items[idx], *negs], axis=1).reshape(-1)
    labels = np.tile(np.eye(1, k, dtype=np.float32)[0], idx.size)
    raw[split] = assemble_lib.RawSplit(
      {"user": np.repeat(users, k), "item": items}, labels
    )
  short = lists.lengths < 2 * holdout + 1
  meta = {
    "users": int(lists.users.size),
    "interactions": int(lists.items.size),
    "items": n_items,
    "users_without_holdout": int(short.sum()),
    "users_without_items": int((lists.lengths == 0).sum()),
    "negatives": negatives,
    "num_negatives": num_negatives,
    "holdout": holdout,
    "seed": seed,
  }
  return assemble_lib.assemble(name, raw, min_count=min_count, metadata=meta)
