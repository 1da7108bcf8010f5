"""Sparse row updates: lazy AdamAR / AdagradAR on the rows a step touches.

Usage: ``opt = sparse_adam_ar(1e-3, 1e-3); table, state = opt.update(table,
state, row_ids, row_grads)``.

The dense optax path reads and writes every row of a table, its moments and
its gradient at every step. Here the model differentiates with respect to the
*gathered* rows of the step, the optimizer receives the unique row ids and
their summed gradients, and only those rows of the table, its moments and its
``last_step`` are gathered, updated and scattered back (in place when the
caller donates them to ``jax.jit``). The cost of a step is proportional to
the number of ids it touches, not to the size of the table.

The rule is exactly the lazy AdamAR of :func:`optax_ar.adam_ar` with
``lazy=True`` (and :func:`optax_ar.adagrad_ar`), the same global step count
included; a row whose summed gradient is exactly zero is *not* touched, as in
the dense path. Capacity is fixed: ``row_ids`` has a static length, and slots
holding an id outside ``[0, num_rows)`` (``unique_rows`` pads with
``num_rows``) are ignored, so a varying number of unique ids per step does not
recompile.
"""

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_ar._src import _optax
from optax_ar._src import _row_state
from optax_ar._src import validation


class SparseAdamARState(NamedTuple):
  """State of :func:`sparse_adam_ar`.

  Attributes:
    count: int32 scalar, the number of updates applied so far (saturating).
    mu: a tree like the tables; Adam's first moment, shape of each table.
    nu: a tree like the tables; Adam's second moment, shape of each table.
    last_step: a tree like the tables; int32 of shape ``(rows, 1, ..., 1)``
      (the dense ``AdaptiveIntervalDecayState.last_step`` layout): the step
      at which the row last received a nonzero gradient, 0 if never.
  """

  count: jax.Array
  mu: _optax.Updates
  nu: _optax.Updates
  last_step: _optax.Updates


class SparseAdagradARState(NamedTuple):
  """State of :func:`sparse_adagrad_ar`.

  Attributes:
    count: int32 scalar, the number of updates applied so far (saturating).
    sum_of_squares: a tree like the tables; Adagrad's accumulator.
    last_step: a tree like the tables; int32 ``(rows, 1, ..., 1)``.
  """

  count: jax.Array
  sum_of_squares: _optax.Updates
  last_step: _optax.Updates


class SparseRowOptimizer(NamedTuple):
  """A pair of pure functions, like ``optax.GradientTransformation``.

  Attributes:
    init: ``init(tables) -> state``; ``tables`` is an array or a tree of
      arrays whose rows are slices along axis 0.
    update: ``update(tables, state, row_ids, row_grads) -> (tables, state)``;
      ``row_ids`` is a tree like ``tables`` of int ``(capacity,)`` arrays of
      *unique* row ids (slots outside ``[0, rows)`` are padding), and
      ``row_grads`` a tree of ``(capacity, *row_shape)`` gradients, one row
      per id (duplicates summed beforehand, e.g. by :func:`unique_rows` and
      autodiff through :func:`gather_rows`).
  """

  init: Callable[[Any], Any]
  update: Callable[[Any, Any, Any, Any], tuple[Any, Any]]


class UniqueRows(NamedTuple):
  """Host-side deduplication of one step's ids (see :func:`unique_rows`).

  Attributes:
    ids: int32 ``(capacity,)``, the sorted unique ids, padded with
      ``num_rows`` (out of range: ignored by the sparse update).
    inverse: int32, the shape of the input ids; ``ids[inverse]`` gives back
      the input.
    num_unique: how many entries of ``ids`` are real.
  """

  ids: np.ndarray
  inverse: np.ndarray
  num_unique: int


