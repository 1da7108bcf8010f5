"""The in-memory form every CTR dataset loader produces.

Usage: ``dataset = load_dataset("frappe", path); dataset.train.features``.

Conventions shared by the loaders, the models and the runner:

* Every feature is a categorical *field* whose values are integer IDs into
  that field's own embedding table (one table per field).
* ID 0 is padding: it only appears in multi-valued fields (``bag_size > 1``,
  e.g. a behaviour history padded to a fixed length) and contributes no
  gradient. ID 1 is the field's out-of-vocabulary ID (values unseen in the
  training split). Real values are 2 .. vocab_size - 1.
* A single-valued field is an int32 array of shape ``(n,)``; a multi-valued
  one is int32 of shape ``(n, bag_size)``, padded with 0.
* Labels are float32 0/1 of shape ``(n,)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

PAD_ID = 0
OOV_ID = 1
NUM_RESERVED_IDS = 2


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """One categorical field.

  Attributes:
    name: field name, the key of the field in ``Split.features``.
    vocab_size: rows of the field's embedding table, reserved IDs included.
    bag_size: IDs per example; 1 for a single-valued field.
  """

  name: str
  vocab_size: int
  bag_size: int = 1


@dataclasses.dataclass(frozen=True)
class Split:
  """Examples of one split: ``features[name]`` int32 and ``labels`` float32."""

  features: dict[str, np.ndarray]
  labels: np.ndarray

  def __len__(self) -> int:
    return int(self.labels.shape[0])


@dataclasses.dataclass(frozen=True)
class CTRDataset:
  """A dataset ready for training.

  Attributes:
    name: a short name used in results files.
    fields: the categorical fields, in model input order.
    train, valid, test: the splits (``valid`` may be None where a dataset has
      none; hyperparameters are chosen on ``valid``, never on ``test``).
    frequencies: per field, an int64 array of length ``vocab_size`` with the
      number of training examples in which each ID occurs.
    metadata: facts about how the dataset was built (source files, options,
      counts of anything an option dropped or mapped to OOV); JSON-able.
  """

  name: str
  fields: tuple[FieldSpec, ...]
  train: Split
  valid: Split | None
  test: Split
  frequencies: dict[str, np.ndarray]
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
