"""Shared helpers of the model tests: generated data and a functional step.

Usage: ``data = make_data(512); model = make_model("dnn")``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from examples.ctr.data.schema import FieldSpec
from examples.ctr.models import create_model

FIELDS = (
  FieldSpec("user", 40),
  FieldSpec("item", 30),
  FieldSpec("context", 6),
  FieldSpec("genres", 12, bag_size=4),
)
MODEL_NAMES = ("dnn", "wdl", "xdeepfm", "wukong")

#: Tiny configurations, fast on two CPU cores.
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
  "dnn": dict(embedding_dim=8, mlp_widths=(16, 8)),
  "wdl": dict(embedding_dim=8, mlp_widths=(16, 8)),
  "xdeepfm": dict(embedding_dim=8, mlp_widths=(16, 8), cin_layer_sizes=(6, 4)),
  "wukong": dict(
    embedding_dim=8,
    num_layers=2,
    num_fmb_embeddings=3,
    num_lcb_embeddings=2,
    fm_rank=2,
    fmb_mlp_widths=(8,),
    mlp_widths=(16,),
  ),
}


def make_model(name: str, seed: int = 0, **overrides: Any) -> nnx.Module:
  """A small model on :data:`FIELDS`; cached: callers must not mutate it."""
  return _cached_model(name, seed, tuple(sorted(overrides.items())))


@functools.cache
def _cached_model(name: str, seed: int, overrides: tuple) -> nnx.Module:
  # Eager initialisation compiles one kernel per new shape, which dominates
  # the run time of these tests on a small CPU; build each model once.
  config = {**SMALL_CONFIGS[name], **dict(overrides)}
  return create_model(name, FIELDS, rngs=nnx.Rngs(seed), **config)


@dataclasses.dataclass(frozen=True)
class Data:
  features: dict[str, np.ndarray]
  labels: np.ndarray

  def batch(self, start: int, size: int) -> dict[str, Any]:
    sl = slice(start, start + size)
    return {
      "features": {k: jnp.asarray(v[sl]) for k, v in self.features.items()},
      "labels": jnp.asarray(self.labels[sl]),
    }


def make_data(n: int, seed: int = 0) -> Data:
  """Skewed IDs; labels from per-ID effects and a user x item interaction."""
  rng = np.random.default_rng(seed)
  feats, logit = {}, np.zeros(n)
  for f in FIELDS:
    p = 1.0 / np.arange(1, f.vocab_size - 1) ** 0.8
    ids = rng.choice(
      np.arange(2, f.vocab_size), size=(n, f.bag_size), p=p / p.sum()
    )
    effect = rng.normal(0.0, 1.0, f.vocab_size)
    if f.bag_size > 1:
      lengths = rng.integers(1, f.bag_size + 1, size=n)
      ids[np.arange(f.bag_size)[None, :] >= lengths[:, None]] = 0
      effect[0] = 0.0
      logit += effect[ids].sum(1) / lengths
      feats[f.name] = ids.astype(np.int32)
    else:
      logit += effect[ids[:, 0]]
      feats[f.name] = ids[:, 0].astype(np.int32)
  u = rng.normal(0.0, 1.0, (FIELDS[0].vocab_size, 2))
  i = rng.normal(0.0, 1.0, (FIELDS[1].vocab_size, 2))
  logit += (u[feats["user"]] * i[feats["item"]]).sum(1)
  labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
  return Data(feats, labels)


def bce(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


@functools.partial(jax.jit, static_argnums=0)
def _both_paths(graphdef, params, rest, batch, rows):
  features = batch["features"]

  def full(p):
    logits = nnx.merge(graphdef, p, rest, copy=True)(features)
    return bce(logits, batch["labels"]), logits

  def from_rows(r):
    m = nnx.merge(graphdef, params, rest, copy=True)
    logits = m.forward_from_embeddings(r, features)
    return bce(logits, batch["labels"]), logits

  (_, logits), grads = jax.value_and_grad(full, has_aux=True)(params)
  (_, logits_rows), grads_rows = jax.value_and_grad(from_rows, has_aux=True)(
    rows
  )
  return logits, logits_rows, grads, grads_rows


def both_paths(model: nnx.Module, batch: dict[str, Any]):
  """Logits and loss gradients by the full model and from gathered rows.

  Returns ``(logits, logits_from_rows, param_grads, row_grads)``; the
  parameter gradients are a pure dict shaped like the model's params. Jitted
  with the graph definition static, so models of equal structure (e.g. zero
  and normal embedding init) share one compilation.
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  rows = model.lookup(batch["features"])
  logits, logits_rows, grads, grads_rows = _both_paths(
    graphdef, params, rest, batch, rows
  )
  return logits, logits_rows, nnx.to_pure_dict(grads), grads_rows


def param_grads(model: nnx.Module, batch: dict[str, Any]) -> dict[str, Any]:
  """Loss gradients as a pure dict shaped like the model's params."""
  return both_paths(model, batch)[2]


def num_params(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


class Trainer:
  """A pure jitted train step over ``(params, rest, opt_state, batch)``."""

  def __init__(self, model: nnx.Module, tx: optax.GradientTransformation):
    self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
    self.tx = tx
    self.opt_state = tx.init(self.params)
    self.traces = 0

    def step(params, rest, opt_state, batch):
      self.traces += 1  # Python side effect: runs once per compilation.

      def f(p):
        m = nnx.merge(self.graphdef, p, rest, copy=True)
        logits = m(batch["features"])
        return bce(logits, batch["labels"]), (
          logits,
          nnx.state(m, nnx.Not(nnx.Param)),
        )

      (loss, (logits, rest)), grads = jax.value_and_grad(f, has_aux=True)(
        params
      )
      updates, opt_state = tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      return params, rest, opt_state, loss, logits

    self._step = jax.jit(step)

  def step(self, batch: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
    """One step; returns the batch loss and logits (before the update)."""
    self.params, self.rest, self.opt_state, loss, logits = self._step(
      self.params, self.rest, self.opt_state, batch
    )
    return loss, logits

  def model(self) -> nnx.Module:
    return nnx.merge(self.graphdef, self.params, self.rest)
