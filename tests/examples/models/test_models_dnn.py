"""DNN: parameter count, forward against numpy, batch-norm variant."""

import jax
import jax.numpy as jnp
import numpy as np
from ctr_models_testlib import FIELDS
from ctr_models_testlib import make_data
from ctr_models_testlib import make_model
from ctr_models_testlib import num_params
from flax import nnx

from examples.ctr.models import DNN

V = sum(f.vocab_size for f in FIELDS)  # 88 rows in all tables
F, D = len(FIELDS), 8


def test_parameter_count():
  model = make_model("dnn")  # widths (16, 8)
  mlp = (F * D * 16 + 16) + (16 * 8 + 8) + (8 + 1)
  assert num_params(model) == V * D + mlp == 1377
  bn = make_model("dnn", batch_norm=True)
  assert num_params(bn) == V * D + (F * D * 16 + 2 * 16) + (16 * 8 + 2 * 8) + 9


def _pooled_numpy(model, features):
  out = []
  for f in FIELDS:
    table = np.asarray(model.embedding.tables[f.name][...])
    ids = np.asarray(features[f.name]).reshape(len(features["user"]), -1)
    mask = (ids != 0)[..., None]
    out.append((table[ids] * mask).sum(1) / np.maximum(mask.sum(1), 1))
  return np.concatenate(out, axis=1)


def test_forward_matches_numpy():
  model = make_model("dnn", embedding_init="normal", embedding_init_stddev=0.5)
  features = make_data(16, seed=3).batch(0, 16)["features"]
  h = _pooled_numpy(model, features)
  for layer in model.mlp.hidden:
    h = np.maximum(h @ np.asarray(layer.kernel[...]) + layer.bias[...], 0)
  y = h @ np.asarray(model.mlp.out.kernel[...]) + model.mlp.out.bias[...]
  # float32 against NumPy's float32 matmuls in another order: dots of up to
  # 64 terms, K * eps32 = 8e-6 of the terms' magnitudes (O(1) here).
  np.testing.assert_allclose(model(features), y[:, 0], rtol=1e-5, atol=1e-6)


def test_batch_norm_and_dropout_modes():
  # Shapes as in the other tests, so eager kernels are reused.
  model = DNN(
    FIELDS,
    embedding_dim=D,
    mlp_widths=(16, 8),
    batch_norm=True,
    dropout_rate=0.5,
    embedding_init="normal",
    rngs=nnx.Rngs(0, dropout=1),
  )
  features = make_data(16, seed=1).batch(0, 16)["features"]
  a, b = model(features), model(features)  # train: new dropout masks
  assert not np.allclose(a, b)
  model.eval()  # running statistics, no dropout
  # One program on one input twice: XLA:CPU is deterministic, bitwise.
  np.testing.assert_array_equal(model(features), model(features))
  stats = nnx.state(model, nnx.BatchStat)
  assert any(np.any(np.asarray(x) != 0) for x in jax.tree.leaves(stats))
  assert model(features).shape == (16,)
  assert jnp.isfinite(model(features)).all()
