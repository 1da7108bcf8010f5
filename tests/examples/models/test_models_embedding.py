"""Tests of the per-field embedding layer and the per-ID table mask."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from examples.ctr.data.schema import FieldSpec
from examples.ctr.models import FieldEmbedding
from examples.ctr.models import as_bag
from examples.ctr.models import create_model
from examples.ctr.models import is_per_id_table
from examples.ctr.models import per_id_table_mask
from examples.ctr.models import pooled

FIELDS = (FieldSpec("user", 7), FieldSpec("genres", 5, bag_size=3))
FEATURES = {
  "user": jnp.array([2, 3, 2, 6]),
  "genres": jnp.array([[2, 3, 0], [4, 0, 0], [0, 0, 0], [2, 2, 4]]),
}


def _emb(**kwargs):
  return FieldEmbedding(FIELDS, 4, rngs=nnx.Rngs(0), **kwargs)


def test_one_zero_table_per_field_by_default():
  emb = _emb()
  assert set(emb.tables) == {"user", "genres"}
  assert emb.tables["user"].shape == (7, 4)
  assert emb.tables["genres"].shape == (5, 4)
  for table in emb.tables.values():
    assert isinstance(table, nnx.Param)
    assert table.dtype == jnp.float32
    assert not np.any(np.asarray(table[...]))


def test_normal_init_has_the_requested_scale():
  emb = FieldEmbedding(
    [FieldSpec("x", 1000)],
    32,
    init="normal",
    init_stddev=0.01,
    rngs=nnx.Rngs(0),
  )
  values = np.asarray(emb.tables["x"][...])
  assert abs(values.std() - 0.01) < 0.0005
  assert abs(values.mean()) < 0.0005


def test_lookup_shapes_and_values():
  emb = _emb(init="normal")
  rows = emb.lookup(FEATURES)
  assert rows["user"].shape == (4, 1, 4)
  assert rows["genres"].shape == (4, 3, 4)
  table = np.asarray(emb.tables["genres"][...])
  # Exact: a gather copies values.
  np.testing.assert_array_equal(rows["genres"], table[FEATURES["genres"]])


def test_pooling_values_against_numpy():
  rows = jnp.arange(4 * 3 * 2, dtype=jnp.float32).reshape(4, 3, 2) + 1.0
  ids = FEATURES["genres"]
  mask = np.asarray(ids != 0, np.float32)[..., None]
  total = (np.asarray(rows) * mask).sum(1)
  # Small integers: the sums are exact; the mean is one correctly rounded
  # division (eps32 / 2 < the default rtol 1e-7).
  np.testing.assert_allclose(pooled(rows, ids, "sum"), total)
  counts = np.array([2.0, 1.0, 1.0, 3.0])[:, None]  # the all-PAD bag: 0 / 1
  np.testing.assert_allclose(pooled(rows, ids, "mean"), total / counts)
  # Exact: the all-PAD bag sums exact zeros (0 / 1).
  np.testing.assert_array_equal(pooled(rows, ids, "mean")[2], [0.0, 0.0])


def test_output_stacks_fields():
  emb = _emb(init="normal")
  out = emb(FEATURES)
  assert out.shape == (4, 2, 4)
  np.testing.assert_array_equal(
    # Exact: a single-id field is a gather.
    out[:, 0],
    np.asarray(emb.tables["user"][...])[FEATURES["user"]],
  )


@pytest.mark.parametrize("pooling", ["sum", "mean"])
def test_row_gradients_count_occurrences_and_skip_padding(pooling):
  emb = _emb(init="normal", pooling=pooling)
  graphdef, params = nnx.split(emb)

  def f(p):
    return nnx.merge(graphdef, p)(FEATURES).sum()

  grads = nnx.to_pure_dict(jax.grad(f)(params))["tables"]
  ids = np.asarray(FEATURES["genres"])
  lengths = np.maximum((ids != 0).sum(1), 1)
  weight = np.ones(4) if pooling == "sum" else 1.0 / lengths
  expected = np.zeros(5)
  for b in range(4):
    for j in ids[b]:
      if j != 0:
        expected[j] += weight[b]
  # PAD (row 0) has a nonzero value but gets exactly zero gradient.
  assert np.any(np.asarray(emb.tables["genres"][...])[0] != 0)
  np.testing.assert_allclose(
    # Sums of at most 3 weights 1 or 1/n: within an ulp (default rtol 1e-7).
    grads["genres"],
    np.repeat(expected[:, None], 4, 1),
  )
  assert np.all(np.asarray(grads["genres"])[0] == 0)
  np.testing.assert_allclose(grads["user"][:, 0], [0, 0, 2, 1, 0, 0, 1])


def test_as_bag():
  assert as_bag(jnp.array([1, 2])).shape == (2, 1)
  assert as_bag(jnp.zeros((2, 3), jnp.int32)).shape == (2, 3)


@pytest.mark.parametrize("kwargs", [dict(init="uniform"), dict(pooling="max")])
def test_rejects_unknown_options(kwargs):
  with pytest.raises(ValueError):
    _emb(**kwargs)


def test_rejects_duplicate_field_names():
  with pytest.raises(ValueError):
    FieldEmbedding([FieldSpec("a", 3), FieldSpec("a", 4)], rngs=nnx.Rngs(0))


def test_mask_and_filter_agree_on_state_and_pure_dict():
  model = create_model(
    "wdl", FIELDS, rngs=nnx.Rngs(0), embedding_dim=4, mlp_widths=(3,)
  )
  params = nnx.state(model, nnx.Param)
  expected = {
    ("embedding", "tables", "genres"),
    ("embedding", "tables", "user"),
    ("wide", "tables", "genres"),
    ("wide", "tables", "user"),
  }
  for tree in (params, nnx.to_pure_dict(params)):
    mask = (
      nnx.to_pure_dict(per_id_table_mask(tree))
      if tree is params
      else (per_id_table_mask(tree))
    )
    flat = jax.tree_util.tree_flatten_with_path(mask)[0]
    assert {tuple(k.key for k in p) for p, m in flat if m} == expected
    assert len(flat) > len(expected)
  filtered = nnx.state(model, is_per_id_table)
  assert {path for path, _ in nnx.to_flat_state(filtered)} == expected
