"""Training-loop hooks: a per-epoch progress bar and an epoch summary writer.

Usage: ``train_and_evaluate(..., hooks=[ProgressBar("adam")])``.

The loop in :mod:`examples.ctr.train` calls every hook at the start of an
epoch, after every training batch and at the end of an epoch; it prints
nothing itself.
"""

from __future__ import annotations

import sys
from typing import Any

import tqdm


class Hook:
  """No-op base class of the training-loop hooks."""

  def start_epoch(self, epoch: int, num_epochs: int, num_examples: int):
    """Called before the first batch of ``epoch`` (1-based)."""

  def after_step(self, num_examples: int) -> None:
    """Called after every training batch of ``num_examples`` examples."""

  def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
    """Called once the epoch's metrics are computed."""


class ProgressBar(Hook):
  """A tqdm bar per epoch (examples/s) and a one-line summary per epoch.

  Args:
    label: shown before the epoch number (e.g. the run's name).
    stream: where to write (default stderr).
  """

  def __init__(self, label: str = "", stream: Any = None):
    self.label = label
    self.stream = stream or sys.stderr
    self._bar: tqdm.tqdm | None = None

  def start_epoch(self, epoch: int, num_epochs: int, num_examples: int):
    self._bar = tqdm.tqdm(
      total=num_examples,
      desc=f"{self.label} epoch {epoch}/{num_epochs}".strip(),
      unit="ex",
      unit_scale=True,
      file=self.stream,
      leave=False,
      dynamic_ncols=True,
    )

  def after_step(self, num_examples: int) -> None:
    if self._bar is not None:
      self._bar.update(num_examples)

  def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None
    tqdm.tqdm.write(
      f"{self.label} epoch {epoch}: " + format_metrics(metrics),
      file=self.stream,
    )


class EpochLog(Hook):
  """One line per epoch, no bar (for logs of unattended runs).

  Args:
    label: starts each line (e.g. the run's name).
    stream: where to write (default stderr); flushed after every line.

  Example:
    >>> import io
    >>> out = io.StringIO()
    >>> EpochLog("adam-seed0", out).end_epoch(2, {"eval_auc": 0.71234})
    >>> out.getvalue()
    'adam-seed0 epoch 2: eval_auc=0.7123\\n'
  """

  def __init__(self, label: str = "", stream: Any = None):
    self.label = label
    self.stream = stream

  def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
    stream = self.stream or sys.stderr
    stream.write(f"{self.label} epoch {epoch}: {format_metrics(metrics)}\n")
    stream.flush()


def format_metrics(metrics: dict[str, Any]) -> str:
  """``key=value`` pairs of the scalar metrics, 4 significant digits.

  Example:
    >>> format_metrics({"eval_auc": 0.712345, "bucket_sq_norms": [1.0]})
    'eval_auc=0.7123'
  """
  parts = []
  for key, value in metrics.items():
    if isinstance(value, float):
      parts.append(f"{key}={value:.4g}")
    elif isinstance(value, int) and key != "epoch":
      parts.append(f"{key}={value}")
  return " ".join(parts)
