"""Adaptive interval decay: the per-row decoupled regularisation of AdamAR.

Usage: ``tx = adaptive_interval_decay(1e-3, optax.adam(1e-3))``.

The decay of a row depends on whether the *raw* gradient touched the row, and
a transformation placed after ``scale_by_adam`` in an ``optax.chain`` only
sees Adam's output, which is nonzero for untouched rows under dense moments.
So the decay is a *wrapper*, in the style of ``optax.masked`` and
``optax.MultiSteps``: it receives the raw gradient, hands it unchanged to an
``inner`` transformation (Adam's direction times the learning rate, built from
stock optax blocks), and adds the decay term to the inner update.
"""

from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp

from optax_ar._src import _optax
from optax_ar._src import _row_state
from optax_ar._src import validation

_NO_PARAMS_MSG = (
  "adaptive_interval_decay needs the current params: call "
  "`update(updates, state, params)` (the decay is -lam * params)."
)


class AdaptiveIntervalDecayState(NamedTuple):
  """State of :func:`adaptive_interval_decay`.

  Attributes:
    count: int32 scalar, the number of updates applied so far (saturating).
    last_step: a tree like the params; per decayed leaf an int32 array of
      shape ``(rows, 1, ..., 1)`` (the leaf's shape with every axis but the
      first reduced to 1; a scalar leaf gives a scalar): the step at which the
      row last received a nonzero raw gradient, 0 if never. Leaves the mask
      leaves out hold ``optax.MaskedNode()``.
    inner_state: the state of the wrapped transformation.
  """

  count: jax.Array
  last_step: _optax.Updates
  inner_state: _optax.OptState


class _Pair:
  """An unregistered pytree leaf holding a new and an old state leaf."""

  __slots__ = ("new", "old")

  def __init__(self, new, old):
    self.new, self.old = new, old


def touched_rows(grad: jax.Array) -> jax.Array:
  """Rows of ``grad`` with at least one nonzero entry (keepdims shape).

  Args:
    grad: a gradient leaf; rows are slices along axis 0.

  Returns:
    A bool array of shape ``row_shape(grad.shape)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> touched_rows(jnp.array([[0., 1.], [0., 0.]])).ravel()
    Array([ True, False], dtype=bool)
  """
  grad = jnp.asarray(grad)
  return _row_state.nonzero_rows(grad, keepdims=True)


def touched_rows_among(grad: jax.Array, candidates: jax.Array) -> jax.Array:
  """:func:`touched_rows`, reading only the candidate rows of ``grad``.

  The rows of ``grad`` at ``candidates`` are gathered and tested; every other
  row is taken to be zero *without being read*, so the cost is that of the
  candidates, not of the table. The caller guarantees that every row with a
  nonzero entry is a candidate (an embedding table's candidates are the IDs
  of the batch); a nonzero row left out is silently taken as untouched.

  Args:
    grad: a gradient leaf of at least one axis; rows are slices along axis 0.
    candidates: integer row ids of any shape; duplicates are allowed and ids
      outside ``[0, rows)`` are padding (ignored).

  Returns:
    A bool array of shape ``row_shape(grad.shape)``, equal to
    ``touched_rows(grad)`` when the guarantee holds.

  Raises:
    TypeError: if ``candidates`` is not an integer array.
    ValueError: if ``grad`` is a scalar.

  Examples:
    >>> import jax.numpy as jnp
    >>> g = jnp.array([[0., 1.], [0., 0.], [2., 0.]])
    >>> touched_rows_among(g, jnp.array([0, 1, 0, -1])).ravel()
    Array([ True, False, False], dtype=bool)
  """
  grad, ids, valid, nonzero = _candidate_test(grad, candidates)
  rows = grad.shape[0]
  mask = _scatter_mask(rows, ids, valid, nonzero)
  return mask.reshape((rows,) + (1,) * (grad.ndim - 1))