def unique_rows(ids: Any, num_rows: int, capacity: int) -> UniqueRows:
  """Deduplicates a step's ids on the host, to a fixed capacity.

  Run it in the input pipeline (NumPy, about 0.5 ms for 40k ids), not inside
  ``jit``: ``jnp.unique`` with a static ``size`` works under ``jit`` but
  costs an order of magnitude more per step on CPU.

  Args:
    ids: integer array of any shape, e.g. ``(batch, bag)``, each in
      ``[0, num_rows)``.
    num_rows: the number of rows of the table; also the padding id.
    capacity: the static number of slots of the result (at least the number
      of unique ids of any step; ``ids.size`` always suffices).

  Returns:
    A :class:`UniqueRows`.

  Raises:
    ValueError: if ``ids`` holds an id outside ``[0, num_rows)`` or is not
      integer, or if it has more than ``capacity`` unique ids.

  Examples:
    >>> u = unique_rows([[5, 2], [5, 0]], num_rows=10, capacity=4)
    >>> u.ids, u.inverse, u.num_unique
    (array([ 0,  2,  5, 10], dtype=int32), array([[2, 1],
           [2, 0]], dtype=int32), 3)
  """
  ids = np.asarray(ids)
  if ids.dtype.kind not in "iu":
    raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
  if num_rows < 1 or num_rows >= np.iinfo(np.int32).max:
    raise ValueError(f"num_rows must be in [1, 2**31 - 1), got {num_rows}")
  if ids.size and (ids.min() < 0 or ids.max() >= num_rows):
    bad = ids[(ids < 0) | (ids >= num_rows)].ravel()[0]
    raise ValueError(f"ids must be in [0, num_rows={num_rows}), found {bad}")
  uniq, inverse = np.unique(ids.ravel(), return_inverse=True)
  if uniq.size > capacity:
    raise ValueError(
      f"capacity={capacity} is smaller than the {uniq.size} unique ids of "
      "this step; raise capacity (ids.size always suffices)"
    )
  padded = np.full((capacity,), num_rows, np.int32)
  padded[: uniq.size] = uniq
  return UniqueRows(
    padded, inverse.reshape(ids.shape).astype(np.int32), int(uniq.size)
  )


def gather_rows(table: jax.Array, row_ids: jax.Array) -> jax.Array:
  """``table[row_ids]``, with zeros for padding ids (``>= rows``).

  Differentiate the loss with respect to the result (not the table) to get
  the ``row_grads`` of the sparse update; indexing the result with
  ``UniqueRows.inverse`` makes autodiff sum duplicate ids. The sparse update
  gathers the same rows with the same call, so XLA merges the two gathers.

  Args:
    table: ``(rows, ...)`` array.
    row_ids: int array of row ids.

  Returns:
    An array of shape ``row_ids.shape + table.shape[1:]``.

  Examples:
    >>> import jax.numpy as jnp
    >>> gather_rows(jnp.arange(6.).reshape(3, 2), jnp.array([2, 3]))
    Array([[4., 5.],
           [0., 0.]], dtype=float32)
  """
  return table.at[row_ids].get(mode="fill", fill_value=0)


def _check_probability(name: str, value: float) -> None:
  if not 0.0 <= float(value) < 1.0:
    raise ValueError(f"{name} must be in [0, 1), got {value}")


def _rows_like(x: jax.Array, ndim: int) -> jax.Array:
  """Reshapes a per-row vector ``(capacity,)`` to broadcast over rows."""
  return x.reshape(x.shape + (1,) * (ndim - 1))


def _check_rows(table, row_ids, row_grads):
  """Raises for a scalar table or ids and gradients of the wrong shape."""
  if table.ndim < 1:
    raise ValueError("tables must have rows (ndim >= 1), got a scalar")
  if row_ids.ndim != 1:
    raise ValueError(f"row_ids must be 1-D, got shape {row_ids.shape}")
  if row_grads.shape != row_ids.shape + table.shape[1:]:
    raise ValueError(
      f"row_grads must have shape {row_ids.shape + table.shape[1:]} "
      f"(capacity, *row_shape), got {row_grads.shape}"
    )


def _touched_slots(table, row_ids, row_grads):
  """Valid (in range) slots whose gradient row has a nonzero entry."""
  num_rows = table.shape[0]
  valid = (row_ids >= 0) & (row_ids < num_rows)
  nonzero = _row_state.nonzero_rows(row_grads)
  touched = valid & nonzero
  # Untouched slots scatter to the out-of-range id `num_rows`: dropped.
  scatter_ids = jnp.where(touched, row_ids, num_rows)
  return touched, scatter_ids


