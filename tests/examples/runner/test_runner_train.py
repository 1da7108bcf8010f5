"""End-to-end tests of the runner on tiny synthetic data (seconds each).

One compare (adam, meda, sam, adam_ar x 2 alphas) is run once per module
through the command line and shared by the tests; the resume test repeats one
of its runs with an interruption in the middle of epoch 2.
"""

import contextlib
import io
import json
import os

import numpy as np
import pytest

from examples.ctr import compare
from examples.ctr import config as config_lib
from examples.ctr import main
from examples.ctr import plots
from examples.ctr import progress
from examples.ctr import results
from examples.ctr import train

OPTIMIZERS = "adam,meda,sam,adam_ar"
METRIC_KEYS = set(results.EPOCH_KEYS)


@pytest.fixture(scope="module")
def dataset():
  return train.load_dataset(config_lib.get_config("test"))


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("compare"))
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    runs = main.main(
      [
        "compare",
        "--config",
        "test",
        "--workdir",
        workdir,
        "--optimizers",
        OPTIMIZERS,
        "--alphas",
        "1e-3,1e-2",
      ]
    )
  return workdir, runs, out.getvalue()


def test_compare_writes_the_results_schema(compare_run, dataset):
  workdir, runs, _ = compare_run
  on_disk = results.read_results(os.path.join(workdir, "results.json"))
  assert on_disk == runs
  keys = [results.run_key(r) for r in on_disk]
  assert keys == [
    ("adam", None, 0),
    ("meda", None, 0),
    ("sam", None, 0),
    ("adam_ar", 1e-3, 0),
    ("adam_ar", 1e-2, 0),
  ]
  for run in on_disk:
    assert run["dataset"] == "synthetic" and run["model"] == "dnn"
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    ranges = run["bucket_frequency_ranges"]
    assert len(ranges) == 5 and ranges[0][0] >= 0
    assert all(lo <= hi for lo, hi in ranges)
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    largest = max(dataset.fields, key=lambda f: f.vocab_size)
    assert run["bucket_field"] == largest.name
    assert sum(run["bucket_sizes"]) == largest.vocab_size - 2
    for epoch in run["epochs"]:
      assert METRIC_KEYS <= set(epoch)
      assert 0.5 < epoch["eval_auc"] < 1 and 0.5 < epoch["valid_auc"] < 1
      assert 0 < epoch["eval_logloss"] < 1 and 0 < epoch["train_loss"] < 1
      assert len(epoch["bucket_sq_norms"]) == 5
      # The buckets partition the bucket field's real IDs.
      assert sum(epoch["bucket_sq_norms"]) <= epoch["embedding_sq_norm"]
      assert epoch["embedding_sq_norm"] > 0


def test_compare_prints_the_table_and_marks_the_alpha(compare_run):
  workdir, runs, printed = compare_run
  chosen, scores, split = compare.select_alphas(runs)
  assert split == "valid"
  best = max((1e-3, 1e-2), key=lambda a: scores[("adam_ar", a)])
  assert chosen["adam_ar"] == best
  lines = printed.splitlines()
  assert lines[0].startswith("Test AUC, mean ± std over 1 seed(s)")
  ar_row = next(line for line in lines if line.startswith("adam_ar "))
  ar_run = next(r for r in runs if results.run_key(r) == ("adam_ar", best, 0))
  assert f"{ar_run['epochs'][1]['eval_auc']:.4f} ± 0.0000" in ar_row
  marked = [line for line in lines if line.rstrip().endswith("*")]
  assert len(marked) == 1 and f"{best:.3g}" in marked[0]
  with open(os.path.join(workdir, main.TABLE_FILE)) as f:
    assert f.read().strip() == "\n".join(lines[: len(lines) - 2]).strip()


def test_alpha_changes_the_run_and_shrinks_the_tables(compare_run):
  _, runs, _ = compare_run
  small, large = runs[3]["epochs"][-1], runs[4]["epochs"][-1]
  # Runs of a grid share one compiled step; alpha lives in the opt state.
  assert runs[3]["hyperparams"]["alpha"] == 1e-3
  assert runs[4]["hyperparams"]["alpha"] == 1e-2
  assert large["embedding_sq_norm"] < small["embedding_sq_norm"]
  adam = runs[0]["epochs"][-1]
  assert small["embedding_sq_norm"] < adam["embedding_sq_norm"]


