"""Wide & Deep: parameter count, the wide part is a per-ID linear model."""

import numpy as np
from ctr_models_testlib import FIELDS
from ctr_models_testlib import make_data
from ctr_models_testlib import make_model
from ctr_models_testlib import num_params
from flax import nnx

from examples.ctr.models import WideAndDeep

V = sum(f.vocab_size for f in FIELDS)
F, D = len(FIELDS), 8


def test_parameter_count():
  model = make_model("wdl")  # widths (16, 8)
  mlp = (F * D * 16 + 16) + (16 * 8 + 8) + (8 + 1)
  assert num_params(model) == V * D + V * 1 + mlp == 1465
  for f in FIELDS:
    assert model.wide.tables[f.name].shape == (f.vocab_size, 1)
    assert not np.any(np.asarray(model.wide.tables[f.name][...]))


def test_logit_is_wide_sum_plus_deep():
  model = WideAndDeep(
    FIELDS,
    embedding_dim=4,
    mlp_widths=(8,),
    embedding_init="normal",
    rngs=nnx.Rngs(0),
  )
  rng = np.random.default_rng(0)
  for f in FIELDS:
    model.wide.tables[f.name][...] = rng.normal(size=(f.vocab_size, 1))
  features = make_data(16, seed=2).batch(0, 16)["features"]
  wide = np.zeros(16)
  for f in FIELDS:
    w = np.asarray(model.wide.tables[f.name][...])[:, 0]
    ids = np.asarray(features[f.name]).reshape(16, -1)
    mask = ids != 0
    wide += (w[ids] * mask).sum(1) / np.maximum(mask.sum(1), 1)
  x = model.embedding(features).reshape(16, -1)
  deep = np.asarray(model.mlp(x))[:, 0]
  # The same sums in float32 and float64, in other orders: a few eps32 of O(1).
  np.testing.assert_allclose(model(features), wide + deep, rtol=1e-5, atol=1e-5)
