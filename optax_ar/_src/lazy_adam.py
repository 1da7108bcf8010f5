"""Adam's direction that keeps the moments of rows its caller says are idle.

Used by ``adam_ar(..., lazy=True)``. The wrapper
:func:`optax_ar.adaptive_interval_decay` restores the moments of untouched
rows after any inner step; when the inner step computes its update from the
*unselected* new moments, XLA:CPU fuses that recomputation into the params
pass and keeps both the old and the new moments alive (copies), which made
the lazy step 2-9x slower than ``optax.adamw`` (docs/PERFORMANCE.md).
Selecting the rows before the update is computed gives the same numbers
from one pass.
"""

import jax
import jax.numpy as jnp
import optax

from optax_ar._src.interval_decay import LAZY_TOUCHED_ROWS


def scale_by_lazy_adam(
  b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformationExtraArgs:
  r"""``optax.scale_by_adam`` whose moments stay put on untouched rows.

  With the row mask :math:`t` (the extra argument ``lazy_touched_rows``, a
  tree like the updates of bool arrays of the per-row shape, or ``True``):

  .. math::

    m &\leftarrow t \,?\, \beta_1 m + (1 - \beta_1) g : m \qquad
    v \leftarrow t \,?\, \beta_2 v + (1 - \beta_2) g^2 : v \\
    u &= \hat m / (\sqrt{\hat v} + \epsilon)

  with the bias corrections of ``optax.scale_by_adam`` (its step count
  advances every step). Without the extra argument it is
  ``optax.scale_by_adam``. The state is :class:`optax.ScaleByAdamState`.

  Args:
    b1: exponential decay rate of the first moment.
    b2: exponential decay rate of the second moment.
    eps: added to the denominator for numerical stability.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs`.

  Examples:
    >>> import jax.numpy as jnp
    >>> tx = scale_by_lazy_adam()
    >>> state = tx.init(jnp.zeros((2, 1)))
    >>> g = jnp.array([[1.0], [1.0]])
    >>> touched = jnp.array([[True], [False]])
    >>> _, state = tx.update(g, state, lazy_touched_rows=touched)
    >>> state.mu.ravel()
    Array([0.1, 0. ], dtype=float32)
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

  def update_fn(updates, state, params=None, **extra_args):
    del params
    touched = extra_args.get(LAZY_TOUCHED_ROWS)
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    if touched is not None:
      mu = _keep_untouched(mu, state.mu, touched)
      nu = _keep_untouched(nu, state.nu, touched)
    count_inc = optax.safe_increment(state.count)
    mu_hat = optax.tree.bias_correction(mu, b1, count_inc)
    nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
    updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
    return updates, optax.ScaleByAdamState(count=count_inc, mu=mu, nu=nu)

  return optax.GradientTransformationExtraArgs(adam.init, update_fn)


def _keep_untouched(new, old, touched):
  treedef = jax.tree.structure(new)
  flat = [
    n if t is True else jnp.where(t, n, o)
    for n, o, t in zip(
      treedef.flatten_up_to(new),
      treedef.flatten_up_to(old),
      treedef.flatten_up_to(touched),
      strict=True,
    )
  ]
  return treedef.unflatten(flat)
