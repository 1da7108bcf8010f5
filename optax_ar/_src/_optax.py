"""The names optax_ar uses from optax, in one place.

Every other module of optax_ar imports optax through this one. As a
standalone package optax_ar depends on the public ``optax`` API; inside
optax (``optax/contrib``) this module's imports become imports from
``optax._src`` and ``optax.tree_utils`` (see docs/CONTRIBUTING.md), and no
other module changes.
"""

from optax import GradientTransformation
from optax import GradientTransformationExtraArgs
from optax import MaskedNode
from optax import OptState
from optax import Params
from optax import ScalarOrSchedule
from optax import ScaleByAdamState
from optax import Updates
from optax import adagrad
from optax import chain
from optax import safe_increment
from optax import scale_by_adam
from optax import scale_by_learning_rate
from optax import tree_map_params
from optax import with_extra_args_support
from optax.tree import bias_correction as tree_bias_correction
from optax.tree import cast as tree_cast
from optax.tree import cast_like as tree_cast_like
from optax.tree import update_moment as tree_update_moment
from optax.tree import (
  update_moment_per_elem_norm as tree_update_moment_per_elem_norm,
)

__all__ = (
  "GradientTransformation",
  "GradientTransformationExtraArgs",
  "MaskedNode",
  "OptState",
  "Params",
  "ScalarOrSchedule",
  "ScaleByAdamState",
  "Updates",
  "adagrad",
  "chain",
  "safe_increment",
  "scale_by_adam",
  "scale_by_learning_rate",
  "tree_bias_correction",
  "tree_cast",
  "tree_cast_like",
  "tree_map_params",
  "tree_update_moment",
  "tree_update_moment_per_elem_norm",
  "with_extra_args_support",
)