def adaptive_interval_decay(
  alpha: _optax.ScalarOrSchedule,
  inner: _optax.GradientTransformation,
  *,
  lazy: bool = False,
  mask: Any = None,
  inner_is_lazy: bool = False,
) -> _optax.GradientTransformationExtraArgs:
  r"""Adds AdamAR's per-row interval decay to an inner transformation.

  Rows are slices along axis 0 of each leaf (row :math:`j` of an ``(N, d)``
  embedding table is the vector of ID :math:`j`). At the :math:`k`-th update
  (:math:`k = 1, 2, \ldots`), with the raw gradient :math:`g`:

  .. math::

    t_j &= [\, \lVert g_j \rVert > 0 \,] \\
    I_j &= k - \ell_j - 1 \\
    \lambda_j &= t_j \min(1, \alpha_k I_j) \\
    \ell_j &\leftarrow k \text{ if } t_j \text{ else } \ell_j \\
    u_j &= \mathrm{inner}(g)_j - \lambda_j \theta_j

  where :math:`\ell_j` is ``last_step`` (0 at init), :math:`\alpha_k` is
  ``alpha`` (or ``alpha(k - 1)`` for a schedule) and :math:`u` is the update
  added to the params :math:`\theta`. The decay is decoupled and *not*
  multiplied by the learning rate: :math:`\lambda = 1` resets a row to zero.
  A row touched at every step has :math:`I = 0`, so dense weights get no decay
  without any mask.

  The touched test reads the whole gradient, an extra pass over memory that
  XLA:CPU does not fuse with the inner update. A caller who knows which rows
  a step can touch (an embedding table's rows are the IDs of the batch)
  passes them as ``update(..., candidate_rows=tree)``: a tree like the params
  (or a prefix of it; ``None`` subtrees are tested in full) holding, per
  leaf, integer row ids of any shape (duplicates allowed, ids outside
  ``[0, rows)`` are padding). Only those rows are read and updated for the
  test, the decay and ``last_step`` (gathered and scattered, see
  :func:`touched_rows_among`); every row with a nonzero gradient must be
  among them. A leaf with fewer than 8 rows per candidate id is tested in
  full instead (cheaper there; the result is the same). Under
  ``optax.MultiSteps`` the update sees the accumulated gradient of several
  micro-batches, so pass the union of their ids (or nothing).

  With ``lazy=True``, rows that the raw gradient did not touch keep their
  inner state (e.g. Adam's moments) and get a zero update (``-0.0``, so that
  their params stay bitwise as they are) in that step, as in the lazy/sparse
  Adam of parameter servers; the inner step count (Adam's bias correction)
  still advances every step. ``inner.update`` then receives the touched rows
  as the keyword argument ``touched_rows``: a tree like the params of bool
  arrays of the per-row shape ``(rows, 1, ..., 1)`` (``True`` for leaves
  without the decay). A stock optax transformation ignores it, and the
  wrapper restores the untouched rows of every params-shaped leaf of its
  state after the step. An inner step that keeps those rows itself (such as
  :func:`optax_ar.scale_by_lazy_adam`, the direction of ``adam_ar(...,
  lazy=True)``) is declared with ``inner_is_lazy=True``, and the wrapper
  leaves its state as returned: one pass over the moments instead of several
  (on XLA:CPU, restoring rows the inner step already kept makes XLA copy the
  moments, a step several times slower on a large table).

  Why a wrapper: the touched test needs the raw gradient, which a
  transformation later in an ``optax.chain`` never sees (under dense moments
  Adam's output is nonzero for untouched rows). Wrapping ``inner`` as
  ``optax.masked`` does guarantees it, and the result composes with ``chain``,
  ``masked``, ``partition``, ``inject_hyperparams``, ``MultiSteps`` and
  ``apply_if_finite`` like any optax transformation.

  Args:
    alpha: decay per skipped step, a float in ``[0, 1)`` or a schedule of the
      update count; a constant 0 gives ``inner``'s update bitwise (the
      decay term is then left out of the compiled step).
    inner: the transformation producing the update from the raw gradient,
      learning rate included (e.g. ``optax.adam(lr)``).
    lazy: freeze the inner state and the update of untouched rows.
    mask: a tree of bools like the params (or a prefix of it), or a callable
      ``params -> tree``, selecting the leaves that get the decay (and lazy
      moments); the others get ``inner`` alone. Default: every leaf.
    inner_is_lazy: with ``lazy=True``, ``inner`` keeps its state on the rows
      that ``touched_rows`` marks untouched itself (see above).

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` requires
    ``params`` and accepts the keyword ``candidate_rows`` (not passed on to
    ``inner``); its state is :class:`AdaptiveIntervalDecayState`.

  Raises:
    ValueError: if ``alpha`` is out of range, or ``inner_is_lazy`` is set
      without ``lazy``; at ``update``, if ``params`` is missing or the
      gradient or ``candidate_rows`` do not match the params tree.
    TypeError: if ``lazy`` or ``inner_is_lazy`` is not a bool.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from optax_ar import adaptive_interval_decay
    >>> tx = adaptive_interval_decay(0.5, optax.sgd(0.0))
    >>> params = jnp.ones((2, 3))
    >>> state = tx.init(params)
    >>> grads = jnp.array([[1., 0., 0.], [0., 0., 0.]])
    >>> updates, state = tx.update(grads, state, params)   # k=1: I=0, no decay
    >>> updates, state = tx.update(grads, state, params)   # k=2: I=0 again
    >>> updates, state = tx.update(grads * 0, state, params)  # untouched
    >>> updates, state = tx.update(grads, state, params)   # k=4: I=1, lam=0.5
    >>> updates[0]
    Array([-0.5, -0.5, -0.5], dtype=float32)
    >>> state.last_step.ravel()
    Array([4, 0], dtype=int32)
    >>> ids = jnp.array([0])  # the rows this step can touch
    >>> _, state = tx.update(grads, state, params, candidate_rows=ids)
    >>> state.last_step.ravel()
    Array([5, 0], dtype=int32)

  References:
    Li and Lyu, `Adaptive Regularization for Large-Scale Sparse Feature
    Embedding Models <https://arxiv.org/abs/2511.06374>`_, ICLR 2026.
  """
  validation.check_scalar_or_schedule("alpha", alpha, upper=1.0)
  if not isinstance(lazy, bool):
    raise TypeError(f"lazy must be a bool, got {lazy!r}")
  if not isinstance(inner_is_lazy, bool):
    raise TypeError(f"inner_is_lazy must be a bool, got {inner_is_lazy!r}")
  if inner_is_lazy and not lazy:
    raise ValueError("inner_is_lazy=True needs lazy=True")
  inner = _optax.with_extra_args_support(inner)
  # A concrete alpha of 0 makes the decay term identically zero: leave it out
  # of the computation so that the update is bitwise the inner one under jit
  # (an extra `- 0 * theta` changes XLA's fusion and FMA contraction).
  decay_is_zero = not callable(alpha) and validation.concrete_float(alpha) == 0

  def full_mask(params):
    return validation.resolve_mask(mask, params)

  def init_fn(params):
    if not jax.tree.leaves(params):
      # ``optax.tree_map_params`` calls init with a leafless placeholder to find
      # the copies of the params in the state; keep it where last_step goes.
      last_step = params
    else:
      mask_tree = full_mask(params)
      zeros = _row_state.zeros_row_state
      last_step = jax.tree.map(
        lambda m, p: zeros(p) if m else _optax.MaskedNode(),
        mask_tree,
        params,
      )
    return AdaptiveIntervalDecayState(
      count=jnp.zeros([], jnp.int32),
      last_step=last_step,
      inner_state=inner.init(params),
    )

  def update_fn(updates, state, params=None, candidate_rows=None, **extra_args):
    if params is None:
      raise ValueError(_NO_PARAMS_MSG)
    mask_tree = full_mask(params)
    step = _optax.safe_increment(state.count)
    alpha_k = alpha(state.count) if callable(alpha) else alpha
    alpha_k = jnp.asarray(alpha_k, jnp.float32)

    treedef = jax.tree.structure(params)
    flat_mask = treedef.flatten_up_to(mask_tree)
    flat_params = treedef.flatten_up_to(params)
    flat_grad = validation.flatten_like_params(
      "updates", updates, params, treedef
    )
    flat_last = treedef.flatten_up_to(state.last_step)
    flat_candidates = _flat_candidates(candidate_rows, params, treedef)
    plans = [
      _row_plan(m, g, c, last, step, alpha_k, need_mask=lazy)
      for m, g, c, last in zip(
        flat_mask, flat_grad, flat_candidates, flat_last, strict=True
      )
    ]
    flat_touched = [plan.touched for plan in plans]
    touched_tree = treedef.unflatten(flat_touched)

    if lazy:
      extra_args = {**extra_args, "touched_rows": touched_tree}
    inner_updates, inner_state = inner.update(
      updates, state.inner_state, params, **extra_args
    )
    flat_inner = treedef.flatten_up_to(inner_updates)

    out_updates, out_last = [], []
    for m, u, p, last, plan in zip(
      flat_mask, flat_inner, flat_params, flat_last, plans, strict=True
    ):
      if not m:
        out_updates.append(u)
        out_last.append(last)
        continue
      u = jnp.asarray(u)
      if not decay_is_zero:
        u = (u - plan.lam * p).astype(u.dtype)
      if lazy:
        # -0.0, the identity of +: an idle row's params stay bitwise as they
        # are (+0.0 would turn a -0.0 into +0.0), and XLA:CPU's loop can skip
        # the row's writes.
        u = jnp.where(plan.touched, u, jnp.full_like(u, -0.0))
      out_updates.append(u)
      out_last.append(plan.last_step)

    if lazy and not inner_is_lazy:
      inner_state = _keep_untouched_rows(
        inner, inner_state, state.inner_state, touched_tree
      )

    new_state = AdaptiveIntervalDecayState(
      count=step,
      last_step=treedef.unflatten(out_last),
      inner_state=inner_state,
    )
    return treedef.unflatten(out_updates), new_state

  return _optax.GradientTransformationExtraArgs(init_fn, update_fn)


