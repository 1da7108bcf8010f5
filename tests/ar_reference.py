"""An independent NumPy (float64) implementation of AdamAR and AdagradAR.

Written from the rule alone (Li and Lyu, "Adaptive Regularization for
Large-Scale Sparse Feature Embedding Models", ICLR 2026), with explicit
per-step loops, so that the tests compare the optax_ar transformations with
something that shares none of their code. At step k a row j whose raw
gradient is nonzero is decayed by lam = min(1, alpha * (k - last_j - 1)) and
its last_j becomes k; the update is theta - lam * theta - lr * direction.
Rows are slices along axis 0; a leaf is passed as an array of shape
(rows, ...).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class ReferenceAR:
  """AdamAR (dense or lazy moments) or AdagradAR on one leaf.

  Attributes:
    theta: the initial parameter, any shape with rows along axis 0.
    kind: "adam" or "adagrad".
    lazy: lazy moments (Adam only; Adagrad is lazy by nature).
  """

  theta: np.ndarray
  kind: str = "adam"
  lazy: bool = False
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  eps_root: float = 0.0
  nesterov: bool = False
  initial_accumulator_value: float = 0.1
  adagrad_eps: float = 1e-7

  def __post_init__(self):
    self.theta = np.array(self.theta, dtype=np.float64)
    self.m = np.zeros_like(self.theta)
    self.v = np.zeros_like(self.theta)
    self.acc = np.full_like(self.theta, self.initial_accumulator_value)
    self.last = np.zeros(self.theta.shape[:1], dtype=np.int64)
    self.k = 0

  def _rows(self, x):
    """Broadcasts a per-row vector against the leaf."""
    return x.reshape(x.shape + (1,) * (self.theta.ndim - 1))

  def step(self, grad, *, lr: float, alpha: float) -> np.ndarray:
    """Applies one update with the raw gradient; returns the new theta."""
    grad = np.array(grad, dtype=np.float64).reshape(self.theta.shape)
    self.k += 1
    k = self.k
    if self.theta.ndim == 0:
      touched = np.array(grad != 0)
    else:
      flat = grad.reshape(grad.shape[0], -1)
      touched = np.linalg.norm(flat, axis=1) > 0
    interval = k - self.last - 1
    lam = np.where(touched, np.minimum(1.0, alpha * interval), 0.0)
    self.last = np.where(touched, k, self.last)
    t = self._rows(touched)

    if self.kind == "adam":
      m_new = self.b1 * self.m + (1 - self.b1) * grad
      v_new = self.b2 * self.v + (1 - self.b2) * grad**2
      if self.lazy:
        self.m = np.where(t, m_new, self.m)
        self.v = np.where(t, v_new, self.v)
      else:
        self.m, self.v = m_new, v_new
      if self.nesterov:  # NAdam: the next step's momentum plus this grad
        m_hat = self.b1 * self.m / (1 - self.b1 ** (k + 1)) + (
          1 - self.b1
        ) * grad / (1 - self.b1**k)
      else:
        m_hat = self.m / (1 - self.b1**k)
      v_hat = self.v / (1 - self.b2**k)
      direction = m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)
      if self.lazy:
        direction = np.where(t, direction, 0.0)
    elif self.kind == "adagrad":
      self.acc = self.acc + grad**2
      direction = grad / np.sqrt(self.acc + self.adagrad_eps)
    else:
      raise ValueError(f"unknown kind {self.kind!r}")

    self.theta = self.theta - self._rows(lam) * self.theta - lr * direction
    return self.theta


def sparse_gradient_stream(
  rng: np.random.Generator,
  shape: tuple[int, ...],
  num_steps: int,
  touch_probabilities: np.ndarray,
) -> np.ndarray:
  """Random gradients whose row j is nonzero with probability p_j per step.

  Returns:
    float32 array of shape (num_steps, *shape).
  """
  grads = rng.normal(size=(num_steps,) + shape).astype(np.float32)
  touched = rng.random((num_steps, shape[0])) < touch_probabilities[None, :]
  touched = touched.reshape(touched.shape + (1,) * (len(shape) - 1))
  return np.where(touched, grads, 0.0).astype(np.float32)


def mixed_touch_probabilities(num_rows: int) -> np.ndarray:
  """Rows touched every step, at geometric rates down to 1/500, and never."""
  probs = np.geomspace(1.0, 2e-3, num_rows)
  probs[: max(num_rows // 8, 1)] = 1.0
  probs[-max(num_rows // 8, 1) :] = 0.0
  return probs
