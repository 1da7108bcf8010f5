"""``--sparse-updates=auto``: the runner picks the dense or the sparse path.

The choice is a rule on table sizes (no training needed to test it); a run
prints it, records it in its results and keeps it on resume.
"""

import os

import cli_testlib
import pytest

from examples.ctr import main
from examples.ctr import results
from examples.ctr import sparse_train
from examples.ctr import train
from examples.ctr.data.schema import FieldSpec

BATCH = 2048
THRESHOLD = sparse_train.AUTO_MIN_ROWS_PER_ID


def _auto(config, **changes):
  return config.replace(sparse_updates="auto", **changes)


def _fields(rows_per_table, num_fields=4):
  return [FieldSpec(f"f{i}", rows_per_table) for i in range(num_fields)]


@pytest.mark.parametrize("optimizer", ["adam_ar_lazy", "adagrad_ar"])
def test_auto_picks_dense_on_small_tables_and_sparse_on_large(
  config, optimizer
):
  config = _auto(config, batch_size=BATCH)
  small = train.update_path(config, _fields(10_000), optimizer)
  large = train.update_path(config, _fields(1_000_000), optimizer)
  assert not small.sparse and large.sparse
  assert small.auto and large.auto
  assert small.describe() == (
    "update path: dense (AR tables hold 40,000 rows, 8,192 ids per step: "
    f"below {THRESHOLD}x)"
  )
  assert large.describe() == (
    "update path: sparse (AR tables hold 4,000,000 rows, 8,192 ids per "
    f"step: at least {THRESHOLD}x)"
  )


def test_auto_threshold_is_rows_per_id(config):
  config = _auto(config)
  at = sparse_train.choose_update_path(
    config, "adam_ar_lazy", THRESHOLD * 1000, 1000
  )
  below = sparse_train.choose_update_path(
    config, "adam_ar_lazy", THRESHOLD * 1000 - 1, 1000
  )
  assert at.sparse and not below.sparse


def test_ids_per_step_are_the_sparse_capacities():
  fields = [FieldSpec("u", 100_000), FieldSpec("c", 50, bag_size=3)]
  assert sparse_train.table_size(fields, 256) == (100_050, 256 + 50)


@pytest.mark.parametrize(
  "changes, reason",
  [
    (dict(), "adam_ar has no sparse path equal to its dense one"),
    (dict(ar_tables_only=False), "--no-ar-tables-only"),
  ],
)
def test_auto_stays_dense_where_sparse_is_another_optimizer(
  config, changes, reason
):
  optimizer = "adam_ar" if not changes else "adam_ar_lazy"
  path = train.update_path(_auto(config, **changes), _fields(10**7), optimizer)
  assert not path.sparse and path.reason == reason


def test_auto_stays_dense_for_optimizers_without_a_sparse_path(config):
  for name in ("adam", "adamw", "meda", "sam"):
    assert not train.update_path(_auto(config), _fields(10**7), name).sparse


def test_explicit_paths_ignore_table_sizes(config):
  sparse = config.replace(sparse_updates=True, optimizer="adam_ar_lazy")
  assert train.update_path(sparse, _fields(10), "adam_ar_lazy").sparse
  dense = config.replace(sparse_updates=False)
  assert not train.update_path(dense, _fields(10**7), "adam_ar_lazy").sparse
  assert not train.update_path(sparse, _fields(10), "adam_ar_lazy").auto


def test_flags():
  assert main.parse_config([]).sparse_updates is False
  assert main.parse_config(["--sparse-updates"]).sparse_updates is True
  assert main.parse_config(["--sparse-updates=auto"]).sparse_updates == "auto"
  assert main.parse_config(["--sparse-updates", "auto"]).sparse_updates == (
    "auto"
  )
  assert main.parse_config(["--no-sparse-updates"]).sparse_updates is False
  # auto accepts optimizers the sparse path cannot train: they stay dense.
  c = main.parse_config(
    ["compare", "--sparse-updates=auto", "--optimizers", "adam,adam_ar_lazy"]
  )
  assert c.sparse_updates == "auto"


def test_bad_values_are_rejected(config, capsys):
  with pytest.raises(SystemExit):
    main.parse_config(["--sparse-updates=maybe"])
  assert "auto, sparse or dense" in capsys.readouterr().err
  with pytest.raises(ValueError, match="True, False or 'auto'"):
    config.replace(sparse_updates="sometimes")
  with pytest.raises(ValueError, match="add --sparse-updates"):
    _auto(config, optimizer="adam_ar_lazy", catch_up_moments=True)


def _run_main(workdir, *flags):
  runs, _, err = cli_testlib.run_train(
    workdir,
    "adam_ar_lazy",
    "--epochs",
    "1",
    "--no-checkpoint",
    "--sparse-updates=auto",
    *flags,
  )
  return runs, err


def test_auto_run_prints_records_and_keeps_its_path(tmp_path, monkeypatch):
  # The test preset's tables: 280 rows (values seen 5 times), batch 128.
  workdir = str(tmp_path / "dense")
  runs, err = _run_main(workdir)
  lines = [line for line in err.splitlines() if "update path" in line]
  assert lines == [
    "update path: dense (AR tables hold 280 rows, 280 ids per step: "
    f"below {THRESHOLD}x)"
  ]
  hyper = runs[0]["hyperparams"]
  assert hyper["sparse_updates"] is False and hyper["update_path"] == "auto"
  run_dir = os.path.join(workdir, "runs", os.listdir(f"{workdir}/runs")[0])
  path = os.path.join(run_dir, "results.json")
  assert results.read_results(path)[0]["hyperparams"] == hyper
  # Resumed where auto would now choose sparse: rejected, not switched.
  monkeypatch.setattr(sparse_train, "AUTO_MIN_ROWS_PER_ID", 1)
  with pytest.raises(ValueError, match="trained with --no-sparse-updates"):
    _run_main(workdir, "--resume", "--epochs", "2")

  workdir = str(tmp_path / "sparse")
  runs, err = _run_main(workdir)
  assert "update path: sparse (AR tables hold 280 rows" in err
  hyper = runs[0]["hyperparams"]
  assert hyper["sparse_updates"] is True and hyper["update_path"] == "auto"
  assert hyper["lazy"] is True
  monkeypatch.setattr(sparse_train, "AUTO_MIN_ROWS_PER_ID", 10**9)
  with pytest.raises(ValueError, match="trained with --sparse-updates"):
    _run_main(workdir, "--resume", "--epochs", "2")
