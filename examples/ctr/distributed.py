"""Multi-process training of the CTR runner with ``jax.distributed``.

Usage: every process runs the same command with its own process id::

  python -m examples.ctr train --config demo --mesh 2x4 \
    --coordinator-address 10.0.0.1:1234 --num-processes 2 --process-id 0

(or sets ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID`` instead of the three flags). :func:`initialize` then calls
``jax.distributed.initialize`` before anything touches a device, and the
``--mesh`` spans the devices of every process (``jax.devices()``), process
0's first. Each process builds the same model from the same seed and keeps
its shards of the state (:func:`examples.ctr.sharding.place_params`), reads
only its rows of every training batch
(:func:`examples.ctr.sharding.process_batches`), and evaluates on the full
evaluation batches (the logits come back replicated to every process).
Results, tables and plots are written by process 0 only
(:func:`is_main_process`); orbax checkpoints are saved by every process
together, each writing its own shards, and restore on any number of
processes and any mesh (docs/SCALING.md).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

ENV_ADDRESS = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def settings(config: Any, environ: Any = None) -> dict[str, Any] | None:
  """``jax.distributed.initialize``'s arguments from flags or environment.

  A config field that is set wins over its environment variable. Returns
  None when neither names a coordinator (one process).

  Raises:
    ValueError: if a coordinator is named without the process count and id.

  Example:
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(coordinator_address=None, num_processes=None,
    ...                     process_id=None)
    >>> settings(c, {}) is None
    True
    >>> s = settings(c, {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234",
    ...                  "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"})
    >>> s["coordinator_address"], s["num_processes"], s["process_id"]
    ('127.0.0.1:1234', 2, 1)
  """
  environ = os.environ if environ is None else environ
  address = config.coordinator_address or environ.get(ENV_ADDRESS)
  if not address:
    return None
  count = config.num_processes
  if count is None and environ.get(ENV_NUM_PROCESSES):
    count = int(environ[ENV_NUM_PROCESSES])
  index = config.process_id
  if index is None and environ.get(ENV_PROCESS_ID):
    index = int(environ[ENV_PROCESS_ID])
  if count is None or index is None:
    raise ValueError(
      "a coordinator address needs --num-processes and --process-id (or "
      f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID})"
    )
  if not 0 <= index < count:
    raise ValueError(f"process id {index} is not in [0, {count})")
  return {
    "coordinator_address": address,
    "num_processes": count,
    "process_id": index,
  }


def initialize(config: Any) -> bool:
  """Starts ``jax.distributed`` if the config or environment asks for it.

  Call it before any other JAX call. Returns whether it started.
  """
  kwargs = settings(config)
  if kwargs is None:
    return False
  jax.distributed.initialize(**kwargs)
  return True


def is_main_process() -> bool:
  """True in process 0 (or without ``jax.distributed``): it writes files."""
  return jax.process_index() == 0


def host_values(tree: Any) -> Any:
  """``tree`` with every array as a NumPy array whole on this host.

  Arrays split over several processes (row-sharded tables) are gathered
  (``multihost_utils.process_allgather``, a collective every process must
  enter); the others are copied.
  """

  def fetch(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if not x.is_fully_replicated:
        return multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(x)

  return jax.tree.map(fetch, tree)


def sync(name: str) -> None:
  """Waits until every process reaches ``sync(name)`` (one process: no-op)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
