"""benchmarks/perf_report.py: docs/PERFORMANCE.md's tables match docs/perf/."""

import json

from benchmarks import perf_report


def test_committed_tables_match_the_raw_outputs():
  assert perf_report.main(["--check"]) == 0


def _results(path, rows):
  results = {
    str(n): {
      name: [ms / 1e3, 0, ms / 1e3, 0, 1.5]
      for name, _ in perf_report.DENSE + perf_report.SPARSE
    }
    for n, ms in rows
  }
  path.write_text(json.dumps({"bandwidth": 1e10, "results": results}))


def test_dense_ratios_are_to_adamw(tmp_path):
  _results(tmp_path / "optimizer_step.json", [(100_000, 1.0), (1_000_000, 8)])
  table = perf_report.dense(str(tmp_path)).splitlines()
  # N below 1e6 is left out: the dense path's targets are for large tables.
  assert len(table) == 3
  assert table[2].startswith("| 1e6 | 8.0 | 8.0 (1.00) |")


def test_render_replaces_only_marked_blocks(tmp_path):
  _results(tmp_path / "optimizer_step.json", [(4_000_000, 2.5)])
  text = "a\n<!-- table:sparse -->\nold\n<!-- /table -->\nb\n"
  out = perf_report.render(text, str(tmp_path))
  assert out.startswith("a\n<!-- table:sparse -->\n| N |")
  assert "| 4e6 | 2.5 (1.5) |" in out and out.endswith("<!-- /table -->\nb\n")


def test_targets_say_met_or_missed_per_size(tmp_path):
  _results(tmp_path / "optimizer_step.json", [(1_000_000, 10.0)])
  contenders = {
    "sparse_adam_ar": {"median_s": 0.010, "max_over_median": 1.2},
    "sparse_adagrad_ar": {"median_s": 0.009, "max_over_median": 1.4},
    "torch SparseAdam": {"median_s": 0.019, "max_over_median": 1.0},
    "fbgemm EXACT_ADAGRAD": {"median_s": 0.008, "max_over_median": 1.0},
  }
  peers_run = {"results": {"1000000": {"contenders": contenders}}}
  (tmp_path / "peers.json").write_text(json.dumps(peers_run))
  rows = {
    line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:]
    for line in perf_report.targets(str(tmp_path)).splitlines()[2:]
  }
  # Every dense contender took 10 ms in the fake run: ratios of 1.
  assert rows["adam_ar, candidates / optax.adamw (optimizer step)"] == [
    "<= 1.03",
    "1.00 met |",
  ]
  assert rows["adam_ar lazy / optax.adamw (optimizer step)"][1] == "1.00 met |"
  sparse = "sparse_adagrad_ar / fbgemm EXACT_ADAGRAD (train step)"
  assert rows[sparse][1] == "1.12 missed |"
  assert rows["torch SparseAdam / sparse_adam_ar (train step)"] == [
    ">= 2",
    "1.90 missed |",
  ]
  assert rows["sparse_adam_ar: slowest / median step"][1] == "1.20 met |"
  assert rows["sparse_adagrad_ar: slowest / median step"][1] == "1.40 missed |"


def test_end_to_end_gives_paired_ratios_per_batch(tmp_path):
  for name, batch, rates in [
    ("train_throughput.json", 2048, {"adam": [100, 200], "adam_ar": [90, 200]}),
    ("train_throughput_b256.json", 256, {"adam": [10, 10], "adam_ar": [8, 9]}),
  ]:
    run = {"optimizers": ["adam", "adam_ar"], "batch_size": batch}
    run["examples_per_s"] = rates
    (tmp_path / name).write_text(json.dumps(run))
  lines = perf_report.end_to_end(str(tmp_path)).splitlines()
  assert lines[0] == "| batch | adam examples/s | adam_ar | raw output |"
  # Paired: the median of the per-round ratios (0.9, 1.0), not of the rates.
  assert lines[2].startswith("| 2048 | 150 | 0.950 | [train_throughput.txt]")
  assert lines[3].startswith("| 256 | 10 | 0.850 | [train_throughput_b256")
