"""Research code around the CTR runner: AdamAR variants and the paper's harness.

Nothing here is needed to train a model. Importing the package registers the
AdamAR variants with :mod:`examples.ctr.optimizers` (the command line does),
and its modules add the tools that reproduce the paper's tables:

* :mod:`~examples.ctr.research.variants`: AdamAR with decayed moments, with the
  decay applied on first touch, and the paper's bucket-substitution ablation.
* :mod:`~examples.ctr.research.read_decay`: AdamAR's decay applied when a row
  is read, before the forward pass.
* :mod:`~examples.ctr.research.touch_gaps`: how many steps pass between two
  touches of one embedding row.
* :mod:`~examples.ctr.research.summarize_results`: one summary of many
  ``compare`` results folders.
* ``reproduce.sh``: the job list that produced ``docs/results``.
"""

from examples.ctr.research import read_decay  # noqa: F401 (registers)
from examples.ctr.research import variants  # noqa: F401 (registers)
