"""xDeepFM: parameter count and the CIN against a loop over Eq. 6."""

import jax.numpy as jnp
import numpy as np
import pytest
from ctr_models_testlib import FIELDS
from ctr_models_testlib import make_model
from ctr_models_testlib import num_params
from flax import nnx

from examples.ctr.models import CIN

V = sum(f.vocab_size for f in FIELDS)
F, D = len(FIELDS), 8


def test_parameter_count():
  model = make_model("xdeepfm")  # CIN (6, 4), MLP widths (16, 8)
  cin = 6 * F * F + 4 * 6 * F
  cin_out = 6 + 4
  mlp = (F * D * 16 + 16) + (16 * 8 + 8) + (8 + 1)
  assert num_params(model) == V * D + V + cin + cin_out + mlp == 1667


def test_parameter_count_split_half():
  cin = CIN(F, (6, 4), split_half=True, rngs=nnx.Rngs(0))
  assert cin.out_features == 3 + 4
  assert sum(w.size for w in cin.weights) == 6 * F * F + 4 * 3 * F
  with pytest.raises(ValueError):
    CIN(F, (5, 4), split_half=True, rngs=nnx.Rngs(0))


def _cin_reference(weights, x0, split_half):
  """Eq. 6 and 7 of Lian et al. with explicit loops over h, i, j."""
  x, pooled = x0, []
  for k, w in enumerate(weights):
    h_k, h_prev, m = w.shape
    xk = np.zeros((x0.shape[0], h_k, x0.shape[2]))
    for h in range(h_k):
      for i in range(h_prev):
        for j in range(m):
          xk[:, h] += w[h, i, j] * x[:, i] * x0[:, j]
    if split_half and k < len(weights) - 1:
      x, out = xk[:, : h_k // 2], xk[:, h_k // 2 :]
    else:
      x = out = xk
    pooled.append(out.sum(-1))
  return np.concatenate(pooled, axis=1)


@pytest.mark.parametrize("split_half", [False, True])
def test_cin_matches_loop_reference(split_half):
  cin = CIN(3, (4, 2), split_half=split_half, rngs=nnx.Rngs(0))
  x0 = np.random.default_rng(0).normal(size=(5, 3, 6)).astype(np.float32)
  expected = _cin_reference(
    [np.asarray(w[...]) for w in cin.weights], x0, split_half
  )
  np.testing.assert_allclose(
    # Products and sums of a few dozen terms in float32 against float64.
    cin(jnp.asarray(x0)),
    expected,
    rtol=1e-4,
    atol=1e-5,
  )
