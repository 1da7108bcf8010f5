"""Tests of the runner's sparse row-update training (``--sparse-updates``).

The sparse step must train like the dense runner with the lazy optimizers
(same batches; compared in float64, where the two summation orders agree),
compile once, run end to end through the command line, resume, and reject
what it cannot train.
"""

import os

import cli_testlib
import jax
import numpy as np
import pytest
import runner_testlib

from examples.ctr import config as config_lib
from examples.ctr import results
from examples.ctr import sparse_train
from examples.ctr import train

ALPHA = 0.05  # large, so that rows skipped for a few steps are decayed
STEPS = 8


@pytest.mark.parametrize(
  "model, optimizer",
  [("dnn", "adam_ar_lazy"), ("wdl", "adam_ar_lazy"), ("dnn", "adagrad_ar")],
)
def test_sparse_matches_dense_runner(
  config, dataset, train_batches, model, optimizer
):
  """Both paths train in float64, where their difference stays bounded.

  In float32 the two paths sum each row's gradient in a different order, and
  Adam divides a nearly cancelled sum by its own magnitude: a rounding
  difference of one step becomes a relative difference of 1e-4 or more in a
  few entries after a few steps, by an amount that depends on the CPU's
  instruction set. In float64 the summation order costs ~1e-16; what is left
  is deterministic: a few scalars (hyperparameters, Adam's bias correction)
  that one path computes in float32. Each is off by at most one float32 ulp,
  so each step's update of an entry differs by at most ~2 * eps32 times its
  size, and the paths may drift apart by at most ``TOL_ULPS * eps32`` times
  the entry's path length (runner_testlib.assert_within_path_length).
  """
  config = config.replace(model=model)
  batches = train_batches[:STEPS]
  dense = train.create_train_state(config, dataset.fields, optimizer, ALPHA, 0)
  dense_step = train.make_train_step(dense.graphdef, dense.spec)
  sparse = train.create_train_state(
    config.replace(sparse_updates=True), dataset.fields, optimizer, ALPHA, 0
  )
  sparse_step = train.make_train_step(sparse.graphdef, sparse.spec)
  with jax.enable_x64(True):
    dense_state, path_length, dense_losses = runner_testlib.run_float64(
      dense_step, dense.state, batches
    )
    sparse_state, _, sparse_losses = runner_testlib.run_float64(
      sparse_step, sparse.state, batches
    )
    # The losses of parameters that differ by < 1e-7 (see below).
    np.testing.assert_allclose(
      sparse_losses, dense_losses, rtol=STEPS * runner_testlib.EPS32
    )
    mask = runner_testlib.flat(dense.table_mask)
    assert sum(bool(m) for m in mask.values()) >= 4  # tables are compared
    runner_testlib.assert_within_path_length(
      sparse_state.params, dense_state.params, path_length, STEPS
    )
    # The decay acted: some table rows were touched after skipping steps.
    last = sparse_state.opt_state.tables.last_step
    table_last = np.concatenate([np.ravel(x) for x in jax.tree.leaves(last)])
    assert table_last.max() == STEPS
    assert ((table_last > 0) & (table_last < STEPS)).any()
    assert int(sparse_state.opt_state.tables.count) == STEPS


def test_one_compilation_for_varying_unique_ids(config, dataset, train_batches):
  setup = train.create_train_state(
    config.replace(sparse_updates=True), dataset.fields, "adam_ar", 1e-3, 0
  )
  step = train.make_train_step(setup.graphdef, setup.spec)
  state = setup.state
  batches = train_batches[:4]
  # One batch with a single repeated id per field: far fewer unique ids.
  first = batches[0]
  same = first._replace(
    features={k: np.full_like(v, v[0]) for k, v in first.features.items()}
  )
  counts = set()
  for batch in [*batches, same]:
    rb = sparse_train.dedup_batch(batch, setup.spec.capacities)
    counts.add(
      tuple(
        int((v < setup.spec.capacities[f][0]).sum()) for f, v in rb.ids.items()
      )
    )
    state, metrics = step(state, batch)
    assert np.isfinite(float(metrics["loss"]))
  assert len(counts) == 5
  assert step.jitted._cache_size() == 1
  assert setup.spec.hyperparams["lazy"] is True  # adam_ar trains lazily


def _run_main(workdir, *flags):
  return cli_testlib.run_train(
    workdir, "adam_ar_lazy", "--sparse-updates", *flags
  )[0]


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sparse"))
  return workdir, _run_main(workdir)


def test_main_end_to_end(sparse_run):
  workdir, runs = sparse_run
  on_disk = results.read_results(os.path.join(workdir, "results.json"))
  assert on_disk == runs and len(runs) == 1
  run = runs[0]
  assert run["optimizer"] == "adam_ar_lazy" and run["alpha"] == 1e-3
  assert run["hyperparams"]["sparse_updates"] is True
  assert [e["epoch"] for e in run["epochs"]] == [1, 2]
  for epoch in run["epochs"]:
    assert 0.6 < epoch["eval_auc"] < 1 and 0.6 < epoch["valid_auc"] < 1
    assert 0 < epoch["eval_logloss"] < 0.7 and 0 < epoch["train_loss"] < 0.7
    assert epoch["embedding_sq_norm"] > 0


def test_resume_reproduces_the_uninterrupted_run(sparse_run, tmp_path):
  _, runs = sparse_run
  workdir = str(tmp_path)
  _run_main(workdir, "--epochs", "1")
  resumed = _run_main(workdir, "--resume")
  want, got = runs[0]["epochs"], resumed[0]["epochs"]
  assert [e["epoch"] for e in got] == [1, 2]
  for key in ("train_loss", "eval_auc", "eval_logloss", "embedding_sq_norm"):
    np.testing.assert_allclose(got[1][key], want[1][key], rtol=1e-5)


def test_resume_with_the_other_path_is_rejected(sparse_run):
  workdir, _ = sparse_run
  run_dir = os.path.join(workdir, "runs", os.listdir(f"{workdir}/runs")[0])
  config = config_lib.get_config("test").replace(
    optimizer="adam_ar_lazy", alpha=1e-3, resume=True, epochs=3
  )
  with pytest.raises(ValueError, match="trained with --sparse-updates"):
    train.train_and_evaluate(config, train.load_dataset(config), run_dir)


@pytest.mark.parametrize(
  "changes, match",
  [
    (dict(optimizer="adam"), "supports the optimizers"),
    (dict(optimizer="meda"), "supports the optimizers"),
    (dict(mode="compare", optimizers=("adam_ar", "adamw")), "'adamw'"),
    (dict(optimizer="adagrad_ar", ar_tables_only=False), "ar_tables_only"),
  ],
)
def test_bad_combinations_are_rejected(config, changes, match):
  with pytest.raises(ValueError, match=match):
    config.replace(sparse_updates=True, **changes)


def test_optimizer_override_is_rejected(config, dataset, tmp_path):
  config = config.replace(sparse_updates=True, optimizer="adam_ar")
  with pytest.raises(ValueError, match="supports the optimizers"):
    train.train_and_evaluate(config, dataset, str(tmp_path), optimizer="sam")
