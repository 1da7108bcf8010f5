"""Principled AdamAR variants and the paper's bucket-substitution ablation.

Usage: ``tx = adam_ar_decay_moments(1e-3, 1e-3, mask=table_mask)``.

All three are Adam with dense moments (every row's ``m`` and ``v`` follow
``optax.scale_by_adam`` every step, as the runner's ``adam_ar``), the
AdamAR interval rule on the raw gradient, and one change:

* :func:`adam_ar_decay_moments`: a touched row's moments are shrunk by the
  same ``1 - lam`` as its value, so ``lam = 1`` is a full reset of the row
  (value and optimizer state), as MEDA does to a whole table.
* :func:`adam_ar_first_touch`: a row's first touch is not decayed (under
  zero-initialised rows that is a no-op: the row is still exactly 0).
* :func:`bucket_substitution`: AR decay on chosen rows (the rarest frequency
  buckets of one field), AdamW's uniform decay on every other table row.

They live here, not in ``optax_ar``, because they are experiments, not the
library's rule. Importing this module registers them with
:mod:`examples.ctr.optimizers` as ``adam_ar_decay_moments``,
``adam_ar_first_touch`` and ``bucket_sub``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from examples.ctr import metrics
from examples.ctr import optimizers
from optax_ar import touched_rows
from optax_ar._src import _row_state


class ARVariantState(NamedTuple):
  """State of the variants of this module.

  Attributes:
    count: int32 scalar, the number of updates applied so far.
    last_step: per decayed leaf an int32 array of shape ``(rows, 1, ...)``:
      the step at which the row last had a nonzero raw gradient (0: never);
      ``optax.MaskedNode()`` for the other leaves.
    adam: the ``optax.scale_by_adam`` state (dense moments).
  """

  count: jax.Array
  last_step: optax.Updates
  adam: optax.OptState


def _row_zeros(param: jax.Array) -> jax.Array:
  """int32 zeros of the per-row state shape ``(rows, 1, ..., 1)``."""
  return _row_state.zeros_row_state(param)


def flat_mask(mask: Any, params: Any) -> list[bool]:
  """``mask`` (tree like the params, callable, or None) as bools per leaf.

  Example:
    >>> flat_mask({"t": True, "w": False}, {"t": 1.0, "w": 2.0})
    [True, False]
  """
  if mask is None:
    return [True] * len(jax.tree.leaves(params))
  if callable(mask):
    mask = mask(params)
  return [bool(m) for m in jax.tree.structure(params).flatten_up_to(mask)]


def init_last_step(params: Any, flat_decayed: Sequence[bool]) -> Any:
  """Per-row int32 zeros for the decayed leaves, ``MaskedNode`` elsewhere.

  Example:
    >>> tree = init_last_step({"t": jnp.ones((3, 2)), "w": 1.0}, [True, False])
    >>> tree["t"].shape, tree["w"]
    ((3, 1), MaskedNode())
  """
  leaves, treedef = jax.tree.flatten(params)
  return treedef.unflatten(
    [
      _row_zeros(p) if d else optax.MaskedNode()
      for p, d in zip(leaves, flat_decayed, strict=True)
    ]
  )


def _interval_lam(
  grad: jax.Array, last: jax.Array, step: jax.Array, alpha: float
) -> tuple[jax.Array, jax.Array]:
  """``(touched, lam)`` of the AdamAR rule for one leaf."""
  touched = touched_rows(grad)
  lam, _ = _row_state.touched_decay(alpha, step, last, touched)
  return touched, lam


def _ar_adam(
  learning_rate: float,
  alpha: float,
  *,
  b1: float,
  b2: float,
  eps: float,
  mask: Any,
  decay_moments: bool,
  skip_first_touch: bool,
) -> optax.GradientTransformationExtraArgs:
  """Dense-moment AdamAR with the switches of the two variants."""
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

  def init_fn(params):
    flat_decayed = flat_mask(mask, params)
    return ARVariantState(
      count=jnp.zeros([], jnp.int32),
      last_step=init_last_step(params, flat_decayed),
      adam=adam.init(params),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("the AR variants need params in update")
    step = optax.safe_increment(state.count)
    treedef = jax.tree.structure(params)
    flat_decayed = flat_mask(mask, params)
    flat_grad = treedef.flatten_up_to(updates)
    flat_last = treedef.flatten_up_to(state.last_step)
    lams, new_last = [], []
    for d, g, last in zip(flat_decayed, flat_grad, flat_last, strict=True):
      if not d:
        lams.append(None)
        new_last.append(last)
        continue
      touched, lam = _interval_lam(g, last, step, alpha)
      if skip_first_touch:
        lam = jnp.where(last == 0, 0.0, lam)
      lams.append(lam)
      new_last.append(jnp.where(touched, step, last))

    adam_state = state.adam
    if decay_moments:
      keep = [None if lam is None else 1.0 - lam for lam in lams]

      def shrink(moment):
        flat = treedef.flatten_up_to(moment)
        return treedef.unflatten(
          [x if k is None else x * k for x, k in zip(flat, keep, strict=True)]
        )

      adam_state = adam_state._replace(
        mu=shrink(adam_state.mu), nu=shrink(adam_state.nu)
      )
    direction, adam_state = adam.update(updates, adam_state, params)
    # As optax.scale_by_learning_rate: -lr times the direction.
    flat_dir = treedef.flatten_up_to(direction)
    flat_params = treedef.flatten_up_to(params)
    out = []
    for u, p, lam in zip(flat_dir, flat_params, lams, strict=True):
      u = -learning_rate * u
      if lam is not None:
        u = (u - lam * p).astype(u.dtype)
      out.append(u)
    new_state = ARVariantState(step, treedef.unflatten(new_last), adam_state)
    return treedef.unflatten(out), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def adam_ar_decay_moments(
  learning_rate: float,
  alpha: float,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  *,
  mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamAR whose decay also shrinks the touched rows' Adam moments.

  At step :math:`k` with raw gradient :math:`g`, for a decayed row
  :math:`j` with :math:`\lambda_j = [g_j \ne 0] \min(1, \alpha I_j)`
  (the AdamAR rule):

  .. math::

    m_j &\leftarrow \beta_1 (1 - \lambda_j) m_j + (1 - \beta_1) g_j \\
    v_j &\leftarrow \beta_2 (1 - \lambda_j) v_j + (1 - \beta_2) g_j^2 \\
    \theta_j &\leftarrow \theta_j - \lambda_j \theta_j
      - \eta\, \hat m_j / (\sqrt{\hat v_j} + \epsilon)

  with the bias correction of the global count. The moments are shrunk
  *before* this step's gradient enters them, so :math:`\lambda = 1` resets
  the row's value and state to init (then takes this step's gradient):
  a per-row MEDA. Untouched rows (:math:`\lambda = 0`) are plain dense Adam.

  Args:
    learning_rate: :math:`\eta`.
    alpha: decay per skipped step, in ``[0, 1)``.
    b1: first-moment decay.
    b2: second-moment decay.
    eps: denominator epsilon.
    mask: leaves that get the decay (tree of bools like the params, or a
      callable); default all.

  Returns:
    A transformation whose ``update`` needs params.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = adam_ar_decay_moments(0.1, 0.5)
    >>> p = jnp.ones((2, 1))
    >>> s = tx.init(p)
    >>> g = jnp.array([[1.0], [0.0]])
    >>> for grad in (g, 0 * g, g):  # row 0 skips step 2: lam = 0.5 at step 3
    ...   u, s = tx.update(grad, s, p)
    >>> s.last_step.ravel().tolist()
    [3, 0]
  """
  return _ar_adam(
    learning_rate,
    alpha,
    b1=b1,
    b2=b2,
    eps=eps,
    mask=mask,
    decay_moments=True,
    skip_first_touch=False,
  )


