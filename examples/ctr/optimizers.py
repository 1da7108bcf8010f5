"""The optimizers the CTR experiments compare, built from one name.

Usage: ``spec = create_optimizer("adam_ar", table_mask, alpha=1e-3)``.

| name | what it is |
|---|---|
| ``adam`` / ``adagrad`` | plain optax optimizers |
| ``adamw`` | ``optax.adamw`` with decay on the per-ID tables only |
| ``meda`` | Adam; the runner resets the tables and their state every epoch |
| ``sam`` | ``optax.contrib.sam`` around Adam (opaque mode, needs grad_fn) |
| ``adam_ar`` / ``adagrad_ar`` | :func:`optax_ar.adam_ar` / ``adagrad_ar`` |
| ``adam_ar_lazy`` | ``adam_ar`` with lazy moments |
"""

from __future__ import annotations

import dataclasses
from typing import Any

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
    reset_tables_each_epoch: reset the per-ID tables and their optimizer
      state at every epoch boundary (MEDA).
    hyperparams: the resolved hyperparameters, for results files.
    static_key: what fixes the transformation's code apart from the
      hyperparameters held in its state (``optax.inject_hyperparams``):
      runs of an alpha grid share it, so a training step compiled for one
      serves them all.
  """

  tx: optax.GradientTransformation
  needs_grad_fn: bool = False
  reset_tables_each_epoch: bool = False
  hyperparams: dict[str, Any] = dataclasses.field(default_factory=dict)
  static_key: tuple[Any, ...] = ()


def default_learning_rate(name: str) -> float:
  """The paper's learning rate of an optimizer family.

  Example:
    >>> default_learning_rate("adagrad_ar"), default_learning_rate("sam")
    (0.01, 0.001)
  """
  if name.startswith("adagrad"):
    return ADAGRAD_LEARNING_RATE
  return ADAM_LEARNING_RATE


def create_optimizer(
  name: str,
  table_mask: Any,
  *,
  learning_rate: float | None = None,
  alpha: float = 1e-3,
  lazy: bool = False,
  ar_tables_only: bool = True,
  weight_decay: float | None = None,
  sam_rho: float = 0.05,
) -> OptimizerSpec:
  """Builds the optimizer ``name``.

  Args:
    name: one of ``adam, adamw, meda, sam, adam_ar, adam_ar_lazy, adagrad,
      adagrad_ar``.
    table_mask: tree of bools marking the per-ID tables (AdamW's decay mask,
      MEDA's reset mask, and the AR mask when ``ar_tables_only``).
    learning_rate: None for :func:`default_learning_rate`.
    alpha: AR decay per skipped step (``adam_ar``, ``adagrad_ar``); for
      ``adamw`` it gives the default ``weight_decay = alpha / lr``.
    lazy: lazy moments for ``adam_ar`` (``adam_ar_lazy`` is always lazy).
    ar_tables_only: restrict the AR decay to ``table_mask``.
    weight_decay: AdamW's decay coefficient (optax multiplies it by the
      learning rate); None means ``alpha / learning_rate``, so that the
      decay per step is ``alpha``.
    sam_rho: SAM's adversarial step size.

  Returns:
    An :class:`OptimizerSpec`.

  Example:
    >>> import jax.numpy as jnp
    >>> spec = create_optimizer("adamw", {"t": True, "w": False}, alpha=1e-4)
    >>> spec.hyperparams["weight_decay"]
    0.1
    >>> spec.tx.init({"t": jnp.zeros((3, 2)), "w": jnp.zeros(2)}) is not None
    True
  """
  lr = default_learning_rate(name) if learning_rate is None else learning_rate
  hyper: dict[str, Any] = {"learning_rate": lr}
  ar_mask = table_mask if ar_tables_only else None
  inject = optax.inject_hyperparams
  static_key: tuple[Any, ...] = (name,)
  if name in ("adam", "meda"):
    static_key = ("adam",)
    tx = inject(optax.adam)(learning_rate=lr)
  elif name == "adagrad":
    tx = inject(optax.adagrad)(learning_rate=lr)
  elif name == "adamw":
    wd = alpha / lr if weight_decay is None else weight_decay
    hyper["weight_decay"] = wd
    tx = inject(optax.adamw, static_args=("mask",))(
      learning_rate=lr, weight_decay=wd, mask=table_mask
    )
  elif name == "sam":
    hyper["sam_rho"] = sam_rho
    static_key = (name, lr, sam_rho)
    tx = optax.contrib.sam(
      optax.adam(lr),
      optax.chain(optax.contrib.normalize(), optax.sgd(sam_rho)),
      sync_period=2,
      opaque_mode=True,
    )
  elif name in ("adam_ar", "adam_ar_lazy"):
    lazy = lazy or name == "adam_ar_lazy"
    hyper.update(alpha=alpha, lazy=lazy)
    static_key = ("adam_ar", lazy, ar_tables_only)
    tx = inject(optax_ar.adam_ar, static_args=("lazy", "mask"))(
      learning_rate=lr, alpha=alpha, lazy=lazy, mask=ar_mask
    )
  elif name == "adagrad_ar":
    hyper["alpha"] = alpha
    static_key = (name, ar_tables_only)
    tx = inject(optax_ar.adagrad_ar, static_args=("mask",))(
      learning_rate=lr, alpha=alpha, mask=ar_mask
    )
  else:
    raise ValueError(f"unknown optimizer {name!r}")
  return OptimizerSpec(
    tx=tx,
    needs_grad_fn=name == "sam",
    reset_tables_each_epoch=name == "meda",
    hyperparams=hyper,
    static_key=static_key,
  )
