"""AdamAR with the decay applied when a row is read (before the forward pass).

Usage (in a train step)::

  tx = adam_ar_decay_on_read(1e-3, 1e-3, mask=table_mask)
  params, state = decay_read_rows(params, state, read_rows, alpha=1e-3)
  grads = jax.grad(loss_fn)(params, batch)                 # decayed rows
  updates, state = tx.update(grads, state, params)

``optax_ar.adam_ar`` decays a touched row in the *update*, after the
forward and backward pass of that step used the row's old value. For a row
seen once per epoch (the far tail of an ID field), the old value is what the
row memorised from its one example an epoch earlier: every epoch the network
is trained on it once more before the decay removes it, and the decay is then
undone by the same step's gradient. This variant moves the same decay before
the forward pass, to the moment the row is read: a row idle for ``1 / alpha``
steps enters the forward pass as zero, as every row does after MEDA's reset.
Rows read every step, and the dense weights, are plain Adam as before.

It lives in the examples, not in ``optax_ar``: the decay needs the batch's
IDs before the gradient exists, so it cannot be one
``GradientTransformation``. Importing this module registers it with
:mod:`examples.ctr.optimizers` as ``adam_ar_decay_on_read``.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from examples.ctr import optimizers
from examples.ctr.research import variants
from optax_ar._src import _row_state


class ReadDecayState(NamedTuple):
  """State of :func:`adam_ar_decay_on_read`.

  Attributes:
    count: int32 scalar, the number of updates applied so far.
    last_read: per decayed leaf an int32 array of shape ``(rows, 1, ...)``:
      the step at which the row was last read (0: never);
      ``optax.MaskedNode()`` for the other leaves.
    adam: the ``optax.scale_by_adam`` state (dense moments).
  """

  count: jax.Array
  last_read: optax.Updates
  adam: optax.OptState


def adam_ar_decay_on_read(
  learning_rate: float,
  alpha: float,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  *,
  mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam whose per-row interval decay :func:`decay_read_rows` applies.

  Step :math:`k` reads the rows :math:`R_k` (the batch's IDs). For every
  decayed row :math:`j \in R_k`, with :math:`r_j` the step of its last read
  (0: never):

  .. math::

    \lambda_j &= \min(1, \alpha (k - r_j - 1)), \qquad
    \theta_j \leftarrow (1 - \lambda_j)\, \theta_j, \qquad r_j \leftarrow k \\
    g_k &= \nabla L(\theta) \text{ at the decayed } \theta, \qquad
    \theta \leftarrow \theta - \eta\, \hat m_k / (\sqrt{\hat v_k} + \epsilon)

  (dense Adam moments with the global bias correction). This is
  ``optax_ar.adam_ar``'s rule with reads in place of touches and the decay
  before the gradient instead of after it; the update itself is plain Adam.
  Without :func:`decay_read_rows` in the step it *is* plain Adam.

  Args:
    learning_rate: :math:`\eta`.
    alpha: decay per idle step, in ``[0, 1)``. The update does not use it:
      pass the same value to :func:`decay_read_rows`. It is an argument so
      that ``optax.inject_hyperparams`` keeps it in the state, where a
      jitted step reads it (one compilation serves an alpha grid).
    b1: first-moment decay.
    b2: second-moment decay.
    eps: denominator epsilon.
    mask: leaves that get the decay (tree of bools like the params, or a
      callable); default all.

  Returns:
    A transformation; its ``update`` ignores params.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = adam_ar_decay_on_read(0.1, 0.5)
    >>> p = jnp.ones((3, 1))
    >>> s = tx.init(p)
    >>> p, s = decay_read_rows(p, s, jnp.array([0, 2]), 0.5)  # k = 1
    >>> p.ravel().tolist(), s.last_read.ravel().tolist()
    ([1.0, 1.0, 1.0], [1, 0, 1])
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

  def init_fn(params):
    return ReadDecayState(
      count=jnp.zeros([], jnp.int32),
      last_read=variants.init_last_step(
        params, variants.flat_mask(mask, params)
      ),
      adam=adam.init(params),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    direction, adam_state = adam.update(updates, state.adam, params)
    # As optax.scale_by_learning_rate: -lr times the direction.
    out = jax.tree.map(lambda d: -learning_rate * d, direction)
    new_state = ReadDecayState(
      count=optax.safe_increment(state.count),
      last_read=state.last_read,
      adam=adam_state,
    )
    return out, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def decay_read_rows(
  params: Any, state: ReadDecayState, read_rows: Any, alpha: float | jax.Array
) -> tuple[Any, ReadDecayState]:
  r"""Decays the rows a step is about to read; returns ``(params, state)``.

  For the coming update :math:`k = \text{count} + 1` and every decayed leaf
  with row IDs in ``read_rows``: :math:`\theta_j \leftarrow (1 - \lambda_j)
  \theta_j` with :math:`\lambda_j = \min(1, \alpha (k - r_j - 1))` and
  :math:`r_j \leftarrow k` for each row read (an ID read several times is
  decayed once); other rows and leaves are returned as they are. Jit-safe,
  and ``O(batch)`` per decayed leaf: a gather and a scatter of the read rows.

  Args:
    params: the params before the step's forward pass.
    state: the :class:`ReadDecayState` of :func:`adam_ar_decay_on_read`.
    read_rows: a tree like the params (or a prefix of it) holding per leaf
      an integer array of the row IDs the batch reads, or None for leaves
      that are not read by ID (they are left alone).
    alpha: :math:`\alpha`, the decay per idle step (a scalar; may be traced).

  Returns:
    The decayed params and the state with the reads recorded.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = adam_ar_decay_on_read(0.0, 0.25)
    >>> p = {"t": jnp.ones((2, 1)), "w": jnp.ones(1)}
    >>> s = tx.init(p)
    >>> for _ in range(3):  # three updates; row 1 never read
    ...   p, s = decay_read_rows(p, s, {"t": jnp.array([0]), "w": None}, 0.25)
    ...   _, s = tx.update(jax.tree.map(jnp.zeros_like, p), s)
    >>> p, s = decay_read_rows(p, s, {"t": jnp.array([1, 1]), "w": None}, 0.25)
    >>> p["t"].ravel().tolist()  # k = 4, r = 0: lam = min(1, 0.25 * 3)
    [1.0, 0.25]
  """
  treedef = jax.tree.structure(params)
  flat_ids = _row_state.flatten_prefix(read_rows, params)
  flat_params = treedef.flatten_up_to(params)
  flat_last = treedef.flatten_up_to(state.last_read)
  step = optax.safe_increment(state.count)
  new_params, new_last = [], []
  for p, last, ids in zip(flat_params, flat_last, flat_ids, strict=True):
    if ids is None or isinstance(last, optax.MaskedNode):
      new_params.append(p)
      new_last.append(last)
      continue
    # An ID read twice gathers the same row and last read twice and sets
    # the same values twice, so it is decayed once.
    rows = jnp.ravel(ids)
    lam = _row_state.decay(alpha, _row_state.interval(step, last[rows]))
    new_params.append(p.at[rows].set((p[rows] * (1.0 - lam)).astype(p.dtype)))
    new_last.append(last.at[rows].set(step))
  return treedef.unflatten(new_params), state._replace(
    last_read=treedef.unflatten(new_last)
  )


def decay_read_rows_in_state(
  params: Any, opt_state: Any, read_rows: Any
) -> tuple[Any, Any]:
  """:func:`decay_read_rows` on the runner's ``inject_hyperparams`` state.

  ``opt_state`` is the state of ``create_optimizer("adam_ar_decay_on_read",
  ...)``: alpha is read from its hyperparams and its inner state is updated
  and put back. This is the spec's ``decay_on_read``.

  Example:
    >>> import jax.numpy as jnp
    >>> spec = optimizers.create_optimizer(
    ...     "adam_ar_decay_on_read", {"t": True}, alpha=0.5)
    >>> p = {"t": jnp.ones((2, 1))}
    >>> s = spec.tx.init(p)
    >>> _, s = spec.tx.update({"t": jnp.zeros((2, 1))}, s, p)
    >>> _, s = spec.tx.update({"t": jnp.zeros((2, 1))}, s, p)
    >>> p, s = decay_read_rows_in_state(p, s, {"t": jnp.array([1])})
    >>> p["t"].ravel().tolist()  # k 3, idle 2: lam = min(1, 0.5 * 2)
    [1.0, 0.0]
  """
  params, inner = decay_read_rows(
    params, opt_state.inner_state, read_rows, opt_state.hyperparams["alpha"]
  )
  return params, opt_state._replace(inner_state=inner)


@optimizers.register_optimizer("adam_ar_decay_on_read", searches_alpha=True)
def _decay_on_read(o: optimizers.OptimizerOptions) -> optimizers.OptimizerSpec:
  tx = optax.inject_hyperparams(adam_ar_decay_on_read, static_args=("mask",))(
    learning_rate=o.learning_rate, alpha=o.alpha, mask=o.ar_mask
  )
  return optimizers.OptimizerSpec(
    tx,
    decay_on_read=decay_read_rows_in_state,
    hyperparams={"alpha": o.alpha},
    static_key=("adam_ar_decay_on_read", o.ar_tables_only),
  )
