"""Tests of the config presets and the command-line flags."""

import numpy as np
import pytest

from examples.ctr import config as config_lib
from examples.ctr import main


def test_alpha_grid_is_the_papers():
  grid = np.asarray(config_lib.ALPHA_GRID)
  # float64 log10 of decimal literals: within an ulp (default rtol 1e-7).
  np.testing.assert_allclose(np.log10(grid), np.arange(-6.5, -0.5, 0.5))
  assert len(grid) == 12


def test_default_config_has_the_papers_values():
  c = config_lib.get_config("default")
  assert (c.embedding_dim, c.batch_size, c.epochs) == (32, 2048, 4)
  assert c.learning_rate is None  # resolved per family: 1e-3 / 1e-2
  assert c.alphas == config_lib.ALPHA_GRID
  assert c.resolved_workdir == "runs/default"


def test_flags_override_the_preset():
  c = main.parse_config(
    [
      "--config",
      "demo",
      "--optimizers",
      "adam,adamw",
      "--alphas",
      "1e-5",
      "--seeds",
      "0,1,2",
      "--learning-rate",
      "3e-4",
      "--weight-decay",
      "none",
      "--model-options",
      '{"mlp_widths": [8]}',
      "--workdir",
      "/x",
    ]
  )
  assert c.mode == "compare" and c.name == "demo"
  assert c.optimizers == ("adam", "adamw")
  assert c.alphas == (1e-5,) and c.seeds == (0, 1, 2)
  assert c.learning_rate == 3e-4 and c.weight_decay is None
  assert c.model_options == {"mlp_widths": [8]}
  assert c.resolved_workdir == "/x"


def test_positional_mode_and_bad_values():
  assert main.parse_config(["train", "--config", "demo"]).mode == "train"
  with pytest.raises(ValueError, match="unknown optimizer"):
    main.parse_config(["--optimizer", "lion"])
  with pytest.raises(ValueError, match="unknown config"):
    config_lib.get_config("nope")


@pytest.mark.parametrize(
  "flag, replacement",
  [
    ("--candidate-rows", "--batch-ids-as-candidates"),
    ("--lazy", "--optimizer adam_ar_lazy"),
  ],
)
def test_replaced_flags_name_their_replacement(flag, replacement, capsys):
  with pytest.raises(SystemExit):
    main.parse_config([flag])
  assert f"{flag} is now {replacement}" in capsys.readouterr().err
