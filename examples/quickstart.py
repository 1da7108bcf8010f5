"""Plain Adam against AdamAR on a small CTR model, in one page.

Usage: ``python examples/quickstart.py`` (under a minute on 2 CPU cores).

A Flax NNX model (one embedding table per categorical field, then an MLP)
learns clicks from synthetic data whose IDs follow a long-tailed (Zipf)
distribution. Plain Adam memorises the rare IDs after the first epoch and its
test AUC falls; AdamAR decays a row by ``min(1, alpha * I)`` when it is
touched again after ``I`` untouched steps, and holds its AUC.
"""

import argparse
import functools
import itertools

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import optax_ar


def make_data(n, vocab_sizes, min_count=3, seed=0):
  """Zipf-distributed IDs per field; a click logit that rare IDs barely move."""
  rng = np.random.default_rng(seed)
  ids, logit = [], rng.normal(size=n) - 1.5
  for v in vocab_sizes:
    p = np.arange(1, v + 1) ** -1.1
    raw = rng.choice(v, size=n, p=p / p.sum())
    effect = rng.normal(size=v) * 0.6 * np.arange(1, v + 1) ** -0.25
    logit += effect[raw]
    counts = np.bincount(raw[: n // 2], minlength=v)  # the training half
    ids.append(np.where(counts[raw] >= min_count, raw + 1, 0))  # 0 = rare
  y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
  return np.stack(ids, axis=1).astype(np.int32), y


class CTRModel(nnx.Module):
  """Per-field embedding tables, concatenated, then an MLP to one logit."""

  def __init__(self, vocab_sizes, dim, widths, *, rngs):
    # Zero embeddings as in the paper (a reset, lam = 1, returns a row to its
    # init); a positive hidden bias keeps the ReLUs alive at zero inputs.
    zeros, bias = nnx.initializers.zeros, nnx.initializers.constant(0.1)
    embed = functools.partial(nnx.Embed, embedding_init=zeros, rngs=rngs)
    linear = functools.partial(nnx.Linear, bias_init=bias, rngs=rngs)
    self.tables = nnx.List([embed(v + 1, dim) for v in vocab_sizes])
    sizes = [dim * len(vocab_sizes), *widths]
    self.layers = nnx.List([linear(a, b) for a, b in itertools.pairwise(sizes)])
    self.out = nnx.Linear(sizes[-1], 1, rngs=rngs)

  def __call__(self, ids):
    x = jnp.concatenate([t(ids[:, i]) for i, t in enumerate(self.tables)], -1)
    for layer in self.layers:
      x = nnx.relu(layer(x))
    return self.out(x)[:, 0]


@nnx.jit
def train_step(model, optimizer, ids, y):
  def loss_fn(model):
    return optax.sigmoid_binary_cross_entropy(model(ids), y).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)  # AdamAR reads the raw grads: rows touched
  return loss


@nnx.jit
def predict(model, ids):
  return model(ids)


def auc(y, scores):
  """Exact ROC AUC: the Mann-Whitney statistic with average ranks for ties."""
  _, inverse, counts = np.unique(
    scores, return_inverse=True, return_counts=True
  )
  ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
  pos = y == 1
  n_pos, n_neg = pos.sum(), (~pos).sum()
  return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def train(tx, data, args):
  (x_tr, y_tr), (x_te, y_te) = data
  model = CTRModel(args.vocab_sizes, 16, (64, 32), rngs=nnx.Rngs(args.seed))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  rng, aucs = np.random.default_rng(args.seed), []
  for _ in range(args.epochs):
    order = rng.permutation(len(y_tr))
    for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
      batch = order[i : i + args.batch_size]
      train_step(model, optimizer, x_tr[batch], y_tr[batch])
    aucs.append(auc(y_te, np.asarray(predict(model, x_te))))
  return aucs


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num-train", type=int, default=100_000)
  parser.add_argument("--vocab-sizes", type=int, nargs="+")
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--epochs", type=int, default=4)
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--decay-per-epoch", type=float, default=3.0)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  args.vocab_sizes = args.vocab_sizes or [10, 100, 1_000, 10_000, 30_000]
  x, y = make_data(2 * args.num_train, args.vocab_sizes, seed=args.seed)
  n = args.num_train
  data = (x[:n], y[:n]), (x[n:], y[n:])
  # alpha is a per-step rate: a decay of `a` per epoch is a / steps_per_epoch.
  steps_per_epoch = args.num_train // args.batch_size
  alpha = optax_ar.alpha_per_step(args.decay_per_epoch, steps_per_epoch)
  optimizers = {
    "adam": optax.adam(args.learning_rate),
    "adam_ar": optax_ar.adam_ar(learning_rate=args.learning_rate, alpha=alpha),
  }
  results = {name: train(tx, data, args) for name, tx in optimizers.items()}
  print("test AUC  " + "  ".join(f"E{e + 1:<5}" for e in range(args.epochs)))
  for name, aucs in results.items():
    print(f"{name:<9} " + "  ".join(f"{a:.4f}" for a in aucs))
  return results


if __name__ == "__main__":
  main()
