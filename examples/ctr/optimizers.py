"""The optimizers the CTR runner trains with, looked up by name.

Usage: ``spec = create_optimizer("adam_ar", table_mask, alpha=1e-3)``.

:data:`OPTIMIZERS` maps a name to a factory registered with
:func:`register_optimizer`; the factory gets the runner's settings as an
:class:`OptimizerOptions` and returns an :class:`OptimizerSpec`: the optax
transformation and how the training step drives it. The runner registers:

| name | what it is |
|---|---|
| ``adam`` / ``adagrad`` | plain optax optimizers |
| ``adamw`` | ``optax.adamw`` with decay on the per-ID tables only |
| ``meda`` | Adam; the runner resets the tables and their state every epoch |
| ``sam`` | ``optax.contrib.sam`` around Adam (opaque mode, needs grad_fn) |
| ``adam_ar`` / ``adagrad_ar`` | :func:`optax_ar.adam_ar` / ``adagrad_ar`` |
| ``adam_ar_lazy`` | ``adam_ar`` with lazy moments (``lazy=True``) |

:mod:`examples.ctr.research` registers the AdamAR variants
(``adam_ar_decay_moments``, ``adam_ar_first_touch``,
``adam_ar_decay_on_read``, ``bucket_sub``) when it is imported, as the
command line (:mod:`examples.ctr.main`) does. A new optimizer is one
decorated function::

  @register_optimizer("adam_ar_nesterov", searches_alpha=True)
  def _adam_ar_nesterov(o: OptimizerOptions) -> OptimizerSpec:
    tx = optax.inject_hyperparams(my_module.adam_ar_nesterov)(
      learning_rate=o.learning_rate, alpha=o.alpha
    )
    return OptimizerSpec(tx, hyperparams={"alpha": o.alpha})

after which ``--optimizer adam_ar_nesterov`` trains with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np
import optax

import optax_ar

#: The paper's learning rates.
ADAM_LEARNING_RATE = 1e-3
ADAGRAD_LEARNING_RATE = 1e-2


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
  """An optax transformation and how the training loop must drive it.

  Attributes:
    tx: the transformation.
    needs_grad_fn: ``update`` needs ``grad_fn=`` (SAM in opaque mode).
    takes_candidate_rows: ``update`` is given the batch's IDs per table as
      ``candidate_rows=`` (see :func:`optax_ar.adaptive_interval_decay`).
    reset_tables_each_epoch: reset the per-ID tables and their optimizer
      state at every epoch boundary (MEDA).
    decay_on_read: None, or ``f(params, opt_state, read_rows) -> (params,
      opt_state)`` that the step calls with the batch's IDs per table before
      its forward pass (``adam_ar_decay_on_read``).
    hyperparams: the resolved hyperparameters, for results files.
    static_key: what fixes the transformation's code apart from the
      hyperparameters held in its state (``optax.inject_hyperparams``):
      runs of an alpha grid share it, so a training step compiled for one
      serves them all.
  """

  tx: optax.GradientTransformation
  needs_grad_fn: bool = False
  takes_candidate_rows: bool = False
  reset_tables_each_epoch: bool = False
  decay_on_read: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None
  hyperparams: dict[str, Any] = dataclasses.field(default_factory=dict)
  static_key: tuple[Any, ...] = ()


@dataclasses.dataclass(frozen=True)
class OptimizerOptions:
  """The settings every optimizer factory receives (see create_optimizer).

  Attributes:
    table_mask: tree of bools marking the per-ID tables.
    learning_rate: the learning rate (resolved: never None).
    alpha: AR decay per skipped step; AdamW's decay per step.
    ar_tables_only: restrict the AR decay to ``table_mask``.
    weight_decay: AdamW's decay coefficient, or None for
      ``alpha / learning_rate``.
    sam_rho: SAM's adversarial step size.
    adagrad_initial_accumulator: initial Adagrad accumulator.
    ar_buckets: ``bucket_sub``: rarest buckets that get the AR decay.
    buckets: ``bucket_sub``: ``(field, ID arrays)`` of the frequency buckets.
  """

  table_mask: Any
  learning_rate: float
  alpha: float = 1e-3
  ar_tables_only: bool = True
  weight_decay: float | None = None
  sam_rho: float = 0.05
  adagrad_initial_accumulator: float = 0.1
  ar_buckets: int = 0
  buckets: tuple[str, Sequence[np.ndarray]] | None = None

  @property
  def ar_mask(self) -> Any:
    """The AR decay's mask: ``table_mask``, or None (every leaf)."""
    return self.table_mask if self.ar_tables_only else None


Factory = Callable[[OptimizerOptions], OptimizerSpec]


