"""The sparse row-update path on 8 simulated CPU devices (``--sparse-updates``).

Meshes ``data x model`` of 8x1, 1x8 and 2x4 train the test config's DNN with
the sparse step (tables and their moments split by rows over ``model``, each
shard updating only the unique rows it owns through ``optax_ar.shard_rows``;
the batch split over ``data``) and must give the single-device sparse run's
params and state; the compiled step must move no table between devices; a
whole run's metrics must match the single-device run's.

Tolerance: both runs are made in float64 (``runner_testlib``). The mesh run
differs from the single-device one only in the order in which a row's
gradient is summed over the ``data`` shards (the ``model`` all-reduce of the
gathered rows adds exact zeros, and every row is updated by one shard with
the same arithmetic), which costs ~1e-16 in float64; what remains are the
float32 scalars of each update (learning rate, Adam's bias correction), each
within one float32 ulp, so every entry stays within ``4 * eps32`` times its
path length (the sum of its update sizes) of the single-device entry, plus
``steps * eps64``. In float32 the order of the sums alone would move a few
entries by 1e-4 relative after a few steps (Adam divides a nearly cancelled
gradient by its own size), by amounts that depend on the CPU.
"""

import itertools

import jax
import numpy as np
import pytest
import runner_testlib
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from examples.ctr import config as config_lib
from examples.ctr import sharding
from examples.ctr import sparse_train
from examples.ctr import train
from examples.ctr.data.pipeline import BatchIterator

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)

STEPS = 6
CONFIG = config_lib.get_config("test").replace(
  optimizer="adam_ar", alpha=0.05, checkpoint=False, sparse_updates=True
)


@pytest.fixture(scope="module")
def dataset():
  return train.load_dataset(CONFIG)


@pytest.fixture(scope="module")
def batches(dataset):
  it = BatchIterator(dataset.train, CONFIG.batch_size, shuffle=True, seed=0)
  return list(itertools.islice(it.epoch(1), STEPS))


def _setup(dataset, mesh_shape, config=CONFIG):
  mesh = None if mesh_shape is None else sharding.create_mesh(mesh_shape)
  return train.create_train_state(
    config, dataset.fields, config.optimizer, config.alpha, config.seed, mesh
  )


def _train(setup, batches):
  step = train.make_train_step(
    setup.graphdef, setup.spec, setup.mesh, setup.shardings
  )
  with jax.enable_x64(True):
    state, path_length, losses = runner_testlib.run_float64(
      step, setup.state, batches
    )
  return state, path_length, losses


@pytest.fixture(scope="module")
def single_device(dataset, batches):
  state, path_length, losses = _train(_setup(dataset, None), batches)
  return jax.tree.map(np.asarray, state), path_length, losses


def _unpad(tree, want):
  """Leaves of ``tree`` cut to the rows of ``want``'s (padding exactly 0)."""

  def cut(got, ref):
    got = np.asarray(got)
    if got.ndim and got.shape[0] != ref.shape[0]:
      np.testing.assert_array_equal(got[ref.shape[0] :], 0)
      got = got[: ref.shape[0]]
    return got

  return jax.tree.map(cut, tree, want)


@pytest.mark.parametrize("mesh_shape", ["8x1", "1x8", "2x4"])
def test_sparse_mesh_matches_single_device(
  mesh_shape, dataset, batches, single_device
):
  want, path_length, want_losses = single_device
  setup = _setup(dataset, mesh_shape)
  state, _, losses = _train(setup, batches)

  rows = NamedSharding(setup.mesh, P("model"))
  tables, _ = sparse_train.split_params(state.params)
  for leaf in jax.tree.leaves(tables) + [
    state.opt_state.tables.mu,
    state.opt_state.tables.nu,
    state.opt_state.tables.last_step,
  ]:
    for x in jax.tree.leaves(leaf):
      assert x.sharding.is_equivalent_to(rows, x.ndim)

  runner_testlib.assert_within_path_length(
    _unpad(state.params, want.params), want.params, path_length, STEPS
  )
  # Moments: the same rows touched, the same update; last_step exactly.
  got_tables = _unpad(state.opt_state.tables, want.opt_state.tables)
  for got, ref in zip(
    jax.tree.leaves(got_tables.last_step),
    jax.tree.leaves(want.opt_state.tables.last_step),
    strict=True,
  ):
    np.testing.assert_array_equal(got, ref)
  assert int(got_tables.count) == int(want.opt_state.tables.count) == STEPS
  for got, ref in zip(
    jax.tree.leaves((got_tables.mu, got_tables.nu)),
    jax.tree.leaves((want.opt_state.tables.mu, want.opt_state.tables.nu)),
    strict=True,
  ):
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-15)
  np.testing.assert_allclose(losses, want_losses, rtol=1e-12)


@pytest.mark.parametrize("mesh_shape", ["1x8", "2x4"])
def test_sparse_mesh_step_never_moves_a_whole_table(mesh_shape):
  # Tables of 48, 112 and 128 rows (padded) and batches of 24: the
  # unique-row capacities are neither a table's nor a shard's row count, so
  # a collective of a table's or shard's shape would be one that moves it.
  options = dict(CONFIG.dataset_options, vocab_sizes=(40, 300, 1000))
  config = CONFIG.replace(dataset_options=options, batch_size=24)
  dataset = train.load_dataset(config)
  setup = _setup(dataset, mesh_shape, config)
  step = train.make_train_step(
    setup.graphdef, setup.spec, setup.mesh, setup.shardings
  )
  batch = next(BatchIterator(dataset.train, config.batch_size).epoch(0))
  batch = sharding.shard_tree(batch, sharding.batch_sharding(setup.mesh))
  hlo = step.jitted.lower(setup.state, batch).compile().as_text()
  tables, _ = sparse_train.split_params(setup.state.params)
  shapes = [t.shape for t in jax.tree.leaves(tables)]
  assert len(shapes) == 3
  data, model = sharding.parse_mesh_shape(mesh_shape)
  shard_shapes = [(r // model, d) for r, d in shapes]
  capacities = {c for _, c in setup.spec.capacities.values()}
  assert not capacities & {r for r, _ in shapes + shard_shapes}
  assert sharding.whole_table_collectives(hlo, shapes) == []
  # Nor a table's shard, nor any all-gather of rows: the lookups all-reduce
  # (capacity, dim) rows over "model", the gradients (capacity, dim) over
  # "data"; only integer ids are gathered (to be deduplicated).
  assert sharding.whole_table_collectives(hlo, shard_shapes) == []
  for op, found in sharding.collective_shapes(hlo):
    if op != "all-reduce":
      assert all(s.startswith(("s32", "u32", "pred")) for s in found), op


def test_train_and_evaluate_sparse_on_a_mesh_matches_one_device(
  dataset, tmp_path
):
  config = CONFIG.replace(epochs=2)
  one = train.train_and_evaluate(config, dataset, str(tmp_path / "one"))
  sharded = train.train_and_evaluate(
    config.replace(mesh="2x4"), dataset, str(tmp_path / "mesh")
  )
  for got, want in zip(sharded["epochs"], one["epochs"], strict=True):
    # float32 runs: a few entries move by 1e-4 relative (see the module
    # docstring); AUC and losses are averages over many of them.
    for key in ("eval_auc", "valid_auc", "eval_logloss", "train_loss"):
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4)
