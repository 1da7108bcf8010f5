"""alpha_per_step: a decay per epoch as AdamAR's per-step alpha."""

import math

import pytest

import optax_ar


@pytest.mark.parametrize(
  "decay, steps, want",
  [(1.0, 500, 1 / 500), (3.0, 390, 3 / 390), (0.0, 7, 0.0), (1, 2, 0.5)],
)
def test_is_the_decay_divided_by_the_steps(decay, steps, want):
  # One float division, the same on every backend: exact.
  assert optax_ar.alpha_per_step(decay, steps) == want


def test_a_row_idle_for_an_epoch_loses_the_decay():
  # lam = min(1, alpha * I) with I = steps_per_epoch is the decay per epoch
  # (up to one rounding of the division and one of the product).
  steps = 854
  alpha = optax_ar.alpha_per_step(0.5, steps)
  assert math.isclose(min(1.0, alpha * steps), 0.5, rel_tol=4e-16)


@pytest.mark.parametrize(
  "decay, steps, error, match",
  [
    (-1.0, 10, ValueError, "decay_per_epoch must be a number >= 0"),
    (float("nan"), 10, ValueError, "decay_per_epoch"),
    ("1", 10, ValueError, "decay_per_epoch"),
    (1.0, 0, ValueError, "steps_per_epoch must be >= 1"),
    (1.0, 2.5, TypeError, "steps_per_epoch must be an int"),
    (1.0, True, TypeError, "steps_per_epoch must be an int"),
    (10.0, 10, ValueError, "alpha must be < 1"),
  ],
)
def test_bad_arguments_are_named(decay, steps, error, match):
  with pytest.raises(error, match=match):
    optax_ar.alpha_per_step(decay, steps)


def test_the_result_is_accepted_by_adam_ar():
  alpha = optax_ar.alpha_per_step(1.0, 100)
  optax_ar.adam_ar(learning_rate=1e-3, alpha=alpha)
