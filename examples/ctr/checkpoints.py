"""Checkpoints of a training run, for ``--resume``: per epoch or per steps.

Usage: ``manager = checkpoint_manager(run_dir, max_to_keep=3);
save_checkpoint(manager, step, state, position); state, step, position =
restore_latest(manager, template)``.

A checkpoint is an orbax step folder (named by the number of training
steps done) with two items: ``state``, the training state (any pytree:
params, optimizer state, model state with its RNG streams) saved as its list
of leaves, and ``position``, a JSON dict the training loop fills with where
it stands (epoch, step in the epoch, the partial epoch's running metrics,
the finished epochs' records: see
:func:`examples.ctr.train.train_and_evaluate`).
Typed PRNG keys are saved as key data and re-wrapped on restore. Restoring
needs a template of the same structure (a freshly initialised state), which
gives the tree structure, dtypes, key implementations and shardings back.
The newest ``max_to_keep`` checkpoints are kept.

Completeness: orbax writes a checkpoint into ``<step>.orbax-checkpoint-tmp*``
and renames it to ``<step>`` only once every item is written (with a
``commit_success.txt`` inside); :func:`restore_latest` only sees renamed
folders, so a process killed while saving leaves a temporary folder that is
never loaded (and is removed when the next manager opens the folder).

Sharded states (``--mesh``): device arrays are saved as they are, each shard
written by the process that holds it, and restored straight onto the
template's shardings, so a run saved on one mesh shape resumes on another.
Tables padded to a multiple of the ``model`` axis (see
:mod:`examples.ctr.sharding`) may then have another row count: rows are
zero-padded or truncated on restore (only padding rows, which stay zero,
differ); any other shape change is an error.

Test hook: with the environment variable ``EXAMPLES_CTR_PAUSE_IN_SAVE=N``
the save of step ``N`` sleeps for an hour after writing its items and
before orbax commits them, so that a test can kill the process in the
middle of a save.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
STATE = "state"
POSITION = "position"
PAUSE_IN_SAVE_ENV = "EXAMPLES_CTR_PAUSE_IN_SAVE"


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


def _only_rows_differ(manager, step, target) -> bool:
  """Whether saved and target shapes differ, and only in axis 0."""
  saved = manager.item_metadata(step)[STATE]["leaves"]
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


class _PositionHandler(ocp.JsonCheckpointHandler):
  """The JSON position item; pauses in the save of the test hook's step."""

  def __init__(self, pause_step: int | None = None):
    super().__init__()
    self._pause_step = pause_step

  async def _save_fn(self, x, directory):
    await super()._save_fn(x, directory)
    if self._pause_step is not None and x.get("step_id") == self._pause_step:
      time.sleep(3600)  # killed here by the test


@ocp.args.register_with_handler(_PositionHandler, for_save=True)
@dataclasses.dataclass
class _PositionSave(ocp.args.JsonSave):
  """Save args of :class:`_PositionHandler`."""


@ocp.args.register_with_handler(_PositionHandler, for_restore=True)
@dataclasses.dataclass
class _PositionRestore(ocp.args.JsonRestore):
  """Restore args of :class:`_PositionHandler`."""


def checkpoint_manager(
  run_dir: str, max_to_keep: int = 1
) -> ocp.CheckpointManager:
  """An orbax manager of ``<run_dir>/checkpoints``.

  Args:
    run_dir: the run's folder.
    max_to_keep: how many of the newest checkpoints to keep.

  Returns:
    A synchronous manager (``save`` returns once the checkpoint is
    committed); temporary folders of interrupted saves are removed.

  Example:
    >>> import tempfile
    >>> manager = checkpoint_manager(tempfile.mkdtemp())
    >>> state = {"w": jnp.ones(2), "key": jax.random.key(0)}
    >>> save_checkpoint(manager, 3, state, {"epoch": 1})
    >>> restored, step, position = restore_latest(manager, state)
    >>> step, position, restored["w"].tolist(), str(restored["key"].dtype)
    (3, {'epoch': 1}, [1.0, 1.0], 'key<fry>')
    >>> manager.close()
  """
  if max_to_keep < 1:
    raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
  pause = os.environ.get(PAUSE_IN_SAVE_ENV)
  return ocp.CheckpointManager(
    os.path.abspath(os.path.join(run_dir, CHECKPOINT_DIR)),
    options=ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep,
      enable_async_checkpointing=False,
      cleanup_tmp_directories=True,
    ),
    # Lets a fresh manager read the saved shapes (``item_metadata``).
    item_handlers={
      STATE: ocp.StandardCheckpointHandler(),
      POSITION: _PositionHandler(int(pause) if pause else None),
    },
  )


def save_checkpoint(
  manager: ocp.CheckpointManager,
  step: int,
  state: Any,
  position: dict[str, Any] | None = None,
) -> None:
  """Saves ``state`` and the JSON dict ``position`` as checkpoint ``step``.

  Returns once the checkpoint is committed.
  """
  leaves = jax.tree.leaves(state)
  item = {"leaves": {str(i): _to_saved(x) for i, x in enumerate(leaves)}}
  position = dict(position or {}, step_id=int(step))
  manager.save(
    step,
    args=ocp.args.Composite(
      **{
        STATE: ocp.args.StandardSave(item),
        POSITION: _PositionSave(position),
      }
    ),
  )
  manager.wait_until_finished()


def restore_latest(
  manager: ocp.CheckpointManager, template: Any
) -> tuple[Any, int, dict[str, Any]] | None:
  """The latest complete ``(state, step, position)``; None if none.

  The state is shaped like ``template`` (same tree, dtypes, key
  implementations and shardings); ``position`` is the dict given to
  :func:`save_checkpoint`.

  Raises:
    ValueError: if the checkpoint has no position (an older layout) or a
      leaf's shape differs from the template's beyond row padding.
  """
  step = manager.latest_step()
  if step is None:
    return None
  if not (manager.directory / str(step) / POSITION).exists():
    raise ValueError(
      f"checkpoint {step} of {manager.directory} has no {POSITION!r} item "
      "(saved by an older runner): start afresh without --resume"
    )
  leaves, treedef = jax.tree.flatten(template)
  target = {"leaves": {str(i): _target(x) for i, x in enumerate(leaves)}}
  # Padded tables of another mesh shape: pad/truncate rows (orbax's
  # non-strict restore); identical shapes keep the strict checks.
  strict = not _only_rows_differ(manager, step, target)
  item = manager.restore(
    step,
    args=ocp.args.Composite(
      **{
        STATE: ocp.args.StandardRestore(target, strict=strict),
        POSITION: _PositionRestore(),
      }
    ),
  )
  restored = [
    _from_saved(item[STATE]["leaves"][str(i)], x) for i, x in enumerate(leaves)
  ]
  position = dict(item[POSITION])
  position.pop("step_id", None)
  return jax.tree.unflatten(treedef, restored), int(step), position


def restore_checkpoint(
  manager: ocp.CheckpointManager, template: Any
) -> tuple[Any, int] | None:
  """The latest ``(state, step)``, shaped like ``template``; None if none."""
  restored = restore_latest(manager, template)
  return None if restored is None else restored[:2]


def remove_checkpoints(run_dir: str) -> None:
  """Deletes the checkpoints of ``run_dir`` (a fresh, non-resumed run)."""
  shutil.rmtree(os.path.join(run_dir, CHECKPOINT_DIR), ignore_errors=True)
