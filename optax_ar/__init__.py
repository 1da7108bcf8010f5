"""optax_ar: adaptive per-row regularisation for sparse embedding models.

Usage: ``tx = optax_ar.adam_ar(learning_rate=1e-3, alpha=1e-3)``.
"""

from optax_ar._src.alias import adagrad_ar
from optax_ar._src.alias import adam_ar
from optax_ar._src.alpha import alpha_per_step
from optax_ar._src.interval_decay import AdaptiveIntervalDecayState
from optax_ar._src.interval_decay import adaptive_interval_decay
from optax_ar._src.interval_decay import touched_rows
from optax_ar._src.interval_decay import touched_rows_among
from optax_ar._src.lazy_adam import scale_by_lazy_adam
from optax_ar._src.reset import reset_leaves
from optax_ar._src.sharded_sparse import shard_rows
from optax_ar._src.sparse import SparseAdagradARState
from optax_ar._src.sparse import SparseAdamARState
from optax_ar._src.sparse import SparseRowOptimizer
from optax_ar._src.sparse import UniqueRows
from optax_ar._src.sparse import gather_rows
from optax_ar._src.sparse import sparse_adagrad_ar
from optax_ar._src.sparse import sparse_adam_ar
from optax_ar._src.sparse import unique_rows

__version__ = "0.1.0"

__all__ = (
  "AdaptiveIntervalDecayState",
  "SparseAdagradARState",
  "SparseAdamARState",
  "SparseRowOptimizer",
  "UniqueRows",
  "adagrad_ar",
  "adam_ar",
  "adaptive_interval_decay",
  "alpha_per_step",
  "gather_rows",
  "reset_leaves",
  "scale_by_lazy_adam",
  "shard_rows",
  "sparse_adagrad_ar",
  "sparse_adam_ar",
  "touched_rows",
  "touched_rows_among",
  "unique_rows",
)
