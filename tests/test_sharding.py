"""Row-sharded tables and data parallelism on 8 simulated CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optax_ar

NUM_ROWS, DIM, STEPS = 64, 32, 6

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8, reason="needs 8 (simulated) devices"
)


def _dyadic(x):
  return np.round(x * 8) / 8


def _problem(seed=0, steps=STEPS, copies=1):
  rng = np.random.default_rng(seed)
  params = {
    "table": rng.normal(size=(NUM_ROWS, DIM)).astype(np.float32),
    "dense": rng.normal(size=(DIM, 8)).astype(np.float32),
  }
  shape = (steps, copies, NUM_ROWS)
  touched = rng.random(shape) < np.linspace(1.0, 0.05, NUM_ROWS)
  # Multiples of 1/8 (|g| < 8): sums and means of up to 8 copies are exact in
  # float32 in any order, so data-parallel and single-device steps receive
  # the same gradients (a rounded, nearly cancelling sum would be amplified
  # by Adam's normalisation into a machine-dependent difference).
  table = _dyadic(rng.normal(size=shape + (DIM,))) * touched[..., None]
  dense = _dyadic(rng.normal(size=(steps, copies, DIM, 8)))
  grads = [
    {"table": table[i].astype(np.float32), "dense": dense[i].astype(np.float32)}
    for i in range(steps)
  ]
  return params, grads


def _step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


@pytest.mark.parametrize("lazy", [False, True])
def test_row_sharded_table_keeps_state_sharded_and_matches(lazy):
  mesh = jax.make_mesh((8,), ("rows",))
  rows = NamedSharding(mesh, P("rows", None))
  replicated = NamedSharding(mesh, P())
  shardings = {"table": rows, "dense": replicated}
  tx = optax_ar.adam_ar(1e-2, 0.05, lazy=lazy)
  params, grads_seq = _problem()

  sharded = jax.device_put(params, shardings)
  state = tx.init(sharded)
  for s in (
    state.last_step["table"],
    state.inner_state[0].mu["table"],
    state.inner_state[0].nu["table"],
  ):
    assert s.sharding.is_equivalent_to(rows, s.ndim), s.sharding

  step = jax.jit(_step(tx), donate_argnums=(0, 1))
  for grads in grads_seq:
    g = jax.device_put({k: v[0] for k, v in grads.items()}, shardings)
    sharded, state = step(sharded, state, g)
  assert sharded["table"].sharding.is_equivalent_to(rows, 2)
  for s in (
    state.last_step["table"],
    state.inner_state[0].mu["table"],
    state.inner_state[0].nu["table"],
  ):
    assert s.sharding.is_equivalent_to(rows, s.ndim), s.sharding
  assert state.last_step["table"].addressable_shards[0].data.shape == (8, 1)

  single = jax.device_put(params, jax.devices()[0])
  single_state = tx.init(single)
  single_step = jax.jit(_step(tx))
  for grads in grads_seq:
    single, single_state = single_step(
      single, single_state, {k: v[0] for k, v in grads.items()}
    )
  for k in params:
    # Elementwise updates of identical inputs: a sharded fusion may round
    # differently (FMA), by an ulp per step: STEPS * eps32 = 7e-7.
    np.testing.assert_allclose(sharded[k], single[k], rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(
    state.last_step["table"], single_state.last_step["table"]
  )


@pytest.mark.skipif(
  not hasattr(jax, "set_mesh"),
  reason="a context mesh with explicit axes (jax.set_mesh): jax >= 0.7.1",
)
def test_jitted_init_places_state_like_params_on_explicit_mesh():
  mesh = jax.make_mesh(
    (8,), ("rows",), axis_types=(jax.sharding.AxisType.Explicit,)
  )
  rows = NamedSharding(mesh, P("rows", None))
  tx = optax_ar.adam_ar(1e-3, 1e-3)
  table = jax.device_put(jnp.zeros((NUM_ROWS, DIM)), rows)
  with jax.set_mesh(mesh):
    state = jax.jit(tx.init)(table)
  assert state.last_step.sharding.is_equivalent_to(rows, 2)
  assert state.inner_state[0].mu.sharding.is_equivalent_to(rows, 2)


def test_state_shardings_from_tree_map_params_on_auto_mesh():
  # With Auto axes, XLA places a jitted init's constants freely (optax's own
  # states too); the params' shardings map onto every per-row state leaf.
  mesh = jax.make_mesh(
    (8,), ("rows",), axis_types=(jax.sharding.AxisType.Auto,)
  )
  rows = NamedSharding(mesh, P("rows", None))
  replicated = NamedSharding(mesh, P())
  tx = optax_ar.adam_ar(1e-3, 1e-3, lazy=True)
  params = {"table": jnp.zeros((NUM_ROWS, DIM)), "dense": jnp.zeros((4,))}
  param_shardings = {"table": rows, "dense": replicated}
  state_shardings = optax.tree_map_params(
    tx,
    lambda _, sharding: sharding,
    jax.eval_shape(tx.init, params),
    param_shardings,
    transform_non_params=lambda _: replicated,
  )
  state = jax.jit(tx.init, out_shardings=state_shardings)(
    jax.device_put(params, param_shardings)
  )
  assert state.last_step["table"].sharding.is_equivalent_to(rows, 2)
  assert state.inner_state[0].nu["table"].sharding.is_equivalent_to(rows, 2)


def test_shard_map_data_parallel_equals_single_device():
  mesh = jax.make_mesh((8,), ("data",))
  tx = optax_ar.adam_ar(1e-2, 0.05)
  params, grads_seq = _problem(seed=1, copies=8)
  step = _step(tx)

  @jax.jit
  def data_parallel_step(params, state, per_device_grads):
    def body(params, state, grads):
      grads = jax.lax.pmean(jax.tree.map(lambda g: g[0], grads), "data")
      return step(params, state, grads)

    return jax.shard_map(
      body,
      mesh=mesh,
      in_specs=(P(), P(), P("data")),
      out_specs=(P(), P()),
    )(params, state, per_device_grads)

  dp_params, dp_state = params, tx.init(params)
  single, single_state = params, tx.init(params)
  single_step = jax.jit(step)
  by_device = NamedSharding(mesh, P("data"))
  for grads in grads_seq:
    dp_params, dp_state = data_parallel_step(
      dp_params, dp_state, jax.device_put(grads, by_device)
    )
    mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
    single, single_state = single_step(single, single_state, mean)
  for k in params:
    # The means are exact (see _problem): as above, an ulp per step.
    np.testing.assert_allclose(dp_params[k], single[k], rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(
    dp_state.last_step["table"], single_state.last_step["table"]
  )
