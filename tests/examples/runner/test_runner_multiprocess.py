"""Multi-process training: 2 processes x 4 CPU devices on 127.0.0.1.

Two ``python -m examples.ctr`` processes join one ``jax.distributed`` job
(coordinator on a free local port, 4 simulated CPU devices each) and train
the test config for one epoch on a 2x4 mesh, dense and sparse path, each
process reading only its half of every batch. The results they write
(process 0 only), their checkpoint's params and the AUC must equal the same
run in this one process on 8 devices; the 2-process checkpoint must restore
in one process and continue exactly like the 1-process one.

Tolerance: both jobs run the same partitioned program on the same 2x4 mesh.
The only cross-process sums are over ``data`` (2 shards: ``a + b``, which
is commutative, so exact in any order) and over ``model`` (lookups of rows
that only one shard holds, the others adding exact zeros), so the params
are expected to agree to the last bit; the comparison allows one float32
ulp of each entry's size (``rtol=eps32``, ``atol=eps32 * max |param|``) in
case the two runtimes' all-reduce trees differ.
"""

import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from examples.ctr import checkpoints
from examples.ctr import compare
from examples.ctr import main
from examples.ctr import results
from examples.ctr import sharding
from examples.ctr import train

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)

REPO = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
RUN = "adam_ar-alpha0.001-seed0"  # the test config's run
TIMEOUT_S = 240  # both processes are killed past this
EPS32 = float(np.finfo(np.float32).eps)
FLAGS = [
  "train",
  "--config",
  "test",
  "--mesh",
  "2x4",
  "--epochs",
  "1",
  "--subsample",
  "1024",
  "--no-progress",
]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch_two(workdir, extra, via_env):
  """Runs the CLI in 2 processes; kills both and shows stderr on failure."""
  address = f"127.0.0.1:{_free_port()}"
  procs = []
  for index in range(2):
    env = dict(
      os.environ,
      XLA_FLAGS="--xla_force_host_platform_device_count=4",
      JAX_PLATFORMS="cpu",
    )
    argv = [*FLAGS, *extra, "--workdir", str(workdir)]
    if via_env:
      env.update(
        JAX_COORDINATOR_ADDRESS=address,
        JAX_NUM_PROCESSES="2",
        JAX_PROCESS_ID=str(index),
      )
    else:
      argv += [
        "--coordinator-address",
        address,
        "--num-processes",
        "2",
        "--process-id",
        str(index),
      ]
    procs.append(
      subprocess.Popen(
        [sys.executable, "-m", "examples.ctr", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=TIMEOUT_S))
  except subprocess.TimeoutExpired:
    pass
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        outputs.append(proc.communicate())
  codes = [proc.returncode for proc in procs]
  if codes != [0, 0]:
    logs = "\n".join(
      f"--- process {i} (exit {c}) stderr:\n{err[-4000:]}"
      for i, (c, (_, err)) in enumerate(zip(codes, outputs, strict=False))
    )
    pytest.fail(f"2-process job failed:\n{logs}")
  return [out for out, _ in outputs]


def _config(extra, workdir, **changes):
  config = main.parse_config([*FLAGS, *extra, "--workdir", str(workdir)])
  return config.replace(**changes)


def _params(config, dataset, run_dir):
  """The params of ``run_dir``'s latest checkpoint, unpadded, on the host."""
  mesh = sharding.create_mesh("2x4")
  setup = train.create_train_state(
    config, dataset.fields, config.optimizer, config.alpha, config.seed, mesh
  )
  manager = checkpoints.checkpoint_manager(str(run_dir))
  state, step, _ = checkpoints.restore_latest(manager, setup.state)
  manager.close()
  return step, jax.tree.map(np.asarray, state.params)


def _assert_same_params(got, want):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    atol = EPS32 * float(np.max(np.abs(b), initial=0.0))
    np.testing.assert_allclose(a, b, rtol=EPS32, atol=atol)


def _assert_same_records(got, want):
  for g, w in zip(got["epochs"], want["epochs"], strict=True):
    for key in ("eval_auc", "valid_auc", "eval_logloss", "train_loss"):
      np.testing.assert_allclose(g[key], w[key], rtol=1e-6)


@pytest.mark.parametrize(
  "extra, via_env",
  [([], False), (["--sparse-updates"], True)],
  ids=["dense", "sparse"],
)
def test_two_processes_match_one_and_resume_in_one(extra, via_env, tmp_path):
  two, one = tmp_path / "two", tmp_path / "one"
  stdouts = _launch_two(two, extra, via_env)
  assert "results:" in stdouts[0] and "results:" not in stdouts[1]

  config = _config(extra, one)
  dataset = train.load_dataset(config)
  (want,) = compare.run_experiment(config, dataset)
  (got,) = results.read_results(str(two / "runs" / RUN / "results.json"))
  assert len(got["epochs"]) == 1
  _assert_same_records(got, want)
  step, got_params = _params(config, dataset, two / "runs" / RUN)
  want_step, want_params = _params(config, dataset, one / "runs" / RUN)
  assert step == want_step
  _assert_same_params(got_params, want_params)

  # The 2-process checkpoint continues in one process like the 1-process
  # one (a copy, so that both continue from their own epoch 1).
  shutil.copytree(two, tmp_path / "two_then_one")
  continued = []
  for workdir in (tmp_path / "two_then_one", one):
    resumed = _config(extra, workdir, epochs=2, resume=True)
    (run,) = compare.run_experiment(resumed, dataset)
    assert len(run["epochs"]) == 2
    continued.append((run, _params(resumed, dataset, workdir / "runs" / RUN)))
  (got, (step, got_params)), (want, (want_step, want_params)) = continued
  assert step == want_step
  _assert_same_records(got, want)
  _assert_same_params(got_params, want_params)