def _interval_decay(alpha_k, step, last_rows, touched):
  """``(lam, I)`` per gathered row; ``lam`` is 0 on untouched slots."""
  return _row_state.touched_decay(
    alpha_k, step, last_rows, _rows_like(touched, last_rows.ndim)
  )


def _new_last(step, last_rows, touched):
  """``step`` on touched slots (the only ones scattered).

  Built from the gathered ``last_rows`` rather than a broadcast of ``step``:
  a scatter whose values do not depend on the gather from the same array
  leaves XLA no order between the two, and it copies the whole array.
  """
  return _row_state.new_last_step(
    step, last_rows, _rows_like(touched, last_rows.ndim)
  )


def _scatter(array, scatter_ids, values):
  return array.at[scatter_ids].set(
    values.astype(array.dtype), mode="drop", unique_indices=True
  )


# Slots are updated in chunks of about this many bytes of gradient rows.
# XLA:CPU allocates a call's temporary buffers afresh at every call; above
# glibc's mmap threshold (32 MB at most) they come from the kernel as fresh
# pages, one minor fault per 4 KiB, which costs as much as the update itself
# (about 40% of a train step with 40960 slots of d = 32). Chunks keep the
# temporaries small enough to be reused.
_CHUNK_BYTES = 1 << 20
_MIN_CHUNK_ROWS = 256


def _in_chunks(rows_update, arrays, ids, grads):
  """``rows_update(arrays, ids, grads) -> arrays`` over chunks of the slots.

  The ids are unique, so chunks touch disjoint rows and the result is that
  of one call on every slot; a ``fori_loop`` runs the full chunks (updating
  ``arrays`` in place), one more call the remainder.
  """
  capacity = ids.shape[0]
  row_bytes = max(1, int(np.prod(grads.shape[1:]))) * grads.dtype.itemsize
  size = max(_MIN_CHUNK_ROWS, _CHUNK_BYTES // row_bytes)
  count = capacity // size
  if count <= 1:
    return rows_update(arrays, ids, grads)

  def body(i, arrays):
    start = i * size
    return rows_update(
      arrays,
      jax.lax.dynamic_slice_in_dim(ids, start, size),
      jax.lax.dynamic_slice_in_dim(grads, start, size),
    )

  arrays = jax.lax.fori_loop(0, count, body, arrays)
  if capacity > count * size:
    rest = slice(count * size, None)
    arrays = rows_update(arrays, ids[rest], grads[rest])
  return arrays


def _value_at(schedule, count):
  value = schedule(count) if callable(schedule) else schedule
  return jnp.asarray(value, jnp.float32)


def _check_common(learning_rate, alpha):
  validation.check_scalar_or_schedule("learning_rate", learning_rate)
  validation.check_scalar_or_schedule("alpha", alpha, upper=1.0)


def _as_row_ids(ids: Any) -> jax.Array:
  """``ids`` as an integer array, checked before JAX converts it.

  Raises:
    TypeError: if ``ids`` is not integer.
    ValueError: if concrete host ids overflow int32 (JAX would wrap them
      silently into valid rows when 64-bit mode is off).
  """
  if not isinstance(ids, jax.Array):
    host = np.asarray(ids)
    if host.dtype.kind in "iu" and host.size:
      info = np.iinfo(np.int32)
      if host.min() < info.min or host.max() > info.max:
        bad = host[(host < info.min) | (host > info.max)].ravel()[0]
        raise ValueError(
          f"row_ids must fit in int32 (ids outside [0, rows) are padding), "
          f"found {bad}"
        )
    dtype = host.dtype
  else:
    dtype = ids.dtype
  if not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"row_ids must be integer row ids, got dtype {dtype}")
  return jnp.asarray(ids)


