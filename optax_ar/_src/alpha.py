"""AdamAR's alpha from a decay per epoch.

Usage: ``alpha = alpha_per_step(1.0, steps_per_epoch)``.
"""

from optax_ar._src import validation


def alpha_per_step(decay_per_epoch: float, steps_per_epoch: int) -> float:
  r"""The per-step ``alpha`` that decays a row by ``decay_per_epoch``.

  A row touched after :math:`I` idle steps is decayed by
  :math:`\min(1, \alpha I)`, so over an epoch of :math:`S` steps a row
  loses about :math:`\alpha S` of its value whatever its touch frequency
  (until the cap at 1). Stating the decay per epoch, :math:`a = \alpha S`,
  makes it independent of the batch size:

  .. math::

    \alpha = a / S

  The project's README ("Choosing alpha") tabulates how far ``a = 1`` per
  epoch is from the best value of a grid on each measured dataset.

  Args:
    decay_per_epoch: ``a``, the decay a row accumulates over one epoch
      (``>= 0``).
    steps_per_epoch: ``S``, optimizer steps per epoch (``>= 1``).

  Returns:
    ``alpha`` for :func:`optax_ar.adam_ar` and friends, in ``[0, 1)``.

  Raises:
    ValueError: if an argument is out of range, or if the result is
      ``>= 1`` (a decay per epoch at least as large as the steps per epoch).

  Examples:
    >>> import optax_ar
    >>> optax_ar.alpha_per_step(1.0, steps_per_epoch=500)
    0.002
    >>> optax_ar.alpha_per_step(3.0, steps_per_epoch=2)
    Traceback (most recent call last):
    ...
    ValueError: alpha_per_step: decay_per_epoch / steps_per_epoch = 1.5, ...
  """
  decay = None
  if not isinstance(decay_per_epoch, (str, bytes, bool)):
    decay = validation.concrete_float(decay_per_epoch)
  # None: not a number, or traced; `not >=` also rejects NaN.
  if decay is None or not decay >= 0:
    raise ValueError(
      "alpha_per_step: decay_per_epoch must be a number >= 0, got "
      f"{decay_per_epoch!r}"
    )
  if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int):
    raise TypeError(
      f"alpha_per_step: steps_per_epoch must be an int, got "
      f"{type(steps_per_epoch).__name__}"
    )
  if steps_per_epoch < 1:
    raise ValueError(
      f"alpha_per_step: steps_per_epoch must be >= 1, got {steps_per_epoch}"
    )
  alpha = decay / steps_per_epoch
  if alpha >= 1.0:
    raise ValueError(
      f"alpha_per_step: decay_per_epoch / steps_per_epoch = {alpha}, but "
      "alpha must be < 1 (decay_per_epoch < steps_per_epoch)"
    )
  return alpha
