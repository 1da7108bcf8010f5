"""Builds a backbone by name.

Usage: ``model = create_model("dnn", dataset.fields, rngs=nnx.Rngs(0))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flax import nnx

from examples.ctr.data.schema import FieldSpec
from examples.ctr.models.base import CTRModel
from examples.ctr.models.dnn import DNN
from examples.ctr.models.wide_deep import WideAndDeep
from examples.ctr.models.wukong import WuKong
from examples.ctr.models.xdeepfm import XDeepFM

MODELS: dict[str, type[CTRModel]] = {
  "dnn": DNN,
  "wdl": WideAndDeep,
  "xdeepfm": XDeepFM,
  "wukong": WuKong,
}


def create_model(
  name: str, fields: Sequence[FieldSpec], *, rngs: nnx.Rngs, **config: Any
) -> CTRModel:
  """Creates the backbone ``name`` (one of :data:`MODELS`) for ``fields``.

  Args:
    name: ``"dnn"``, ``"wdl"``, ``"xdeepfm"`` or ``"wukong"``.
    fields: the dataset's fields, in input order.
    rngs: random streams.
    **config: constructor fields of the model class (e.g. ``embedding_dim``,
      ``mlp_widths``, ``embedding_init``).

  Returns:
    The model; ``model(features)`` gives logits of shape ``(batch,)``.

  Example:
    >>> from flax import nnx
    >>> from examples.ctr.data.schema import FieldSpec
    >>> model = create_model("dnn", [FieldSpec("user", 10)],
    ...                      rngs=nnx.Rngs(0), mlp_widths=(4,))
    >>> type(model).__name__
    'DNN'
  """
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
  return MODELS[name](fields, rngs=rngs, **config)
