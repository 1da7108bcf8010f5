"""Raw integer-coded splits -> a ``CTRDataset`` with train-only vocabularies.

Usage: ``ds = assemble("name", {"train": raw, "valid": None, "test": t})``.

The in-memory loaders (Amazon, amazon-book, MovieLens, libFM) first turn
their files into ``RawSplit``s whose features are non-negative int64 codes
(``vocab.PAD_RAW`` = -1 for bag padding), then call ``assemble``, which builds
each field's vocabulary on the training split only (fields listed together in
``shared`` get one ID space), maps every split to int32 IDs and counts
training frequencies (per ID, the training rows it occurs in; the OOV
entry sums the rows of the values mapped to OOV).

``min_count`` filters every field; ``min_count_fields`` (e.g. ``{"user":
5}``) sets the threshold of single fields instead (the paper's ablation
filters the rare IDs of the sparsest field only). A field that shares its
IDs with others (``shared``) passes its threshold to the whole ID space,
counted over the group, as ``min_count`` does; ``CTRDataset.metadata``
records each ID space's threshold and what it mapped to OOV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr.data import schema
from examples.ctr.data import vocab as vocab_lib


@dataclasses.dataclass(frozen=True)
class RawSplit:
  """One split before ID mapping: raw int64 codes and 0/1 labels."""

  features: dict[str, np.ndarray]
  labels: np.ndarray

  def __post_init__(self):
    n = self.labels.shape[0]
    for name, a in self.features.items():
      if a.shape[0] != n:
        raise ValueError(f"field {name!r} has {a.shape[0]} rows, labels {n}")


def assemble(
  name: str,
  splits: Mapping[str, RawSplit | None],
  *,
  shared: Sequence[Sequence[str]] = (),
  min_count: int = 1,
  min_count_fields: Mapping[str, int] | None = None,
  metadata: Mapping[str, Any] | None = None,
) -> schema.CTRDataset:
  """Builds vocabularies on ``splits["train"]`` and maps every split.

  Args:
    name: the dataset name.
    splits: ``train``, ``test`` and optionally ``valid`` (None for none).
    shared: groups of fields that share one vocabulary (ID space).
    min_count: see ``vocab.build_vocabulary``.
    min_count_fields: per-field thresholds that replace ``min_count`` for
      the listed fields (for a shared ID space: the largest threshold of
      its listed fields).
    metadata: extra facts stored in ``CTRDataset.metadata``.

  Returns:
    The dataset; its field order is the order of ``splits["train"].features``.

  Example:
    >>> raw = RawSplit({"a": np.array([3, 3, 4])}, np.array([1.0, 0.0, 1.0]))
    >>> test = RawSplit({"a": np.array([4, 9])}, np.array([0.0, 1.0]))
    >>> ds = assemble("toy", {"train": raw, "valid": None, "test": test})
    >>> ds.test.features["a"].tolist(), ds.frequencies["a"].tolist()
    ([3, 1], [0, 0, 2, 1])
  """
  train = splits["train"]
  names = list(train.features)
  groups = [list(g) for g in shared]
  grouped = {f for g in groups for f in g}
  groups += [[f] for f in names if f not in grouped]
  per_field = dict(min_count_fields or {})
  unknown = sorted(set(per_field) - set(names))
  if unknown:
    raise ValueError(f"min_count_fields names unknown fields {unknown}")
  vocabs: dict[str, vocab_lib.Vocabulary] = {}
  filtered: dict[str, dict[str, int]] = {}
  counts = {f: vocab_lib.value_counts(train.features[f]) for f in names}
  for group in groups:
    listed = [per_field[f] for f in group if f in per_field]
    threshold = max(listed) if listed else min_count
    v = vocab_lib.build_vocabulary(
      counts=[counts[f] for f in group], min_count=threshold
    )
    for f in group:
      vocabs[f] = v
    filtered["+".join(group)] = {
      "min_count": threshold,
      "values_mapped_to_oov": v.num_filtered,
      "train_occurrences_mapped_to_oov": v.num_filtered_occurrences,
    }

  def encode(raw: RawSplit | None) -> schema.Split | None:
    if raw is None:
      return None
    feats = {f: vocabs[f].lookup(raw.features[f]) for f in names}
    labels = np.asarray(raw.labels, dtype=np.float32)
    return schema.Split(features=feats, labels=labels)

  enc = {k: encode(splits.get(k)) for k in ("train", "valid", "test")}
  fields = tuple(
    schema.FieldSpec(
      name=f,
      vocab_size=vocabs[f].vocab_size,
      bag_size=1 if train.features[f].ndim == 1 else train.features[f].shape[1],
    )
    for f in names
  )
  freqs = {f: vocabs[f].frequencies(counts[f]) for f in names}
  meta = dict(metadata or {})
  meta["min_count"] = min_count
  if per_field:
    meta["min_count_fields"] = per_field
  meta["min_count_filtered"] = filtered
  meta["split_sizes"] = {k: len(s) for k, s in enc.items() if s is not None}
  return schema.CTRDataset(
    name=name,
    fields=fields,
    train=enc["train"],
    valid=enc["valid"],
    test=enc["test"],
    frequencies=freqs,
    metadata=meta,
  )
