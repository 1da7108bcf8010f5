"""A synthetic CTR dataset that shows one-epoch overfitting, built in memory.

Usage: ``dataset = make_synthetic_dataset(seed=0)``.

It needs no files and runs anywhere, so it is the default dataset of the
main experiment. Its defaults are calibrated for a DNN with 32-dim
zero-initialised embeddings and an MLP of [256, 128] trained for 4 epochs
with Adam (lr 1e-3) at **batch 512** (390 steps per epoch): plain Adam
reaches its best validation and test AUC after epoch 1 and loses about 0.03
to 0.04 AUC by epoch 4, while AdamAR with alpha = 1e-2 does not fall (its
epoch-4 AUC is at or above its epoch-1 AUC), at about 20 to 50 seconds per
4-epoch run on 2 CPU cores. At batch 2048 (97 steps per epoch) the intervals
between touches are four times shorter, so alpha <= 1e-2 decays too little
and AdamAR only slows the fall; use batch 512 (or scale ``num_train`` with
the batch) to keep the paper's shape.

The generative model. There are ``F`` independent categorical fields. Field
``f`` has a population of ``V_f`` raw values ranked ``r = 1 .. V_f`` by
popularity and a Zipf distribution over them,

.. math::

  P_f(r) = r^{-s_f} / \\sum_{q=1}^{V_f} q^{-s_f},

so a handful of values is very frequent and most values sit in a long tail
that appears only a few times in the training split. Each example draws
one value per field independently. Its label comes from a hidden teacher,

.. math::

  \\ell(x) = b + \\sum_f z_f(x_f)
             + \\sum_{(f, g) \\in P} c \\, \\langle u_f(x_f), u_g(x_g) \\rangle
             + \\epsilon, \\qquad y \\sim \\mathrm{Bernoulli}(\\sigma(\\ell)),

with per-value effects :math:`z_f(r) = \\sigma_f \\, r^{-\\delta} \\,
\\xi_{f,r}`, :math:`\\xi_{f,r} \\sim N(0, 1)` (``sigma_f`` =
``field_scales``, ``delta`` = ``effect_decay``); a few field pairs ``P``
(``num_interactions``, chosen at random) interact through rank-``k`` factors
:math:`u_f(r) = r^{-\\delta} \\eta_{f,r} / \\sqrt{k}`, :math:`\\eta_{f,r} \\sim
N(0, I_k)` (``c`` = ``interaction_scale``); :math:`\\epsilon \\sim N(0,
\\tau^2)` is per-example noise the features cannot explain (``tau`` =
``noise_scale``); and the bias ``b`` is set by bisection so that the
training click rate is ``click_rate``. Because :math:`r^{-\\delta}` shrinks
with the rank, a rare value carries a weak real effect, and the few labels
it appears with are mostly Bernoulli and :math:`\\epsilon` noise:
memorising them (what plain Adam does in epochs 2+) fits noise that does not
carry over to new examples, while frequent values carry strong, learnable
effects.

Splits are drawn from the same distribution. The vocabulary of a field is
the set of values seen at least ``min_count`` times in the training split,
numbered ``2 .. vocab_size - 1`` in a random order; every other value, in
any split, becomes the OOV ID 1 (:mod:`examples.ctr.data.schema`), as in the
usual CTR preprocessing. ``frequencies`` counts each ID in the training
split. The cut matters: a value seen once per epoch is decayed by AdamAR
only after the forward pass that reads its memorised row, so no interval
decay can stop its memorisation, while MEDA-style resets can. With the
defaults over 80% of the values drawn in the training split appear at most
5 times (about half only once) and become OOV, and the kept tail (IDs seen
5 to 20 times, about 5% of the (example, field) slots) is touched every 25
to 40 steps at batch 512: that tail is where Adam memorises and where
AdamAR's interval decay acts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from examples.ctr.data import schema

# The calibrated defaults (see the module docstring and the tests).
DEFAULT_VOCAB_SIZES = (
  8,
  24,
  64,
  200,
  500,
  1_000,
  3_000,
  10_000,
  20_000,
  40_000,
  60_000,
  80_000,
)


def _zipf_cdf(vocab: int, exponent: float) -> np.ndarray:
  """Cumulative probabilities of ranks 1 .. vocab under Zipf(exponent)."""
  weights = np.arange(1, vocab + 1, dtype=np.float64) ** -exponent
  cdf = np.cumsum(weights)
  return cdf / cdf[-1]


def _as_per_field(value, num_fields: int, name: str) -> np.ndarray:
  arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (num_fields,))
  if arr.shape != (num_fields,):
    raise ValueError(f"{name} must be a scalar or have {num_fields} entries")
  return arr


def _fit_bias(logits: np.ndarray, click_rate: float) -> float:
  """The bias b with mean(sigmoid(logits + b)) == click_rate (bisection)."""
  lo, hi = -30.0, 30.0
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) < click_rate:
      lo = mid
    else:
      hi = mid
  return 0.5 * (lo + hi)


def make_synthetic_dataset(
  *,
  num_train: int = 200_000,
  num_valid: int = 50_000,
  num_test: int = 50_000,
  vocab_sizes: Sequence[int] = DEFAULT_VOCAB_SIZES,
  zipf_exponent: float | Sequence[float] = 1.1,
  field_scales: float | Sequence[float] | None = None,
  effect_decay: float = 0.25,
  num_interactions: int = 4,
  interaction_rank: int = 4,
  interaction_scale: float = 1.0,
  noise_scale: float = 1.0,
  click_rate: float = 0.2,
  min_count: int = 5,
  seed: int = 0,
  name: str = "synthetic",
) -> schema.CTRDataset:
  """Draws a synthetic CTR dataset from a hidden Zipf-and-teacher model.

  See the module docstring for the generative model and its math.

  Args:
    num_train: training examples.
    num_valid: validation examples (0 for no validation split).
    num_test: test examples.
    vocab_sizes: ``V_f``, the number of raw values of each field; its length
      is the number of fields. The embedding tables are smaller: only values
      present in the training split get an ID.
    zipf_exponent: ``s_f``, the Zipf exponent, one for all fields or one per
      field.
    field_scales: ``sigma_f``, the effect scale of each field's most popular
      value; None draws them uniformly from [0.3, 0.8].
    effect_decay: ``delta``; a value of rank ``r`` has effect scale
      ``sigma_f * r ** -delta``.
    num_interactions: number of interacting field pairs.
    interaction_rank: ``k``, the rank of each pairwise interaction.
    interaction_scale: ``c``, the weight of the interaction terms.
    noise_scale: ``tau``, the std of the unexplained per-example logit noise.
    click_rate: the mean label of the training split.
    min_count: values seen fewer times in the training split become the OOV
      ID 1 in every split (the usual CTR preprocessing).
    seed: everything (values, teacher, labels, ID numbering) derives from it.
    name: the dataset's name.

  Returns:
    A :class:`~examples.ctr.data.schema.CTRDataset` with fields ``f00``,
    ``f01``, ... (single-valued), train, valid (None when ``num_valid`` is
    0) and test splits, and training frequencies.

  Examples:
    >>> ds = make_synthetic_dataset(num_train=1000, num_valid=100,
    ...                             num_test=100, vocab_sizes=(10, 50), seed=1)
    >>> [f.name for f in ds.fields], len(ds.train), len(ds.test)
    (['f00', 'f01'], 1000, 100)
    >>> int(ds.frequencies["f00"].sum())
    1000
  """
  vocab_sizes = tuple(int(v) for v in vocab_sizes)
  num_fields = len(vocab_sizes)
  if num_fields == 0 or min(vocab_sizes) < 1:
    raise ValueError(f"vocab_sizes must be positive, got {vocab_sizes}")
  if num_train < 1 or num_test < 1 or num_valid < 0:
    raise ValueError("need num_train >= 1, num_test >= 1 and num_valid >= 0")
  if min_count < 1:
    raise ValueError(f"min_count must be >= 1, got {min_count}")
  if not 0.0 < click_rate < 1.0:
    raise ValueError(f"click_rate must be in (0, 1), got {click_rate}")
  rng = np.random.default_rng(seed)
  exponents = _as_per_field(zipf_exponent, num_fields, "zipf_exponent")
  if field_scales is None:
    scales = rng.uniform(0.3, 0.8, size=num_fields)
  else:
    scales = _as_per_field(field_scales, num_fields, "field_scales")
  pairs = [(f, g) for f in range(num_fields) for g in range(f + 1, num_fields)]
  num_interactions = min(num_interactions, len(pairs))
  chosen = rng.choice(len(pairs), size=num_interactions, replace=False)
  pairs = [pairs[i] for i in sorted(chosen)]

  # The hidden teacher, per raw value (0-based rank r - 1).
  effects, factors = [], []
  for f, vocab in enumerate(vocab_sizes):
    decay = np.arange(1, vocab + 1, dtype=np.float64) ** -effect_decay
    effects.append(scales[f] * decay * rng.standard_normal(vocab))
    factors.append(
      decay[:, None]
      * rng.standard_normal((vocab, interaction_rank))
      / np.sqrt(interaction_rank)
    )

  sizes = {"train": num_train, "valid": num_valid, "test": num_test}
  total = sum(sizes.values())
  raw = np.empty((num_fields, total), dtype=np.int64)
  for f, vocab in enumerate(vocab_sizes):
    cdf = _zipf_cdf(vocab, exponents[f])
    raw[f] = np.minimum(np.searchsorted(cdf, rng.random(total)), vocab - 1)

  logits = noise_scale * rng.standard_normal(total)
  for f in range(num_fields):
    logits += effects[f][raw[f]]
  for f, g in pairs:
    logits += interaction_scale * np.einsum(
      "nk,nk->n", factors[f][raw[f]], factors[g][raw[g]]
    )
  logits += _fit_bias(logits[:num_train], click_rate)
  labels = (rng.random(total) < 1.0 / (1.0 + np.exp(-logits))).astype(
    np.float32
  )

  # Vocabulary from the training split, in a random order; the rest is OOV.
  fields, ids, frequencies = [], [], {}
  for f, vocab in enumerate(vocab_sizes):
    fname = f"f{f:02d}"
    seen = np.bincount(raw[f, :num_train], minlength=vocab) >= min_count
    num_seen = int(seen.sum())
    lookup = np.full(vocab, schema.OOV_ID, dtype=np.int32)
    lookup[seen] = schema.NUM_RESERVED_IDS + rng.permutation(num_seen)
    field_ids = lookup[raw[f]]
    vocab_size = num_seen + schema.NUM_RESERVED_IDS
    fields.append(schema.FieldSpec(name=fname, vocab_size=vocab_size))
    frequencies[fname] = np.bincount(
      field_ids[:num_train], minlength=vocab_size
    ).astype(np.int64)
    ids.append(field_ids)

  def split(start: int, stop: int) -> schema.Split:
    return schema.Split(
      features={spec.name: ids[f][start:stop] for f, spec in enumerate(fields)},
      labels=labels[start:stop],
    )

  v0, v1 = num_train, num_train + num_valid
  return schema.CTRDataset(
    name=name,
    fields=tuple(fields),
    train=split(0, v0),
    valid=split(v0, v1) if num_valid else None,
    test=split(v1, total),
    frequencies=frequencies,
  )
