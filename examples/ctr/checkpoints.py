"""Per-epoch checkpoints of a training state, for ``--resume``.

Usage: ``manager = checkpoint_manager(run_dir); save_checkpoint(manager,
epoch, state); state, epoch = restore_checkpoint(manager, template)``.

The state (any pytree: params, optimizer state, model state) is saved with
orbax as its list of leaves; typed PRNG keys are saved as key data and
re-wrapped on restore. Restoring needs a template of the same structure (a
freshly initialised state), which gives the tree structure, dtypes, key
implementations and shardings back. Only the latest epoch is kept.

Sharded states (``--mesh``): device arrays are saved as they are, each shard
written by the process that holds it, and restored straight onto the
template's shardings, so a run saved on one mesh shape resumes on another.
Tables padded to a multiple of the ``model`` axis (see
:mod:`examples.ctr.sharding`) may then have another row count: rows are
zero-padded or truncated on restore (only padding rows, which stay zero,
differ); any other shape change is an error.
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


def _is_key(leaf: Any) -> bool:
  return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _to_saved(leaf: Any) -> Any:
  """A savable leaf: device arrays stay (sharded) device arrays."""
  if _is_key(leaf):
    leaf = jax.random.key_data(leaf)
  if isinstance(leaf, jax.Array):
    return leaf
  return np.asarray(leaf)


def _target(leaf: Any) -> Any:
  """What orbax restores a leaf into: shape, dtype and sharding."""
  leaf = _to_saved(leaf)
  if isinstance(leaf, jax.Array):
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  return leaf


def _from_saved(value: Any, template: Any) -> Any:
  if _is_key(template):
    return jax.random.wrap_key_data(value, impl=jax.random.key_impl(template))
  if isinstance(value, jax.Array) and value.dtype == template.dtype:
    return value
  return jnp.asarray(value, dtype=template.dtype)


def _only_rows_differ(manager, epoch, target) -> bool:
  """Whether saved and target shapes differ, and only in axis 0."""
  saved = manager.item_metadata(epoch)["leaves"]
  differ = False
  for key, want in target["leaves"].items():
    have = tuple(saved[key].shape)
    if have == tuple(want.shape):
      continue
    if len(have) != len(want.shape) or have[1:] != tuple(want.shape[1:]):
      raise ValueError(
        f"checkpoint leaf {key} has shape {have}, the state needs "
        f"{tuple(want.shape)}: only row padding may differ"
      )
    differ = True
  return differ


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
    # Lets a fresh manager read the saved shapes (``item_metadata``).
    item_handlers=ocp.StandardCheckpointHandler(),
  )


def save_checkpoint(
  manager: ocp.CheckpointManager, epoch: int, state: Any
) -> None:
  """Saves ``state`` as the checkpoint of ``epoch`` (1-based)."""
  leaves = jax.tree.leaves(state)
  item = {"leaves": {str(i): _to_saved(x) for i, x in enumerate(leaves)}}
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
  target = {"leaves": {str(i): _target(x) for i, x in enumerate(leaves)}}
  # Padded tables of another mesh shape: pad/truncate rows (orbax's
  # non-strict restore); identical shapes keep the strict checks.
  strict = not _only_rows_differ(manager, epoch, target)
  item = manager.restore(
    epoch, args=ocp.args.StandardRestore(target, strict=strict)
  )
  restored = [
    _from_saved(item["leaves"][str(i)], x) for i, x in enumerate(leaves)
  ]
  return jax.tree.unflatten(treedef, restored), int(epoch)


def remove_checkpoints(run_dir: str) -> None:
  """Deletes the checkpoints of ``run_dir`` (a fresh, non-resumed run)."""
  shutil.rmtree(os.path.join(run_dir, CHECKPOINT_DIR), ignore_errors=True)