def adam_ar_first_touch(
  learning_rate: float,
  alpha: float,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  *,
  mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamAR (dense moments) that does not decay a row at its first touch.

  As :func:`optax_ar.adam_ar`, but :math:`\lambda_j = 0` when
  :math:`\ell_j = 0` (the row never had a nonzero gradient before):

  .. math::

    \lambda_j = [g_j \ne 0]\,[\ell_j > 0] \min(1, \alpha (k - \ell_j - 1))

  AdamAR decays a row first touched at step :math:`k` by
  :math:`\min(1, \alpha (k-1))`, which shrinks the *initial* value of the
  row. With zero-initialised rows (the paper's setting) a never-touched row
  is still exactly 0 under dense Adam (its moments are 0), so this variant
  is bitwise AdamAR there; it only differs under a nonzero init.

  Args:
    learning_rate: :math:`\eta`.
    alpha: decay per skipped step, in ``[0, 1)``.
    b1: first-moment decay.
    b2: second-moment decay.
    eps: denominator epsilon.
    mask: leaves that get the decay; default all.

  Returns:
    A transformation whose ``update`` needs params.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = adam_ar_first_touch(0.0, 0.5)
    >>> p = jnp.ones((2, 1))
    >>> s = tx.init(p)
    >>> g = jnp.array([[0.0], [1.0]])
    >>> for _ in range(3):  # row 1 first touched at step 3: no decay
    ...   u, s = tx.update(0 * g, s, p)
    >>> u, s = tx.update(g, s, p)
    >>> u.ravel().tolist()
    [0.0, 0.0]
  """
  return _ar_adam(
    learning_rate,
    alpha,
    b1=b1,
    b2=b2,
    eps=eps,
    mask=mask,
    decay_moments=False,
    skip_first_touch=True,
  )


def bucket_substitution(
  learning_rate: float,
  alpha: float,
  table_mask: Any,
  ar_rows: Any,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""AR decay on chosen table rows, AdamW's uniform decay on the others.

  With Adam's direction :math:`d` (dense moments) and
  :math:`w = \alpha / \eta`:

  .. math::

    \theta_j \leftarrow \begin{cases}
      \theta_j - \lambda_j \theta_j - \eta\, d_j
        & j \text{ an AR row}, \
          \lambda_j = [g_j \ne 0] \min(1, \alpha I_j) \\
      \theta_j - \eta\,(d_j + w\, \theta_j)
        & j \text{ another row of a per-ID table} \\
      \theta_j - \eta\, d_j & \text{dense weights}
    \end{cases}

  The AdamW rows decay by :math:`\eta w = \alpha` every step, touched or
  not, exactly as the runner's ``adamw`` (``optax.adamw`` with
  ``weight_decay = alpha / lr`` masked to the tables); the AR rows follow
  the AdamAR rule. No AR rows is the runner's AdamW; all rows of every
  table AR is its ``adam_ar``.

  Args:
    learning_rate: :math:`\eta`.
    alpha: the decay per step (AdamW) and per skipped step (AR).
    table_mask: tree of bools like the params: the per-ID tables.
    ar_rows: tree like ``table_mask``; per table leaf ``False`` (AdamW on
      every row), ``True`` (AR on every row) or a bool vector of the leaf's
      rows (True: AR); ignored on non-table leaves.
    b1: first-moment decay.
    b2: second-moment decay.
    eps: denominator epsilon.
    weight_decay: :math:`w`; None means ``alpha / learning_rate``. Pass it
      computed as the runner's ``adamw`` does (in Python), so that no AR
      rows is bitwise that AdamW (a float32 ``alpha / lr`` can differ from
      it in the last bit).

  Returns:
    A transformation whose ``update`` needs params.

  Example:
    >>> import jax.numpy as jnp, numpy as np
    >>> tx = bucket_substitution(0.1, 0.25, {"t": True},
    ...                          {"t": np.array([True, False])})
    >>> p = {"t": jnp.ones((2, 1))}
    >>> u, s = tx.update({"t": jnp.zeros((2, 1))}, tx.init(p), p)
    >>> u["t"].ravel().tolist()  # row 1 (AdamW) decays by alpha, row 0 not
    [0.0, -0.25]
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)
  if weight_decay is None:
    weight_decay = alpha / learning_rate

  def leaf_plan(params):
    """Per leaf: None (dense), False/True/row vector (table)."""
    treedef = jax.tree.structure(params)
    flat_tables = flat_mask(table_mask, params)
    flat_rows = treedef.flatten_up_to(ar_rows)
    plan = []
    for is_table, rows, p in zip(
      flat_tables, flat_rows, jax.tree.leaves(params), strict=True
    ):
      if not is_table:
        plan.append(None)
      elif isinstance(rows, (bool, np.bool_)):
        plan.append(bool(rows))
      else:
        rows = np.asarray(rows, bool).reshape(-1)
        if rows.shape[0] != jnp.shape(p)[0]:
          raise ValueError(
            f"ar_rows has {rows.shape[0]} rows for a table of "
            f"{jnp.shape(p)[0]} rows"
          )
        plan.append(True if rows.all() else (False if not rows.any() else rows))
    return plan

  def init_fn(params):
    plan = leaf_plan(params)
    has_ar = [r is not None and r is not False for r in plan]
    return ARVariantState(
      count=jnp.zeros([], jnp.int32),
      last_step=init_last_step(params, has_ar),
      adam=adam.init(params),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("bucket_substitution needs params in update")
    step = optax.safe_increment(state.count)
    treedef = jax.tree.structure(params)
    plan = leaf_plan(params)
    direction, adam_state = adam.update(updates, state.adam, params)
    flat = zip(
      plan,
      treedef.flatten_up_to(updates),
      treedef.flatten_up_to(direction),
      treedef.flatten_up_to(params),
      treedef.flatten_up_to(state.last_step),
      strict=True,
    )
    out, new_last = [], []
    for rows, g, d, p, last in flat:
      if rows is None:  # dense weight: plain Adam
        out.append(-learning_rate * d)
        new_last.append(last)
      elif rows is False:  # AdamW, as optax.adamw's chain computes it
        out.append(-learning_rate * (d + weight_decay * p))
        new_last.append(last)
      else:
        touched, lam = _interval_lam(g, last, step, alpha)
        if rows is True:
          u = -learning_rate * d
        else:
          ar = jnp.asarray(rows).reshape(last.shape)
          lam = jnp.where(ar, lam, 0.0)
          touched = touched & ar
          wd = jnp.where(ar, 0.0, weight_decay).astype(p.dtype)
          u = -learning_rate * (d + wd * p)
        out.append((u - lam * p).astype(u.dtype))
        new_last.append(jnp.where(touched, step, last))
    new_state = ARVariantState(step, treedef.unflatten(new_last), adam_state)
    return treedef.unflatten(out), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def bucket_ar_rows(
  table_mask: Any,
  field: str,
  buckets: Sequence[np.ndarray],
  num_ar_buckets: int,
) -> Any:
  """The ``ar_rows`` tree of :func:`bucket_substitution` for the runner.

  The AR rows are the IDs of the rarest ``num_ar_buckets`` buckets of
  ``field`` (in every per-ID table of the field: the embedding and e.g. the
  wide weights, the leaves whose path ends in ``field``). The reserved IDs
  (padding, OOV) are in no bucket; they go with the most frequent bucket, so
  that 0 buckets is AdamW on every table and all buckets is AR on the
  field's tables. Every other table is AdamW.

  Args:
    table_mask: the per-ID table mask of the params.
    field: the bucket field.
    buckets: ID arrays from the rarest bucket to the most frequent
      (:func:`examples.ctr.metrics.frequency_buckets`).
    num_ar_buckets: ``k`` in ``0 .. len(buckets)``.

  Returns:
    A tree like ``table_mask``.

  Example:
    >>> mask = {"emb": {"a": True, "b": True}, "w": False}
    >>> rows = bucket_ar_rows(mask, "b", [np.array([3]), np.array([2])], 1)
    >>> rows["emb"]["a"], rows["emb"]["b"].tolist(), rows["w"]
    (False, [False, False, False, True], False)
  """
  num_buckets = len(buckets)
  if not 0 <= num_ar_buckets <= num_buckets:
    raise ValueError(f"num_ar_buckets must be in 0..{num_buckets}")
  vocab = max(int(np.max(b)) for b in buckets if len(b)) + 1
  if num_ar_buckets == num_buckets:
    field_rows: Any = True
  elif num_ar_buckets == 0:
    field_rows = False
  else:
    field_rows = np.zeros(vocab, bool)
    for ids in buckets[:num_ar_buckets]:
      field_rows[np.asarray(ids)] = True
  found = []

  def pick(path, is_table):
    if is_table and metrics.path_names(path)[-1:] == [field]:
      found.append(path)
      return field_rows
    return False

  rows = jax.tree_util.tree_map_with_path(pick, table_mask)
  if not found:
    raise ValueError(f"no per-ID table for field {field!r}")
  return rows


def _register_ar_variant(name: str, factory: Callable[..., Any]) -> None:
  """Registers ``factory(learning_rate, alpha, mask=)`` under ``name``."""

  @optimizers.register_optimizer(name, searches_alpha=True)
  def make(o: optimizers.OptimizerOptions) -> optimizers.OptimizerSpec:
    tx = optax.inject_hyperparams(factory, static_args=("mask",))(
      learning_rate=o.learning_rate, alpha=o.alpha, mask=o.ar_mask
    )
    return optimizers.OptimizerSpec(
      tx,
      hyperparams={"alpha": o.alpha},
      static_key=(name, o.ar_tables_only),
    )


_register_ar_variant("adam_ar_decay_moments", adam_ar_decay_moments)
_register_ar_variant("adam_ar_first_touch", adam_ar_first_touch)


@optimizers.register_optimizer("bucket_sub", searches_alpha=True)
def _bucket_sub(o: optimizers.OptimizerOptions) -> optimizers.OptimizerSpec:
  """AR on the rarest ``ar_buckets`` buckets, AdamW on the other rows."""
  lr, alpha = o.learning_rate, o.alpha
  hyper = {"alpha": alpha, "weight_decay": alpha / lr}
  hyper["ar_buckets"] = o.ar_buckets
  if o.ar_buckets == 0:
    ar_rows = jax.tree.map(lambda _: False, o.table_mask)
    static_key: tuple[Any, ...] = ("bucket_sub", 0)
  elif o.buckets is None:
    raise ValueError("bucket_sub with ar_buckets > 0 needs the buckets")
  else:
    field, bucket_ids = o.buckets
    hyper.update(ar_bucket_field=field, num_buckets=len(bucket_ids))
    ar_rows = bucket_ar_rows(o.table_mask, field, bucket_ids, o.ar_buckets)
    ids = np.concatenate([np.asarray(b) for b in bucket_ids[: o.ar_buckets]])
    static_key = ("bucket_sub", o.ar_buckets, field, ids.tobytes())
  tx = optax.inject_hyperparams(
    bucket_substitution, static_args=("table_mask", "ar_rows")
  )(
    learning_rate=lr,
    alpha=alpha,
    table_mask=o.table_mask,
    ar_rows=ar_rows,
    weight_decay=alpha / lr,
  )
  return optimizers.OptimizerSpec(tx, hyperparams=hyper, static_key=static_key)
