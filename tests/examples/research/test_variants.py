"""Tests of research.variants against an independent NumPy reference.

The reference below is written from the variants' docstrings (AdamAR's
interval rule plus each variant's change), in float64 with explicit loops
over steps; it shares no code with the optax transformations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import runner_testlib

import optax_ar
from examples.ctr import metrics
from examples.ctr import optimizers
from examples.ctr import train
from examples.ctr.config import get_config
from examples.ctr.models import per_id_table_mask
from examples.ctr.research import variants

LR, ALPHA, STEPS = 0.05, 0.15, 14
B1, B2, EPS = 0.9, 0.999, 1e-8


class RefLeaf:
  """One leaf of the reference: AR / AdamW / plain rows, dense Adam moments.

  Args:
    theta: initial value, rows along axis 0.
    ar: bool per row: AR decay (``lam``) on that row.
    wd: per-step uniform decay of the other rows (``lr * weight_decay``).
    decay_moments: shrink the moments of a touched row by ``1 - lam``.
    skip_first_touch: ``lam = 0`` at a row's first touch.
  """

  def __init__(self, theta, ar, wd=0.0, decay_moments=False, skip=False):
    self.theta = np.array(theta, np.float64)
    self.ar = np.asarray(ar, bool)
    self.wd = np.where(self.ar, 0.0, wd)
    self.decay_moments, self.skip = decay_moments, skip
    self.m = np.zeros_like(self.theta)
    self.v = np.zeros_like(self.theta)
    self.last = np.zeros(len(self.theta), np.int64)
    self.k = 0

  def step(self, grad):
    g = np.asarray(grad, np.float64)
    self.k += 1
    k, n = self.k, len(self.theta)
    lam = np.zeros(n)
    for j in range(n):
      if not self.ar[j] or not np.any(g[j] != 0):
        continue
      if self.skip and self.last[j] == 0:
        lam[j] = 0.0
      else:
        lam[j] = min(1.0, ALPHA * (k - self.last[j] - 1))
      self.last[j] = k
    col = lam[:, None]
    keep = 1.0 - col if self.decay_moments else 1.0
    self.m = B1 * keep * self.m + (1 - B1) * g
    self.v = B2 * keep * self.v + (1 - B2) * g**2
    m_hat = self.m / (1 - B1**k)
    v_hat = self.v / (1 - B2**k)
    direction = m_hat / (np.sqrt(v_hat) + EPS)
    self.theta = (
      self.theta
      - col * self.theta
      - LR * (direction + (self.wd / LR)[:, None] * self.theta)
    )
    return self.theta


def _stream(rows, dim, seed, p_touch=0.3):
  """Random gradients of a (rows, dim) table: each row touched w.p. p."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(STEPS):
    g = rng.normal(size=(rows, dim)).astype(np.float32)
    g *= (rng.random(rows) < p_touch)[:, None]
    out.append(g)
  return out


def _run(tx, params, grads_per_step):
  """Applies ``tx`` (jitted) to the stream; returns params after each step."""
  state = tx.init(params)
  update = jax.jit(tx.update)
  history = []
  for grads in grads_per_step:
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    history.append(params)
  return history, state


def _single_table_case(tx, theta0, ref):
  grads = [{"t": jnp.asarray(g)} for g in _stream(*theta0.shape, seed=1)]
  history, _ = _run(tx, {"t": jnp.asarray(theta0)}, grads)
  for params, g in zip(history, grads, strict=True):
    expected = ref.step(np.asarray(g["t"]))
    np.testing.assert_allclose(params["t"], expected, rtol=2e-5, atol=1e-5)


def test_decay_moments_matches_reference():
  theta0 = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  tx = variants.adam_ar_decay_moments(LR, ALPHA)
  ref = RefLeaf(theta0, np.ones(7, bool), decay_moments=True)
  _single_table_case(tx, theta0, ref)


def test_decay_moments_differs_from_adam_ar():
  # The moments' decay must matter (else the reference test proves little).
  theta0 = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  grads = [{"t": jnp.asarray(g)} for g in _stream(7, 3, seed=1)]
  params = {"t": jnp.asarray(theta0)}
  ours, _ = _run(variants.adam_ar_decay_moments(LR, ALPHA), params, grads)
  plain, _ = _run(optax_ar.adam_ar(LR, ALPHA), params, grads)
  gap = np.abs(np.asarray(ours[-1]["t"]) - np.asarray(plain[-1]["t"])).max()
  assert gap > 1e-3


def test_first_touch_matches_reference_under_normal_init():
  theta0 = np.random.default_rng(2).normal(size=(7, 3)).astype(np.float32)
  tx = variants.adam_ar_first_touch(LR, ALPHA)
  ref = RefLeaf(theta0, np.ones(7, bool), skip=True)
  _single_table_case(tx, theta0, ref)
  # ... and differs from AdamAR there (first touches at k > 1 are decayed).
  grads = [{"t": jnp.asarray(g)} for g in _stream(7, 3, seed=1)]
  plain, _ = _run(
    optax_ar.adam_ar(LR, ALPHA), {"t": jnp.asarray(theta0)}, grads
  )
  ref_plain = RefLeaf(theta0, np.ones(7, bool))
  for g in grads:
    expected_plain = ref_plain.step(np.asarray(g["t"]))
  np.testing.assert_allclose(
    plain[-1]["t"], expected_plain, rtol=2e-5, atol=1e-5
  )
  assert np.abs(expected_plain - ref.theta).max() > 1e-2


