"""The results JSON: written atomically after every epoch, read back by plots.

Usage: ``write_results(path, runs); runs = read_results(path)``.

The file is ``{"runs": [run, ...]}`` where each run is::

  {"dataset": str, "model": str, "optimizer": str, "alpha": float | None,
   "seed": int, "hyperparams": {...}, "bucket_field": str,
   "bucket_sizes": [int, ...], "bucket_frequency_ranges": [[lo, hi], ...],
   "epochs": [{"epoch": int, "eval_auc": float, "eval_logloss": float,
               "valid_auc": float | None, "valid_logloss": float | None,
               "train_loss": float, "embedding_sq_norm": float,
               "bucket_sq_norms": [float, ...], "examples_per_sec": float}]}

``eval_*`` are test-split metrics; ``valid_*`` are the validation split's
(None when the dataset has none). Epochs count from 1. ``bucket_sq_norms``
are the squared norms of the rows of ``bucket_field``'s IDs, split into
equal-count buckets from the rarest (first) to the most frequent by training
frequency (``bucket_frequency_ranges`` gives each bucket's frequencies).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import jax

RUN_KEYS = ("dataset", "model", "optimizer", "alpha", "seed", "epochs")
EPOCH_KEYS = (
  "epoch",
  "eval_auc",
  "eval_logloss",
  "valid_auc",
  "valid_logloss",
  "train_loss",
  "embedding_sq_norm",
  "bucket_sq_norms",
)


def _clean(value: Any) -> Any:
  """JSON has no NaN: non-finite floats become None."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _clean(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_clean(v) for v in value]
  return value


def validate_run(run: dict[str, Any]) -> None:
  """Raises ValueError if ``run`` lacks a key of the schema.

  Example:
    >>> validate_run({"dataset": "d", "model": "dnn", "optimizer": "adam",
    ...               "alpha": None, "seed": 0, "epochs": []})
  """
  missing = [k for k in RUN_KEYS if k not in run]
  if missing:
    raise ValueError(f"run lacks keys {missing}")
  for i, epoch in enumerate(run["epochs"]):
    missing = [k for k in EPOCH_KEYS if k not in epoch]
    if missing:
      raise ValueError(f"epoch {i} lacks keys {missing}")
    if epoch["epoch"] != i + 1:
      raise ValueError(f"epochs out of order: {epoch['epoch']} at {i}")


def write_results(path: str, runs: Sequence[dict[str, Any]]) -> None:
  """Writes ``{"runs": runs}`` atomically (a temp file, then a rename).

  Under ``jax.distributed`` only process 0 writes (the others validate the
  runs and return).

  Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "results.json")
    >>> write_results(path, [])
    >>> read_results(path)
    []
  """
  for run in runs:
    validate_run(run)
  if jax.process_index() != 0:
    return
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".results-", suffix=".json")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump({"runs": _clean(list(runs))}, f, indent=1)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read_results(path: str) -> list[dict[str, Any]]:
  """The runs of a results file (validated); [] when it does not exist."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    runs = json.load(f)["runs"]
  for run in runs:
    validate_run(run)
  return runs


def run_key(run: dict[str, Any]) -> tuple[str, float | None, int]:
  """``(optimizer, alpha, seed)``: what tells the runs of a compare apart."""
  return run["optimizer"], run["alpha"], run["seed"]


def run_name(optimizer: str, alpha: float | None, seed: int) -> str:
  """A folder name for one run.

  Example:
    >>> run_name("adam_ar", 1e-3, 0), run_name("adam", None, 1)
    ('adam_ar-alpha0.001-seed0', 'adam-seed1')
  """
  alpha_part = "" if alpha is None else f"-alpha{alpha:.3g}"
  return f"{optimizer}{alpha_part}-seed{seed}"


def check_same_update_path(path: str, sparse_updates: bool) -> None:
  """Raises ValueError if the run of ``path`` used the other update path.

  The dense and the sparse path have different optimizer states, so one's
  checkpoint cannot be resumed by the other. ``sparse_updates`` is the path
  this run resolved to (``--sparse-updates=auto`` included); the results
  record the path each run took (``hyperparams["sparse_updates"]``, absent
  on the dense path but for ``auto``'s runs).

  Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "results.json")
    >>> write_results(path, [{"dataset": "d", "model": "dnn",
    ...   "optimizer": "adam_ar_lazy", "alpha": 0.1, "seed": 0, "epochs": [],
    ...   "hyperparams": {"sparse_updates": False, "update_path": "auto"}}])
    >>> check_same_update_path(path, False)
    >>> check_same_update_path(path, True)
    Traceback (most recent call last):
    ...
    ValueError: cannot resume ...: it was trained with --no-sparse-updates
    (the dense path); resume with the same path, or start afresh without
    --resume
  """
  previous = read_results(path)
  if not previous:
    return
  hyperparams = previous[0]["hyperparams"]
  was_sparse = bool(hyperparams.get("sparse_updates", False))
  if was_sparse != sparse_updates:
    flag = "--sparse-updates" if was_sparse else "--no-sparse-updates"
    raise ValueError(
      f"cannot resume {path}: it was trained with {flag} (the "
      f"{'sparse' if was_sparse else 'dense'} path); resume "
      "with the same path, or start afresh without --resume"
    )
