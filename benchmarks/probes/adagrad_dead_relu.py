# ruff: noqa: B023  (the closures are used inside the loop iteration that defines them)
"""Adagrad lr 0.1, initial accumulator 1e-6: why some seeds die (Beauty b256).

Usage: ``python benchmarks/probes/adagrad_dead_relu.py``
For seeds 0..2, trains 30 steps and prints, after steps 1, 2, 5, 30, the
share of hidden units of each layer that are dead on the batch (ReLU input
<= 0 for every example), and the training loss.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from flax import nnx  # noqa: E402

from examples.ctr import train  # noqa: E402
from examples.ctr.config import Config  # noqa: E402
from examples.ctr.data.pipeline import BatchIterator  # noqa: E402


def dead_shares(model, features):
  """Share of dead units per hidden layer on one batch."""
  x = model.embedding.pool(model.lookup(features)["embedding"], features)
  x = x.reshape(x.shape[0], -1)
  shares = []
  for layer in model.mlp.hidden:
    pre = layer(x)
    shares.append(float(jnp.mean(jnp.all(pre <= 0, axis=0))))
    x = nnx.relu(pre)
  return shares


def main(lr=0.1, acc=1e-6):
  config = Config(
    dataset="amazon-beauty",
    data_path="/work/shared/data",
    batch_size=256,
    learning_rate=lr,
    adagrad_initial_accumulator=acc,
  )
  ds = train.load_dataset(config)
  for seed in (0, 1, 2):
    setup = train.create_train_state(config, ds.fields, "adagrad", None, seed)
    graphdef, tx = setup.graphdef, setup.spec.tx
    params, opt_state, rest = setup.state

    def loss_fn(params, rest, batch):  # noqa: B023 (used within the loop)
      model = nnx.merge(graphdef, params, rest)
      return optax.sigmoid_binary_cross_entropy(
        model(batch.features), batch.labels
      ).mean()

    @jax.jit
    def step(params, opt_state, batch):
      loss, g = jax.value_and_grad(loss_fn)(params, rest, batch)
      u, opt_state = tx.update(g, opt_state, params)
      return optax.apply_updates(params, u), opt_state, loss

    it = BatchIterator(ds.train, 256, shuffle=True, seed=seed)
    for k, batch in enumerate(it.epoch(1), start=1):
      params, opt_state, loss = step(params, opt_state, batch)
      if k in (1, 2, 5, 30):
        model = nnx.merge(graphdef, params, rest)
        shares = dead_shares(model, batch.features)
        print(
          f"lr={lr} acc={acc} seed {seed} step {k:3d}: loss={float(loss):.4f}"
          f" dead share per hidden layer={[round(s, 3) for s in shares]}",
          flush=True,
        )
      if k >= 30:
        break


if __name__ == "__main__":
  main(*(float(a) for a in sys.argv[1:]))
