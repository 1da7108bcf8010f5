"""Reading ``user item item ...`` files and sampling negative items.

Usage: ``lists = read_user_lists(path)``; ``sample_negatives(...)``.

Both the sequential (Amazon, S3-Rec) and the interaction-set (LightGCN)
formats store one user per line followed by that user's items. Tokens are
kept as strings and factorised, so any token alphabet works (IDs need not be
integers); a user listed twice, a blank line, an empty file or bytes that are
not UTF-8 raise ``errors.DataFileError`` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from examples.ctr.data import errors


@dataclasses.dataclass(frozen=True)
class UserLists:
  """Users and their items, flattened.

  Attributes:
    users: (U,) user tokens, in file order.
    lengths: (U,) int64 number of items of each user.
    items: (N,) int64 item codes ``0 .. num_items - 1``, users concatenated.
    item_tokens: (num_items,) the item token of each code.
  """

  users: np.ndarray
  lengths: np.ndarray
  items: np.ndarray
  item_tokens: np.ndarray

  @property
  def num_items(self) -> int:
    return int(self.item_tokens.size)

  @property
  def user_of(self) -> np.ndarray:
    """(N,) the user index of every flattened interaction."""
    return np.repeat(np.arange(self.users.size), self.lengths)

  @property
  def starts(self) -> np.ndarray:
    """(U,) offset of each user's first item in ``items``."""
    return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)


def read_user_lists(path: str | os.PathLike) -> UserLists:
  """Reads a ``user item item ...`` file (a user may have no items).

  Args:
    path: the file.

  Returns:
    The parsed lists.

  Raises:
    errors.DataFileError: empty file, blank line, a user listed twice, or
      bytes that are not UTF-8 (naming file and line).
  """
  users, lengths, items = [], [], []
  for lineno, line in errors.read_lines(path):
    tokens = line.split()
    if not tokens:
      raise errors.DataFileError(
        path, lineno, "blank line (expected 'user item ...')"
      )
    users.append(tokens[0])
    lengths.append(len(tokens) - 1)
    items.extend(tokens[1:])
  if not users:
    raise errors.DataFileError(path, 1, "file is empty")
  users_arr = np.array(users, dtype=object)
  uniq, first, counts = np.unique(
    users_arr.astype(str), return_index=True, return_counts=True
  )
  if (counts > 1).any():
    u = str(uniq[counts > 1][0])
    lines = np.flatnonzero(users_arr.astype(str) == u)[:2] + 1
    raise errors.DataFileError(
      path, lines[1], f"user {u!r} already listed on line {lines[0]}"
    )
  codes, tokens = pd.factorize(np.array(items, dtype=object))
  return UserLists(
    users=users_arr,
    lengths=np.array(lengths, dtype=np.int64),
    items=codes.astype(np.int64),
    item_tokens=np.asarray(tokens, dtype=object),
  )


def sample_negatives(
  rng: np.random.Generator,
  users: np.ndarray,
  exclude: np.ndarray,
  num_items: int,
  probs: np.ndarray | None = None,
  max_rounds: int = 200,
) -> np.ndarray:
  """One negative item per entry of ``users``, never one of their items.

  Args:
    rng: the seeded generator.
    users: (n,) user index of each negative to draw.
    exclude: sorted unique int64 keys ``user * num_items + item`` of the
      user's own (positive) items, which are rejected and redrawn.
    num_items: items are ``0 .. num_items - 1``.
    probs: (num_items,) sampling distribution; None for uniform.
    max_rounds: redraw rounds before giving up.

  Returns:
    (n,) int64 items.

  Example:
    >>> rng = np.random.default_rng(0)
    >>> excl = np.array([0 * 3 + 0, 0 * 3 + 1])  # user 0 owns items 0, 1
    >>> sample_negatives(rng, np.zeros(4, np.int64), excl, 3).tolist()
    [2, 2, 2, 2]
  """
  cdf = None if probs is None else np.cumsum(probs / probs.sum())

  def draw(k):
    if cdf is None:
      return rng.integers(0, num_items, size=k)
    return np.minimum(
      np.searchsorted(cdf, rng.random(k), side="right"), num_items - 1
    )

  neg = draw(users.size).astype(np.int64)
  todo = np.arange(users.size)
  for _ in range(max_rounds):
    keys = users[todo] * num_items + neg[todo]
    pos = np.minimum(np.searchsorted(exclude, keys), max(exclude.size - 1, 0))
    bad = exclude.size > 0 and (exclude[pos] == keys)
    if not np.any(bad):
      return neg
    todo = todo[bad]
    neg[todo] = draw(todo.size)
  raise ValueError(
    f"could not sample negatives for {todo.size} rows: their users own "
    "(almost) every item that can be sampled"
  )