@dataclasses.dataclass(frozen=True)
class Registration:
  """One entry of :data:`OPTIMIZERS`.

  Attributes:
    factory: builds the :class:`OptimizerSpec`.
    learning_rate: the default learning rate of the optimizer.
    searches_alpha: compare mode searches its alpha grid for it.
    accepts_candidate_rows: its ``update`` accepts ``candidate_rows``.
  """

  factory: Factory
  learning_rate: float
  searches_alpha: bool
  accepts_candidate_rows: bool


#: Every optimizer the runner knows, by name.
OPTIMIZERS: dict[str, Registration] = {}


def register_optimizer(
  name: str,
  *,
  learning_rate: float = ADAM_LEARNING_RATE,
  searches_alpha: bool = False,
  accepts_candidate_rows: bool = False,
) -> Callable[[Factory], Factory]:
  """Registers ``factory`` under ``name`` (a decorator).

  Args:
    name: the name of ``--optimizer`` and ``--optimizers``.
    learning_rate: its default learning rate (the paper's: 1e-3 for the Adam
      family, 1e-2 for Adagrad).
    searches_alpha: compare mode runs it once per alpha of the grid (the
      factory reads ``options.alpha``); otherwise once, with no alpha.
    accepts_candidate_rows: ``update`` accepts the batch's IDs as
      ``candidate_rows`` (``--batch-ids-as-candidates``).

  Returns:
    A decorator that registers a factory and returns it unchanged.

  Raises:
    ValueError: if ``name`` is taken.

  Example:
    >>> @register_optimizer("sgd_example")
    ... def _sgd(o):
    ...   return OptimizerSpec(optax.sgd(o.learning_rate))
    >>> create_optimizer("sgd_example", {}).hyperparams
    {'learning_rate': 0.001}
    >>> del OPTIMIZERS["sgd_example"]
  """

  def register(factory: Factory) -> Factory:
    if name in OPTIMIZERS:
      raise ValueError(f"optimizer {name!r} is already registered")
    OPTIMIZERS[name] = Registration(
      factory, learning_rate, searches_alpha, accepts_candidate_rows
    )
    return factory

  return register