def _flatten_like_tables(name, tree, treedef):
  try:
    return treedef.flatten_up_to(tree)
  except (ValueError, TypeError) as error:
    raise ValueError(
      f"{name} does not match the tables tree: structure "
      f"{jax.tree.structure(tree)} vs tables structure {treedef}"
    ) from error


def _tree_update(tables, row_ids, row_grads, leaf_update, **states):
  """Applies ``leaf_update`` per table; returns (tables, *state trees)."""
  treedef = jax.tree.structure(tables)
  flat = [
    treedef.flatten_up_to(tables),
    [
      _as_row_ids(ids)
      for ids in _flatten_like_tables("row_ids", row_ids, treedef)
    ],
    _flatten_like_tables("row_grads", row_grads, treedef),
  ]
  flat += [
    _flatten_like_tables(f"state.{name}", tree, treedef)
    for name, tree in states.items()
  ]
  outputs = [leaf_update(*leaf_args) for leaf_args in zip(*flat, strict=True)]
  return tuple(
    treedef.unflatten([out[i] for out in outputs])
    for i in range(1 + len(states))
  )


def sparse_adam_ar(
  learning_rate: _optax.ScalarOrSchedule,
  alpha: _optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Any | None = None,
  *,
  nesterov: bool = False,
  catch_up_moments: bool = False,
) -> SparseRowOptimizer:
  r"""Lazy AdamAR applied to the given rows only (gather, update, scatter).

  At the :math:`k`-th update, for each slot holding a row id :math:`j` whose
  gradient row :math:`g_j` is nonzero (every other row of the table, its
  moments and ``last_step`` are left as they are):

  .. math::

    I_j &= k - \ell_j - 1, \qquad
      \lambda_j = \min(1, \alpha_k I_j), \qquad \ell_j \leftarrow k \\
    m_j &\leftarrow \beta_1 m_j + (1 - \beta_1) g_j, \qquad
      v_j \leftarrow \beta_2 v_j + (1 - \beta_2) g_j^2 \\
    \theta_j &\leftarrow \theta_j - \lambda_j \theta_j
      - \eta_k \frac{m_j / (1 - \beta_1^k)}
                    {\sqrt{v_j / (1 - \beta_2^k) + \epsilon_{root}} + \epsilon}

  which is ``optax_ar.adam_ar(learning_rate, alpha, b1, b2, eps, eps_root,
  mu_dtype, nesterov=nesterov, lazy=True)`` restricted to the touched rows
  (:math:`\eta_k, \alpha_k` are the values, or the schedules at count
  :math:`k - 1`; the bias correction uses the global :math:`k`; with
  ``nesterov`` the first moment's correction is that of
  ``optax.scale_by_adam``).

  With ``catch_up_moments=True`` the moments of a touched row are first
  decayed by the steps it skipped, :math:`m_j \leftarrow \beta_1^{I_j} m_j`,
  :math:`v_j \leftarrow \beta_2^{I_j} v_j`: its moments after the update are
  then those of dense Adam (``lazy=False``), though its parameters are not
  (dense Adam keeps moving untouched rows by their momentum).

  Args:
    learning_rate: :math:`\eta`, a float or a schedule of the count.
    alpha: decay per skipped step, in ``[0, 1)``, or a schedule.
    b1: exponential decay rate of the first moment.
    b2: exponential decay rate of the second moment.
    eps: added to the denominator outside the square root.
    eps_root: added to the second moment inside the square root.
    mu_dtype: dtype of the first moment (None: the table's dtype).
    nesterov: use Nesterov momentum (NAdam), as ``optax.scale_by_adam``.
    catch_up_moments: decay the moments of a touched row by the skipped
      steps (see above). Default False: exactly lazy ``adam_ar``.

  Returns:
    A :class:`SparseRowOptimizer` whose state is :class:`SparseAdamARState`.
    Its ``update`` raises ``TypeError`` for non-integer ``row_ids`` and
    ``ValueError`` for trees that do not match the tables, a ``row_grads``
    whose capacity differs from that of ``row_ids``, or host ids beyond int32
    (under
    ``jit`` the ids are traced and only their dtype and shape are checked).

  Examples:
    >>> import jax, jax.numpy as jnp, optax_ar
    >>> table = jnp.ones((1000, 4))
    >>> opt = optax_ar.sparse_adam_ar(learning_rate=0.1, alpha=0.01)
    >>> state = opt.init(table)
    >>> u = optax_ar.unique_rows([7, 3, 7], num_rows=1000, capacity=4)
    >>> rows = optax_ar.gather_rows(table, u.ids)
    >>> row_grads = jax.grad(lambda r: r[u.inverse].sum())(rows)
    >>> row_grads[:, 0]  # id 7 appears twice; the padding slot gets zero
    Array([1., 2., 0., 0.], dtype=float32)
    >>> update = jax.jit(opt.update, donate_argnums=(0, 1))
    >>> table, state = update(table, state, u.ids, row_grads)
    >>> table[[3, 7, 0], 0]  # Adam's first step moves touched rows by lr
    Array([0.9, 0.9, 1. ], dtype=float32)
    >>> state.last_step[[3, 7, 0], 0]
    Array([1, 1, 0], dtype=int32)
  """
  _check_common(learning_rate, alpha)
  _check_probability("b1", b1)
  _check_probability("b2", b2)
  if not isinstance(catch_up_moments, bool):
    raise TypeError(f"catch_up_moments must be a bool, got {catch_up_moments}")
  if not isinstance(nesterov, bool):
    raise TypeError(f"nesterov must be a bool, got {nesterov}")
  mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

  def init(tables):
    return SparseAdamARState(
      count=jnp.zeros([], jnp.int32),
      mu=jax.tree.map(lambda t: jnp.zeros_like(t, dtype=mu_dtype), tables),
      nu=jax.tree.map(jnp.zeros_like, tables),
      last_step=jax.tree.map(_row_state.zeros_row_state, tables),
    )

  def update(tables, state, row_ids, row_grads):
    step = _optax.safe_increment(state.count)
    lr_k = _value_at(learning_rate, state.count)
    alpha_k = _value_at(alpha, state.count)
    bias1 = 1 - b1**step  # as optax.tree.bias_correction computes it
    bias2 = 1 - b2**step

    def leaf_update(table, ids, grads, mu, nu, last):
      grads = jnp.asarray(grads)
      _check_rows(table, ids, grads)
      return _in_chunks(rows_update, (table, mu, nu, last), ids, grads)

    def rows_update(arrays, ids, grads):
      table, mu, nu, last = arrays
      touched, scatter_ids = _touched_slots(table, ids, grads)
      theta = gather_rows(table, ids)
      m = gather_rows(mu, ids)
      v = gather_rows(nu, ids)
      last_rows = gather_rows(last, ids)
      lam, interval = _interval_decay(alpha_k, step, last_rows, touched)
      if catch_up_moments:
        m = m * (b1**interval).astype(m.dtype)
        v = v * (b2**interval).astype(v.dtype)
      grads = grads.astype(v.dtype)
      m = (1 - b1) * grads + b1 * m
      v = (1 - b2) * grads**2 + b2 * v
      if nesterov:
        bias1_next = 1 - b1 ** _optax.safe_increment(step)
        m_hat = b1 * (m / bias1_next.astype(m.dtype)) + (1 - b1) * (
          grads / bias1.astype(grads.dtype)
        )
      else:
        m_hat = m / bias1.astype(m.dtype)
      direction = m_hat / (jnp.sqrt(v / bias2.astype(v.dtype) + eps_root) + eps)
      delta = -lr_k.astype(direction.dtype) * direction - lam * theta
      return (
        _scatter(table, scatter_ids, theta + delta),
        _scatter(mu, scatter_ids, m),
        _scatter(nu, scatter_ids, v),
        _scatter(last, scatter_ids, _new_last(step, last_rows, touched)),
      )

    tables, mu, nu, last_step = _tree_update(
      tables,
      row_ids,
      row_grads,
      leaf_update,
      mu=state.mu,
      nu=state.nu,
      last_step=state.last_step,
    )
    return tables, SparseAdamARState(step, mu, nu, last_step)

  return SparseRowOptimizer(init, update)


