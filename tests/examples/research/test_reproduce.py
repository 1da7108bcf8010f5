"""Tests of the runner options reproduce.sh relies on, and of its job list.

The job list is checked for what each job asks of the runner (every flag
parses, the options of a few named jobs), not for how many jobs it has.
"""

import os
import pathlib
import shlex
import subprocess

import pytest

from examples.ctr import compare
from examples.ctr import main as main_lib
from examples.ctr.config import get_config

SCRIPT = (
  pathlib.Path(__file__).resolve().parents[3]
  / "examples/ctr/research/reproduce.sh"
)


def test_confirm_seeds_alpha_per_epoch_subsample_and_epoch_log(
  tmp_path, capsys
):
  config = get_config("test").replace(
    mode="compare",
    workdir=str(tmp_path),
    checkpoint=False,
    epochs=1,
    subsample=1024,  # 8 steps of 128 per epoch
    optimizers=("adam", "adam_ar"),
    alphas=(0.08, 0.8),
    alpha_per_epoch=True,
    seeds=(0,),
    confirm_seeds=(0, 1),  # seed 0 is already in the grid
  )
  runs = compare.run_experiment(config)
  keys = [(r["optimizer"], r["alpha"], r["seed"]) for r in runs]
  chosen = compare.select_alphas(runs)[0]["adam_ar"]
  assert keys == [
    ("adam", None, 0),
    ("adam_ar", 0.08, 0),
    ("adam_ar", 0.8, 0),
    ("adam", None, 1),
    ("adam_ar", chosen, 1),
  ]
  ar = runs[1]
  assert ar["steps_per_epoch"] == 8 and ar["alpha_unit"] == "epoch"
  assert ar["alpha_per_step"] == pytest.approx(0.01)
  assert ar["hyperparams"]["alpha"] == pytest.approx(0.01)
  assert runs[0]["alpha_per_step"] is None
  # The extra seed does not change the choice (made on the shared seed 0).
  assert compare.select_alphas(runs)[0]["adam_ar"] == chosen
  err = capsys.readouterr().err
  assert err.count(" epoch 1: ") == 5 and "adam_ar-alpha0.08-seed0" in err


def test_adamw_weight_decay_follows_the_per_step_alpha(tmp_path):
  from examples.ctr import train

  config = get_config("test").replace(
    checkpoint=False, epochs=1, subsample=512, alpha_per_epoch=True
  )
  dataset = train.load_dataset(config)
  assert len(dataset.train) == 512 and len(dataset.test) == 512
  run = train.train_and_evaluate(
    config, dataset, str(tmp_path), optimizer="adamw", alpha=0.4
  )
  # 4 steps per epoch: 0.1 per step, weight_decay = 0.1 / lr (lr 1e-2).
  assert run["hyperparams"]["weight_decay"] == pytest.approx(10.0)


def _jobs(**env):
  out = subprocess.run(
    ["bash", str(SCRIPT)],
    env=dict(os.environ, DRY_RUN="1", PYTHON="python3", **env),
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  jobs = []
  for line in out.splitlines():
    prio, rest = line.split(" ", 1)
    tag, cmd = rest.split(": ", 1)
    jobs.append((int(prio[1:]), tag, shlex.split(cmd)))
  return jobs


def test_every_job_parses_and_the_headline_comes_first():
  jobs = _jobs()
  assert [p for p, _, _ in jobs] == sorted(p for p, _, _ in jobs)
  tags = [t for _, t, _ in jobs]
  assert len(set(tags)) == len(tags)
  assert any(p == 1 for p, _, _ in jobs)
  for prio, tag, argv in jobs:
    if argv[:3] != ["python3", "-m", "examples.ctr"]:
      assert tag.startswith("touch-gaps")
      continue
    config = main_lib.parse_config(argv[3:])  # validates every flag
    assert config.mode == "compare" and config.epochs == 4
    assert not config.checkpoint and not config.progress
    assert config.workdir.endswith("/" + tag)
    assert config.subsample is None
    if prio == 1:
      assert config.model == "dnn" and config.batch_size in (256, 2048)
      if "adam_ar" in config.optimizers or "adamw" in config.optimizers:
        assert config.alpha_per_epoch and config.confirm_seeds == (1, 2)
        assert len(config.alphas) == 7
      else:
        assert config.seeds == (0, 1, 2)


def test_smoke_mode_and_filters():
  jobs = _jobs(SMOKE="1", PRIORITIES="2", ONLY="uniform")
  assert [t for _, t, _ in jobs] == [
    "amazon-book-uniform-dnn-b2048-adam_ar",
    "amazon-book-uniform-dnn-b2048-adamw",
    "amazon-book-uniform-dnn-b2048-adam",
  ]
  config = main_lib.parse_config(jobs[0][2][3:])
  assert config.epochs == 1 and config.subsample == 3000
  assert config.dataset_options == {"negatives": "uniform"}
  assert len(config.alphas) == 2 and config.confirm_seeds == (1,)


def test_follow_up_jobs_parse_with_their_options():
  jobs = {t: argv for _, t, argv in _jobs(PRIORITIES="7,9")}
  bucket = main_lib.parse_config(jobs["amazon-toys-dnn-b256-bucketsub@k3"][3:])
  assert bucket.optimizers == ("bucket_sub",) and bucket.ar_buckets == 3
  filtered = main_lib.parse_config(
    jobs["amazon-beauty-dnn-b256-filter-user7"][3:]
  )
  assert filtered.dataset_options == {"min_count_fields": {"user": 7}}
  adagrad = main_lib.parse_config(jobs["amazon-toys-dnn-b256-adagrad"][3:])
  assert adagrad.adagrad_initial_accumulator == pytest.approx(1e-6)
  books = main_lib.parse_config(
    jobs["amazon-book-popularity-dnn-b256-adam_ar_lazy"][3:]
  )
  assert books.batch_size == 256 and len(books.alphas) == 3


def test_tail_lazy_adagrad_and_wdl_jobs_parse_with_their_options():
  jobs = {t: argv for _, t, argv in _jobs(PRIORITIES="10")}
  tail = main_lib.parse_config(jobs["synthetic-mincount1-dnn-b512"][3:])
  assert tail.dataset == "synthetic" and tail.dataset_options == {
    "min_count": 1
  }
  assert tail.optimizers == ("adam", "meda", "adamw", "adam_ar")
  assert tail.alphas == pytest.approx((0.316228, 1, 3.16228, 10))
  assert tail.batch_size == 512 and tail.confirm_seeds == (1,)
  lazy = main_lib.parse_config(jobs["amazon-sports-dnn-b256-lazyhi"][3:])
  assert lazy.optimizers == ("adam_ar_lazy",) and lazy.alphas == (10.0,)
  adagrad = main_lib.parse_config(
    jobs["amazon-toys-dnn-b2048@adagrad-lr0.03-acc1e-6"][3:]
  )
  assert adagrad.learning_rate == pytest.approx(0.03)
  assert adagrad.batch_size == 2048 and adagrad.alpha_per_epoch
  wdl = main_lib.parse_config(
    jobs["amazon-book-popularity-wdl-b2048-medasam"][3:]
  )
  assert wdl.model == "wdl" and wdl.dataset_options == {
    "negatives": "popularity"
  }
