"""Per-epoch checkpoints of a training state, for ``--resume``.

Usage: ``manager = checkpoint_manager(run_dir); save_checkpoint(manager,
epoch, state); state, epoch = restore_checkpoint(manager, template)``.

The state (any pytree: params, optimizer state, model state) is saved with
orbax as its list of leaves in numpy form; typed PRNG keys are saved as key
data and re-wrapped on restore. Restoring needs a template of the same
structure (a freshly initialised state), which gives the tree structure,
dtypes and key implementations back. Only the latest epoch is kept.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def _to_host(leaf: jax.Array) -> np.ndarray:
  if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.random.key_data(leaf)
  return np.asarray(leaf)


def _from_host(value: np.ndarray, template: jax.Array) -> jax.Array:
  if jax.dtypes.issubdtype(template.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(value, impl=jax.random.key_impl(template))
  return jnp.asarray(value, dtype=template.dtype)


def checkpoint_manager(run_dir: str) -> ocp.CheckpointManager:
  """An orbax manager of ``<run_dir>/checkpoints`` keeping the latest epoch.

  Example:
    >>> import tempfile
    >>> manager = checkpoint_manager(tempfile.mkdtemp())
    >>> state = {"w": jnp.ones(2), "key": jax.random.key(0)}
    >>> save_checkpoint(manager, 3, state)
    >>> restored, epoch = restore_checkpoint(manager, state)
    >>> epoch, restored["w"].tolist(), str(restored["key"].dtype)
    (3, [1.0, 1.0], 'key<fry>')
    >>> manager.close()
  """
  return ocp.CheckpointManager(
    os.path.abspath(os.path.join(run_dir, CHECKPOINT_DIR)),
    options=ocp.CheckpointManagerOptions(
      max_to_keep=1, enable_async_checkpointing=False
    ),
  )


def save_checkpoint(
  manager: ocp.CheckpointManager, epoch: int, state: Any
) -> None:
  """Saves ``state`` as the checkpoint of ``epoch`` (1-based)."""
  leaves = jax.tree.leaves(state)
  item = {"leaves": {str(i): _to_host(x) for i, x in enumerate(leaves)}}
  manager.save(epoch, args=ocp.args.StandardSave(item))
  manager.wait_until_finished()


def restore_checkpoint(
  manager: ocp.CheckpointManager, template: Any
) -> tuple[Any, int] | None:
  """The latest ``(state, epoch)``, shaped like ``template``; None if none."""
  epoch = manager.latest_step()
  if epoch is None:
    return None
  leaves, treedef = jax.tree.flatten(template)
  target = {"leaves": {str(i): _to_host(x) for i, x in enumerate(leaves)}}
  item = manager.restore(epoch, args=ocp.args.StandardRestore(target))
  restored = [
    _from_host(item["leaves"][str(i)], x) for i, x in enumerate(leaves)
  ]
  return jax.tree.unflatten(treedef, restored), int(epoch)


def remove_checkpoints(run_dir: str) -> None:
  """Deletes the checkpoints of ``run_dir`` (a fresh, non-resumed run)."""
  shutil.rmtree(os.path.join(run_dir, CHECKPOINT_DIR), ignore_errors=True)
