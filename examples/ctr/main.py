"""Command line of the CTR experiments: flags -> Config -> run -> table, plots.

Usage: ``python -m examples.ctr --config demo`` (the README's main job), or
``python -m examples.ctr --dataset synthetic --model dnn --optimizer adam_ar
--alpha 1e-3 --epochs 4``, or ``python -m examples.ctr compare --optimizers
adam,adamw,adam_ar --alphas 1e-4,1e-3 --seeds 0,1,2``.

Every field of :class:`examples.ctr.config.Config` is a flag (``--field-name``,
dashes for underscores) whose default is the chosen preset's value (the
paper's, for ``--config default``). Tuples are comma-separated; dicts are
JSON (``--model-options '{"mlp_widths": [256, 128]}'``); ``none`` clears an
optional value; booleans take ``--flag`` / ``--no-flag``.

One's own CSV, TSV or Parquet file (a 0/1 label column and categorical
columns) trains with three plain flags, which fill the ``tabular`` dataset's
options (:func:`examples.ctr.data.tabular.build_tabular`)::

  python -m examples.ctr train --data clicks.csv --label click \
    --categorical user,item,site

``--data PATH`` is ``--dataset tabular --data-path PATH``; ``--label`` and
``--categorical`` also complete ``--dataset tabular`` with ``--data-path``
(or per-split files in ``--dataset-options``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
import types
import typing
from collections.abc import Sequence
from typing import Any

from examples.ctr import compare
from examples.ctr import distributed
from examples.ctr import plots
from examples.ctr import research  # noqa: F401 (registers its optimizers)
from examples.ctr.config import PRESETS
from examples.ctr.config import Config
from examples.ctr.config import get_config

TABLE_FILE = "table.txt"

#: Spellings that are not flags, and the flag to write instead.
REPLACED_FLAGS = {
  "--candidate-rows": "--batch-ids-as-candidates",
  "--lazy": "--optimizer adam_ar_lazy",
}


def _parse_value(text: str, hint: Any) -> Any:
  """Parses one flag value according to its type hint."""
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin in (typing.Union, types.UnionType):
    if text.lower() == "none":
      return None
    return _parse_value(text, next(a for a in args if a is not type(None)))
  if origin is tuple:
    return tuple(_parse_value(t.strip(), args[0]) for t in text.split(",") if t)
  if origin is dict:
    return json.loads(text)
  return hint(text)


def _parse_update_path(text: str) -> bool | str:
  """``--sparse-updates=VALUE``: ``auto``, or ``sparse`` / ``dense``.

  Example:
    >>> _parse_update_path("auto"), _parse_update_path("dense")
    ('auto', False)
  """
  value = {"auto": "auto", "sparse": True, "true": True}.get(text.lower())
  if value is None and text.lower() in ("dense", "false"):
    value = False
  if value is None:
    raise argparse.ArgumentTypeError(
      f"--sparse-updates takes auto, sparse or dense, got {text!r}"
    )
  return value


def _attribute_docs(cls: type) -> dict[str, str]:
  """``{name: description}`` from the ``Attributes:`` of a class docstring."""
  docs: dict[str, str] = {}
  lines = (cls.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
  name = None
  for line in lines:
    match = re.match(r"^    (\w+): (.*)$", line)
    if match:
      name = match.group(1)
      docs[name] = match.group(2)
    elif name and line.startswith("      "):
      docs[name] += " " + line.strip()
  return docs


def _replaced_by(replacement: str) -> type[argparse.Action]:
  """An argparse action that fails, naming the flag to use instead."""

  class Replaced(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
      parser.error(f"{option_string} is now {replacement}")

  return Replaced


def build_parser() -> argparse.ArgumentParser:
  """An argparse parser with one flag per config field."""
  parser = argparse.ArgumentParser(
    prog="python -m examples.ctr",
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument(
    "mode_arg",
    nargs="?",
    choices=("train", "compare"),
    metavar="MODE",
    help="train (one run) or compare (a grid); default: the preset's mode",
  )
  parser.add_argument(
    "--config", default="default", choices=PRESETS, help="preset to start from"
  )
  hints = typing.get_type_hints(Config)
  docs = _attribute_docs(Config)
  defaults = Config()
  for field in dataclasses.fields(Config):
    flag = "--" + field.name.replace("_", "-")
    hint = hints[field.name]
    default = getattr(defaults, field.name)
    help_text = f"{docs.get(field.name, '')} [default preset: {default!r}]"
    help_text = help_text.replace("%", "%%")
    if field.name == "sparse_updates":  # tri-state: False, True, "auto"
      parser.add_argument(
        flag,
        dest=field.name,
        nargs="?",
        const=True,
        default=argparse.SUPPRESS,
        metavar="auto",
        type=_parse_update_path,
        help=help_text,
      )
      parser.add_argument(
        "--no-" + flag[2:],
        dest=field.name,
        action="store_const",
        const=False,
        default=argparse.SUPPRESS,
        help="train on the dense path (the default preset's)",
      )
    elif hint is bool:
      parser.add_argument(
        flag,
        dest=field.name,
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help=help_text,
      )
    else:
      parser.add_argument(
        flag,
        dest=field.name,
        default=argparse.SUPPRESS,
        metavar="VALUE",
        type=lambda text, hint=hint: _parse_value(text, hint),
        help=help_text,
      )
  own_data = parser.add_argument_group(
    "own data",
    "a CSV, TSV or Parquet file with a label column and "
    "categorical columns (the tabular dataset)",
  )
  own_data.add_argument(
    "--data",
    default=None,
    metavar="PATH",
    help="the file: --dataset tabular --data-path PATH",
  )
  own_data.add_argument(
    "--label", default=None, metavar="COLUMN", help="the 0/1 label column"
  )
  own_data.add_argument(
    "--categorical",
    default=None,
    metavar="A,B,C",
    help="the categorical columns, comma-separated",
  )
  for flag, replacement in REPLACED_FLAGS.items():
    parser.add_argument(
      flag,
      nargs=0,
      action=_replaced_by(replacement),
      default=argparse.SUPPRESS,
      help=argparse.SUPPRESS,
    )
  return parser


def parse_config(argv: Sequence[str] | None = None) -> Config:
  """The Config that ``argv`` describes (preset, then flags).

  Example:
    >>> c = parse_config(["compare", "--config", "test", "--alphas",
    ...                   "1e-4,1e-2", "--no-progress"])
    >>> c.mode, c.alphas, c.progress, c.epochs
    ('compare', (0.0001, 0.01), False, 2)
  """
  parser = build_parser()
  args = vars(parser.parse_args(argv))
  config = get_config(args.pop("config"))
  mode = args.pop("mode_arg")
  if mode is not None:
    args["mode"] = mode
  _own_data(parser, config, args)
  return config.replace(**args)


def _own_data(
  parser: argparse.ArgumentParser, config: Config, args: dict[str, Any]
) -> None:
  """Turns ``--data``, ``--label``, ``--categorical`` into config fields."""
  data, label = args.pop("data"), args.pop("label")
  categorical = args.pop("categorical")
  if data is None and label is None and categorical is None:
    return
  if data is not None:
    if args.setdefault("dataset", "tabular") != "tabular":
      parser.error("--data is the tabular dataset's file: drop --dataset")
    args["data_path"] = data
  if args.get("dataset", config.dataset) != "tabular":
    parser.error("--label and --categorical need --data or --dataset tabular")
  if label is None or categorical is None:
    parser.error("own data needs both --label and --categorical")
  if "dataset_options" in args:
    options = dict(args["dataset_options"])
  elif config.dataset == "tabular":
    options = dict(config.dataset_options)
  else:  # the preset's options are another dataset's
    options = {}
  options["label"] = label
  options["categorical"] = [c.strip() for c in categorical.split(",") if c]
  args["dataset_options"] = options


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Runs the experiment of ``argv``; prints the table, writes the plots."""
  try:  # orbax logs every checkpoint at INFO level through absl.
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
  except ImportError:
    pass
  config = parse_config(argv)
  distributed.initialize(config)  # with --coordinator-address: before JAX
  workdir = config.resolved_workdir
  tic = time.perf_counter()
  try:
    runs = compare.run_experiment(config)
  except KeyboardInterrupt:
    print(
      f"\ninterrupted: the checkpoints (every epoch, and every "
      f"--checkpoint-every steps) are in {workdir}; continue with the same "
      "flags and --resume",
      file=sys.stderr,
    )
    raise SystemExit(130) from None
  table = compare.format_table(runs, config.select_by)
  if not distributed.is_main_process():  # process 0 writes the files
    return runs
  paths = plots.write_plots(runs, workdir, config.select_by)
  with open(os.path.join(workdir, TABLE_FILE), "w") as f:
    f.write(table + "\n")
  print(table)
  print(f"\nresults: {os.path.join(workdir, 'results.json')}")
  print("plots: " + ", ".join(paths))
  print(f"wall time: {time.perf_counter() - tic:.1f} s", file=sys.stderr)
  return runs
