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
| ``adam_ar_decay_moments`` | AdamAR that also decays touched rows' moments |
| ``adam_ar_first_touch`` | AdamAR without decay at a row's first touch |
| ``adam_ar_decay_on_read`` | AdamAR's decay applied when a row is read, |
| | before the forward pass (:mod:`examples.ctr.research.read_decay`) |
| ``bucket_sub`` | AR on the rarest ``ar_buckets`` frequency buckets of the |
| | bucket field, AdamW on the other table rows (the paper's ablation) |

``adam_ar_decay_moments``, ``adam_ar_first_touch`` and ``bucket_sub`` are in
:mod:`examples.ctr.research.variants`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import optax

import optax_ar
from examples.ctr.research import read_decay
from examples.ctr.research import variants

#: The paper's learning rates.
ADAM_LEARNING_RATE = 1e-3
ADAGRAD_LEARNING_RATE = 1e-2

#: Optimizers built on ``optax_ar.adaptive_interval_decay`` that accept
#: ``candidate_rows`` in ``update``.
CANDIDATE_ROW_OPTIMIZERS = ("adam_ar", "adam_ar_lazy", "adagrad_ar")


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
    decays_on_read: the step calls :func:`decay_read_rows` with the batch's
      IDs per table before its forward pass (``adam_ar_decay_on_read``).
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
  decays_on_read: bool = False
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
  adagrad_initial_accumulator: float = 0.1,
  ar_buckets: int = 0,
  buckets: tuple[str, Sequence[np.ndarray]] | None = None,
  candidate_rows: bool = False,
) -> OptimizerSpec:
  """Builds the optimizer ``name``.

  Args:
    name: one of ``adam, adamw, meda, sam, adam_ar, adam_ar_lazy, adagrad,
      adagrad_ar, adam_ar_decay_moments, adam_ar_first_touch,
      adam_ar_decay_on_read, bucket_sub``.
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
    adagrad_initial_accumulator: initial accumulator of ``adagrad`` and
      ``adagrad_ar`` (optax's default 0.1).
    ar_buckets: ``bucket_sub``: how many of the rarest buckets get the AR
      decay (0: AdamW; all: AR on the bucket field).
    buckets: ``bucket_sub``: ``(field, ID arrays)`` of the frequency
      buckets, rarest first (the runner's); needed when ``ar_buckets > 0``.
    candidate_rows: let ``adam_ar``, ``adam_ar_lazy`` and ``adagrad_ar`` take
      the batch's IDs as ``candidate_rows`` (ignored by the others).

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
    hyper["initial_accumulator_value"] = adagrad_initial_accumulator
    tx = inject(optax.adagrad)(
      learning_rate=lr, initial_accumulator_value=adagrad_initial_accumulator
    )
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
    hyper.update(
      alpha=alpha, initial_accumulator_value=adagrad_initial_accumulator
    )
    static_key = (name, ar_tables_only)
    tx = inject(optax_ar.adagrad_ar, static_args=("mask",))(
      learning_rate=lr,
      alpha=alpha,
      initial_accumulator_value=adagrad_initial_accumulator,
      mask=ar_mask,
    )
  elif name in ("adam_ar_decay_moments", "adam_ar_first_touch"):
    hyper["alpha"] = alpha
    static_key = (name, ar_tables_only)
    tx = inject(getattr(variants, name), static_args=("mask",))(
      learning_rate=lr, alpha=alpha, mask=ar_mask
    )
  elif name == "adam_ar_decay_on_read":
    hyper["alpha"] = alpha
    static_key = (name, ar_tables_only)
    tx = inject(read_decay.adam_ar_decay_on_read, static_args=("mask",))(
      learning_rate=lr, alpha=alpha, mask=ar_mask
    )
  elif name == "bucket_sub":
    hyper.update(alpha=alpha, weight_decay=alpha / lr, ar_buckets=ar_buckets)
    if ar_buckets == 0:
      ar_rows = jax.tree.map(lambda _: False, table_mask)
      static_key = (name, 0)
    elif buckets is None:
      raise ValueError("bucket_sub with ar_buckets > 0 needs the buckets")
    else:
      field, bucket_ids = buckets
      hyper.update(ar_bucket_field=field, num_buckets=len(bucket_ids))
      ar_rows = variants.bucket_ar_rows(
        table_mask, field, bucket_ids, ar_buckets
      )
      ids = np.concatenate([np.asarray(b) for b in bucket_ids[:ar_buckets]])
      static_key = (name, ar_buckets, field, ids.tobytes())
    tx = inject(
      variants.bucket_substitution, static_args=("table_mask", "ar_rows")
    )(
      learning_rate=lr,
      alpha=alpha,
      table_mask=table_mask,
      ar_rows=ar_rows,
      weight_decay=alpha / lr,
    )
  else:
    raise ValueError(f"unknown optimizer {name!r}")
  takes_candidate_rows = candidate_rows and name in CANDIDATE_ROW_OPTIMIZERS
  return OptimizerSpec(
    tx=tx,
    needs_grad_fn=name == "sam",
    takes_candidate_rows=takes_candidate_rows,
    reset_tables_each_epoch=name == "meda",
    decays_on_read=name == "adam_ar_decay_on_read",
    hyperparams=hyper,
    static_key=static_key + (takes_candidate_rows,),
  )


def decay_read_rows(
  params: Any, opt_state: Any, read_rows: Any
) -> tuple[Any, Any]:
  """:func:`~examples.ctr.research.read_decay.decay_read_rows` on the state.

  ``opt_state`` is the ``optax.inject_hyperparams`` state of
  ``create_optimizer("adam_ar_decay_on_read", ...)``: alpha is read from its
  hyperparams and its inner state is updated and put back.

  Example:
    >>> import jax.numpy as jnp
    >>> spec = create_optimizer("adam_ar_decay_on_read", {"t": True}, alpha=0.5)
    >>> p = {"t": jnp.ones((2, 1))}
    >>> s = spec.tx.init(p)
    >>> _, s = spec.tx.update({"t": jnp.zeros((2, 1))}, s, p)
    >>> _, s = spec.tx.update({"t": jnp.zeros((2, 1))}, s, p)
    >>> p, s = decay_read_rows(p, s, {"t": jnp.array([1])})  # k 3, idle 2
    >>> p["t"].ravel().tolist()
    [1.0, 0.0]
  """
  params, inner = read_decay.decay_read_rows(
    params, opt_state.inner_state, read_rows, opt_state.hyperparams["alpha"]
  )
  return params, opt_state._replace(inner_state=inner)
