"""Properties every backbone must have, checked on all four of them.

Gradients and logits come from one jitted function per model structure
(``both_paths``), and the training checks from one jitted ``adam_ar`` step
per model, to keep compilation (the dominant cost) low.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ctr_models_testlib import FIELDS
from ctr_models_testlib import MODEL_NAMES
from ctr_models_testlib import Trainer
from ctr_models_testlib import both_paths
from ctr_models_testlib import make_data
from ctr_models_testlib import make_model
from ctr_models_testlib import param_grads
from flax import nnx
from sklearn.metrics import roc_auc_score

import optax_ar
from examples.ctr.models import MLP
from examples.ctr.models import MLPTower
from examples.ctr.models import as_bag
from examples.ctr.models import per_id_table_mask

BATCH = 64
EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
TABLE_GROUPS = {
  "dnn": ("embedding",),
  "wdl": ("embedding", "wide"),
  "xdeepfm": ("embedding", "linear"),
  "wukong": ("embedding",),
}
NORMAL_INIT = dict(embedding_init="normal", embedding_init_stddev=0.1)


@pytest.fixture(scope="module")
def data():
  return make_data(2048, seed=0)


@pytest.fixture(scope="module")
def batch(data):
  return data.batch(0, BATCH)


def _tables(tree, name):
  """``{(group, field): table}`` of the per-ID tables of model ``name``."""
  return {
    (g, f.name): np.asarray(tree[g]["tables"][f.name])
    for g in TABLE_GROUPS[name]
    for f in FIELDS
  }


def _present_and_absent(features, field, vocab_size):
  present = np.unique(np.asarray(features[field]))
  present = present[present != 0]
  return present, np.setdiff1d(np.arange(vocab_size), present)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_per_id_table_mask_marks_exactly_the_tables(name):
  model = make_model(name)
  params = nnx.state(model, nnx.Param)
  mask = nnx.to_pure_dict(per_id_table_mask(params))
  flat = jax.tree_util.tree_flatten_with_path(mask)[0]
  marked = sorted(tuple(k.key for k in path) for path, m in flat if m)
  expected = sorted(
    (g, "tables", f.name) for g in TABLE_GROUPS[name] for f in FIELDS
  )
  assert marked == expected
  # The mask has the structure of the nnx.State, so optax accepts it.
  tx = optax.masked(optax.sgd(1.0), per_id_table_mask(params))
  tx.init(params)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_deep_head_is_the_shared_tower(name):
  model = make_model(name)
  assert type(model.mlp) is MLPTower and isinstance(model.mlp, MLP)
  n = model.mlp.hidden[0].in_features // model.embedding.dim
  x = jax.random.normal(jax.random.key(0), (3, n, model.embedding.dim))
  flat = model.mlp(x.reshape(3, -1))[:, 0]
  # Bitwise: logit is this very call, run eagerly op by op on the same values.
  np.testing.assert_array_equal(model.mlp.logit(x), flat)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gathered_rows_path_matches_full_model(name, batch):
  model = make_model(name, **NORMAL_INIT)
  features = batch["features"]
  logits, logits_rows, grads, grads_rows = both_paths(model, batch)
  assert logits.shape == (BATCH,)
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))
  # The same operations on the same (gathered) rows, but two subgraphs of one
  # program that XLA may fuse differently, reordering a dot's sum of K terms:
  # K * eps32 of the sum of their magnitudes, K <= 64 here (~1e-5 of O(1)).
  np.testing.assert_allclose(logits, logits_rows, rtol=1e-5, atol=1e-5)
  assert sorted(grads_rows) == sorted(TABLE_GROUPS[name])
  # Scatter-adding the row gradients rebuilds the table gradients.
  for group, per_field in grads_rows.items():
    for field, g in per_field.items():
      assert g.shape[:2] == as_bag(features[field]).shape
      table = grads[group]["tables"][field]
      ids = as_bag(features[field])
      rebuilt = jnp.zeros_like(table).at[ids].add(g)
      # Two scatter-adds of the same terms, perhaps in different orders: a
      # sum of n terms is off by at most n * eps32 times the sum of their
      # magnitudes (the sums may cancel, so no relative bound holds).
      magnitude = np.zeros(table.shape, np.float64)
      np.add.at(magnitude, np.asarray(ids), np.abs(np.asarray(g)))
      n = np.bincount(np.ravel(ids), minlength=table.shape[0]).max()
      bound = 2 * n * EPS32 * magnitude
      assert np.all(np.abs(np.asarray(rebuilt) - table) <= bound), field


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradient_reaches_every_parameter(name, batch):
  grads = param_grads(make_model(name, **NORMAL_INIT), batch)
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    assert np.any(np.asarray(g) != 0), jax.tree_util.keystr(path)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("init", ["normal", "zeros"])
def test_only_present_ids_get_gradient(name, init, batch):
  """Present IDs get a nonzero gradient, absent IDs and PAD exactly zero.

  With ``init="normal"`` the PAD row has a nonzero value, so its zero gradient
  comes from the masking. With ``init="zeros"`` (the paper's setting) this is
  the zero-init trap check: without the positive hidden biases no embedding
  would get any gradient; and absent rows getting exactly zero is what
  AdamAR's interval estimate relies on.
  """
  overrides = NORMAL_INIT if init == "normal" else {}
  model = make_model(name, **overrides)
  if init == "zeros":
    assert not np.any(np.asarray(model.embedding.tables["user"][...]))
  features = batch["features"]
  assert np.any(np.asarray(features["genres"]) == 0)  # padding is present
  for (_, field), g in _tables(param_grads(model, batch), name).items():
    present, absent = _present_and_absent(features, field, g.shape[0])
    assert 0 in absent and len(absent) > 1, field
    # Exact on every backend: nothing is scattered to absent rows, and PAD's
    # contributions are multiplied by an exact 0 mask.
    assert np.all(g[absent] == 0), field
    assert np.all(np.any(g[present] != 0, axis=1)), field


@pytest.fixture(scope="module")
def fitted(data):
  """Trains every model (zero init, adam_ar, one jitted step) once."""
  results = {}
  for name in MODEL_NAMES:
    trainer = Trainer(make_model(name), optax_ar.adam_ar(1e-2, alpha=1e-4))
    first = data.batch(0, 128)
    trainer.step(first)
    after_first = _tables(nnx.to_pure_dict(trainer.params), name)
    losses, logits = [], []
    for step in range(1, 320):
      loss, out = trainer.step(data.batch((step * 128) % 2048, 128))
      losses.append(float(loss))
      logits.append(np.asarray(out))
    # Train AUC over the last pass through the data (16 batches of 128).
    last_pass = np.concatenate(logits[-16:])
    labels = np.roll(data.labels, -((320 - 16) * 128) % 2048)
    results[name] = dict(
      first=first,
      after_first=after_first,
      auc=roc_auc_score(labels, last_pass),
      traces=trainer.traces,
      cache_size=trainer._step._cache_size(),
      first_loss=np.mean(losses[:16]),
      last_loss=np.mean(losses[-16:]),
    )
  return results


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_adam_ar_first_step_keeps_absent_rows_at_zero(name, fitted):
  """From zero init, absent rows are untouched (not moved, not decayed)."""
  features = fitted[name]["first"]["features"]
  for (_, field), t in fitted[name]["after_first"].items():
    present, absent = _present_and_absent(features, field, t.shape[0])
    # Exact: zero rows with a zero gradient get a zero update (0 / eps).
    assert np.all(t[absent] == 0), field
    assert np.all(np.any(t[present] != 0, axis=1)), field


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_jitted_adam_ar_step_compiles_once(name, fitted):
  assert fitted[name]["traces"] == 1
  assert fitted[name]["cache_size"] == 1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fits_generated_data_from_zero_init(name, fitted):
  assert fitted[name]["last_loss"] < fitted[name]["first_loss"] - 0.05
  assert fitted[name]["auc"] > 0.75, fitted[name]["auc"]
