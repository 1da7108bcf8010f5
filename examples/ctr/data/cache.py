"""An on-disk, memory-mapped cache of preprocessed datasets.

Usage: ``ds = load_or_build("amazon", [path], options, build_fn)``.

An entry is a folder ``<cache_dir>/<kind>-<key>/`` holding ``meta.json``
(name, fields, split sizes, metadata) and one ``.npy`` file per array
(``<split>.<field index>.npy``, ``<split>.labels.npy``, ``freq.<field
index>.npy``). Arrays are opened with ``np.load(mmap_mode="r")``, so a cached
dataset of any size opens in milliseconds and pages in on demand.

The key is a SHA-256 of the loader kind, ``CACHE_VERSION``, every source
file's absolute path, size and modification time, and the loader options:
touching a source file or changing an option builds a new entry. Entries are
written to a temporary folder and renamed into place, so an interrupted
build never leaves a half-written entry.

The cache folder is ``cache_dir`` if given, else ``$OPTAX_AR_CACHE``, else
``~/.cache/optax_ar``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr.data import schema

CACHE_VERSION = 1
_SPLITS = ("train", "valid", "test")


def default_cache_dir() -> pathlib.Path:
  """``$OPTAX_AR_CACHE`` or ``~/.cache/optax_ar``."""
  env = os.environ.get("OPTAX_AR_CACHE")
  if env:
    return pathlib.Path(env)
  return pathlib.Path.home() / ".cache" / "optax_ar"


def cache_key(
  kind: str, sources: Sequence[str | os.PathLike], options: Mapping[str, Any]
) -> str:
  """A hex key of the sources (path, size, mtime) and options.

  Example:
    >>> len(cache_key("toy", [], {"seed": 0}))
    24
  """
  files = []
  for s in sources:
    p = pathlib.Path(s).resolve()
    st = p.stat()
    files.append([str(p), st.st_size, st.st_mtime_ns])
  blob = json.dumps(
    {
      "kind": kind,
      "version": CACHE_VERSION,
      "files": files,
      "options": dict(options),
    },
    sort_keys=True,
    default=str,
  )
  return hashlib.sha256(blob.encode()).hexdigest()[:24]


def array_path(
  entry: pathlib.Path, split: str, index: int | str
) -> pathlib.Path:
  """Where array ``index`` (a field position or "labels") of a split lives."""
  return pathlib.Path(entry) / f"{split}.{index}.npy"


def save_dataset(ds: schema.CTRDataset, entry: pathlib.Path) -> None:
  """Writes ``ds`` into folder ``entry`` (arrays already there are kept)."""
  entry = pathlib.Path(entry)
  entry.mkdir(parents=True, exist_ok=True)

  def put(arr: np.ndarray, path: pathlib.Path):
    if (
      isinstance(arr, np.memmap)
      and arr.filename
      and (pathlib.Path(arr.filename).resolve() == path.resolve())
    ):
      arr.flush()
      return
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)

  sizes = {}
  for split in _SPLITS:
    s = getattr(ds, split)
    if s is None:
      continue
    sizes[split] = len(s)
    for i, f in enumerate(ds.fields):
      put(s.features[f.name], array_path(entry, split, i))
    put(s.labels, array_path(entry, split, "labels"))
  for i, f in enumerate(ds.fields):
    put(ds.frequencies[f.name], array_path(entry, "freq", i))
  meta = {
    "name": ds.name,
    "fields": [[f.name, f.vocab_size, f.bag_size] for f in ds.fields],
    "splits": sizes,
    "metadata": ds.metadata,
  }
  (entry / "meta.json").write_text(json.dumps(meta, indent=1, default=str))


def open_dataset(entry: pathlib.Path) -> schema.CTRDataset:
  """Opens a saved dataset with memory-mapped arrays."""
  entry = pathlib.Path(entry)
  meta = json.loads((entry / "meta.json").read_text())
  fields = tuple(schema.FieldSpec(n, v, b) for n, v, b in meta["fields"])

  def load(split, i):
    return np.load(array_path(entry, split, i), mmap_mode="r")

  def split(name):
    if name not in meta["splits"]:
      return None
    feats = {f.name: load(name, i) for i, f in enumerate(fields)}
    return schema.Split(features=feats, labels=load(name, "labels"))

  return schema.CTRDataset(
    name=meta["name"],
    fields=fields,
    train=split("train"),
    valid=split("valid"),
    test=split("test"),
    frequencies={f.name: load("freq", i) for i, f in enumerate(fields)},
    metadata=meta["metadata"],
  )


def load_or_build(
  kind: str,
  sources: Sequence[str | os.PathLike],
  options: Mapping[str, Any],
  build: Callable[[pathlib.Path], schema.CTRDataset],
  *,
  cache_dir: str | os.PathLike | None = None,
  use_cache: bool = True,
) -> schema.CTRDataset:
  """Returns the cached dataset, building and caching it on a miss.

  Args:
    kind: the loader's name (part of the key and of the folder name).
    sources: the files the dataset is built from.
    options: the loader options that change the result.
    build: ``build(workdir) -> CTRDataset``; ``workdir`` is the entry's
      staging folder, where a streaming build may write its memory-mapped
      arrays (at ``array_path``) and scratch files.
    cache_dir: see the module docstring.
    use_cache: False builds in memory, reading and writing no cache.

  Returns:
    The dataset; memory-mapped when it came from (or went into) the cache.
  """
  if not use_cache:
    with tempfile.TemporaryDirectory() as tmp:
      ds = build(pathlib.Path(tmp))
      return _in_memory(ds)
  root = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
  entry = root / f"{kind}-{cache_key(kind, sources, options)}"
  if (entry / "meta.json").exists():
    return open_dataset(entry)
  root.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=root))
  try:
    ds = build(staging)
    save_dataset(ds, staging)
    for p in staging.iterdir():  # scratch files of a streaming build
      if p.is_file() and p.suffix not in (".npy", ".json"):
        p.unlink()
      elif p.is_dir():
        shutil.rmtree(p)
    del ds
    try:
      staging.rename(entry)
    except OSError:  # another process finished the same entry first
      shutil.rmtree(staging, ignore_errors=True)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return open_dataset(entry)


def _in_memory(ds: schema.CTRDataset) -> schema.CTRDataset:
  """Copies memory-mapped arrays into RAM (for builds without a cache)."""

  def copy(s):
    if s is None:
      return None
    return schema.Split(
      features={k: np.array(v) for k, v in s.features.items()},
      labels=np.array(s.labels),
    )

  return schema.CTRDataset(
    name=ds.name,
    fields=ds.fields,
    train=copy(ds.train),
    valid=copy(ds.valid),
    test=copy(ds.test),
    frequencies={k: np.array(v) for k, v in ds.frequencies.items()},
    metadata=ds.metadata,
  )