def sparse_adagrad_ar(
  learning_rate: _optax.ScalarOrSchedule,
  alpha: _optax.ScalarOrSchedule,
  initial_accumulator_value: float = 0.1,
  eps: float = 1e-7,
) -> SparseRowOptimizer:
  r"""AdagradAR applied to the given rows only (gather, update, scatter).

  For each slot holding a row id :math:`j` with a nonzero gradient row, with
  :math:`I_j, \lambda_j, \ell_j` as in :func:`sparse_adam_ar`:

  .. math::

    G_j \leftarrow G_j + g_j^2, \qquad
    \theta_j \leftarrow \theta_j - \lambda_j \theta_j
      - \eta_k \, g_j / \sqrt{G_j + \epsilon}

  which is ``optax_ar.adagrad_ar(learning_rate, alpha,
  initial_accumulator_value, eps)`` (``optax.scale_by_rss``) on the touched
  rows; Adagrad leaves untouched rows unchanged, so no rule differs.

  Args:
    learning_rate: :math:`\eta`, a float or a schedule (the paper uses 0.01).
    alpha: decay per skipped step, in ``[0, 1)``, or a schedule.
    initial_accumulator_value: initial value of :math:`G`.
    eps: added inside the square root for numerical stability.

  Returns:
    A :class:`SparseRowOptimizer` whose state is
    :class:`SparseAdagradARState`.

  Examples:
    >>> import jax.numpy as jnp, optax_ar
    >>> opt = optax_ar.sparse_adagrad_ar(learning_rate=0.1, alpha=0.0,
    ...                                  initial_accumulator_value=0.0)
    >>> table = jnp.zeros((5, 2))
    >>> state = opt.init(table)
    >>> ids = jnp.array([1, 5])  # 5 = padding
    >>> table, state = opt.update(table, state, ids, jnp.full((2, 2), 3.0))
    >>> table[:2]
    Array([[ 0. ,  0. ],
           [-0.1, -0.1]], dtype=float32)
  """
  _check_common(learning_rate, alpha)
  if float(initial_accumulator_value) < 0:
    raise ValueError(
      f"initial_accumulator_value must be >= 0, got {initial_accumulator_value}"
    )

  def init(tables):
    return SparseAdagradARState(
      count=jnp.zeros([], jnp.int32),
      sum_of_squares=jax.tree.map(
        lambda t: jnp.full_like(t, initial_accumulator_value), tables
      ),
      last_step=jax.tree.map(_row_state.zeros_row_state, tables),
    )

  def update(tables, state, row_ids, row_grads):
    step = _optax.safe_increment(state.count)
    lr_k = _value_at(learning_rate, state.count)
    alpha_k = _value_at(alpha, state.count)

    def leaf_update(table, ids, grads, acc, last):
      grads = jnp.asarray(grads)
      _check_rows(table, ids, grads)
      return _in_chunks(rows_update, (table, acc, last), ids, grads)

    def rows_update(arrays, ids, grads):
      table, acc, last = arrays
      touched, scatter_ids = _touched_slots(table, ids, grads)
      theta = gather_rows(table, ids)
      g2 = gather_rows(acc, ids)
      last_rows = gather_rows(last, ids)
      lam, _ = _interval_decay(alpha_k, step, last_rows, touched)
      grads = grads.astype(g2.dtype)
      g2 = grads * grads + g2
      scale = jnp.where(g2 > 0, jax.lax.rsqrt(g2 + eps), 0.0)
      delta = -lr_k.astype(grads.dtype) * (scale * grads) - lam * theta
      return (
        _scatter(table, scatter_ids, theta + delta),
        _scatter(acc, scatter_ids, g2),
        _scatter(last, scatter_ids, _new_last(step, last_rows, touched)),
      )

    tables, acc, last_step = _tree_update(
      tables,
      row_ids,
      row_grads,
      leaf_update,
      sum_of_squares=state.sum_of_squares,
      last_step=state.last_step,
    )
    return tables, SparseAdagradARState(step, acc, last_step)

  return SparseRowOptimizer(init, update)
