"""An on-disk, memory-mapped cache of preprocessed datasets.

Usage: ``ds = load_or_build("amazon", [path], options, build_fn)``.

An entry is a folder ``<cache_dir>/<kind>-<key>/`` holding one ``.npy`` file
per array (``<split>.<field index>.npy``, ``<split>.labels.npy``,
``freq.<field index>.npy``) and ``meta.json`` (name, fields, split sizes,
metadata and a manifest: the size and SHA-256 of every ``.npy`` file).
Arrays are opened with ``np.load(mmap_mode="r")``, so a cached dataset of
any size opens without reading it and pages in on demand.

The key is a SHA-256 of the loader kind, ``CACHE_VERSION``, every source
file's absolute path, size and modification time, and the loader options:
touching a source file or changing an option builds a new entry.

Integrity. An entry is built in a temporary folder; its arrays are flushed
to disk, then ``meta.json`` is written (through a temporary file and a
rename) as the completeness marker, and the folder is renamed into place.
So a build that is interrupted leaves no entry, and an entry without a
readable ``meta.json`` is incomplete. Every open checks the manifest: each
file present with its recorded size, and, for entries of at most
``VERIFY_MAX_BYTES`` in total, its SHA-256 (about 0.6 s per GB read; larger
entries are checked by size and array shape only, so that they still open
in milliseconds). An entry that fails a check (truncated, corrupted,
incomplete) is never loaded: ``load_or_build`` logs a warning naming its
path and the problem, deletes it and builds it again.

The cache folder is ``cache_dir`` if given, else ``$OPTAX_AR_CACHE``, else
``~/.cache/optax_ar``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from examples.ctr.data import schema

CACHE_VERSION = 2
# Entries up to this many bytes have every file's SHA-256 checked on open.
VERIFY_MAX_BYTES = 1 << 30
_SPLITS = ("train", "valid", "test")
_META = "meta.json"

_log = logging.getLogger(__name__)


class CacheEntryError(ValueError):
  """A cache entry that is incomplete, truncated or corrupted."""


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
  """Writes ``ds`` into folder ``entry`` (arrays already there are kept).

  The arrays are written and flushed to disk first; ``meta.json``, with the
  manifest of their sizes and SHA-256 digests, is written last, through a
  temporary file and a rename, and marks the entry complete.
  """
  entry = pathlib.Path(entry)
  entry.mkdir(parents=True, exist_ok=True)

  def put(arr: np.ndarray, path: pathlib.Path):
    if (
      isinstance(arr, np.memmap)
      and arr.filename
      and (pathlib.Path(arr.filename).resolve() == path.resolve())
    ):
      arr.flush()
    else:
      np.save(path, np.ascontiguousarray(arr), allow_pickle=False)
    _fsync(path)
    files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}

  files: dict[str, dict[str, Any]] = {}
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
    "version": CACHE_VERSION,
    "name": ds.name,
    "fields": [[f.name, f.vocab_size, f.bag_size] for f in ds.fields],
    "splits": sizes,
    "metadata": ds.metadata,
    "files": files,
  }
  tmp = entry / f".{_META}.tmp"
  tmp.write_text(json.dumps(meta, indent=1, default=str))
  _fsync(tmp)
  tmp.replace(entry / _META)


def check_entry(
  entry: pathlib.Path, *, checksum: bool | None = None
) -> dict[str, Any]:
  """Returns the entry's metadata if it is complete and intact.

  Args:
    entry: the entry folder.
    checksum: whether to compare every file's SHA-256 with the manifest;
      None: when the entry holds at most ``VERIFY_MAX_BYTES``.

  Returns:
    The parsed ``meta.json``.

  Raises:
    CacheEntryError: naming the entry and the problem: no or unreadable
      ``meta.json`` (incomplete), another cache version, a file missing, of
      another size (truncated) or with another SHA-256 (corrupted).

  Example:
    >>> import tempfile
    >>> entry = pathlib.Path(tempfile.mkdtemp()) / "toy"
    >>> entry.mkdir()
    >>> check_entry(entry)
    Traceback (most recent call last):
    ...
    examples.ctr.data.cache.CacheEntryError: .../toy: incomplete (no meta.json)
  """
  entry = pathlib.Path(entry)

  def fail(problem):
    raise CacheEntryError(f"{entry}: {problem}")

  if not (entry / _META).is_file():
    fail(f"incomplete (no {_META})")
  try:
    meta = json.loads((entry / _META).read_text())
    version, files = meta["version"], meta["files"]
    total = sum(int(v["bytes"]) for v in files.values())
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    fail(f"unreadable {_META} ({type(e).__name__}: {e})")
  if version != CACHE_VERSION:
    fail(f"cache version {version}, expected {CACHE_VERSION}")
  if checksum is None:
    checksum = total <= VERIFY_MAX_BYTES
  for name, want in sorted(files.items()):
    p = entry / name
    if not p.is_file():
      fail(f"{name} is missing")
    size = p.stat().st_size
    if size != want["bytes"]:
      fail(f"{name} has {size} bytes, expected {want['bytes']} (truncated)")
    if checksum and _sha256(p) != want["sha256"]:
      fail(f"{name} does not match its SHA-256 (corrupted)")
  return meta


def open_dataset(
  entry: pathlib.Path, *, checksum: bool | None = None
) -> schema.CTRDataset:
  """Opens a saved dataset with memory-mapped arrays.

  Args:
    entry: the entry folder.
    checksum: see ``check_entry``.

  Returns:
    The dataset.

  Raises:
    CacheEntryError: the entry fails ``check_entry``, an array cannot be
      opened or has a shape other than its split's.
  """
  entry = pathlib.Path(entry)
  meta = check_entry(entry, checksum=checksum)
  try:
    fields = tuple(schema.FieldSpec(n, v, b) for n, v, b in meta["fields"])

    def load(split, i):
      path = array_path(entry, split, i)
      if path.name not in meta["files"]:
        raise CacheEntryError(f"{entry}: {path.name} is not in the manifest")
      return np.load(path, mmap_mode="r")

    def split(name):
      if name not in meta["splits"]:
        return None
      n = meta["splits"][name]
      feats = {f.name: load(name, i) for i, f in enumerate(fields)}
      labels = load(name, "labels")
      for f in fields:
        want = (n,) if f.bag_size == 1 else (n, f.bag_size)
        if feats[f.name].shape != want:
          raise CacheEntryError(
            f"{entry}: {name} field {f.name!r} has shape "
            f"{feats[f.name].shape}, expected {want}"
          )
      if labels.shape != (n,):
        raise CacheEntryError(
          f"{entry}: {name} labels have shape {labels.shape}, expected {(n,)}"
        )
      return schema.Split(features=feats, labels=labels)

    return schema.CTRDataset(
      name=meta["name"],
      fields=fields,
      train=split("train"),
      valid=split("valid"),
      test=split("test"),
      frequencies={f.name: load("freq", i) for i, f in enumerate(fields)},
      metadata=meta["metadata"],
    )
  except CacheEntryError:
    raise
  except (ValueError, KeyError, TypeError, OSError) as e:
    raise CacheEntryError(
      f"{entry}: unreadable ({type(e).__name__}: {e})"
    ) from e


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
  if entry.exists():
    try:
      return open_dataset(entry)
    except CacheEntryError as e:
      _log.warning("cache entry not loaded, rebuilding it: %s", e)
      _discard(entry)
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
      return open_dataset(entry)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return open_dataset(entry, checksum=False)  # just written and flushed


def _sha256(path: pathlib.Path) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync(path: pathlib.Path) -> None:
  with open(path, "rb+") as f:
    os.fsync(f.fileno())


def _discard(entry: pathlib.Path) -> None:
  """Removes an entry; renamed aside first, so no reader sees half of it."""
  trash = entry.with_name(f".{entry.name}.discarded-{uuid.uuid4().hex[:8]}")
  try:
    entry.rename(trash)
  except OSError:  # another process removed or replaced it first
    return
  shutil.rmtree(trash, ignore_errors=True)


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