def get_registration(name: str) -> Registration:
  """The :data:`OPTIMIZERS` entry of ``name``.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  if name not in OPTIMIZERS:
    raise ValueError(
      f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)} (the "
      "research variants register when examples.ctr.research is imported)"
    )
  return OPTIMIZERS[name]


def default_learning_rate(name: str) -> float:
  """The paper's learning rate of an optimizer family.

  Example:
    >>> default_learning_rate("adagrad_ar"), default_learning_rate("sam")
    (0.01, 0.001)
  """
  return get_registration(name).learning_rate


def searches_alpha(name: str) -> bool:
  """Whether compare mode searches the alpha grid for ``name``.

  Example:
    >>> searches_alpha("adam_ar"), searches_alpha("adam")
    (True, False)
  """
  return get_registration(name).searches_alpha


def create_optimizer(
  name: str,
  table_mask: Any,
  *,
  learning_rate: float | None = None,
  alpha: float = 1e-3,
  ar_tables_only: bool = True,
  weight_decay: float | None = None,
  sam_rho: float = 0.05,
  adagrad_initial_accumulator: float = 0.1,
  ar_buckets: int = 0,
  buckets: tuple[str, Sequence[np.ndarray]] | None = None,
  batch_ids_as_candidates: bool = False,
) -> OptimizerSpec:
  """Builds the optimizer ``name`` of :data:`OPTIMIZERS`.

  Args:
    name: a registered name (``adam, adamw, meda, sam, adam_ar,
      adam_ar_lazy, adagrad, adagrad_ar``, and the research variants once
      :mod:`examples.ctr.research` is imported).
    table_mask: tree of bools marking the per-ID tables (AdamW's decay mask,
      MEDA's reset mask, and the AR mask when ``ar_tables_only``).
    learning_rate: None for :func:`default_learning_rate`.
    alpha: AR decay per skipped step (``adam_ar``, ``adagrad_ar``); for
      ``adamw`` it gives the default ``weight_decay = alpha / lr``.
    ar_tables_only: restrict the AR decay to ``table_mask``.
    weight_decay: AdamW's decay coefficient (optax multiplies it by the
      learning rate); None means ``alpha / learning_rate``, so that the
      decay per step is ``alpha``.
    sam_rho: SAM's adversarial step size.
    adagrad_initial_accumulator: initial accumulator of ``adagrad`` and
      ``adagrad_ar`` (optax's default 0.1).
    ar_buckets: ``bucket_sub``: how many of the rarest buckets get the AR
      decay (0: AdamW; all: AR on the bucket field).
    buckets: ``bucket_sub``: ``(field, ID arrays)`` of the frequency
      buckets, rarest first (the runner's); needed when ``ar_buckets > 0``.
    batch_ids_as_candidates: let the optimizers registered with
      ``accepts_candidate_rows`` (``adam_ar``, ``adam_ar_lazy``,
      ``adagrad_ar``) take the batch's IDs as their update's
      ``candidate_rows`` (ignored by the others).

  Returns:
    An :class:`OptimizerSpec` whose ``hyperparams`` start with the learning
    rate and whose ``static_key`` ends with ``takes_candidate_rows``.

  Example:
    >>> import jax.numpy as jnp
    >>> spec = create_optimizer("adamw", {"t": True, "w": False}, alpha=1e-4)
    >>> spec.hyperparams["weight_decay"]
    0.1
    >>> spec.tx.init({"t": jnp.zeros((3, 2)), "w": jnp.zeros(2)}) is not None
    True
  """
  entry = get_registration(name)
  lr = entry.learning_rate if learning_rate is None else learning_rate
  spec = entry.factory(
    OptimizerOptions(
      table_mask=table_mask,
      learning_rate=lr,
      alpha=alpha,
      ar_tables_only=ar_tables_only,
      weight_decay=weight_decay,
      sam_rho=sam_rho,
      adagrad_initial_accumulator=adagrad_initial_accumulator,
      ar_buckets=ar_buckets,
      buckets=buckets,
    )
  )
  takes_candidate_rows = (
    batch_ids_as_candidates and entry.accepts_candidate_rows
  )
  return dataclasses.replace(
    spec,
    takes_candidate_rows=takes_candidate_rows,
    hyperparams={"learning_rate": lr, **spec.hyperparams},
    static_key=(spec.static_key or (name,)) + (takes_candidate_rows,),
  )


_inject = optax.inject_hyperparams


@register_optimizer("adam")
def _adam(o: OptimizerOptions) -> OptimizerSpec:
  tx = _inject(optax.adam)(learning_rate=o.learning_rate)
  return OptimizerSpec(tx, static_key=("adam",))


@register_optimizer("meda")
def _meda(o: OptimizerOptions) -> OptimizerSpec:
  return dataclasses.replace(_adam(o), reset_tables_each_epoch=True)


@register_optimizer("adagrad", learning_rate=ADAGRAD_LEARNING_RATE)
def _adagrad(o: OptimizerOptions) -> OptimizerSpec:
  acc = o.adagrad_initial_accumulator
  tx = _inject(optax.adagrad)(
    learning_rate=o.learning_rate, initial_accumulator_value=acc
  )
  return OptimizerSpec(tx, hyperparams={"initial_accumulator_value": acc})


@register_optimizer("adamw", searches_alpha=True)
def _adamw(o: OptimizerOptions) -> OptimizerSpec:
  wd = o.alpha / o.learning_rate if o.weight_decay is None else o.weight_decay
  tx = _inject(optax.adamw, static_args=("mask",))(
    learning_rate=o.learning_rate, weight_decay=wd, mask=o.table_mask
  )
  return OptimizerSpec(tx, hyperparams={"weight_decay": wd})


@register_optimizer("sam")
def _sam(o: OptimizerOptions) -> OptimizerSpec:
  tx = optax.contrib.sam(
    optax.adam(o.learning_rate),
    optax.chain(optax.contrib.normalize(), optax.sgd(o.sam_rho)),
    sync_period=2,
    opaque_mode=True,
  )
  return OptimizerSpec(
    tx,
    needs_grad_fn=True,
    hyperparams={"sam_rho": o.sam_rho},
    static_key=("sam", o.learning_rate, o.sam_rho),
  )


def _adam_ar(o: OptimizerOptions, lazy: bool) -> OptimizerSpec:
  tx = _inject(optax_ar.adam_ar, static_args=("lazy", "mask"))(
    learning_rate=o.learning_rate, alpha=o.alpha, lazy=lazy, mask=o.ar_mask
  )
  return OptimizerSpec(
    tx,
    hyperparams={"alpha": o.alpha, "lazy": lazy},
    static_key=("adam_ar", lazy, o.ar_tables_only),
  )


@register_optimizer("adam_ar", searches_alpha=True, accepts_candidate_rows=True)
def _adam_ar_dense(o: OptimizerOptions) -> OptimizerSpec:
  return _adam_ar(o, False)


@register_optimizer(
  "adam_ar_lazy", searches_alpha=True, accepts_candidate_rows=True
)
def _adam_ar_lazy(o: OptimizerOptions) -> OptimizerSpec:
  return _adam_ar(o, True)


@register_optimizer(
  "adagrad_ar",
  learning_rate=ADAGRAD_LEARNING_RATE,
  searches_alpha=True,
  accepts_candidate_rows=True,
)
def _adagrad_ar(o: OptimizerOptions) -> OptimizerSpec:
  acc = o.adagrad_initial_accumulator
  tx = _inject(optax_ar.adagrad_ar, static_args=("mask",))(
    learning_rate=o.learning_rate,
    alpha=o.alpha,
    initial_accumulator_value=acc,
    mask=o.ar_mask,
  )
  return OptimizerSpec(
    tx,
    hyperparams={"alpha": o.alpha, "initial_accumulator_value": acc},
    static_key=("adagrad_ar", o.ar_tables_only),
  )
