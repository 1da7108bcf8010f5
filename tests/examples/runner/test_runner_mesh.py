"""The runner on 8 simulated CPU devices: row-sharded tables, sharded batches.

Meshes ``data x model`` of 8x1, 1x8 and 2x4 train the test config's DNN for a
few steps and must give the single-device params (both in float64, within a
few float32 ulps of each entry's path length: see ``runner_testlib``); the
shardings of params and optimizer state are asserted, the compiled step is
checked for an all-gather of a whole table, and checkpoints restore onto
another mesh shape (with another row padding) and continue identically.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import runner_testlib
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optax_ar
from examples.ctr import checkpoints
from examples.ctr import config as config_lib
from examples.ctr import main
from examples.ctr import sharding
from examples.ctr import train
from examples.ctr.data.pipeline import BatchIterator

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)

STEPS = 4
CONFIG = config_lib.get_config("test").replace(
  optimizer="adam_ar", alpha=0.05, checkpoint=False
)


@pytest.fixture(scope="module")
def dataset():
  return train.load_dataset(CONFIG)


@pytest.fixture(scope="module")
def batches(dataset):
  it = BatchIterator(dataset.train, CONFIG.batch_size, shuffle=True, seed=0)
  return list(itertools.islice(it.epoch(1), 2 * STEPS))


def _setup(dataset, mesh_shape, config=CONFIG):
  mesh = None if mesh_shape is None else sharding.create_mesh(mesh_shape)
  return train.create_train_state(
    config, dataset.fields, config.optimizer, None, config.seed, mesh
  )


def _train(setup, state, batches):
  """Float64 steps (see runner_testlib); returns the state and path lengths."""
  step = train.make_train_step(
    setup.graphdef, setup.spec, setup.mesh, setup.shardings
  )
  with jax.enable_x64(True):
    state, path_length, _ = runner_testlib.run_float64(step, state, batches)
  return state, path_length


@pytest.fixture(scope="module")
def single_device(dataset, batches):
  """Params, AR state and path lengths after STEPS and 2 * STEPS steps."""
  setup = _setup(dataset, None)
  state, path = _train(setup, setup.state, batches[:STEPS])  # donates
  half = jax.tree.map(np.asarray, (state.params, state.opt_state))
  state, more = _train(setup, state, batches[STEPS:])
  total = {k: path[k] + more[k] for k in path}
  whole = jax.tree.map(np.asarray, (state.params, state.opt_state))
  return (*half, path), (*whole, total)


def _tables(tree, mask):
  leaves = jax.tree.structure(mask).flatten_up_to(tree)
  return [x for x, m in zip(leaves, jax.tree.leaves(mask), strict=True) if m]


def _assert_matches(params, opt_state, want, table_mask):
  """Sharded (padded) params/state equal the single-device ones."""
  want_params, want_state, path_length = want
  unpadded = []
  for got, ref, is_table in zip(
    jax.tree.leaves(params),
    jax.tree.leaves(want_params),
    jax.tree.leaves(table_mask),
    strict=True,
  ):
    got = np.asarray(got)
    if is_table:  # padding rows: never indexed, still exactly zero
      np.testing.assert_array_equal(got[ref.shape[0] :], 0.0)
      got = got[: ref.shape[0]]
    unpadded.append(got)
  # Float64 runs; data-parallel gradient sums in another order: see
  # runner_testlib.
  runner_testlib.assert_within_path_length(
    jax.tree.unflatten(jax.tree.structure(want_params), unpadded),
    want_params,
    path_length,
    2 * STEPS,
  )
  last = _tables(_last_step(opt_state), table_mask)
  want_last = _tables(_last_step(want_state), table_mask)
  assert len(last) == 4
  for got, ref in zip(last, want_last, strict=True):
    np.testing.assert_array_equal(np.asarray(got)[: ref.shape[0]], ref)


def _last_step(opt_state):
  # inject_hyperparams(adam_ar): InjectHyperparamsState(inner_state=AR).
  return opt_state.inner_state.last_step


def _assert_shardings(setup, state):
  mesh = setup.mesh
  rows = NamedSharding(mesh, P("model", None))
  replicated = NamedSharding(mesh, P())
  n = sharding.model_axis_size(mesh)
  mask = jax.tree.leaves(setup.table_mask)
  for leaf, is_table in zip(jax.tree.leaves(state.params), mask, strict=True):
    want = rows if is_table else replicated
    assert leaf.sharding.is_equivalent_to(want, leaf.ndim), leaf.sharding
    if is_table:
      shard = leaf.addressable_shards[0].data
      assert shard.shape == (leaf.shape[0] // n, leaf.shape[1])
  ar_state = state.opt_state.inner_state
  adam_state = ar_state.inner_state[0]
  for tree in (adam_state.mu, adam_state.nu, ar_state.last_step):
    tables = _tables(tree, setup.table_mask)
    assert len(tables) == 4
    for leaf in tables:
      assert leaf.sharding.is_equivalent_to(rows, leaf.ndim), leaf.sharding
      assert leaf.addressable_shards[0].data.shape[0] == leaf.shape[0] // n
  assert ar_state.count.sharding.is_fully_replicated
  for leaf in jax.tree.leaves(state.rest):
    assert leaf.sharding.is_fully_replicated


@pytest.mark.parametrize("mesh_shape", ["8x1", "1x8", "2x4"])
def test_mesh_matches_single_device_with_sharded_tables_and_state(
  mesh_shape, dataset, batches, single_device
):
  setup = _setup(dataset, mesh_shape)
  _assert_shardings(setup, setup.state)
  # f03 has 115 rows: padded to 116 over 4 shards, 120 over 8, none over 1.
  table_rows = sorted(
    t.shape[0] for t in _tables(setup.state.params, setup.table_mask)
  )
  pad = sharding.model_axis_size(setup.mesh)
  assert table_rows == sorted(
    sharding.padded_rows(f.vocab_size, pad) for f in dataset.fields
  )
  state, _ = _train(setup, setup.state, batches)
  _assert_shardings(setup, state)
  _assert_matches(
    state.params, state.opt_state, single_device[1], setup.table_mask
  )


@pytest.mark.parametrize("mesh_shape", ["1x8", "2x4"])
def test_compiled_step_never_moves_a_whole_table(mesh_shape):
  # Tables of 42, 124 and 110 rows: no table shard has a whole table's shape.
  options = dict(CONFIG.dataset_options, vocab_sizes=(40, 300, 1000))
  dataset = train.load_dataset(CONFIG.replace(dataset_options=options))
  setup = _setup(dataset, mesh_shape)
  step = train.make_train_step(
    setup.graphdef, setup.spec, setup.mesh, setup.shardings
  )
  batch = next(BatchIterator(dataset.train, CONFIG.batch_size).epoch(0))
  batch = sharding.shard_tree(batch, sharding.batch_sharding(setup.mesh))
  compiled = step.jitted.lower(setup.state, batch).compile()
  hlo = compiled.as_text()
  tables = _tables(setup.state.params, setup.table_mask)
  shapes = [t.shape for t in tables]
  assert len(shapes) == 3
  assert sharding.whole_table_collectives(hlo, shapes) == []
  collectives = sharding.collective_shapes(hlo)
  assert {op for op, _ in collectives} == {"all-reduce"}
  reduced = {s for _, shapes in collectives for s in shapes}
  # Lookups: each model shard gathers the rows it owns (zeros elsewhere),
  # then the (local batch, 1, dim) rows are summed over "model".
  data, model = sharding.parse_mesh_shape(mesh_shape)
  assert f"f32[{CONFIG.batch_size // data},1,8]" in reduced
  # Gradients: summed over "data" per table shard (never a whole table).
  shard_shapes = {f"f32[{r // model},8]" for r, _ in shapes}
  assert (shard_shapes <= reduced) == (data > 1)
  # Output shardings: the state keeps its row sharding.
  state_out, _ = compiled.output_shardings
  rows = NamedSharding(setup.mesh, P("model", None))
  out_tables = _tables(state_out.params, setup.table_mask)
  assert all(s.is_equivalent_to(rows, 2) for s in out_tables)
  out_last = _tables(_last_step(state_out.opt_state), setup.table_mask)
  assert all(s.is_equivalent_to(rows, 2) for s in out_last)


@pytest.mark.parametrize(
  ("save_mesh", "load_mesh"), [("1x8", "2x4"), ("2x4", None)]
)
def test_checkpoint_restores_onto_another_mesh_and_continues(
  save_mesh, load_mesh, dataset, batches, single_device, tmp_path
):
  setup = _setup(dataset, save_mesh)
  state, _ = _train(setup, setup.state, batches[:STEPS])
  manager = checkpoints.checkpoint_manager(str(tmp_path))
  checkpoints.save_checkpoint(manager, 1, state)
  manager.close()

  target = _setup(dataset, load_mesh)
  manager = checkpoints.checkpoint_manager(str(tmp_path))
  with jax.enable_x64(True):  # restores the float64 state as it is
    restored, epoch = checkpoints.restore_checkpoint(
      manager, runner_testlib.float64_state(target.state)
    )
  manager.close()
  assert epoch == 1
  if load_mesh is not None:
    _assert_shardings(target, restored)
  _assert_matches(
    restored.params, restored.opt_state, single_device[0], target.table_mask
  )
  state, _ = _train(target, restored, batches[STEPS:])
  _assert_matches(
    state.params, state.opt_state, single_device[1], target.table_mask
  )


def test_restore_rejects_a_shape_change_beyond_row_padding(dataset, tmp_path):
  setup = _setup(dataset, "2x4")
  manager = checkpoints.checkpoint_manager(str(tmp_path))
  checkpoints.save_checkpoint(manager, 1, setup.state)
  wider = _setup(dataset, "2x4", CONFIG.replace(embedding_dim=4))
  with pytest.raises(ValueError, match="only row padding"):
    checkpoints.restore_checkpoint(manager, wider.state)
  manager.close()


def test_mesh_flag_and_validation():
  assert main.parse_config(["--config", "test", "--mesh", "2x4"]).mesh == "2x4"
  assert main.parse_config(["--config", "test"]).mesh is None
  with pytest.raises(ValueError, match="DATAxMODEL"):
    CONFIG.replace(mesh="2x")
  with pytest.raises(ValueError, match="needs 16 devices"):
    sharding.create_mesh("4x4")
  mesh = sharding.create_mesh("2x4")
  with pytest.raises(ValueError, match="not a multiple of the data axis"):
    sharding.check_batch_size(127, mesh)
  with pytest.raises(ValueError, match="pad it"):
    sharding.param_shardings({"t": np.zeros((6, 2))}, {"t": True}, mesh)


def _meda_steps(dataset, batches, mesh_shape):
  """STEPS float64 steps of MEDA, its table reset, STEPS more (see below)."""
  setup = _setup(dataset, mesh_shape, CONFIG.replace(optimizer="meda"))
  assert setup.spec.reset_tables_each_epoch
  with jax.enable_x64(True):
    init = runner_testlib.float64_state(setup.state).params
    init = jax.tree.map(jnp.copy, init)  # the state's buffers are donated
    state, path = _train(setup, setup.state, batches[:STEPS])
    # What train_and_evaluate does at the start of an epoch.
    params, opt_state = optax_ar.reset_leaves(
      setup.spec.tx, state.params, state.opt_state, setup.table_mask, init
    )
    for leaf, start, is_table in zip(
      jax.tree.leaves(params),
      jax.tree.leaves(init),
      jax.tree.leaves(setup.table_mask),
      strict=True,
    ):
      if is_table:  # exact: the reset copies the init values
        np.testing.assert_array_equal(leaf, start)
    state = train.TrainState(params, opt_state, state.rest)
    if setup.mesh is not None:
      state = jax.device_put(state, setup.shardings)
    state, more = _train(setup, state, batches[STEPS:])
  path = {k: path[k] + more[k] for k in path}
  return setup, state, path


def test_meda_reset_on_a_mesh_matches_one_device(dataset, batches):
  """MEDA's reset of row-sharded tables and their state, in float64."""
  _, want, path = _meda_steps(dataset, batches, None)
  setup, got, _ = _meda_steps(dataset, batches, "2x4")
  _assert_shardings_of_params(setup, got)
  unpadded = []
  for leaf, ref in zip(
    jax.tree.leaves(got.params), jax.tree.leaves(want.params), strict=True
  ):
    unpadded.append(np.asarray(leaf)[: ref.shape[0]])
  # The reset restores both paths to the same init values, exactly; the
  # steps before and after differ as in _assert_matches.
  runner_testlib.assert_within_path_length(
    jax.tree.unflatten(jax.tree.structure(want.params), unpadded),
    want.params,
    path,
    2 * STEPS,
  )


