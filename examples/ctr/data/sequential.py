"""DIN-style CTR examples from time-ordered user sequences (Amazon protocol).

Usage: ``ds = load_sequential("Sports_and_Outdoors.txt",
"Sports_and_Outdoors_item2attributes.json", name="amazon-sports")``.

Input (the S3-Rec layout of the Amazon review data, but any dataset in this
format works): a text file with one line per user, ``user item_1 item_2 ...``
in time order, and optionally a JSON object ``item -> [attribute, ...]``.

Examples. For a user with items ``i_0 .. i_{n-1}``, every item at position
``t >= 1`` is a positive (label 1) whose behaviour history is the user's
items before it; ``i_0`` only ever appears as history (as in DIN). Each
positive is paired with ``num_negatives`` negatives (label 0): items drawn
uniformly from all items of the file that the user never reviewed (seeded
by ``seed``), with the same user and the same history. Rows are ordered
positive, its negatives, next positive, ...

Splits (leave-one-out): the positive at ``t = n - 1`` (the user's last item)
is the test positive, the one at ``t = n - 2`` the validation positive, the
rest are training positives. Users with 2 items have only a test positive,
users with 1 item none (both counted in ``metadata``; the 5-core Amazon
files have neither). So a file with ``U`` users and ``N`` interactions yields
``(N - 3 U) (1 + num_negatives)`` training rows and ``U (1 + num_negatives)``
validation and test rows each.

Fields:

* ``user``: the user.
* ``item``: the target item (positive or negative).
* ``item_attributes``: the target item's attributes, a bag padded with 0 to
  the largest attribute count (or ``max_attributes``, keeping the first ones);
  items missing from the JSON have an empty bag (counted in ``metadata``).
* ``history``: the user's last ``history_length`` items before the target,
  oldest first, right-aligned (padding with 0 on the left).

``item`` and ``history`` share one vocabulary (the same ID denotes the same
item), built from all items in training rows (targets and histories); each
field still has its own table and its own frequencies.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from examples.ctr.data import assemble as assemble_lib
from examples.ctr.data import errors
from examples.ctr.data import vocab as vocab_lib
from examples.ctr.data.userlists import read_user_lists
from examples.ctr.data.userlists import sample_negatives


def _read_attributes(path, item_tokens: np.ndarray, max_attributes):
  """(num_items, A) raw attribute codes (PAD_RAW padded) and #missing."""
  try:
    with open(path, encoding="utf-8") as f:
      table = json.load(f)
  except json.JSONDecodeError as e:
    raise errors.DataFileError(
      path, e.lineno, f"malformed JSON: {e.msg}"
    ) from e
  except UnicodeDecodeError as e:
    raise errors.DataFileError(path, None, f"not UTF-8 text: {e}") from e
  if not isinstance(table, dict):
    raise errors.DataFileError(
      path, 1, "expected a JSON object item -> [attributes]"
    )
  keys = pd.Index([str(k) for k in table])
  pos = keys.get_indexer([str(t) for t in item_tokens])
  values = list(table.values())
  for k, v in zip(keys, values, strict=True):
    if not isinstance(v, list):
      raise errors.DataFileError(
        path,
        None,
        f"item {k!r}: attributes must be a list, got {type(v).__name__}",
      )
  lists = [values[p] if p >= 0 else [] for p in pos]
  width = max((len(a) for a in lists), default=0)
  if max_attributes is not None:
    width = min(width, max_attributes)
  width = max(width, 1)
  flat = [str(a) for lst in lists for a in lst[:width]]
  codes, _ = pd.factorize(np.array(flat, dtype=object))
  out = np.full((len(lists), width), vocab_lib.PAD_RAW, np.int64)
  lens = np.array([min(len(lst), width) for lst in lists], dtype=np.int64)
  rows = np.repeat(np.arange(len(lists)), lens)
  cols = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
  out[rows, cols] = codes
  return out, int((pos < 0).sum())


def load_sequential(
  sequences: str | os.PathLike,
  attributes: str | os.PathLike | None = None,
  *,
  name: str = "sequential",
  history_length: int = 20,
  num_negatives: int = 1,
  max_attributes: int | None = None,
  min_count: int = 1,
  min_count_fields: dict[str, int] | None = None,
  seed: int = 0,
):
  """Builds the DIN-style dataset (see the module docstring).

  Args:
    sequences: the ``user item_1 item_2 ...`` file.
    attributes: the ``item -> [attribute, ...]`` JSON, or None (then there is
      no ``item_attributes`` field).
    name: the dataset name.
    history_length: history items kept per example.
    num_negatives: negatives per positive.
    max_attributes: cap on attributes per item (None: the maximum).
    min_count: see ``vocab.build_vocabulary``.
    min_count_fields: per-field thresholds, e.g. ``{"user": 5}``; see
      ``assemble.assemble`` (``item`` and ``history`` share one ID space,
      so a threshold of either applies to both).
    seed: seed of the negative sampling.

  Returns:
    A ``CTRDataset``.

  Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "seq.txt"
    >>> _ = p.write_text("u1 a b c d\\nu2 b c e f g\\n")
    >>> ds = load_sequential(p, history_length=3)
    >>> len(ds.train), len(ds.valid), len(ds.test)
    (6, 4, 4)
  """
  if history_length < 1 or num_negatives < 1:
    raise ValueError("history_length and num_negatives must be >= 1")
  lists = read_user_lists(sequences)
  n_items = lists.num_items
  user_of, starts = lists.user_of, lists.starts
  length = np.repeat(lists.lengths, lists.lengths)
  pos = np.arange(lists.items.size) - np.repeat(starts, lists.lengths)
  target = pos >= 1
  masks = {
    "test": target & (pos == length - 1),
    "valid": target & (pos == length - 2),
    "train": target & (pos <= length - 3),
  }
  own = np.unique(user_of * n_items + lists.items)
  attr = None
  missing_attr = 0
  if attributes is not None:
    attr, missing_attr = _read_attributes(
      attributes, lists.item_tokens, max_attributes
    )
  rng = np.random.default_rng(seed)
  k = 1 + num_negatives
  raw = {}
  for split in ("train", "valid", "test"):
    idx = np.flatnonzero(masks[split])
    users = user_of[idx]
    negs = [
      sample_negatives(rng, users, own, n_items) for _ in range(num_negatives)
    ]
    items = np.stack([lists.items[idx], *negs], axis=1).reshape(-1)
    hist_idx = idx[:, None] - history_length + np.arange(history_length)
    valid = hist_idx >= starts[users][:, None]
    hist = np.where(
      valid, lists.items[np.maximum(hist_idx, 0)], vocab_lib.PAD_RAW
    )
    feats = {
      "user": np.repeat(users, k),
      "item": items,
    }
    if attr is not None:
      feats["item_attributes"] = attr[items]
    feats["history"] = np.repeat(hist, k, axis=0)
    labels = np.tile(np.eye(1, k, dtype=np.float32)[0], idx.size)
    raw[split] = assemble_lib.RawSplit(feats, labels)
  meta = {
    "users": int(lists.users.size),
    "interactions": int(lists.items.size),
    "items": n_items,
    "users_with_one_item": int((lists.lengths == 1).sum()),
    "users_with_two_items": int((lists.lengths == 2).sum()),
    "items_without_attributes": missing_attr,
    "negatives": "uniform",
    "num_negatives": num_negatives,
    "history_length": history_length,
    "seed": seed,
  }
  return assemble_lib.assemble(
    name,
    raw,
    shared=[("item", "history")],
    min_count=min_count,
    min_count_fields=min_count_fields,
    metadata=meta,
  )
