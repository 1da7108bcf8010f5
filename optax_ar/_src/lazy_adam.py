"""Adam's direction that keeps the moments of rows its caller marks idle.

Usage: ``tx = scale_by_lazy_adam(); u, s = tx.update(g, s, touched_rows=t)``.

This is the direction of ``adam_ar(..., lazy=True)``. The moments are
selected *before* the update is computed from them, so XLA:CPU computes the
step in one pass over the table; restoring idle rows after a stock
``optax.scale_by_adam`` gives the same numbers but keeps both the old and the
new moments alive (copies), several times slower (docs/PERFORMANCE.md).
"""

from typing import Any

import jax
import jax.numpy as jnp

from optax_ar._src import _optax


def scale_by_lazy_adam(
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Any | None = None,
  *,
  nesterov: bool = False,
) -> _optax.GradientTransformationExtraArgs:
  r"""``optax.scale_by_adam`` whose moments stay put on idle rows.

  Rows are slices along axis 0 of each leaf. With the row mask :math:`t`
  given to ``update`` as the keyword argument ``touched_rows``:

  .. math::

    m &\leftarrow t \,?\, \beta_1 m + (1 - \beta_1) g : m \qquad
    v \leftarrow t \,?\, \beta_2 v + (1 - \beta_2) g^2 : v \\
    u &= \hat m / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)

  with the bias corrections :math:`\hat m, \hat v` (and Nesterov's
  :math:`\hat m`) of ``optax.scale_by_adam``, whose step count advances every
  step. The update of an idle row is computed but meaningless: the caller
  (e.g. :func:`optax_ar.adaptive_interval_decay` with ``lazy=True``) replaces
  it. Without ``touched_rows`` it is ``optax.scale_by_adam`` bitwise. The
  state is :class:`optax.ScaleByAdamState`.

  Args:
    b1: exponential decay rate of the first moment.
    b2: exponential decay rate of the second moment.
    eps: added to the denominator outside the square root.
    eps_root: added to the second moment inside the square root.
    mu_dtype: dtype of the first moment (None: the params' dtype).
    nesterov: use Nesterov momentum (NAdam), as ``optax.scale_by_adam``.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` whose ``update``
    accepts ``touched_rows``: a tree like the updates (or a prefix of it)
    holding, per leaf, a bool array of the per-row shape ``(rows, 1, ...,
    1)``, or ``True`` (every row touched). Other extra arguments are ignored.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_ar import scale_by_lazy_adam
    >>> tx = scale_by_lazy_adam()
    >>> state = tx.init(jnp.zeros((2, 1)))
    >>> g = jnp.array([[1.0], [1.0]])
    >>> touched = jnp.array([[True], [False]])
    >>> _, state = tx.update(g, state, touched_rows=touched)
    >>> state.mu.ravel()
    Array([0.1, 0. ], dtype=float32)

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, ICLR 2015.
  """
  adam = _optax.scale_by_adam(
    b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype
  )
  mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

  def update_fn(updates, state, params=None, *, touched_rows=None, **extra):
    del params, extra
    mu = _optax.tree_update_moment(updates, state.mu, b1, 1)
    nu = _optax.tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
    if touched_rows is not None:
      mu = _keep_idle(mu, state.mu, touched_rows)
      nu = _keep_idle(nu, state.nu, touched_rows)
    count_inc = _optax.safe_increment(state.count)
    if nesterov:
      mu_hat = jax.tree.map(
        lambda m, g: b1 * m + (1 - b1) * g,
        _optax.tree_bias_correction(mu, b1, _optax.safe_increment(count_inc)),
        _optax.tree_bias_correction(updates, b1, count_inc),
      )
    else:
      mu_hat = _optax.tree_bias_correction(mu, b1, count_inc)
    nu_hat = _optax.tree_bias_correction(nu, b2, count_inc)
    updates = jax.tree.map(
      lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat
    )
    mu = _optax.tree_cast(mu, mu_dtype)
    nu = _optax.tree_cast_like(nu, state.nu)
    return updates, _optax.ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

  return _optax.GradientTransformationExtraArgs(adam.init, update_fn)


def _keep_idle(new, old, touched_rows):
  """``new`` on touched rows, ``old`` on idle ones, leaf by leaf."""
  treedef = jax.tree.structure(new)
  flat_touched = _flat_touched(touched_rows, new)
  flat = [
    n if t is True else jnp.where(t, n, o)
    for n, o, t in zip(
      treedef.flatten_up_to(new),
      treedef.flatten_up_to(old),
      flat_touched,
      strict=True,
    )
  ]
  return treedef.unflatten(flat)


def _flat_touched(touched_rows, tree):
  """``touched_rows`` per leaf of ``tree``; a prefix leaf covers its subtree."""
  if touched_rows is True:
    return [True] * jax.tree.structure(tree).num_leaves
  try:
    return jax.tree.structure(tree).flatten_up_to(
      jax.tree.map(
        lambda t, sub: jax.tree.map(lambda _: t, sub),
        touched_rows,
        tree,
        is_leaf=lambda x: x is True,
      )
    )
  except (ValueError, TypeError) as error:
    raise ValueError(
      "touched_rows does not match the updates tree: it must be the "
      "updates structure (or a prefix of it) with one bool array of the "
      f"per-row shape, or True, per leaf ({error})"
    ) from error
