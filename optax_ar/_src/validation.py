"""Argument checks shared by the factories, run outside the jitted closures."""

import math
from typing import Any

import jax
import numpy as np

from optax_ar._src import _optax


def concrete_float(value: Any) -> float | None:
  """``value`` as a float, or None when it is traced (inject_hyperparams)."""
  try:
    return float(np.asarray(value))
  except (TypeError, jax.errors.ConcretizationTypeError):
    return None


def check_scalar_or_schedule(
  name: str, value: Any, *, upper: float | None = None
) -> None:
  """Raises if a concrete hyperparameter is NaN, negative or >= ``upper``.

  Schedules and traced values (as ``optax.inject_hyperparams`` passes them
  inside ``update``) cannot be checked here and are accepted.

  Args:
    name: the argument's name, used in the error message.
    value: a number, an array scalar, or a schedule (callable).
    upper: exclusive upper bound, if any.

  Raises:
    TypeError: if ``value`` is neither a number nor a callable.
    ValueError: if ``value`` is out of range.

  Examples:
    >>> check_scalar_or_schedule("alpha", 1e-3, upper=1.0)
    >>> check_scalar_or_schedule("alpha", 1.0, upper=1.0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be in [0, 1.0), got 1.0
  """
  if callable(value):
    return
  if isinstance(value, (str, bytes)) or value is None:
    raise TypeError(f"{name} must be a number or a schedule, got {value!r}")
  if np.ndim(value) != 0:
    raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
  number = concrete_float(value)
  if number is None:
    return
  bound = "inf)" if upper is None else f"{upper})"
  if (
    math.isnan(number) or number < 0 or (upper is not None and number >= upper)
  ):
    raise ValueError(f"{name} must be in [0, {bound}, got {number}")


def resolve_mask(mask: Any, params: _optax.Params) -> _optax.Params:
  """The full bool tree (one bool per params leaf) that ``mask`` denotes.

  Args:
    mask: None (every leaf), a tree of bools shaped like ``params`` or like a
      prefix of it, or a callable ``params -> such a tree``.
    params: the parameter tree.

  Returns:
    A tree with the structure of ``params`` and a Python bool per leaf.

  Raises:
    ValueError: if the mask's structure does not match ``params``.
    TypeError: if a mask entry is not a boolean.

  Examples:
    >>> resolve_mask({"emb": True, "mlp": False},
    ...              {"emb": 1.0, "mlp": {"w": 2.0, "b": 3.0}})
    {'emb': True, 'mlp': {'b': False, 'w': False}}
  """
  if mask is None:
    return jax.tree.map(lambda _: True, params)
  mask_tree = mask(params) if callable(mask) else mask

  def expand(m, subtree):
    if np.ndim(m) != 0 or np.asarray(m).dtype != np.bool_:
      raise TypeError(f"mask entries must be booleans, got {m!r}")
    return jax.tree.map(lambda _: bool(m), subtree)

  try:
    return jax.tree.map(expand, mask_tree, params)
  except ValueError as error:
    raise ValueError(
      "mask does not match the params tree: mask structure "
      f"{jax.tree.structure(mask_tree)} vs params structure "
      f"{jax.tree.structure(params)} ({error})"
    ) from error


def flatten_like_params(
  name: str, tree: Any, params: _optax.Params, treedef: Any = None
) -> list[Any]:
  """The leaves of ``tree``, checked to match ``params`` leaf by leaf.

  Args:
    name: the argument's name, used in the error message.
    tree: a tree that must have the structure and leaf shapes of ``params``
      (a gradient, an update).
    params: the parameter tree.
    treedef: ``jax.tree.structure(params)``, if the caller has it.

  Returns:
    The leaves of ``tree`` in the order of ``jax.tree.leaves(params)``.

  Raises:
    ValueError: if the structure or a leaf's shape differs.

  Examples:
    >>> flatten_like_params("updates", {"w": np.zeros(2)}, {"w": np.ones(3)})
    Traceback (most recent call last):
    ...
    ValueError: updates does not match the params: leaf w has shape (2,), ...
  """
  if treedef is None:
    treedef = jax.tree.structure(params)
  try:
    flat = treedef.flatten_up_to(tree)
  except (ValueError, TypeError) as error:
    raise ValueError(
      f"{name} does not match the params tree: structure "
      f"{jax.tree.structure(tree)} vs params structure {treedef}"
    ) from error
  flat_params = treedef.flatten_up_to(params)
  for i, (leaf, param) in enumerate(zip(flat, flat_params, strict=True)):
    if np.shape(leaf) != np.shape(param):
      paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
      raise ValueError(
        f"{name} does not match the params: leaf "
        f"{jax.tree_util.keystr(paths[i], simple=True, separator='/')} "
        f"has shape {np.shape(leaf)}, the param {np.shape(param)}"
      )
  return flat
