"""The experiment configuration: one dataclass, the paper's defaults, presets.

Usage: ``config = get_config("demo").replace(epochs=2)``.

Every hyperparameter of the paper is a field whose default is the paper's value
(embedding dim 32, zero-initialised embeddings, Adam lr 1e-3, Adagrad lr
1e-2, batch 2048, 4 epochs). :mod:`examples.ctr.main` turns every field into a
command-line flag. Named presets (``get_config(name)``):

* ``default``: the paper's settings on the synthetic dataset.
* ``demo``: the README's main job: Adam, AdamW and AdamAR (weight decay and
  alpha each the best of one small grid of decays per epoch, chosen on
  validation), DNN, synthetic data, 4 epochs, a few CPU minutes.
* ``test``: a CPU-sized toy (seconds) for tests.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from examples.ctr import optimizers as optimizers_lib

#: The paper's alpha grid: 10^n for n = -6.5, -6, ..., -1.
ALPHA_GRID = tuple(float(10.0**n) for n in np.arange(-6.5, -0.99, 0.5))

#: Optimizers that ``sparse_updates`` can train (``adam_ar`` with lazy
#: moments; see :mod:`examples.ctr.sparse_train`).
SPARSE_OPTIMIZERS = ("adam_ar", "adam_ar_lazy", "adagrad_ar")

#: Optimizers whose sparse path is the dense runner's optimizer (within
#: float32 rounding): the ones ``sparse_updates="auto"`` may move to it
#: (``adam_ar`` trains lazily there, a different optimizer).
AUTO_SPARSE_OPTIMIZERS = ("adam_ar_lazy", "adagrad_ar")

#: The values of ``sparse_updates``.
UPDATE_PATHS = (False, True, "auto")

#: Sparse optimizers with Adam moments (``catch_up_moments``).
CATCH_UP_OPTIMIZERS = ("adam_ar", "adam_ar_lazy")


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything one experiment needs.

  Attributes:
    name: experiment name; the default workdir is ``runs/<name>``.
    mode: ``"train"`` (one run) or ``"compare"`` (optimizers x alphas x
      seeds, then the paper-style table).
    workdir: output folder (results JSON, plots, checkpoints); default
      ``runs/<name>``.
    resume: continue unfinished runs from their latest complete checkpoint
      (an epoch end, or a step of an epoch with ``checkpoint_every``).
    checkpoint: save a checkpoint after every epoch (needed for resume).
    checkpoint_every: also save a checkpoint every that many training steps
      (counted over the whole run), in the middle of epochs; 0 saves at the
      epoch ends only. A mid-epoch checkpoint carries the position in the
      epoch and its running metrics, so ``resume`` continues bitwise as if
      uninterrupted.
    checkpoints_to_keep: how many of the newest checkpoints are kept.
    skip_nonfinite: skip every training step whose gradient has a NaN or
      infinite entry (``optax.apply_if_finite``; the sparse path selects the
      old state): params, optimizer and model state stay as they were, and
      the results count the skipped steps.
    progress: show a progress bar per epoch.
    dataset: dataset name (``synthetic`` needs no files).
    data_path: folder or file of the dataset (unused by ``synthetic``).
    dataset_options: keyword options of the dataset loader.
    model: backbone: ``dnn``, ``wdl``, ``xdeepfm`` or ``wukong``.
    embedding_dim: embedding dimension (32 in the paper).
    model_options: further keyword options of the backbone.
    optimizer: a name of :data:`examples.ctr.optimizers.OPTIMIZERS` (train
      mode).
    learning_rate: None for the paper's value (1e-3 Adam family, 1e-2
      Adagrad family).
    alpha: AdamAR/AdagradAR decay per skipped step (train mode).
    ar_tables_only: apply the AR decay to the per-ID tables only (dense
      weights are touched every step and get none anyway, except weights
      with exactly zero gradient rows, e.g. behind dead ReLUs).
    weight_decay: AdamW's decay; None means ``alpha / learning_rate``
      (optax's adamw multiplies its decay by the learning rate).
    sam_rho: SAM's adversarial step size.
    adagrad_initial_accumulator: initial value of the Adagrad accumulator
      (``adagrad``, ``adagrad_ar``); 0.1 is optax's default.
    batch_size: training batch size (the last partial batch is dropped).
    eval_batch_size: evaluation batch size (the last batch is padded and
      masked, so every example counts once).
    epochs: passes over the training data.
    subsample: keep only the first that many examples of every split (smoke
      tests of a pipeline); None keeps all.
    seed: model init and per-epoch shuffles derive from it.
    bucket_field: field whose IDs are split into frequency buckets; None
      picks the field with the most IDs.
    num_buckets: number of equal-count frequency buckets.
    ar_buckets: ``bucket_sub`` (the paper's bucket substitution): the AR
      decay on the IDs of the rarest that many buckets of ``bucket_field``,
      AdamW's decay (``alpha`` per step) on every other table row; 0 is
      AdamW, ``num_buckets`` is AR on that field.
    optimizers: optimizers of compare mode.
    alphas: alpha grid of compare mode.
    alpha_per_epoch: state ``alpha`` and ``alphas`` as the decay per epoch
      (batch-size invariant): a run uses ``alpha / steps_per_epoch`` per
      step (AdamW: ``weight_decay = that / lr``). AR's total decay of a row
      over an epoch is about ``alpha * steps_per_epoch`` whatever the row's
      frequency, and a row unseen for ``1 / alpha`` epochs is wiped.
    seeds: seeds of compare mode.
    confirm_seeds: compare mode: further seeds run only at each optimizer's
      alpha chosen on validation over ``seeds`` (cheap extra seeds for the
      reported rows).
    select_by: how compare mode picks the best alpha on the validation
      split: ``"last"`` (validation AUC after the last epoch) or ``"best"``
      (best validation AUC over epochs); both use the mean over seeds.
    mesh: device mesh ``DATAxMODEL`` (e.g. ``2x4``: batches split 2 ways,
      per-ID tables split by rows 4 ways; see :mod:`examples.ctr.sharding`
      and docs/SCALING.md); None trains on one device.
    sparse_updates: the update path: True (``--sparse-updates``) trains
      the per-ID tables with the sparse row-update path
      (:mod:`examples.ctr.sparse_train`): only the rows of a batch's unique
      ids are gathered, differentiated and updated. Exactly lazy AdamAR /
      AdagradAR on the tables (``adam_ar`` is trained lazy too) and
      ``optax.adam`` / ``optax.adagrad`` on the dense weights, i.e. the
      dense runner's ``adam_ar_lazy`` / ``adagrad_ar`` with
      ``ar_tables_only``. Only with those optimizers; with a ``mesh``
      each ``model`` shard updates the unique rows it owns. False
      (``--no-sparse-updates``) trains on the dense path. ``"auto"``
      (``--sparse-updates=auto``) picks per run: sparse only for
      ``adam_ar_lazy`` / ``adagrad_ar`` with ``ar_tables_only`` and tables
      of at least ``sparse_train.AUTO_MIN_ROWS_PER_ID`` rows per id a step
      touches, else dense; the run prints its choice and records it
      (:func:`examples.ctr.sparse_train.choose_update_path`). Dense by
      default (auto would move some committed dense runs to the sparse
      path, equal only within float32 rounding).
    catch_up_moments: with ``--sparse-updates`` and ``adam_ar`` /
      ``adam_ar_lazy``: before a touched row's update, decay its Adam moments
      by the steps it skipped (``optax_ar.sparse_adam_ar(...,
      catch_up_moments=True)``), so that its moments are those of dense
      ``adam_ar`` (its parameters still do not move while untouched).
    batch_ids_as_candidates: pass each batch's IDs to ``adam_ar``,
      ``adam_ar_lazy`` and ``adagrad_ar`` as their update's
      ``candidate_rows``, so that their touched test
      reads only those rows of the dense gradient (bitwise the same
      training: every row with a nonzero gradient is a batch ID; other
      optimizers ignore it). ``--no-batch-ids-as-candidates`` tests every
      row.
    coordinator_address: ``HOST:PORT`` of process 0 for multi-process
      training with ``jax.distributed`` (:mod:`examples.ctr.distributed`;
      or ``$JAX_COORDINATOR_ADDRESS``); None: one process.
    num_processes: the number of processes (or ``$JAX_NUM_PROCESSES``).
    process_id: this process's index, 0 first (or ``$JAX_PROCESS_ID``).
  """

  name: str = "default"
  mode: str = "train"
  workdir: str | None = None
  resume: bool = False
  checkpoint: bool = True
  checkpoint_every: int = 0
  checkpoints_to_keep: int = 3
  skip_nonfinite: bool = False
  progress: bool = True
  dataset: str = "synthetic"
  data_path: str | None = None
  dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  model: str = "dnn"
  embedding_dim: int = 32
  model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  optimizer: str = "adam_ar"
  learning_rate: float | None = None
  alpha: float = 1e-3
  ar_tables_only: bool = True
  weight_decay: float | None = None
  sam_rho: float = 0.05
  adagrad_initial_accumulator: float = 0.1
  batch_size: int = 2048
  eval_batch_size: int = 8192
  epochs: int = 4
  subsample: int | None = None
  seed: int = 0
  bucket_field: str | None = None
  num_buckets: int = 5
  ar_buckets: int = 0
  optimizers: tuple[str, ...] = ("adam", "adamw", "meda", "sam", "adam_ar")
  alphas: tuple[float, ...] = ALPHA_GRID
  alpha_per_epoch: bool = False
  seeds: tuple[int, ...] = (0,)
  confirm_seeds: tuple[int, ...] = ()
  select_by: str = "last"
  mesh: str | None = None
  sparse_updates: bool | str = False
  catch_up_moments: bool = False
  batch_ids_as_candidates: bool = True
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None

  def replace(self, **changes: Any) -> Config:
    """A copy with some fields changed (validated)."""
    return dataclasses.replace(self, **changes)

  def __post_init__(self):
    if self.mode not in ("train", "compare"):
      raise ValueError(f"mode must be train or compare, got {self.mode!r}")
    for name in (self.optimizer, *self.optimizers):
      optimizers_lib.get_registration(name)  # raises for an unknown name
    if self.select_by not in ("last", "best"):
      raise ValueError(f"select_by must be last or best: {self.select_by!r}")
    if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
      raise ValueError("epochs and batch sizes must be positive")
    if self.checkpoint_every < 0 or self.checkpoints_to_keep < 1:
      raise ValueError(
        "checkpoint_every must be >= 0 and checkpoints_to_keep >= 1, got "
        f"{self.checkpoint_every} and {self.checkpoints_to_keep}"
      )
    if self.checkpoint_every and not self.checkpoint:
      raise ValueError(
        "checkpoint_every needs checkpoint (drop --no-checkpoint)"
      )
    if not 0 <= self.ar_buckets <= self.num_buckets:
      raise ValueError(f"ar_buckets must be in 0..{self.num_buckets}")
    if not self.alphas or not self.seeds or not self.optimizers:
      raise ValueError("alphas, seeds and optimizers must be non-empty")
    mesh_pattern = r"[1-9]\d*x[1-9]\d*"
    if self.mesh is not None and not re.fullmatch(mesh_pattern, self.mesh):
      raise ValueError(f"mesh must be DATAxMODEL, e.g. 2x4: {self.mesh!r}")
    if self.sparse_updates not in UPDATE_PATHS:
      raise ValueError(
        "sparse_updates must be True, False or 'auto', got "
        f"{self.sparse_updates!r}"
      )
    if self.sparse_updates is True:
      self._check_sparse_updates()
    if self.catch_up_moments:
      self._check_catch_up_moments()

  def _check_sparse_updates(self):
    """Rejects what ``sparse_updates`` cannot train, with the reason."""
    names = (self.optimizer,) if self.mode == "train" else self.optimizers
    unsupported = [n for n in names if n not in SPARSE_OPTIMIZERS]
    if unsupported:
      raise ValueError(
        f"sparse_updates supports the optimizers {SPARSE_OPTIMIZERS}, got "
        f"{unsupported}; run those without --sparse-updates"
      )
    if not self.ar_tables_only:
      raise ValueError(
        "sparse_updates decays the per-ID tables only (ar_tables_only); "
        "it cannot be combined with --no-ar-tables-only"
      )

  def _check_catch_up_moments(self):
    """Rejects ``catch_up_moments`` where no sparse Adam uses it."""
    if self.sparse_updates is not True:
      raise ValueError(
        "catch_up_moments is an option of the sparse path: add --sparse-updates"
      )
    names = (self.optimizer,) if self.mode == "train" else self.optimizers
    other = [n for n in names if n not in CATCH_UP_OPTIMIZERS]
    if other:
      raise ValueError(
        f"catch_up_moments decays Adam moments: it needs the optimizers "
        f"{CATCH_UP_OPTIMIZERS}, got {other}"
      )

  @property
  def resolved_workdir(self) -> str:
    return self.workdir or f"runs/{self.name}"


