"""Flax NNX CTR backbones: DNN, Wide&Deep, xDeepFM, WuKong.

Usage: ``model = create_model("dnn", fields, rngs=nnx.Rngs(0));
logits = model(features)``.

All models share :class:`FieldEmbedding` (one zero-initialised
``(vocab_size, dim)`` table per field; a row is one ID of one field), output
logits of shape ``(batch,)`` for a sigmoid binary cross-entropy loss, and
split into ``lookup`` (gather rows) and ``forward_from_embeddings``.
"""

from examples.ctr.models.base import CTRModel
from examples.ctr.models.base import is_per_id_table
from examples.ctr.models.base import per_id_table_mask
from examples.ctr.models.base import table_candidate_rows
from examples.ctr.models.dnn import DNN
from examples.ctr.models.embedding import FieldEmbedding
from examples.ctr.models.embedding import as_bag
from examples.ctr.models.embedding import pooled
from examples.ctr.models.layers import HIDDEN_BIAS_INIT
from examples.ctr.models.layers import MLP
from examples.ctr.models.layers import MLPTower
from examples.ctr.models.registry import MODELS
from examples.ctr.models.registry import create_model
from examples.ctr.models.wide_deep import WideAndDeep
from examples.ctr.models.wukong import FactorizationMachineBlock
from examples.ctr.models.wukong import LinearCompressionBlock
from examples.ctr.models.wukong import WuKong
from examples.ctr.models.wukong import WuKongLayer
from examples.ctr.models.xdeepfm import CIN
from examples.ctr.models.xdeepfm import XDeepFM

__all__ = (
  "CIN",
  "CTRModel",
  "DNN",
  "FactorizationMachineBlock",
  "FieldEmbedding",
  "HIDDEN_BIAS_INIT",
  "LinearCompressionBlock",
  "MLP",
  "MLPTower",
  "MODELS",
  "WideAndDeep",
  "WuKong",
  "WuKongLayer",
  "XDeepFM",
  "as_bag",
  "create_model",
  "is_per_id_table",
  "per_id_table_mask",
  "table_candidate_rows",
  "pooled",
)
