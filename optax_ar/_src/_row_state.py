r"""Per-row state arithmetic of the interval decay, shared by every path.

A leaf's rows are slices along axis 0. Per row :math:`j` AdamAR keeps
:math:`\ell_j`, the step at which the row last received a nonzero gradient
(0: never), as an int32 array of shape ``(rows, 1, ..., 1)``. At the
:math:`k`-th update a touched row is decayed by

.. math::

  I_j = k - \ell_j - 1, \qquad \lambda_j = \min(1, \alpha I_j)

and :math:`\ell_j \leftarrow k`. The dense wrapper
(:mod:`optax_ar._src.interval_decay`), the sparse row path
(:mod:`optax_ar._src.sparse`) and the examples' research variants compute
these with the functions below.
"""

from typing import Any

import jax
import jax.numpy as jnp


def row_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
  """The per-row state shape of a leaf: ``(rows, 1, ..., 1)``; ``()`` stays.

  Examples:
    >>> row_shape((5, 3, 2)), row_shape((4,)), row_shape(())
    ((5, 1, 1), (4,), ())
  """
  return tuple(shape[:1]) + (1,) * max(len(shape) - 1, 0)


def zeros_row_state(param: jax.Array) -> jax.Array:
  """int32 zeros of ``row_shape(param.shape)``, placed like ``param``'s rows.

  Built with ``zeros_like`` of the leaf's first column, so that a table
  sharded by rows gets a ``last_step`` sharded the same way.

  Examples:
    >>> zeros_row_state(jnp.ones((3, 2))).ravel()
    Array([0, 0, 0], dtype=int32)
  """
  param = jnp.asarray(param)
  if param.ndim == 0:
    return jnp.zeros_like(param, dtype=jnp.int32)
  first_column = param[(slice(None),) + (slice(0, 1),) * (param.ndim - 1)]
  return jnp.zeros_like(first_column, dtype=jnp.int32)


def nonzero_rows(x: jax.Array, keepdims: bool = False) -> jax.Array:
  """Rows (slices along axis 0) of ``x`` with at least one nonzero entry.

  ``any(x != 0)`` over every axis but the first, computed as a count of
  nonzero entries: XLA:CPU vectorizes an int32 sum, not a reduction of bools
  (several times faster over a large gradient). NaN counts as nonzero and
  ``-0.0`` as zero, as with ``!=``.

  Examples:
    >>> nonzero_rows(jnp.array([[0., -0.], [0., 2.], [jnp.nan, 0.]]))
    Array([False,  True,  True], dtype=bool)
  """
  axes = tuple(range(1, x.ndim))
  count = jnp.sum((x != 0).astype(jnp.int32), axis=axes, keepdims=keepdims)
  return count != 0


def interval(step: jax.Array, last: jax.Array) -> jax.Array:
  """``I = step - last - 1`` as float32: the steps a row skipped."""
  return (step - last - 1).astype(jnp.float32)


def decay(alpha: Any, interval_: jax.Array) -> jax.Array:
  """``lam = min(1, alpha * I)``: the decay after ``I`` idle steps."""
  return jnp.minimum(1.0, alpha * interval_)


def touched_decay(
  alpha: Any, step: jax.Array, last: jax.Array, touched: jax.Array
) -> tuple[jax.Array, jax.Array]:
  r"""``(lam, I)``: :func:`decay` on touched rows, 0 on the others.

  Args:
    alpha: the decay per skipped step (a float or float32 scalar).
    step: the current step :math:`k` (int32 scalar).
    last: the rows' :math:`\ell` (int32, per-row shape).
    touched: bools broadcastable against ``last``.

  Returns:
    ``lam`` (float32, the broadcast shape) and ``I`` (float32, ``last``'s
    shape).

  Examples:
    >>> lam, _ = touched_decay(0.25, jnp.int32(4), jnp.array([0, 3, 0]),
    ...                        jnp.array([True, True, False]))
    >>> lam
    Array([0.75, 0.  , 0.  ], dtype=float32)
  """
  interval_ = interval(step, last)
  return jnp.where(touched, decay(alpha, interval_), 0.0), interval_


def new_last_step(
  step: jax.Array, last: jax.Array, touched: jax.Array
) -> jax.Array:
  """``step`` on touched rows, ``last`` elsewhere."""
  return jnp.where(touched, step, last)


class _Absent:
  """Marks a params leaf under a ``None`` subtree of a prefix tree."""


_ABSENT = _Absent()


def flatten_prefix(prefix: Any, params: Any) -> list[Any]:
  """Per params leaf, its entry of a prefix tree in which None covers subtrees.

  Args:
    prefix: a tree with the structure of ``params``, or of a prefix of it;
      a ``None`` node stands for "nothing" for every leaf below it.
    params: the parameter tree.

  Returns:
    A list with one entry per leaf of ``params`` (in ``jax.tree.leaves``
    order): the matching entry of ``prefix``, or None.

  Raises:
    ValueError, TypeError: if ``prefix`` is not a prefix of ``params`` with
      one entry per leaf (JAX's own errors; callers add the argument name).

  Examples:
    >>> flatten_prefix({"a": 1, "b": None}, {"a": 0., "b": {"c": 0., "d": 0.}})
    [1, None, None]
  """
  treedef = jax.tree.structure(params)
  expanded = jax.tree.map(
    lambda entry, sub: (
      jax.tree.map(lambda _: _ABSENT, sub) if entry is None else entry
    ),
    prefix,
    params,
    is_leaf=lambda x: x is None,
  )
  flat = treedef.flatten_up_to(expanded)
  return [None if entry is _ABSENT else entry for entry in flat]