def test_first_touch_is_bitwise_adam_ar_under_zero_init():
  # Zero table (never-touched rows stay exactly 0 under dense Adam), and a
  # dense leaf that is touched every step.
  params = {"t": jnp.zeros((9, 4)), "w": jnp.ones((3,))}
  stream = _stream(9, 4, seed=3, p_touch=0.2)
  rng = np.random.default_rng(4)
  grads = [
    {"t": jnp.asarray(g), "w": jnp.asarray(rng.normal(size=3), jnp.float32)}
    for g in stream
  ]
  first, state = _run(variants.adam_ar_first_touch(LR, ALPHA), params, grads)
  plain, _ = _run(optax_ar.adam_ar(LR, ALPHA), params, grads)
  # Bitwise: both run the same elementwise float32 ops on every entry (the
  # decay of a zero row is an exact zero); holds without XLA fast math.
  for a, b in zip(first, plain, strict=True):
    for key in ("t", "w"):
      np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
  # Rows were first touched late (so AdamAR's lam at the first touch > 0).
  assert int(np.asarray(state.last_step["t"]).max()) > 5


def test_first_touch_is_adam_ar_in_the_runner_under_zero_init(
  config, dataset, train_batches
):
  """Zero-initialised rows: decaying a first touch changes nothing.

  The two optimizers compile to different programs, so their float32 sums
  may run in another order: compared in float64 within the path-length
  bound (runner_testlib) over the first steps of an epoch.
  """
  steps = 8
  runs = []
  with jax.enable_x64(True):
    for name in ("adam_ar", "adam_ar_first_touch"):
      setup = train.create_train_state(config, dataset.fields, name, 0.05, 0)
      step = train.make_train_step(setup.graphdef, setup.spec)
      runs.append(
        runner_testlib.run_float64(step, setup.state, train_batches[:steps])
      )
  (plain, path_length, _), (first, _, _) = runs
  runner_testlib.assert_within_path_length(
    first.params, plain.params, path_length, steps
  )


def _model_like_params(seed=0):
  rng = np.random.default_rng(seed)
  return {
    "embedding": {
      "tables": {
        "item": jnp.asarray(rng.normal(size=(12, 3)), jnp.float32),
        "user": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32),
      }
    },
    "mlp": {"kernel": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)},
  }


def _model_like_grads(params, seed=5):
  rng = np.random.default_rng(seed)
  steps = []
  item = _stream(12, 3, seed=seed)
  user = _stream(6, 3, seed=seed + 1, p_touch=0.6)
  for i in range(STEPS):
    kernel = rng.normal(size=(4, 2)).astype(np.float32)
    steps.append(
      {
        "embedding": {
          "tables": {"item": jnp.asarray(item[i]), "user": jnp.asarray(user[i])}
        },
        "mlp": {"kernel": jnp.asarray(kernel)},
      }
    )
  return steps


# Item frequencies: IDs 2..11, five buckets of two IDs each.
ITEM_FREQ = np.array([0, 0, 50, 1, 9, 3, 30, 2, 7, 20, 5, 12])


def _buckets():
  return ("item", metrics.frequency_buckets(ITEM_FREQ, 5))


def test_bucket_ar_rows_picks_rarest_buckets_of_the_field():
  params = _model_like_params()
  mask = per_id_table_mask(params)
  field, ids = _buckets()
  assert [b.tolist() for b in ids] == [[3, 7], [5, 10], [8, 4], [11, 9], [6, 2]]
  rows = variants.bucket_ar_rows(mask, field, ids, 2)
  assert np.flatnonzero(rows["embedding"]["tables"]["item"]).tolist() == [
    3,
    5,
    7,
    10,
  ]
  assert rows["embedding"]["tables"]["user"] is False
  assert (
    variants.bucket_ar_rows(mask, field, ids, 0)["embedding"]["tables"]["item"]
    is False
  )
  assert (
    variants.bucket_ar_rows(mask, field, ids, 5)["embedding"]["tables"]["item"]
    is True
  )
  with pytest.raises(ValueError, match="no per-ID table"):
    variants.bucket_ar_rows(mask, "nope", ids, 1)