def _presets() -> dict[str, Config]:
  test_data = dict(
    num_train=4096,
    num_valid=1024,
    num_test=1024,
    vocab_sizes=(6, 30, 200, 1000),
  )
  return {
    "default": Config(),
    "demo": Config(
      name="demo",
      mode="compare",
      optimizers=("adam", "adamw", "adam_ar"),
      # The synthetic data is calibrated at batch 512 (390 steps per epoch):
      # see examples/ctr/data/synthetic.py for the touch-gap analysis.
      batch_size=512,
      # One grid of decays per epoch for AdamW's weight decay and AdamAR's
      # alpha, each chosen on validation.
      alphas=(1.0, 3.0, 10.0),
      alpha_per_epoch=True,
      seeds=(0,),
    ),
    "test": Config(
      name="test",
      dataset_options=test_data,
      embedding_dim=8,
      model_options={"mlp_widths": (16, 8)},
      learning_rate=1e-2,
      batch_size=128,
      eval_batch_size=512,
      epochs=2,
      optimizers=("adam", "adam_ar"),
      alphas=(1e-3, 1e-2),
      progress=False,
    ),
  }


PRESETS = tuple(_presets())


def get_config(name: str = "default") -> Config:
  """Returns the named preset.

  Args:
    name: one of :data:`PRESETS`.

  Returns:
    The preset's :class:`Config`.

  Example:
    >>> get_config("default").batch_size, get_config("test").epochs
    (2048, 2)
  """
  presets = _presets()
  if name not in presets:
    raise ValueError(f"unknown config {name!r}; known: {tuple(presets)}")
  return presets[name]
