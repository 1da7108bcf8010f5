"""Why Adagrad does not train from zero embeddings (amazon-beauty, DNN, b256).

Usage: ``python benchmarks/probes/adagrad_step_size.py``
Trains 300 steps with each optimizer setting and prints, at a few steps,
the RMS of the raw gradient and of the update, split into per-ID tables and
dense weights, the mean Adagrad accumulator of the touched table rows, and
the training loss.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from flax import nnx  # noqa: E402

from examples.ctr import train  # noqa: E402
from examples.ctr.config import Config  # noqa: E402
from examples.ctr.data.pipeline import BatchIterator  # noqa: E402

SETTINGS = [
  ("adam", 1e-3, None),
  ("adagrad", 1e-2, 0.1),
  ("adagrad", 1e-1, 0.1),
  ("adagrad", 1e-2, 1e-3),
  ("adagrad", 1e-2, 1e-6),
]
STEPS = 300
REPORT = (1, 10, 100, 300)


def rms(tree, mask, want):
  leaves = [
    x
    for x, m in zip(jax.tree.leaves(tree), jax.tree.leaves(mask), strict=False)
    if m == want
  ]
  sq = sum(float(jnp.sum(jnp.square(x))) for x in leaves)
  n = sum(x.size for x in leaves)
  return (sq / n) ** 0.5


def rms_touched(tree, grads, mask):
  """RMS over the table rows with a nonzero gradient in this batch."""
  sq, n = 0.0, 0
  for x, g, m in zip(
    jax.tree.leaves(tree),
    jax.tree.leaves(grads),
    jax.tree.leaves(mask),
    strict=False,
  ):
    if not m:
      continue
    rows = np.asarray(jnp.any(g != 0, axis=tuple(range(1, g.ndim))))
    xs = np.asarray(x)[rows]
    sq += float(np.sum(xs**2))
    n += xs.size
  return (sq / max(n, 1)) ** 0.5


def main():
  config = Config(
    dataset="amazon-beauty", data_path="/work/shared/data", batch_size=256
  )
  ds = train.load_dataset(config)
  for name, lr, acc in SETTINGS:
    c = config.replace(learning_rate=lr, adagrad_initial_accumulator=acc or 0.1)
    setup = train.create_train_state(c, ds.fields, name, None, 0)
    graphdef, mask = setup.graphdef, setup.table_mask
    tx = setup.spec.tx

    def loss_fn(params, rest, batch, graphdef=graphdef):
      model = nnx.merge(graphdef, params, rest)
      return optax.sigmoid_binary_cross_entropy(
        model(batch.features), batch.labels
      ).mean()

    @jax.jit
    def step(params, rest, opt_state, batch, tx=tx, loss_fn=loss_fn):
      loss, g = jax.value_and_grad(loss_fn)(params, rest, batch)
      u, opt_state = tx.update(g, opt_state, params)
      return optax.apply_updates(params, u), opt_state, g, u, loss

    params, opt_state, rest = setup.state
    it = BatchIterator(ds.train, 256, shuffle=True, seed=0, drop_remainder=True)
    losses = []
    print(f"== {name} lr={lr} acc={acc}")
    for k, batch in enumerate(it.epoch(1), start=1):
      params, opt_state, g, u, loss = step(params, rest, opt_state, batch)
      losses.append(float(loss))
      if k in REPORT:
        line = (
          f"step {k:4d}: grad rms tables(touched)={rms_touched(g, g, mask):.2e}"
          f" dense={rms(g, mask, False):.2e} | update rms tables(touched)="
          f"{rms_touched(u, g, mask):.2e} dense={rms(u, mask, False):.2e}"
          f" | table rms(touched)={rms_touched(params, g, mask):.2e}"
          f" | loss(mean last 10)={np.mean(losses[-10:]):.4f}"
        )
        if name == "adagrad":
          nu = opt_state.inner_state[0].sum_of_squares
          line += f" | acc(touched)={rms_touched(nu, g, mask):.3e}"
        print(line, flush=True)
      if k >= STEPS:
        break


if __name__ == "__main__":
  main()
