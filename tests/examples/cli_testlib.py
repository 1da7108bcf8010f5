"""Running the runner's command line inside a test, its output captured."""

import contextlib
import io

from examples.ctr import main


def run_train(workdir, optimizer, *flags):
  """``python -m examples.ctr train --config test`` with ``flags``.

  Returns:
    ``(runs, stdout, stderr)``: what ``main.main`` returned and what it
    printed.
  """
  out, err = io.StringIO(), io.StringIO()
  argv = ["train", "--config", "test", "--workdir", workdir]
  argv += ["--optimizer", optimizer, "--alpha", "1e-3", *flags]
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    runs = main.main(argv)
  return runs, out.getvalue(), err.getvalue()