def _assert_shardings_of_params(setup, state):
  rows = NamedSharding(setup.mesh, P("model", None))
  mask = jax.tree.leaves(setup.table_mask)
  for leaf, is_table in zip(jax.tree.leaves(state.params), mask, strict=True):
    if is_table:
      assert leaf.sharding.is_equivalent_to(rows, leaf.ndim), leaf.sharding


def test_train_and_evaluate_runs_on_a_mesh(dataset, tmp_path):
  """End to end on a mesh (MEDA: the epoch-2 reset included).

  Its values are not compared with a single-device run: after two epochs of
  float32 training the two differ by amounts that depend on the CPU (see
  runner_testlib); test_meda_reset_on_a_mesh_matches_one_device compares
  the steps and the reset in float64.
  """
  config = CONFIG.replace(epochs=2, optimizer="meda", mesh="2x4")
  run = train.train_and_evaluate(config, dataset, str(tmp_path / "mesh"))
  assert [e["epoch"] for e in run["epochs"]] == [1, 2]
  for epoch in run["epochs"]:
    assert 0.5 < epoch["eval_auc"] < 1 and 0.5 < epoch["valid_auc"] < 1
    assert 0 < epoch["eval_logloss"] < 0.7 and 0 < epoch["train_loss"] < 0.7
    assert epoch["embedding_sq_norm"] > 0