def test_bucket_substitution_matches_reference_for_two_buckets():
  params = _model_like_params()
  mask = per_id_table_mask(params)
  grads = _model_like_grads(params)
  spec = optimizers.create_optimizer(
    "bucket_sub",
    mask,
    learning_rate=LR,
    alpha=ALPHA,
    ar_buckets=2,
    buckets=_buckets(),
  )
  assert spec.hyperparams["weight_decay"] == pytest.approx(ALPHA / LR)
  history, _ = _run(spec.tx, params, grads)
  item_ar = np.isin(np.arange(12), [3, 5, 7, 10])
  tables = params["embedding"]["tables"]
  refs = {
    "item": RefLeaf(tables["item"], item_ar, wd=ALPHA),
    "user": RefLeaf(tables["user"], np.zeros(6, bool), wd=ALPHA),
    "kernel": RefLeaf(params["mlp"]["kernel"], np.zeros(4, bool), wd=0.0),
  }
  for got, g in zip(history, grads, strict=True):
    for name in ("item", "user"):
      expected = refs[name].step(np.asarray(g["embedding"]["tables"][name]))
      np.testing.assert_allclose(
        got["embedding"]["tables"][name], expected, rtol=2e-5, atol=1e-5
      )
    expected = refs["kernel"].step(np.asarray(g["mlp"]["kernel"]))
    np.testing.assert_allclose(
      got["mlp"]["kernel"], expected, rtol=2e-5, atol=1e-5
    )


def test_bucket_substitution_endpoints_are_adamw_and_ar():
  params = _model_like_params()
  mask = per_id_table_mask(params)
  grads = _model_like_grads(params)

  def make(name, **kw):
    return optimizers.create_optimizer(
      name, mask, learning_rate=LR, alpha=ALPHA, **kw
    ).tx

  adamw, _ = _run(make("adamw"), params, grads)
  k0, _ = _run(make("bucket_sub", ar_buckets=0), params, grads)
  k5, _ = _run(
    make("bucket_sub", ar_buckets=5, buckets=_buckets()), params, grads
  )
  item_only = jax.tree.map(lambda _: False, mask)
  item_only["embedding"]["tables"]["item"] = True
  ar_item, _ = _run(optax_ar.adam_ar(LR, ALPHA, mask=item_only), params, grads)
  for a, b in zip(k0, adamw, strict=True):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  for a, w, r in zip(k5, adamw, ar_item, strict=True):
    np.testing.assert_allclose(
      a["embedding"]["tables"]["item"],
      r["embedding"]["tables"]["item"],
      rtol=1e-5,
      atol=1e-6,
    )
    np.testing.assert_allclose(
      a["embedding"]["tables"]["user"],
      w["embedding"]["tables"]["user"],
      rtol=1e-5,
      atol=1e-6,
    )
    np.testing.assert_allclose(
      a["mlp"]["kernel"], w["mlp"]["kernel"], rtol=1e-5, atol=1e-6
    )
  # AR and AdamW really differ on the item table here.
  gap = np.abs(
    np.asarray(k5[-1]["embedding"]["tables"]["item"])
    - np.asarray(k0[-1]["embedding"]["tables"]["item"])
  ).max()
  assert gap > 1e-2


def test_bucket_sub_k0_is_bitwise_the_runners_adamw():
  # alpha = 1/854 per step at lr 1e-3 (Toys at batch 256, 1/epoch): there
  # float32(alpha) / float32(lr) != float32(alpha / lr), and a decay computed
  # in-graph as alpha / lr changed about 2/3 of this table's updates in the
  # last bit; the decay must be passed as adamw computes it.
  rng = np.random.default_rng(0)
  params = {
    "embedding": {
      "tables": {"item": jnp.asarray(rng.normal(size=(4000, 8)), jnp.float32)}
    },
    "mlp": {"kernel": jnp.ones((3,))},
  }
  mask = per_id_table_mask(params)
  grads = [
    jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params
    )
    for _ in range(3)
  ]
  alpha, lr = 1 / 854, 1e-3
  assert np.float32(alpha) / np.float32(lr) != np.float32(alpha / lr)
  kw = dict(learning_rate=lr, alpha=alpha)
  adamw = optimizers.create_optimizer("adamw", mask, **kw).tx
  k0 = optimizers.create_optimizer("bucket_sub", mask, ar_buckets=0, **kw).tx
  got, _ = _run(k0, params, grads)
  want, _ = _run(adamw, params, grads)
  # Bitwise: k = 0 builds AdamW's own chain with the same float32 decay
  # rate; holds without XLA fast math.
  for a, b in zip(got, want, strict=True):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_bucket_sub_needs_buckets_and_a_valid_count():
  mask = per_id_table_mask(_model_like_params())
  with pytest.raises(ValueError, match="needs the buckets"):
    optimizers.create_optimizer("bucket_sub", mask, ar_buckets=2)
  with pytest.raises(ValueError, match="ar_buckets"):
    get_config("test").replace(ar_buckets=6)


def test_bucket_sub_runs_in_the_runner(tmp_path):
  config = get_config("test").replace(
    epochs=1, checkpoint=False, ar_buckets=3, optimizer="bucket_sub"
  )
  dataset = train.load_dataset(config)
  run = train.train_and_evaluate(config, dataset, str(tmp_path), alpha=1e-2)
  assert run["hyperparams"]["ar_buckets"] == 3
  assert run["hyperparams"]["ar_bucket_field"] == run["bucket_field"]
  assert 0.5 < run["epochs"][0]["eval_auc"] < 1.0
