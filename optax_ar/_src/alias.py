"""AdamAR and AdagradAR: stock optax directions plus the interval decay."""

from typing import Any

from optax_ar._src import _optax
from optax_ar._src import validation
from optax_ar._src.interval_decay import adaptive_interval_decay
from optax_ar._src.lazy_adam import scale_by_lazy_adam


def adam_ar(
  learning_rate: _optax.ScalarOrSchedule,
  alpha: _optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Any | None = None,
  mask: Any = None,
  *,
  nesterov: bool = False,
  lazy: bool = False,
) -> _optax.GradientTransformationExtraArgs:
  r"""Adam with adaptive per-row regularisation (AdamAR).

  For row :math:`j` of a leaf at step :math:`k`, with :math:`I_j` the number
  of steps since the row last received a nonzero gradient:

  .. math::

    \theta_j \leftarrow \theta_j - \lambda_j \theta_j
      - \eta \, \hat m_j / (\sqrt{\hat v_j + \epsilon_{root}} + \epsilon),
    \qquad \lambda_j = \min(1, \alpha I_j)

  on rows the gradient touches (untouched rows get :math:`\lambda_j = 0`),
  where :math:`\eta` is ``learning_rate`` and :math:`\hat m, \hat v` are the
  bias-corrected moments of ``optax.scale_by_adam``. The decay is decoupled
  and not multiplied by the learning rate. The arguments follow
  ``optax.adamw`` (``alpha`` takes the place of ``weight_decay``). See
  :func:`optax_ar.adaptive_interval_decay` for the full rule.

  Args:
    learning_rate: :math:`\eta`, a float or a schedule.
    alpha: decay per skipped step, in ``[0, 1)``, or a schedule; 0 is Adam.
    b1: exponential decay rate of the first moment.
    b2: exponential decay rate of the second moment.
    eps: added to the denominator outside the square root.
    eps_root: added to the second moment inside the square root.
    mu_dtype: dtype of the first moment (None: the params' dtype).
    mask: leaves that get the decay (tree of bools, prefix tree, or callable);
      default all leaves (dense weights are touched every step and get none).
    nesterov: use Nesterov momentum (NAdam), as ``optax.adam``.
    lazy: if True, untouched rows keep their moments and params unchanged in
      that step (lazy/sparse Adam, :func:`optax_ar.scale_by_lazy_adam`); if
      False (default), moments of every row are updated every step, exactly
      as ``optax.scale_by_adam``.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs`; ``update`` needs params.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, optax_ar
    >>> params = {"table": jnp.zeros((100, 8)), "w": jnp.ones((8,))}
    >>> tx = optax_ar.adam_ar(learning_rate=1e-3, alpha=1e-3)
    >>> state = tx.init(params)
    >>> grads = jax.tree.map(jnp.ones_like, params)
    >>> updates, state = tx.update(grads, state, params)
    >>> params = optax.apply_updates(params, updates)
    >>> float(params["w"][0])
    0.999...

  References:
    Li and Lyu, `Adaptive Regularization for Large-Scale Sparse Feature
    Embedding Models <https://arxiv.org/abs/2511.06374>`_, ICLR 2026.
  """
  validation.check_scalar_or_schedule("learning_rate", learning_rate)
  if not isinstance(lazy, bool):
    raise TypeError(f"lazy must be a bool, got {lazy!r}")
  scale_by = scale_by_lazy_adam if lazy else _optax.scale_by_adam
  direction = scale_by(
    b1=b1,
    b2=b2,
    eps=eps,
    eps_root=eps_root,
    mu_dtype=mu_dtype,
    nesterov=nesterov,
  )
  inner = _optax.chain(
    direction,
    _optax.scale_by_learning_rate(learning_rate),
  )
  return adaptive_interval_decay(
    alpha, inner, lazy=lazy, mask=mask, inner_is_lazy=lazy
  )


def adagrad_ar(
  learning_rate: _optax.ScalarOrSchedule,
  alpha: _optax.ScalarOrSchedule,
  initial_accumulator_value: float = 0.1,
  eps: float = 1e-7,
  mask: Any = None,
) -> _optax.GradientTransformationExtraArgs:
  r"""Adagrad with adaptive per-row regularisation (AdagradAR).

  .. math::

    \theta_j \leftarrow \theta_j - \min(1, \alpha I_j)\,\theta_j
      - \eta \, g_j / \sqrt{G_j + \epsilon}

  on touched rows, where :math:`G_j` is the running sum of squared gradients
  of ``optax.scale_by_rss``. Adagrad is lazy by nature: an untouched row's
  accumulator and value do not change. The arguments are those of
  ``optax.adagrad``, with ``alpha`` and ``mask`` added.

  Args:
    learning_rate: :math:`\eta`, a float or a schedule (the paper uses 0.01).
    alpha: decay per skipped step, in ``[0, 1)``, or a schedule; 0 is Adagrad.
    initial_accumulator_value: initial value of :math:`G`.
    eps: added inside the square root for numerical stability.
    mask: leaves that get the decay; default all leaves.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs`; ``update`` needs params.

  Examples:
    >>> import jax.numpy as jnp, optax_ar
    >>> tx = optax_ar.adagrad_ar(learning_rate=1e-2, alpha=1e-3)
    >>> state = tx.init(jnp.zeros((4, 2)))
    >>> state.last_step.shape
    (4, 1)

  References:
    Li and Lyu, `Adaptive Regularization for Large-Scale Sparse Feature
    Embedding Models <https://arxiv.org/abs/2511.06374>`_, ICLR 2026.
  """
  validation.check_scalar_or_schedule("learning_rate", learning_rate)
  inner = _optax.adagrad(
    learning_rate,
    initial_accumulator_value=initial_accumulator_value,
    eps=eps,
  )
  return adaptive_interval_decay(alpha, inner, mask=mask)
