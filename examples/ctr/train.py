"""Training and evaluation of one CTR run: the model, the steps, the loop.

Usage: ``run = train_and_evaluate(config, dataset, workdir="runs/x")``.

:func:`create_model` and :func:`create_optimizer` build the parts,
:func:`create_train_state` the initial state, :func:`make_train_step` and
:func:`make_eval_step` the jitted steps, and :func:`train_and_evaluate` runs
the epochs. The state is functional NNX: ``graphdef, params, rest =
nnx.split(model, nnx.Param, ...)``; the train step is a pure jitted
``train_step(state, batch) -> (state, metrics)`` that donates its state and
compiles once (fixed batch size; the last partial training batch is
dropped). Evaluation pads the last batch and drops the padding on the host,
so every example counts exactly once, and computes exact AUC and logloss
there. After every epoch the run's results JSON is rewritten atomically and
an orbax checkpoint (params, optimizer state, model state) is saved with the
run's position; ``config.checkpoint_every`` adds checkpoints in the middle of
epochs (:mod:`examples.ctr.checkpoints`). Per-epoch shuffles derive from
``(seed, epoch)`` and a checkpoint carries the step in its epoch and the
epoch's running metrics (:class:`EpochTotals`), so ``resume`` continues
bitwise where an uninterrupted run would be. ``config.skip_nonfinite``
skips (and counts) the steps whose gradient is not finite
(:func:`skip_nonfinite`).

With ``config.mesh`` (e.g. ``"2x4"``) the run is sharded over a
``("data", "model")`` device mesh (:mod:`examples.ctr.sharding`): batches
split over ``data``, per-ID tables and their optimizer state split by rows
over ``model`` (padded with zero rows to a multiple of it), the rest
replicated; the jitted steps state their input and output shardings.

With ``config.sparse_updates`` the per-ID tables are trained by the sparse
row-update step of :mod:`examples.ctr.sparse_train` instead: the same
:func:`create_train_state` and :func:`make_train_step` build its state and
step (the spec is then a :class:`~examples.ctr.sparse_train.SparseSpec`).
``sparse_updates="auto"`` picks the path per run (:func:`update_path`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import optax_ar
from examples.ctr import checkpoints
from examples.ctr import distributed
from examples.ctr import metrics as metrics_lib
from examples.ctr import models
from examples.ctr import optimizers
from examples.ctr import progress
from examples.ctr import results as results_lib
from examples.ctr import sharding
from examples.ctr import sparse_train
from examples.ctr.config import Config
from examples.ctr.data import registry
from examples.ctr.data import schema
from examples.ctr.data.pipeline import Batch
from examples.ctr.data.pipeline import BatchIterator

RESULTS_FILE = "results.json"


class TrainState(NamedTuple):
  """What a training step carries.

  Attributes:
    params: the model's ``nnx.Param`` state.
    opt_state: the optimizer state.
    rest: the model's other state (RNG streams, batch statistics).
  """

  params: Any
  opt_state: Any
  rest: Any


def load_dataset(config: Config) -> schema.CTRDataset:
  """Loads ``config.dataset`` (``synthetic`` is built in memory).

  With ``config.subsample``, every split keeps only its first that many
  examples (smoke tests; vocabularies and frequencies are the full data's).
  """
  dataset = registry.load_dataset(
    config.dataset, config.data_path, **config.dataset_options
  )
  n = config.subsample
  if n is None:
    return dataset

  def head(split):
    if split is None:
      return None
    features = {k: np.asarray(v[:n]) for k, v in split.features.items()}
    return schema.Split(features, np.asarray(split.labels[:n]))

  return dataclasses.replace(
    dataset,
    train=head(dataset.train),
    valid=head(dataset.valid),
    test=head(dataset.test),
  )


def create_model(
  config: Config, fields: Sequence[schema.FieldSpec], seed: int
) -> nnx.Module:
  """The backbone ``config.model`` with ``config.embedding_dim``."""
  return models.create_model(
    config.model,
    fields,
    rngs=nnx.Rngs(seed),
    embedding_dim=config.embedding_dim,
    **config.model_options,
  )


def create_optimizer(
  config: Config,
  name: str,
  alpha: float | None,
  table_mask: Any,
  buckets: tuple[str, Sequence[np.ndarray]] | None = None,
) -> optimizers.OptimizerSpec:
  """The optimizer ``name`` with the config's hyperparameters.

  ``buckets`` (``(field, ID arrays)`` of the frequency buckets) tells
  ``bucket_sub`` which rows get the AR decay.
  """
  spec = optimizers.create_optimizer(
    name,
    table_mask,
    learning_rate=config.learning_rate,
    alpha=config.alpha if alpha is None else alpha,
    batch_ids_as_candidates=config.batch_ids_as_candidates,
    ar_tables_only=config.ar_tables_only,
    weight_decay=config.weight_decay,
    sam_rho=config.sam_rho,
    adagrad_initial_accumulator=config.adagrad_initial_accumulator,
    ar_buckets=config.ar_buckets,
    buckets=buckets,
  )
  return skip_nonfinite(spec) if config.skip_nonfinite else spec


def skip_nonfinite(spec: optimizers.OptimizerSpec) -> optimizers.OptimizerSpec:
  """``spec`` whose steps skip a gradient with a NaN or infinite entry.

  The transformation is wrapped in ``optax.apply_if_finite`` (which passes
  extra arguments such as ``candidate_rows`` on), with no limit on the
  number of consecutive skips; :func:`make_train_step` then also keeps the
  params and the model state of a skipped step and reports it as
  ``skipped``.

  Raises:
    ValueError: for an optimizer with ``decay_on_read`` (it reads the
      optimizer state's own structure).
  """
  if spec.decay_on_read is not None:
    raise ValueError(
      "skip_nonfinite does not support a decay-on-read optimizer"
    )
  return dataclasses.replace(
    spec,
    tx=optax.apply_if_finite(spec.tx, max_consecutive_errors=2**31 - 1),
    hyperparams=dict(spec.hyperparams, skip_nonfinite=True),
    static_key=(*spec.static_key, "skip_nonfinite"),
  )


def update_path(
  config: Config, fields: Sequence[schema.FieldSpec], optimizer: str
) -> sparse_train.UpdatePath:
  """The update path of a run of ``optimizer`` on tables of ``fields``.

  ``config.sparse_updates`` True or False, or what ``"auto"`` picks for
  these tables (:func:`examples.ctr.sparse_train.choose_update_path`).
  """
  rows, ids = sparse_train.table_size(fields, config.batch_size)
  return sparse_train.choose_update_path(config, optimizer, rows, ids)


class Setup(NamedTuple):
  """A run's initial state and what its steps are built from."""

  graphdef: nnx.GraphDef  # the model in train mode
  eval_graphdef: nnx.GraphDef  # the model in eval mode
  state: TrainState
  table_mask: Any  # per-ID tables of ``state.params``
  spec: optimizers.OptimizerSpec | sparse_train.SparseSpec
  mesh: jax.sharding.Mesh | None = None  # None: one device
  shardings: TrainState | None = None  # of ``state``, with a mesh


def create_train_state(
  config: Config,
  fields: Sequence[schema.FieldSpec],
  optimizer: str,
  alpha: float | None,
  seed: int,
  mesh: jax.sharding.Mesh | None = None,
  buckets: tuple[str, Sequence[np.ndarray]] | None = None,
) -> Setup:
  """Creates the model and optimizer and splits them into a TrainState.

  On the sparse path (:func:`update_path`) the optimizer state is that
  path's (:func:`examples.ctr.sparse_train.init`, its table state split by
  rows like the tables on a mesh). With a ``mesh``, the per-ID
  tables are padded with zero rows to a multiple of the ``model`` axis and
  every leaf of the state is placed on its sharding
  (:func:`examples.ctr.sharding.place_train_state`).
  """
  model = create_model(config, fields, seed)
  model.eval()
  eval_graphdef, _, _ = nnx.split(model, nnx.Param, ...)
  model.train()
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  table_mask = models.per_id_table_mask(params)
  if update_path(config, fields, optimizer).sparse:
    if mesh is None:
      spec, opt_state = sparse_train.init(
        config, optimizer, alpha, params, fields
      )
      state = TrainState(params, opt_state, rest)
      return Setup(graphdef, eval_graphdef, state, table_mask, spec)
    (params, rest), (param_sh, rest_sh) = sharding.place_params(
      params, rest, table_mask, mesh
    )
    spec, opt_state = sparse_train.init(
      config, optimizer, alpha, params, fields, mesh
    )
    opt_sh = sparse_train.opt_state_shardings(opt_state, mesh)
    return Setup(
      graphdef,
      eval_graphdef,
      TrainState(params, opt_state, rest),
      table_mask,
      spec,
      mesh,
      TrainState(param_sh, opt_sh, rest_sh),
    )
  spec = create_optimizer(config, optimizer, alpha, table_mask, buckets)
  if mesh is None:
    state = TrainState(params, spec.tx.init(params), rest)
    return Setup(graphdef, eval_graphdef, state, table_mask, spec)
  state, shardings = sharding.place_train_state(
    spec.tx, params, rest, table_mask, mesh
  )
  return Setup(
    graphdef,
    eval_graphdef,
    TrainState(*state),
    table_mask,
    spec,
    mesh,
    TrainState(*shardings),
  )


# Jitted steps, shared by runs with the same model and optimizer code (an
# alpha grid differs only in hyperparameters held in the optimizer state).
_STEP_CACHE: dict[tuple[Any, ...], Callable[..., Any]] = {}


def make_train_step(
  graphdef: nnx.GraphDef,
  spec: optimizers.OptimizerSpec | sparse_train.SparseSpec,
  mesh: jax.sharding.Mesh | None = None,
  shardings: TrainState | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
  """A jitted ``train_step(state, batch) -> (state, {"loss": mean loss})``.

  The state is donated; the loss is the weighted mean sigmoid
  cross-entropy. For SAM the update gets the gradient function it needs
  (same batch for the adversarial step); a
  :class:`~examples.ctr.sparse_train.SparseSpec` gets the sparse row-update
  step (:func:`examples.ctr.sparse_train.make_train_step`). Steps are
  cached on ``(graphdef, spec.static_key, mesh)``.

  With a ``mesh`` (and the state's ``shardings`` from
  :func:`create_train_state`), the step takes and returns the state with
  those shardings, and the host batch is split over the ``data`` axis.
  """
  key = ("train", graphdef, spec.static_key, mesh)
  if key not in _STEP_CACHE:
    if isinstance(spec, sparse_train.SparseSpec):
      step = sparse_train.make_train_step(graphdef, spec, mesh, shardings)
    else:
      step = _make_train_step(graphdef, spec, mesh, shardings)
      if mesh is not None:
        step = sharding.with_sharded_batch(step, mesh)
    _STEP_CACHE[key] = step
  return _STEP_CACHE[key]


def _make_train_step(graphdef, spec, mesh=None, shardings=None):

  def loss_fn(params, rest, batch: Batch):
    model = nnx.merge(graphdef, params, rest)
    losses = optax.sigmoid_binary_cross_entropy(
      model(batch.features), batch.labels
    )
    loss = jnp.sum(losses * batch.weights) / jnp.maximum(batch.weights.sum(), 1)
    return loss, nnx.state(model, nnx.Not(nnx.Param))

  grad_fn = jax.grad(loss_fn, has_aux=True)

  def train_step(state: TrainState, batch: Batch):
    params, opt_state = state.params, state.opt_state
    if spec.decay_on_read is not None:
      params, opt_state = spec.decay_on_read(
        params, opt_state, models.table_candidate_rows(params, batch.features)
      )
    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, state.rest, batch
    )
    extra = {}
    if spec.takes_candidate_rows:
      extra["candidate_rows"] = models.table_candidate_rows(
        params, batch.features
      )
    if spec.needs_grad_fn:
      old_rest = state.rest
      extra["grad_fn"] = lambda p, _: grad_fn(p, old_rest, batch)[0]
    updates, opt_state = spec.tx.update(grads, opt_state, params, **extra)
    params = optax.apply_updates(params, updates)
    new_state = TrainState(params, opt_state, rest)
    if not isinstance(opt_state, optax.ApplyIfFiniteState):
      return new_state, {"loss": loss}
    # A skipped step (skip_nonfinite) keeps the params and model state too.
    finite = opt_state.last_finite
    kept = TrainState(state.params, opt_state, state.rest)
    new_state = jax.lax.cond(finite, lambda: new_state, lambda: kept)
    return new_state, {"loss": loss, "skipped": jnp.logical_not(finite)}

  if mesh is None:
    return jax.jit(train_step, donate_argnums=0)
  return jax.jit(
    train_step,
    donate_argnums=0,
    in_shardings=(shardings, sharding.batch_sharding(mesh)),
    out_shardings=(shardings, sharding.replicated(mesh)),
  )


def make_eval_step(
  graphdef: nnx.GraphDef,
  mesh: jax.sharding.Mesh | None = None,
  shardings: TrainState | None = None,
) -> Callable[[Any, Any, dict[str, np.ndarray]], jax.Array]:
  """A jitted ``eval_step(params, rest, features) -> logits`` (cached).

  With a ``mesh``, features are split over ``data`` and the logits come
  back replicated (every host can read them).
  """

  def eval_step(params, rest, features):
    return nnx.merge(graphdef, params, rest)(features)

  key = ("eval", graphdef, mesh)
  if key not in _STEP_CACHE:
    if mesh is None:
      _STEP_CACHE[key] = jax.jit(eval_step)
    else:
      by_batch = sharding.batch_sharding(mesh)
      step = jax.jit(
        eval_step,
        in_shardings=(shardings.params, shardings.rest, by_batch),
        out_shardings=sharding.replicated(mesh),
      )
      _STEP_CACHE[key] = lambda params, rest, features: step(
        params, rest, sharding.shard_tree(features, by_batch)
      )
  return _STEP_CACHE[key]


def predict(
  eval_step: Callable[..., jax.Array],
  params: Any,
  rest: Any,
  split: schema.Split,
  batch_size: int,
) -> np.ndarray:
  """Logits of every example of ``split``, in order, on the host.

  The last batch is padded (one compilation); its padding rows, which have
  weight 0 and come last, are dropped here.
  """
  outputs = []
  for batch in BatchIterator(split, batch_size).epoch(0):
    logits = np.asarray(eval_step(params, rest, batch.features))
    outputs.append(logits[batch.weights > 0])
  return np.concatenate(outputs)


def evaluate(
  eval_step: Callable[..., jax.Array],
  params: Any,
  rest: Any,
  split: schema.Split | None,
  batch_size: int,
) -> tuple[float | None, float | None]:
  """Exact ``(auc, logloss)`` of ``split``; ``(None, None)`` without one."""
  if split is None:
    return None, None
  logits = predict(eval_step, params, rest, split, batch_size)
  return (
    metrics_lib.roc_auc(split.labels, logits),
    metrics_lib.log_loss(split.labels, logits),
  )


@dataclasses.dataclass
class EpochTotals:
  """The running metrics of an epoch (saved in mid-epoch checkpoints).

  Attributes:
    steps: steps done in the epoch (the next batch's index).
    loss_sum: float64 sum of the applied steps' losses, in step order.
    applied: steps whose update was applied.
    skipped: steps skipped for a non-finite gradient (``skip_nonfinite``).
    train_time: seconds spent training the epoch so far.
  """

  steps: int = 0
  loss_sum: float = 0.0
  applied: int = 0
  skipped: int = 0
  train_time: float = 0.0

  @property
  def train_loss(self) -> float:
    """The mean loss of the applied steps (NaN if none)."""
    return self.loss_sum / self.applied if self.applied else float("nan")

  def add(self, step_metrics: dict[str, Any]) -> None:
    """Adds one step's metrics (``loss``, optional ``skipped``)."""
    if bool(step_metrics.get("skipped", False)):
      self.skipped += 1
    else:
      self.loss_sum += float(step_metrics["loss"])
      self.applied += 1


def train_epoch(
  train_step: Callable[..., Any],
  state: TrainState,
  split: schema.Split,
  batch_size: int,
  seed: int,
  epoch: int,
  hooks: Sequence[progress.Hook] = (),
  *,
  totals: EpochTotals | None = None,
  save_every: int = 0,
  save: Callable[[TrainState, EpochTotals], None] | None = None,
  mesh: jax.sharding.Mesh | None = None,
) -> tuple[TrainState, float]:
  """One pass over ``split``; returns the state and the mean training loss.

  Args:
    train_step: from :func:`make_train_step`.
    state: the state to train.
    split: the training split.
    batch_size: the batch size (the last partial batch is dropped).
    seed: with ``epoch``, fixes the epoch's permutation.
    epoch: the epoch (1-based).
    hooks: progress hooks.
    totals: the epoch's running metrics, updated in place; a resumed epoch
      starts at batch ``totals.steps`` with these totals.
    save_every: call ``save`` after every step whose number over the run,
      ``(epoch - 1) * steps_per_epoch + step``, is a multiple of this
      (0: never), except after the epoch's last step.
    save: ``save(state, totals)``, e.g. a mid-epoch checkpoint.
    mesh: the step's mesh; under ``jax.distributed`` each process reads
      only its rows of every batch (:func:`sharding.process_batches`).

  Returns:
    ``(state, mean loss of the applied steps)``.
  """
  totals = EpochTotals() if totals is None else totals
  batches = sharding.process_batches(
    split, batch_size, mesh, shuffle=True, seed=seed, drop_remainder=True
  )
  if not len(batches):
    raise ValueError(f"no full batch of {batch_size} in {len(split)} examples")
  first_step = (epoch - 1) * len(batches)
  pending = None  # Sync one step behind, so the bar shows the real pace.
  tic = time.perf_counter()
  for batch in batches.epoch(epoch, totals.steps):
    state, step_metrics = train_step(state, batch)
    if pending is not None:
      totals.add(pending)
    pending = step_metrics
    totals.steps += 1
    for hook in hooks:
      hook.after_step(batch_size)
    at_save = save_every and (first_step + totals.steps) % save_every == 0
    if save is not None and at_save and totals.steps < len(batches):
      totals.add(pending)
      pending = None
      toc = time.perf_counter()
      totals.train_time += toc - tic
      save(state, totals)
      tic = time.perf_counter()
  if pending is not None:
    totals.add(pending)
  totals.train_time += time.perf_counter() - tic
  return state, totals.train_loss


def evaluate_epoch(
  eval_step: Callable[..., jax.Array],
  state: TrainState,
  dataset: schema.CTRDataset,
  config: Config,
  table_mask: Any,
  buckets: tuple[str, Sequence[np.ndarray]],
) -> dict[str, Any]:
  """Test and validation AUC/logloss, and the embedding norms of ``state``.

  Args:
    eval_step: from :func:`make_eval_step`.
    state: the trained state.
    dataset: the data.
    config: gives the evaluation batch size.
    table_mask: marks the per-ID tables.
    buckets: ``(field, ID arrays)`` of the frequency buckets.

  Returns:
    The epoch metrics of :mod:`examples.ctr.results` but ``epoch``,
    ``train_loss`` and ``examples_per_sec``.
  """
  valid_auc, valid_logloss = evaluate(
    eval_step, state.params, state.rest, dataset.valid, config.eval_batch_size
  )
  test_auc, test_logloss = evaluate(
    eval_step, state.params, state.rest, dataset.test, config.eval_batch_size
  )
  field, ids = buckets
  params = state.params
  if jax.process_count() > 1:  # tables split over processes: gather them
    params = distributed.host_values(params)
  return {
    "eval_auc": test_auc,
    "eval_logloss": test_logloss,
    "valid_auc": valid_auc,
    "valid_logloss": valid_logloss,
    "embedding_sq_norm": metrics_lib.embedding_sq_norm(params, table_mask),
    "bucket_sq_norms": metrics_lib.bucket_sq_norms(
      params, table_mask, field, ids
    ),
  }


def _resume_position(
  position: dict[str, Any], run: dict[str, Any], steps_per_epoch: int
) -> tuple[int, EpochTotals]:
  """``(epoch, totals)`` to continue from; fills ``run["epochs"]``."""
  if position.get("steps_per_epoch") != steps_per_epoch:
    raise ValueError(
      f"the checkpoint has {position.get('steps_per_epoch')} steps per "
      f"epoch, this run {steps_per_epoch}: resume with the same data and "
      "batch size, or start afresh without --resume"
    )
  run["epochs"] = list(position["epochs"])
  if run["epochs"] and "skipped_nonfinite_steps" in run["epochs"][0]:
    run["skipped_nonfinite_steps"] = sum(
      e["skipped_nonfinite_steps"] for e in run["epochs"]
    )
  return int(position["epoch"]), EpochTotals(**position["totals"])


def train_and_evaluate(
  config: Config,
  dataset: schema.CTRDataset,
  workdir: str,
  *,
  optimizer: str | None = None,
  alpha: float | None = None,
  seed: int | None = None,
  hooks: Sequence[progress.Hook] = (),
  on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
  """Trains one run and evaluates it after every epoch.

  Args:
    config: the experiment config.
    dataset: the data.
    workdir: the run's folder: ``results.json`` (rewritten after every
      epoch) and ``checkpoints/`` (one per epoch end and, with
      ``config.checkpoint_every``, every that many steps; each named by the
      number of steps done, its ``position`` holding the epoch to run, the
      :class:`EpochTotals` of its steps done and the finished epochs'
      records).
    optimizer: optimizer name; default ``config.optimizer``.
    alpha: AR alpha (AdamW: weight_decay = alpha / lr); default
      ``config.alpha``. Recorded as None for optimizers without one.
    seed: default ``config.seed``.
    hooks: progress hooks.
    on_epoch_end: called with the run record after each epoch is saved.

  Returns:
    The run record (see :mod:`examples.ctr.results`).
  """
  name = optimizer or config.optimizer
  seed = config.seed if seed is None else seed
  has_alpha = optimizers.searches_alpha(name)
  alpha = (config.alpha if alpha is None else alpha) if has_alpha else None
  steps_per_epoch = len(dataset.train) // config.batch_size
  step_alpha = alpha
  if config.alpha_per_epoch and alpha is not None:
    step_alpha = alpha / max(steps_per_epoch, 1)

  bucket_field = config.bucket_field or metrics_lib.largest_field(
    dataset.frequencies
  )
  freq = dataset.frequencies[bucket_field]
  bucket_ids = metrics_lib.frequency_buckets(freq, config.num_buckets)
  buckets = (bucket_field, bucket_ids)
  path = update_path(config, dataset.fields, name)
  if path.auto and distributed.is_main_process():
    print(path.describe(), file=sys.stderr)
  mesh = None
  if config.mesh is not None:
    mesh = sharding.create_mesh(config.mesh)
    sharding.check_batch_size(config.batch_size, mesh)
    sharding.check_batch_size(config.eval_batch_size, mesh, "eval batch")
  setup = create_train_state(
    config, dataset.fields, name, step_alpha, seed, mesh, buckets
  )
  spec, state, table_mask = setup.spec, setup.state, setup.table_mask
  params = state.params
  # MEDA resets the tables to their init (the state's buffers are donated).
  init_params = (
    jax.tree.map(jnp.copy, params) if spec.reset_tables_each_epoch else None
  )

  run = {
    "dataset": dataset.name,
    "model": config.model,
    "optimizer": name,
    "alpha": alpha,
    "seed": seed,
    "hyperparams": dict(spec.hyperparams, batch_size=config.batch_size),
    "alpha_unit": "epoch" if config.alpha_per_epoch else "step",
    "alpha_per_step": step_alpha,
    "steps_per_epoch": steps_per_epoch,
    "dataset_options": json.loads(
      json.dumps(config.dataset_options, default=str)
    ),
    "bucket_field": bucket_field,
    "bucket_sizes": [len(b) for b in bucket_ids],
    "bucket_frequency_ranges": [
      [int(freq[b].min()), int(freq[b].max())] if len(b) else [0, 0]
      for b in bucket_ids
    ],
    "epochs": [],
  }

  if path.auto:  # the path auto chose, for resume and readers
    run["hyperparams"].update(sparse_updates=path.sparse, update_path="auto")

  os.makedirs(workdir, exist_ok=True)
  results_path = os.path.join(workdir, RESULTS_FILE)
  if config.resume:
    results_lib.check_same_update_path(results_path, path.sparse)
  else:
    if distributed.is_main_process():
      checkpoints.remove_checkpoints(workdir)
    distributed.sync("removed checkpoints")
  manager = None
  if config.checkpoint:
    manager = checkpoints.checkpoint_manager(
      workdir, config.checkpoints_to_keep
    )
  start, totals = 1, EpochTotals()
  if config.resume and manager is not None:
    restored = checkpoints.restore_latest(manager, state)
    if restored is not None:
      state, step_id, position = restored
      start, totals = _resume_position(position, run, steps_per_epoch)
      print(
        f"resuming {workdir} at epoch {start}, step {totals.steps} "
        f"(checkpoint {step_id})",
        file=sys.stderr,
      )

  def save_position(epoch: int, state: TrainState, totals: EpochTotals):
    """A checkpoint of ``state`` and where the run stands in ``epoch``."""
    position = {
      "epoch": epoch,
      "steps_per_epoch": steps_per_epoch,
      "totals": dataclasses.asdict(totals),
      "epochs": run["epochs"],
    }
    step_id = (epoch - 1) * steps_per_epoch + totals.steps
    checkpoints.save_checkpoint(manager, step_id, state, position)

  train_step = make_train_step(setup.graphdef, spec, mesh, setup.shardings)
  eval_step = make_eval_step(setup.eval_graphdef, mesh, setup.shardings)
  try:
    for epoch in range(start, config.epochs + 1):
      resumed = totals.steps > 0  # in the middle of this epoch
      if spec.reset_tables_each_epoch and epoch > 1 and not resumed:
        params, opt_state = optax_ar.reset_leaves(
          spec.tx, state.params, state.opt_state, table_mask, init_params
        )
        state = TrainState(params, opt_state, state.rest)
        if mesh is not None:
          state = jax.device_put(state, setup.shardings)
      for hook in hooks:
        hook.start_epoch(epoch, config.epochs, len(dataset.train))
      state, train_loss = train_epoch(
        train_step,
        state,
        dataset.train,
        config.batch_size,
        seed,
        epoch,
        hooks,
        totals=totals,
        save_every=config.checkpoint_every if manager is not None else 0,
        save=lambda state, totals, e=epoch: save_position(e, state, totals),
        mesh=mesh,
      )
      num_trained = steps_per_epoch * config.batch_size
      record = {"epoch": epoch, "train_loss": train_loss}
      record.update(
        evaluate_epoch(eval_step, state, dataset, config, table_mask, buckets)
      )
      record["examples_per_sec"] = num_trained / totals.train_time
      if config.skip_nonfinite:
        record["skipped_nonfinite_steps"] = totals.skipped
      run["epochs"].append(record)
      if config.skip_nonfinite:
        run["skipped_nonfinite_steps"] = sum(
          e["skipped_nonfinite_steps"] for e in run["epochs"]
        )
      results_lib.write_results(results_path, [run])
      totals = EpochTotals()
      if manager is not None:
        save_position(epoch + 1, state, totals)
      for hook in hooks:
        hook.end_epoch(epoch, record)
      if on_epoch_end is not None:
        on_epoch_end(run)
  finally:
    if manager is not None:
      manager.close()
  return run