class _RowPlan(NamedTuple):
  """A leaf's AR row work: touched rows, decay and new ``last_step``."""

  touched: Any  # bool (rows, 1, ..., 1), or True (leaf without the decay)
  lam: Any  # float32 per-row decay, 0 on rows left alone
  last_step: Any


def _row_plan(decayed, grad, candidates, last, step, alpha_k, need_mask):
  """The touched test, the decay and the new ``last_step`` of one leaf.

  Without candidates every row is tested and decayed (one pass over the
  gradient, and per-row arithmetic over all rows). With candidates only their
  rows are read and computed: their ``last_step`` and gradient rows are
  gathered, ``lam`` is scattered into zeros (the only per-row array of the
  table's length that is written, besides the bool mask when ``need_mask``)
  and the step into ``last_step`` (in place when the state is donated).
  Duplicate candidates carry the same values, so the scatters do not depend
  on their order.
  """
  if not decayed:
    return _RowPlan(True, None, last)
  if candidates is not None:
    _check_candidates(grad, candidates)
    if not _few_candidates(grad, candidates):
      candidates = None
  if candidates is None:
    touched = touched_rows(grad)
    lam, _ = _row_state.touched_decay(alpha_k, step, last, touched)
    return _RowPlan(touched, lam, _row_state.new_last_step(step, last, touched))
  grad, ids, valid, nonzero = _candidate_test(grad, candidates)
  rows = grad.shape[0]
  row_shape = _row_state.row_shape(grad.shape)
  safe = jnp.where(valid, ids, 0)
  flat_last = last.reshape(rows)
  last_rows = flat_last[safe]
  lam_rows, _ = _row_state.touched_decay(alpha_k, step, last_rows, nonzero)
  lam = (
    jnp.zeros((rows,), jnp.float32)
    .at[jnp.where(valid, ids, rows)]
    .set(lam_rows, mode="drop")
  )
  # Built from the gathered rows (not a broadcast of `step`) so that XLA
  # orders the gather before the in-place scatter instead of copying.
  new_rows = _row_state.new_last_step(step, last_rows, nonzero)
  new_last = flat_last.at[jnp.where(nonzero, ids, rows)].set(
    new_rows, mode="drop"
  )
  touched = None
  if need_mask:
    touched = _scatter_mask(rows, ids, valid, nonzero).reshape(row_shape)
  return _RowPlan(touched, lam.reshape(row_shape), new_last.reshape(last.shape))


