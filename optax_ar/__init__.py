"""optax_ar: adaptive per-row regularisation for sparse embedding models.

Usage: ``tx = optax_ar.adam_ar(learning_rate=1e-3, alpha=1e-3)``.
"""

from optax_ar._src.alias import adagrad_ar
from optax_ar._src.alias import adam_ar
from optax_ar._src.interval_decay import AdaptiveIntervalDecayState
from optax_ar._src.interval_decay import adaptive_interval_decay
from optax_ar._src.interval_decay import touched_rows
from optax_ar._src.reset import reset_leaves

__version__ = "0.1.0"

__all__ = (
  "AdaptiveIntervalDecayState",
  "adagrad_ar",
  "adam_ar",
  "adaptive_interval_decay",
  "reset_leaves",
  "touched_rows",
)
