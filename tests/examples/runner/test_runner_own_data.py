"""Own data through plain flags: --data, --label, --categorical."""

import json

import numpy as np
import pytest

from examples.ctr import main


@pytest.fixture
def clicks_csv(tmp_path, monkeypatch):
  """A CSV of 3,000 rows whose click depends on the item (and the user)."""
  monkeypatch.setenv("OPTAX_AR_CACHE", str(tmp_path / "cache"))
  rng = np.random.default_rng(0)
  n = 3000
  user = rng.integers(0, 50, n)
  item = rng.integers(0, 30, n)
  p = 1 / (1 + np.exp(-((item % 3) - 1.0) * 2 - (user % 2) * 0.5))
  click = (rng.random(n) < p).astype(int)
  path = tmp_path / "clicks.csv"
  lines = ["click,user,item,site"] + [
    f"{c},u{u},i{i},s{i % 4}" for c, u, i in zip(click, user, item, strict=True)
  ]
  path.write_text("\n".join(lines) + "\n")
  return path


def test_data_label_categorical_fill_the_tabular_options(clicks_csv):
  config = main.parse_config(
    ["train", "--data", str(clicks_csv), "--label", "click"]
    + ["--categorical", "user,item"]
  )
  assert config.dataset == "tabular" and config.data_path == str(clicks_csv)
  assert config.dataset_options == {
    "label": "click",
    "categorical": ["user", "item"],
  }
  # The same with --dataset tabular --data-path, keeping other options.
  same = main.parse_config(
    ["--dataset", "tabular", "--data-path", str(clicks_csv)]
    + ["--dataset-options", '{"seed": 3}', "--label", "click"]
    + ["--categorical", "user,item"]
  )
  assert same.dataset_options == {
    "seed": 3,
    "label": "click",
    "categorical": ["user", "item"],
  }


@pytest.mark.parametrize(
  "argv, message",
  [
    (["--data", "x.csv", "--label", "click"], "both --label and --categorical"),
    (["--label", "click", "--categorical", "a"], "--data or --dataset tabular"),
    (["--data", "x.csv", "--dataset", "frappe"], "drop --dataset"),
  ],
)
def test_own_data_flags_say_what_is_missing(argv, message, capsys):
  with pytest.raises(SystemExit):
    main.parse_config(argv)
  assert message in capsys.readouterr().err


def test_trains_on_a_csv_written_here(clicks_csv, tmp_path):
  workdir = tmp_path / "run"
  main.main(
    ["train", "--config", "test", "--data", str(clicks_csv)]
    + ["--label", "click", "--categorical", "user,item,site"]
    + ["--epochs", "1", "--no-checkpoint", "--workdir", str(workdir)]
  )
  run = json.loads((workdir / "results.json").read_text())["runs"][0]
  assert run["dataset"] == "tabular"
  assert run["dataset_options"]["categorical"] == ["user", "item", "site"]
  assert run["epochs"][0]["eval_auc"] > 0.6
