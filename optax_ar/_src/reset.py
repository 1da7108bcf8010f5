"""Resetting chosen leaves and their optimizer state to init (MEDA)."""

from typing import Any

import jax
import jax.numpy as jnp

from optax_ar._src import _optax
from optax_ar._src import validation


class _Pair:
  """An unregistered pytree leaf holding a fresh and a current state leaf."""

  __slots__ = ("fresh", "current")

  def __init__(self, fresh, current):
    self.fresh, self.current = fresh, current


def reset_leaves(
  optimizer: _optax.GradientTransformation,
  params: _optax.Params,
  opt_state: _optax.OptState,
  mask: Any,
  init_params: _optax.Params | None = None,
) -> tuple[_optax.Params, _optax.OptState]:
  r"""Resets the masked leaves and every copy of them in the state to init.

  For each leaf selected by ``mask`` the param becomes its init value (zeros,
  or the matching leaf of ``init_params``), and each param-shaped part of the
  optimizer state for it (Adam's moments, Adagrad's accumulator, AdamAR's
  ``last_step``) becomes what ``optimizer.init`` gives. Everything else,
  including global step counts and injected hyperparameters, is kept. This is
  MEDA's reset of the embedding tables at an epoch boundary:

  .. math::

    \theta_e \leftarrow \theta_e^{(0)}, \quad
    s_e \leftarrow \mathrm{init}(\theta_e^{(0)}) \quad
    \text{for every masked leaf } e.

  Args:
    optimizer: the transformation that produced ``opt_state``.
    params: the current params.
    opt_state: the current optimizer state.
    mask: a tree of bools like ``params`` (or a prefix), or a callable
      ``params -> tree``, selecting the leaves to reset.
    init_params: values to reset to; default zeros (the paper's embedding
      init). They are copied, so the caller may donate the returned params
      and reuse ``init_params`` for the next reset.

  Returns:
    ``(params, opt_state)`` after the reset.

  Examples:
    >>> import jax.numpy as jnp, optax, optax_ar
    >>> params = {"table": jnp.ones((3, 2)), "w": jnp.ones(2)}
    >>> tx = optax.adam(0.1)
    >>> state = tx.init(params)
    >>> _, state = tx.update(params, state)
    >>> params, state = optax_ar.reset_leaves(
    ...     tx, params, state, {"table": True, "w": False})
    >>> float(params["table"].sum()), float(state[0].mu["table"].sum())
    (0.0, 0.0)
    >>> float(state[0].mu["w"][0])
    0.1
  """
  mask_tree = validation.resolve_mask(mask, params)
  if init_params is None:
    init_params = jax.tree.map(jnp.zeros_like, params)
  # Copies, so that donating the new params (as a jitted train step does)
  # never deletes the caller's `init_params` for the next reset.
  new_params = jax.tree.map(
    lambda m, p, p0: jnp.array(p0, copy=True) if m else p,
    mask_tree,
    params,
    init_params,
  )
  fresh_state = optimizer.init(new_params)
  zipped = jax.tree.map(_Pair, fresh_state, opt_state)

  def pick(pair, m):
    if isinstance(pair, _optax.MaskedNode):
      return pair
    return pair.fresh if m else pair.current

  new_state = _optax.tree_map_params(
    optimizer,
    pick,
    zipped,
    mask_tree,
    transform_non_params=lambda tree: jax.tree.map(
      lambda pair: pair.current,
      tree,
      is_leaf=lambda x: isinstance(x, _Pair),
    ),
    is_leaf=lambda x: isinstance(x, (_Pair, _optax.MaskedNode)),
  )
  return new_params, new_state
