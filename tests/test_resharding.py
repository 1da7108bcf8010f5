"""Sharded params and AdamAR state restore onto a different mesh shape."""

import jax
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optax_ar

ocp = pytest.importorskip("orbax.checkpoint")

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)

ROWS, DIM = 64, 16


def _mesh(shape):
  return jax.make_mesh(
    shape, ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2
  )


def _shardings(tx, params, mesh):
  """Tables by rows over 'model', dense weights replicated; state alike."""
  param_shardings = {
    "table": NamedSharding(mesh, P("model", None)),
    "dense": NamedSharding(mesh, P()),
  }
  state_shardings = optax.tree_map_params(
    tx,
    lambda _, s: s,
    jax.eval_shape(tx.init, params),
    param_shardings,
    transform_non_params=lambda _: NamedSharding(mesh, P()),
  )
  return param_shardings, state_shardings


def _grads(step):
  rng = np.random.default_rng(step)
  touched = rng.random(ROWS) < np.linspace(1.0, 0.05, ROWS)
  return {
    "table": (rng.normal(size=(ROWS, DIM)) * touched[:, None]).astype(
      np.float32
    ),
    "dense": rng.normal(size=(DIM,)).astype(np.float32),
  }


def _train(tx, params, state, steps, param_shardings=None):
  @jax.jit
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for i in steps:
    grads = _grads(i)
    if param_shardings is not None:
      grads = jax.device_put(grads, param_shardings)
    params, state = step(params, state, grads)
  return params, state


@pytest.mark.parametrize(
  ("save_mesh", "load_mesh"), [((1, 8), (2, 4)), ((2, 4), (8, 1))]
)
def test_restore_onto_another_mesh_and_continue(save_mesh, load_mesh, tmp_path):
  tx = optax_ar.adam_ar(1e-2, 0.05, lazy=True)
  init = {
    "table": np.zeros((ROWS, DIM), np.float32),
    "dense": np.ones((DIM,), np.float32),
  }
  reference, _ = _train(tx, init, tx.init(init), range(12))

  mesh = _mesh(save_mesh)
  param_shardings, state_shardings = _shardings(tx, init, mesh)
  params = jax.device_put(init, param_shardings)
  state = jax.jit(tx.init, out_shardings=state_shardings)(params)
  params, state = _train(tx, params, state, range(6), param_shardings)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
  checkpointer.wait_until_finished()

  new_mesh = _mesh(load_mesh)
  new_param_shardings, new_state_shardings = _shardings(tx, init, new_mesh)
  target = jax.tree.map(
    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
    jax.eval_shape(lambda p: {"params": p, "opt_state": tx.init(p)}, init),
    {"params": new_param_shardings, "opt_state": new_state_shardings},
  )
  restored = ocp.StandardCheckpointer().restore(tmp_path / "ckpt", target)
  table_rows = NamedSharding(new_mesh, P("model", None))
  assert restored["params"]["table"].sharding.is_equivalent_to(table_rows, 2)
  last_step = restored["opt_state"].last_step["table"]
  assert last_step.sharding.is_equivalent_to(table_rows, 2)

  params, state = _train(
    tx,
    restored["params"],
    restored["opt_state"],
    range(6, 12),
    new_param_shardings,
  )
  assert params["table"].sharding.is_equivalent_to(table_rows, 2)
  for k in init:
    # Identical inputs, elementwise updates; other meshes may fuse them
    # differently: an ulp per step at most, 12 * eps32 = 1.4e-6 of |theta|.
    np.testing.assert_allclose(
      params[k], reference[k], rtol=12 * np.finfo(np.float32).eps, atol=1e-7
    )
