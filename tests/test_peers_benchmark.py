"""Tests of ``benchmarks/peers.py`` on a small table (JAX contenders only)."""

import json
import sys

import numpy as np

from benchmarks import peers

JAX = [
  name for name, (system, _) in peers.CONTENDERS.items() if system == "jax"
]


def test_make_data_is_deterministic_and_in_range():
  first = peers.make_data(1000, count=2, zipf=0.5)
  second = peers.make_data(1000, count=2, zipf=0.5)
  for (ids, labels), (ids2, labels2) in zip(first, second, strict=True):
    assert ids.shape == (peers.BATCH, peers.BAG) and ids.dtype == np.int32
    assert labels.shape == (peers.BATCH,)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(labels, labels2)
    assert 0 <= ids.min() and ids.max() < 1000


def test_jax_contenders_table(tmp_path, capsys):
  out = tmp_path / "peers.json"
  report = peers.main(
    ["--sizes", "1e4", "--rounds", "1", "--steps", "2", "--systems", "jax",
     "--batches", "2", "--copy-mib", "16", "--python", sys.executable,
     "--out", str(out)]
  )  # fmt: skip
  result = report["results"][10**4]
  assert result["skipped"] == {}
  assert list(result["contenders"]) == JAX
  for row in result["contenders"].values():
    assert len(row["times_s"]) == 2
    assert min(row["times_s"]) > 0 and row["floor_s"] > 0
    assert row["min_s"] <= row["median_s"]
    # Minor page faults per timed step, and those of the slowest step.
    assert len(row["faults"]) == 2 and min(row["faults"]) >= 0
    assert row["slowest_faults"] == row["faults"][np.argmax(row["times_s"])]
  printed = capsys.readouterr().out
  for name in JAX:
    assert f"| {name} | " in printed
  assert "| / sparse_adam_ar | / sparse_adagrad_ar |" in printed
  assert "| faults: median | slowest |" in printed
  assert "(after 3 warm-up steps)" in printed
  saved = json.loads(out.read_text())
  assert set(saved["results"]["10000"]["contenders"]) == set(JAX)


def test_a_system_that_fails_to_start_is_skipped_with_its_reason(capsys):
  report = peers.main(
    ["--sizes", "1e3", "--rounds", "1", "--steps", "1", "--systems",
     "torch,fbgemm", "--copy-mib", "16", "--peers-python", "/bin/false"]
  )  # fmt: skip
  result = report["results"][1000]
  assert result["contenders"] == {}
  assert set(result["skipped"]) == {"torch", "fbgemm"}
  assert "worker exited (1)" in result["skipped"]["torch"]
  assert "skipped torch: worker exited (1)" in capsys.readouterr().out


def test_a_worker_that_dies_mid_run_drops_its_system(tmp_path):
  fake = tmp_path / "fake_python"
  fake.write_text(
    "#!/bin/sh\n"
    'echo \'{"ready": ["torch SparseAdam", "torch Adagrad"],'
    ' "info": {"versions": "fake"}}\'\n'
    "echo 'out of memory' >&2\n"
    "exit 3\n"
  )
  fake.chmod(0o755)
  report = peers.main(
    ["--sizes", "1e3", "--rounds", "2", "--steps", "1", "--systems", "torch",
     "--copy-mib", "16", "--peers-python", str(fake)]
  )  # fmt: skip
  result = report["results"][1000]
  assert result["contenders"] == {}
  assert result["skipped"] == {"torch": "worker exited (3): out of memory"}