# Candidates are used when a leaf has at least this many rows per candidate
# id; with more ids, gathering and scattering them costs more on XLA:CPU than
# the full test's one pass over the gradient (measured: 40960 ids cost as
# much as the full test of a (3e5, 32) leaf). Tests set it to 0.
_ROWS_PER_CANDIDATE = 8


def _few_candidates(grad, candidates):
  """Whether testing ``candidates`` beats testing every row of ``grad``."""
  return jnp.size(candidates) * _ROWS_PER_CANDIDATE <= jnp.shape(grad)[0]


def _check_candidates(grad, candidates):
  """Raises for a scalar leaf or non-integer ids."""
  if jnp.ndim(grad) == 0:
    raise ValueError("candidate rows were given for a scalar leaf")
  dtype = jnp.result_type(candidates)
  if not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"candidate rows must be integer ids, got dtype {dtype}")


def _candidate_test(grad, candidates):
  """``(grad, ids, valid, nonzero)``: the candidate slots and their test."""
  _check_candidates(grad, candidates)
  grad = jnp.asarray(grad)
  candidates = jnp.asarray(candidates)
  rows = grad.shape[0]
  ids = candidates.ravel()
  valid = (ids >= 0) & (ids < rows)
  picked = grad[jnp.where(valid, ids, 0)]
  nonzero = valid & _row_state.nonzero_rows(picked)
  return grad, ids, valid, nonzero


