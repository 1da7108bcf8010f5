"""One entry point for every dataset: ``load_dataset(name, path, **options)``.

Usage: ``ds = load_dataset("amazon-sports", "../shared/data")``.

``path`` is the dataset's folder or file, or a data root holding the folder
of the layout of ``../shared/data`` (``amazon/``, ``amazon-book/``, ...);
None means ``$OPTAX_AR_DATA``. Options go to the dataset's loader (see the
table below and each loader's docstring); ``cache_dir`` and ``use_cache``
control the on-disk cache (``cache.py``): a second load with the same files
and options opens the memory-mapped arrays in milliseconds.

=================  =====================================================
name               source, loader
=================  =====================================================
amazon-sports      ``amazon/Sports_and_Outdoors.txt`` (+ attributes JSON),
amazon-beauty      ``sequential.load_sequential``
amazon-toys
sequential         any ``user item_1 ...`` file (``attributes=`` JSON)
amazon-book        ``amazon-book/test.txt``, ``interactions.load_interactions``
interactions       any LightGCN-format ``user item item ...`` file
movielens-100k     ``movielens-100k/ml-100k.*``, ``movielens.load_atomic``
frappe             ``frappe/frappe.{train,validation,test}.libfm``
ipinyou-sample     ``ipinyou-sample/{train,test}.fm.txt``
avazu              Kaggle Avazu ``train`` CSV (``raw_formats``)
criteo             Kaggle Criteo ``train.txt`` (``raw_formats``)
ipinyou            make-ipinyou-data ``train.log.txt``, ``test.log.txt``
tabular            any CSV/TSV/Parquet, ``tabular.build_tabular``; command
                   line: ``--data PATH --label y --categorical a,b,c``
synthetic          ``synthetic.make_synthetic_dataset`` (no files)
=================  =====================================================

Frappe: the NFM/AFM split's training file is often absent (as in
``../shared/data``). Then the validation file (57,722 rows) is split, seeded,
into training (80%, 46,178 rows) and validation (20%, 11,544 rows), and the
test file (28,860 rows) stays the test split. With ``frappe.train.libfm``
present, the three files are used as they are.

iPinYou sample: ``train.fm.txt`` gives training and ``valid_fraction`` (10%,
2,677 of 26,773 rows, seeded) validation rows; ``test.fm.txt`` is the test
split (it differs in distribution from the training file).
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Callable

from examples.ctr.data import cache
from examples.ctr.data import interactions
from examples.ctr.data import libfm
from examples.ctr.data import movielens
from examples.ctr.data import raw_formats
from examples.ctr.data import schema
from examples.ctr.data import sequential
from examples.ctr.data import tabular

AMAZON_CATEGORIES = {
  "amazon-sports": "Sports_and_Outdoors",
  "amazon-beauty": "Beauty",
  "amazon-toys": "Toys_and_Games",
}


def _root(path, subdir: str | None) -> pathlib.Path:
  if path is None:
    env = os.environ.get("OPTAX_AR_DATA")
    if not env:
      raise ValueError("no path given and $OPTAX_AR_DATA is not set")
    path = env
  p = pathlib.Path(path).expanduser()
  if subdir and (p / subdir).is_dir():
    p = p / subdir
  if not p.exists():
    raise FileNotFoundError(f"{p} does not exist")
  return p


def _file_in(path, subdir: str, names: tuple[str, ...]) -> pathlib.Path:
  p = _root(path, subdir)
  if p.is_file():
    return p
  for n in names:
    if (p / n).is_file():
      return p / n
  raise FileNotFoundError(f"none of {names} in {p}")


def _amazon(name):
  def plan(path, opts):
    d = _root(path, "amazon")
    cat = AMAZON_CATEGORIES[name]
    seq, attr = d / f"{cat}.txt", d / f"{cat}_item2attributes.json"
    if not seq.is_file():
      raise FileNotFoundError(f"{seq} not found")
    attr = attr if attr.is_file() else None
    srcs = [seq] + ([attr] if attr else [])
    return srcs, lambda w: sequential.load_sequential(
      seq, attr, name=name, **opts
    )

  return plan


def _sequential(path, opts):
  seq = _root(path, None)
  attr = opts.pop("attributes", None)
  name = opts.pop("name", seq.stem)
  srcs = [seq] + ([attr] if attr else [])
  return srcs, lambda w: sequential.load_sequential(
    seq, attr, name=name, **opts
  )


def _amazon_book(path, opts):
  f = _file_in(path, "amazon-book", ("test.txt", "train.txt"))
  return [f], lambda w: interactions.load_interactions(
    f, name="amazon-book", **opts
  )


def _interactions(path, opts):
  f = _root(path, None)
  name = opts.pop("name", f.stem)
  return [f], lambda w: interactions.load_interactions(f, name=name, **opts)


def _movielens(path, opts):
  d = _root(path, "movielens-100k")
  stem = opts.pop("dataset", "ml-100k")
  srcs = [
    p
    for p in (d / f"{stem}.inter", d / f"{stem}.user", d / f"{stem}.item")
    if p.exists()
  ]
  return srcs, lambda w: movielens.load_atomic(
    d, stem, name="movielens-100k", **opts
  )


def _frappe(path, opts):
  d = _root(path, "frappe")
  tr, va, te = (
    d / f"frappe.{s}.libfm" for s in ("train", "validation", "test")
  )
  kw = dict(name="frappe", field_names=libfm.FRAPPE_FIELDS)
  if tr.is_file():
    files = {"train": tr, "valid": va, "test": te}
  else:
    files = {"train": va, "test": te}
    kw.update(
      carve_valid_from="train", valid_fraction=opts.pop("valid_fraction", 0.2)
    )
  kw.update(opts)
  return list(files.values()), lambda w: libfm.load_libfm(files, **kw)


def _ipinyou_sample(path, opts):
  d = _root(path, "ipinyou-sample")
  files = {"train": d / "train.fm.txt", "test": d / "test.fm.txt"}
  kw = dict(name="ipinyou-sample", carve_valid_from="train", valid_fraction=0.1)
  kw.update(opts)
  return list(files.values()), lambda w: libfm.load_libfm(files, **kw)


def _avazu(path, opts):
  f = _file_in(path, "avazu", ("train", "train.csv"))
  return [f], lambda w: raw_formats.build_avazu(w, f, **opts)


def _criteo(path, opts):
  f = _file_in(path, "criteo", ("train.txt",))
  return [f], lambda w: raw_formats.build_criteo(w, f, **opts)


def _ipinyou(path, opts):
  train, test = raw_formats.find_ipinyou_files(_root(path, "ipinyou"))
  return [train, test], lambda w: raw_formats.build_ipinyou(
    w, train, test, **opts
  )


def _tabular(path, opts):
  for k in ("train", "valid", "test"):
    if opts.get(k) is not None:
      opts[k] = pathlib.Path(opts[k])
  if isinstance(opts.get("categorical"), str):
    opts["categorical"] = opts["categorical"].split(",")
  data = pathlib.Path(path) if path is not None else None
  srcs = [
    p
    for p in (data, opts.get("train"), opts.get("valid"), opts.get("test"))
    if p is not None
  ]
  if not srcs:
    raise ValueError("tabular needs a path (or train=/test= files)")
  return srcs, lambda w: tabular.build_tabular(w, data=data, **opts)


_PLANS: dict[str, Callable] = {
  **{n: _amazon(n) for n in AMAZON_CATEGORIES},
  "sequential": _sequential,
  "amazon-book": _amazon_book,
  "interactions": _interactions,
  "movielens-100k": _movielens,
  "frappe": _frappe,
  "ipinyou-sample": _ipinyou_sample,
  "avazu": _avazu,
  "criteo": _criteo,
  "ipinyou": _ipinyou,
  "tabular": _tabular,
}

DATASETS = (*_PLANS, "synthetic")


def load_dataset(
  name: str,
  path: str | os.PathLike | None = None,
  *,
  cache_dir: str | os.PathLike | None = None,
  use_cache: bool = True,
  **options,
) -> schema.CTRDataset:
  """Loads (building and caching on first use) a dataset by name.

  Args:
    name: one of ``DATASETS``.
    path: the data (see the module docstring); unused for "synthetic".
    cache_dir: the cache folder (default ``$OPTAX_AR_CACHE`` or
      ``~/.cache/optax_ar``).
    use_cache: False builds in memory without touching the cache.
    **options: the loader's options (e.g. ``seed``, ``min_count``,
      ``negatives``).

  Returns:
    The ``CTRDataset``.

  Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "seq.txt"
    >>> _ = p.write_text("u1 a b c d\\nu2 b c e f g\\n")
    >>> ds = load_dataset("sequential", p, use_cache=False)
    >>> [f.name for f in ds.fields], len(ds.test)
    (['user', 'item', 'history'], 4)
  """
  if name == "synthetic":
    synthetic = importlib.import_module("examples.ctr.data.synthetic")
    return synthetic.make_synthetic_dataset(**options)
  if name not in _PLANS:
    raise ValueError(f"unknown dataset {name!r}; known: {DATASETS}")
  opts = dict(options)
  sources, build = _PLANS[name](path, dict(opts))
  return cache.load_or_build(
    name, sources, opts, build, cache_dir=cache_dir, use_cache=use_cache
  )
