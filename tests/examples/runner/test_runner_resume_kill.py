"""Resume after SIGKILL: the runner continues bitwise from a mid-epoch save.

Each case starts the command-line runner as a subprocess with
``--checkpoint-every``, kills it with SIGKILL while it saves a checkpoint in
the middle of an epoch (the test hook ``EXAMPLES_CTR_PAUSE_IN_SAVE`` makes
the save of one step sleep after writing its items, before orbax commits
them), checks that the half-written checkpoint is left as a temporary
folder, resumes with ``--resume`` and compares the end of the run with an
uninterrupted run of the same flags (without ``--checkpoint-every``).

The comparison is exact: both runs execute the same compiled steps on the
same batches in the same order from the same state (a restored checkpoint
holds the saved arrays bit for bit, the JSON position holds float64 values
exactly), so any difference is a bug in what the checkpoint carries, not
rounding. Only ``examples_per_sec`` (a wall-clock rate) may differ.
"""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from examples.ctr import checkpoints
from examples.ctr import results

ROOT = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
STEPS_PER_EPOCH = 2048 // 128  # the test preset's batch, --subsample 2048
EVERY = 3
TIMEOUT_S = 240  # one runner process (imports, compiles, 2 tiny epochs)
XLA_8 = "--xla_force_host_platform_device_count=8"

CASES = {
  "dense": ["--optimizer", "adam_ar", "--mesh", "2x4"],
  "lazy": ["--optimizer", "adam_ar_lazy"],
  "sparse": ["--optimizer", "adam_ar", "--sparse-updates"],
}


def _command(workdir, flags):
  return [
    sys.executable,
    "-m",
    "examples.ctr",
    "train",
    "--config",
    "test",
    "--workdir",
    str(workdir),
    "--alpha",
    "0.01",
    "--subsample",
    "2048",
    *flags,
  ]


def _env(pause_at=None):
  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  if XLA_8 not in env.get("XLA_FLAGS", ""):
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_8).strip()
  env.pop(checkpoints.PAUSE_IN_SAVE_ENV, None)
  if pause_at is not None:
    env[checkpoints.PAUSE_IN_SAVE_ENV] = str(pause_at)
  return env


def _run(workdir, flags):
  """Runs the runner to completion; returns its stderr."""
  done = subprocess.run(
    _command(workdir, flags),
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=TIMEOUT_S,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stderr


def _run_dir(workdir):
  (run_dir,) = glob.glob(os.path.join(workdir, "runs", "*"))
  return run_dir


def _kill_in_save(workdir, flags, step):
  """Starts the runner, SIGKILLs it inside the save of ``step``."""
  process = subprocess.Popen(
    _command(workdir, flags),
    cwd=ROOT,
    env=_env(pause_at=step),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
  )
  pattern = os.path.join(
    workdir, "runs", "*", checkpoints.CHECKPOINT_DIR, f"{step}.orbax-*tmp*"
  )
  try:
    deadline = time.monotonic() + TIMEOUT_S
    # Orbax writes each item into its own temporary folder inside.
    while not glob.glob(os.path.join(pattern, checkpoints.POSITION + "*", "*")):
      assert process.poll() is None, process.stderr.read().decode()[-3000:]
      assert time.monotonic() < deadline, f"no save of step {step}"
      time.sleep(0.05)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
  assert process.returncode == -signal.SIGKILL
  ckpt_dir = os.path.join(_run_dir(workdir), checkpoints.CHECKPOINT_DIR)
  # The half-written checkpoint stays a temporary folder, never a step.
  assert glob.glob(pattern)
  assert not os.path.exists(os.path.join(ckpt_dir, str(step)))
  assert ocp.path.step.checkpoint_steps(ckpt_dir), "no complete checkpoint"
  return max(ocp.path.step.checkpoint_steps(ckpt_dir))


def _final_state(workdir):
  """The leaves of the last checkpoint's state, as saved (NumPy)."""
  ckpt_dir = os.path.join(_run_dir(workdir), checkpoints.CHECKPOINT_DIR)
  last = max(ocp.path.step.checkpoint_steps(ckpt_dir))
  assert last == 2 * STEPS_PER_EPOCH
  with ocp.StandardCheckpointer() as checkpointer:
    state = checkpointer.restore(
      os.path.join(ckpt_dir, str(last), checkpoints.STATE)
    )
  return {k: np.asarray(v) for k, v in state["leaves"].items()}


def _epochs(workdir):
  (run,) = results.read_results(os.path.join(_run_dir(workdir), "results.json"))
  for epoch in run["epochs"]:
    epoch.pop("examples_per_sec")
  return run["epochs"]


@pytest.mark.parametrize("case", list(CASES))
def test_kill_mid_epoch_then_resume_matches_uninterrupted(case, tmp_path):
  flags = CASES[case]
  reference = tmp_path / "reference"
  _run(reference, flags)

  killed = tmp_path / "killed"
  every = [*flags, "--checkpoint-every", str(EVERY)]
  # Killed inside the save of step 9 (epoch 1 of 16 steps): step 6 is
  # the latest complete checkpoint.
  assert _kill_in_save(killed, every, 9) == 6
  if case == "lazy":
    # Resumed, then killed again inside a save in the middle of epoch 2.
    assert _kill_in_save(killed, [*every, "--resume"], 27) == 24
    resumed_at = "epoch 2, step 8 (checkpoint 24)"
  else:
    resumed_at = "epoch 1, step 6 (checkpoint 6)"
  stderr = _run(killed, [*every, "--resume"])
  assert resumed_at in stderr

  assert _epochs(killed) == _epochs(reference)
  want, got = _final_state(reference), _final_state(killed)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert got[key].dtype == want[key].dtype


def test_a_checkpoint_without_position_is_rejected(tmp_path):
  ckpt_dir = tmp_path / checkpoints.CHECKPOINT_DIR
  with ocp.CheckpointManager(ckpt_dir) as manager:  # one item, no position
    manager.save(1, args=ocp.args.StandardSave({"leaves": {"0": np.ones(2)}}))
  manager = checkpoints.checkpoint_manager(str(tmp_path))
  with pytest.raises(ValueError, match="no 'position' item"):
    checkpoints.restore_latest(manager, {"w": np.zeros(2)})
  manager.close()
