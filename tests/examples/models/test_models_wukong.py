"""WuKong: parameter count and its blocks against direct formulas."""

import jax.numpy as jnp
import numpy as np
from ctr_models_testlib import FIELDS
from ctr_models_testlib import make_model
from ctr_models_testlib import num_params
from flax import nnx

from examples.ctr.models import FactorizationMachineBlock
from examples.ctr.models import LinearCompressionBlock
from examples.ctr.models import WuKongLayer

V = sum(f.vocab_size for f in FIELDS)
F, D = len(FIELDS), 8
X = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(np.float32)


def _layer_params(n_in, n_f=3, n_l=2, k=2, width=8, d=D):
  fmb = n_in * k + 2 * n_in * k + (n_in * k * width + width)
  fmb += width * n_f * d + n_f * d
  lcb = n_in * n_l
  residual = n_in * (n_f + n_l) if n_in != n_f + n_l else 0
  return fmb + lcb + residual + 2 * d


def test_parameter_count():
  # 2 layers, n_F = 3, n_L = 2, k = 2, FMB MLP (8,), final MLP (16,).
  model = make_model("wukong")
  layer1 = _layer_params(F)  # 4 -> 5 embeddings: projected residual
  layer2 = _layer_params(5)  # 5 -> 5: identity residual
  top = (5 * D * 16 + 16) + (16 + 1)
  assert (layer1, layer2) == (356, 360)
  assert num_params(model) == V * D + layer1 + layer2 + top == 2093
  assert model.layers[0].residual is not None
  assert model.layers[1].residual is None


def test_optimized_fm_is_x_xt_y():
  fmb = FactorizationMachineBlock(
    5, 3, 4, rank=2, mlp_widths=(8,), rngs=nnx.Rngs(0)
  )
  y = np.asarray(fmb.projection[...])
  expected = np.einsum("bnd,bmd->bnm", X, X) @ y  # (X X^T) Y
  np.testing.assert_allclose(
    # (X X^T) Y in float32 and float64, in other association orders: d*n terms.
    fmb.fm(jnp.asarray(X)),
    expected,
    rtol=1e-4,
    atol=1e-5,
  )
  out = fmb(jnp.asarray(X))
  assert out.shape == (3, 3, 4)
  z = expected.reshape(3, -1)
  z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(
    # Layer norm of near-equal values divides rounding by a small deviation.
    out.reshape(3, -1),
    fmb.mlp(jnp.asarray(z)),
    rtol=1e-4,
    atol=1e-4,
  )


def test_lcb_is_a_linear_recombination_of_embeddings():
  lcb = LinearCompressionBlock(5, 2, rngs=nnx.Rngs(0))
  w = np.asarray(lcb.weight[...])  # (n_in, n_out)
  np.testing.assert_allclose(
    # A 5-term sum in float32 against float64: a few eps32.
    lcb(jnp.asarray(X)),
    np.einsum("nm,bnd->bmd", w, X),
    rtol=1e-5,
    atol=1e-6,
  )


def test_layer_is_layer_norm_of_blocks_plus_residual():
  layer = WuKongLayer(5, 3, 2, 4, rank=2, mlp_widths=(8,), rngs=nnx.Rngs(0))
  x = jnp.asarray(X)
  y = np.concatenate([layer.fmb(x), layer.lcb(x)], axis=1) + X
  y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-6)
  # As above, through a layer norm (rounding / std): 1e-4.
  np.testing.assert_allclose(layer(x), y, rtol=1e-4, atol=1e-4)