def _scatter_mask(rows, ids, valid, nonzero):
  """``(rows,)`` bools, ``nonzero`` at ``ids``; padding ids are dropped."""
  # Padding goes to the out-of-bounds slot `rows`, which `drop` discards;
  # duplicates of an id carry the same value, so `set` is deterministic.
  return (
    jnp.zeros((rows,), jnp.bool_)
    .at[jnp.where(valid, ids, rows)]
    .set(nonzero, mode="drop")
  )


def _flat_candidates(candidate_rows, params, treedef):
  """Per params leaf: its candidate row ids, or None (test the whole leaf)."""
  if candidate_rows is None:
    return [None] * treedef.num_leaves
  try:
    return _row_state.flatten_prefix(candidate_rows, params)
  except (ValueError, TypeError) as error:
    raise ValueError(
      "candidate_rows does not match the params tree: it must be the params "
      "structure (or a prefix of it, None for subtrees to test in full) with "
      f"one integer array of row ids per leaf ({error})"
    ) from error


def _keep_untouched_rows(inner, new_state, old_state, touched_tree):
  """Takes the old inner state on untouched rows of every params copy."""
  zipped = jax.tree.map(_Pair, new_state, old_state)

  def select(pair, touched):
    if isinstance(pair, _optax.MaskedNode):
      return pair
    if touched is True:
      return pair.new
    return jnp.where(touched, pair.new, pair.old)

  return _optax.tree_map_params(
    inner,
    select,
    zipped,
    touched_tree,
    transform_non_params=lambda pair: jax.tree.map(
      lambda x: x.new, pair, is_leaf=lambda x: isinstance(x, _Pair)
    ),
    is_leaf=lambda x: isinstance(x, (_Pair, _optax.MaskedNode)),
  )