def test_compare_writes_the_plots(compare_run):
  workdir, _, _ = compare_run
  for name in plots.PLOT_FILES:
    with open(os.path.join(workdir, name), "rb") as f:
      head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(os.path.join(workdir, name)) > 5000


def test_plots_cli_merges_results_files(compare_run, tmp_path):
  workdir, runs, _ = compare_run
  # The same runs split over two files plot as one figure set.
  paths = []
  for i, part in enumerate((runs[:2], runs[2:])):
    path = tmp_path / f"part{i}.json"
    path.write_text(json.dumps({"runs": part}))
    paths.append(str(path))
  assert plots.load_runs(paths) == runs
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    plots.main([*paths, "--out", str(tmp_path / "figs")])
  printed = out.getvalue().split()
  assert [os.path.basename(p) for p in printed] == list(plots.PLOT_FILES)
  for path in printed:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_cli_names_a_file_that_is_not_a_results_file(tmp_path):
  bad = tmp_path / "table.json"
  bad.write_text("[1, 2]")
  with pytest.raises(ValueError, match="table.json: not a results file"):
    plots.load_runs([str(bad)])


def test_meda_resets_the_tables_at_the_epoch_boundary(compare_run):
  _, runs, _ = compare_run
  adam, meda = runs[0]["epochs"], runs[1]["epochs"]
  # Identical until the first reset, then smaller tables (one epoch's growth).
  assert meda[0] == {**adam[0], "examples_per_sec": meda[0]["examples_per_sec"]}
  assert meda[1]["embedding_sq_norm"] < 0.9 * adam[1]["embedding_sq_norm"]


class _Interrupt(progress.Hook):
  """Raises KeyboardInterrupt after a few steps of one epoch."""

  def __init__(self, epoch, steps):
    self.epoch, self.steps, self.current, self.count = epoch, steps, 0, 0

  def start_epoch(self, epoch, num_epochs, num_examples):
    self.current, self.count = epoch, 0

  def after_step(self, num_examples):
    self.count += 1
    if self.current == self.epoch and self.count == self.steps:
      raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted(compare_run, dataset):
  workdir, runs, _ = compare_run
  uninterrupted = next(
    r for r in runs if results.run_key(r) == ("adam_ar", 1e-2, 0)
  )
  run_dir = os.path.join(workdir, "resume")
  config = config_lib.get_config("test").replace(
    optimizer="adam_ar", alpha=1e-2
  )
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(
      config, dataset, run_dir, hooks=[_Interrupt(epoch=2, steps=5)]
    )
  # The finished epoch is on disk.
  saved = results.read_results(os.path.join(run_dir, "results.json"))
  assert [e["epoch"] for e in saved[0]["epochs"]] == [1]
  resumed = train.train_and_evaluate(
    config.replace(resume=True), dataset, run_dir
  )
  assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
  # Bitwise by contract: resuming replays the same compiled steps on the same
  # restored values and batches, and XLA:CPU is deterministic.
  for got, want in zip(resumed["epochs"], uninterrupted["epochs"], strict=True):
    for key in ("eval_auc", "valid_auc", "eval_logloss", "embedding_sq_norm"):
      assert got[key] == want[key], key
    np.testing.assert_array_equal(
      got["bucket_sq_norms"], want["bucket_sq_norms"]
    )


def test_resume_skips_finished_runs(compare_run, dataset):
  workdir, runs, _ = compare_run
  config = config_lib.get_config("test").replace(
    mode="compare", workdir=workdir, optimizers=("adam",), resume=True
  )

  class _Fail(progress.Hook):
    def start_epoch(self, *args):
      raise AssertionError("a finished run was trained again")

  again = compare.run_experiment(config, dataset, hooks=[_Fail()])
  assert again == [runs[0]]
