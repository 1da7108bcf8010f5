"""Loaders for the raw public CTR files a user downloads.

Usage: ``ds = build_criteo(workdir, "train.txt")`` (likewise ``build_avazu``,
``build_ipinyou``); through the registry: ``load_dataset("criteo", path)``.

All three stream their input in chunks through
``streaming.StreamingBuilder`` (memory bounded by the vocabulary, not the
file), validate every line and drop nothing: an empty file, a blank line, a
wrong field count, a non-0/1 label, a Criteo integer feature that is not an
integer, an Avazu hour that is not ``YYMMDDHH`` or an iPinYou slot price that
is not a number raises ``errors.DataFileError`` naming file and line.

* **Avazu** (Kaggle "Click-Through Rate Prediction", ``train`` CSV with
  header ``id,click,hour,C1,banner_pos,site_id,...,C21``): every column but
  ``id`` and ``click`` is a field; ``hour`` (``YYMMDDHH``) becomes
  ``hour_of_day`` and ``weekday``. The Kaggle test file has no labels, so the
  training file is split per row by a seeded hash into ``ratios`` (80/10/10).
* **Criteo** (Kaggle display advertising ``train.txt``: no header, tab
  separated ``label, I1..I13, C1..C26``): the 13 integer features are
  log-binned as in the competition winners' and most CTR benchmarks' code:
  ``v -> floor(ln(v) ** 2)`` for ``v > 2``, else ``v`` itself; an empty cell
  is its own value. The 26 categorical ones are used as they are (empty is
  its own value). Split as Avazu.
* **iPinYou** (make-ipinyou-data ``<advertiser>/train.log.txt`` and
  ``test.log.txt``: tab separated with a header, ``click weekday hour bidid
  ... usertag``): the fields of make-ipinyou-data's ``mkyzx.py``: weekday,
  hour, IP, region, city, adexchange, domain, slotid, slotwidth, slotheight,
  slotvisibility, slotformat, creative, advertiser; ``useragent`` reduced to
  ``<os>_<browser>``; ``slotprice`` binned to 0 / 1-10 / 11-50 / 51-100 /
  101+; and ``usertag``, a bag of up to ``max_usertags`` comma-separated tags
  ("null" when empty). The given train/test files are the train/test
  splits; ``valid_fraction`` of the training rows (seeded hash) become the
  validation split.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from examples.ctr.data import errors
from examples.ctr.data import streaming
from examples.ctr.data import tabular

AVAZU_COLUMNS = (
  "id",
  "click",
  "hour",
  "C1",
  "banner_pos",
  "site_id",
  "site_domain",
  "site_category",
  "app_id",
  "app_domain",
  "app_category",
  "device_id",
  "device_ip",
  "device_model",
  "device_type",
  "device_conn_type",
  "C14",
  "C15",
  "C16",
  "C17",
  "C18",
  "C19",
  "C20",
  "C21",
)
CRITEO_INT = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CAT = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label", *CRITEO_INT, *CRITEO_CAT)
IPINYOU_DIRECT = (
  "weekday",
  "hour",
  "IP",
  "region",
  "city",
  "adexchange",
  "domain",
  "slotid",
  "slotwidth",
  "slotheight",
  "slotvisibility",
  "slotformat",
  "creative",
  "advertiser",
)
_OSES = ("windows", "ios", "mac", "android", "linux")
_BROWSERS = (
  "chrome",
  "sogou",
  "maxthon",
  "safari",
  "firefox",
  "theworld",
  "opera",
  "ie",
)


def _split_and_add(builder, feats, labels, row0, ratios, seed):
  which = streaming.assign_splits(
    np.arange(row0, row0 + labels.size), ratios, seed
  )
  for code, split in enumerate(streaming.SPLITS):
    m = which == code
    builder.add(split, {k: v[m] for k, v in feats.items()}, labels[m])


def build_avazu(
  workdir: str | os.PathLike,
  path: str | os.PathLike,
  *,
  ratios: Sequence[float] = (0.8, 0.1, 0.1),
  seed: int = 0,
  chunk_rows: int = 1 << 20,
  min_count: int = 1,
):
  """Streams the Avazu training CSV into a dataset (module docstring)."""
  fields = ["hour_of_day", "weekday", *AVAZU_COLUMNS[3:]]
  builder = streaming.StreamingBuilder(workdir, dict.fromkeys(fields, 1))
  row0 = 0
  for line, frame in tabular.csv_chunks(
    path, sep=",", columns=AVAZU_COLUMNS, chunk_rows=chunk_rows
  ):
    y = tabular.parse_labels(frame["click"].to_numpy(), path, line)
    hour = frame["hour"]
    bad = ~hour.str.fullmatch(r"\d{8}").to_numpy()
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise errors.DataFileError(
        path, line + i, f"hour {hour.iloc[i]!r} is not YYMMDDHH"
      )
    day = pd.to_datetime(hour.str[:6], format="%y%m%d", errors="coerce")
    if day.isna().any():
      i = int(np.flatnonzero(day.isna().to_numpy())[0])
      raise errors.DataFileError(
        path, line + i, f"hour {hour.iloc[i]!r} has no valid date"
      )
    feats = {c: frame[c].to_numpy(dtype=object) for c in AVAZU_COLUMNS[3:]}
    feats["hour_of_day"] = hour.str[6:].to_numpy(dtype=object)
    feats["weekday"] = day.dt.day_of_week.astype(str).to_numpy(dtype=object)
    _split_and_add(builder, feats, y, row0, ratios, seed)
    row0 += y.size
  meta = {"source": str(path), "ratios": list(ratios), "seed": seed}
  return builder.finish("avazu", min_count=min_count, metadata=meta)


def criteo_bin(values: np.ndarray, path, line: int, column: str) -> np.ndarray:
  """Log-bins Criteo integer strings (see module docstring); "" stays "".

  Example:
    >>> criteo_bin(np.array(["", "-1", "2", "3", "100"], object), "f", 1,
    ...            "I1").tolist()
    ['', '-1', '2', '1', '21']
  """
  s = pd.Series(values, dtype=object)
  empty = (s == "").to_numpy()
  num = pd.to_numeric(s.where(~empty, "0"), errors="coerce")
  bad = (num.isna() | (num != np.floor(num))).to_numpy()
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise errors.DataFileError(
      path, line + i, f"{column} = {s.iloc[i]!r} is not an integer"
    )
  v = num.to_numpy(np.float64)
  big = v > 2
  out = v.copy()
  out[big] = np.floor(np.log(v[big]) ** 2)
  res = out.astype(np.int64).astype(str).astype(object)
  res[empty] = ""
  return res


def build_criteo(
  workdir: str | os.PathLike,
  path: str | os.PathLike,
  *,
  ratios: Sequence[float] = (0.8, 0.1, 0.1),
  seed: int = 0,
  chunk_rows: int = 1 << 20,
  min_count: int = 1,
):
  """Streams the Criteo Kaggle ``train.txt`` into a dataset."""
  fields = [*CRITEO_INT, *CRITEO_CAT]
  builder = streaming.StreamingBuilder(workdir, dict.fromkeys(fields, 1))
  row0 = 0
  for line, frame in tabular.csv_chunks(
    path,
    sep="\t",
    columns=CRITEO_COLUMNS,
    chunk_rows=chunk_rows,
    header=False,
    names=CRITEO_COLUMNS,
  ):
    y = tabular.parse_labels(frame["label"].to_numpy(), path, line)
    feats = {
      c: criteo_bin(frame[c].to_numpy(dtype=object), path, line, c)
      for c in CRITEO_INT
    }
    feats.update({c: frame[c].to_numpy(dtype=object) for c in CRITEO_CAT})
    _split_and_add(builder, feats, y, row0, ratios, seed)
    row0 += y.size
  meta = {
    "source": str(path),
    "ratios": list(ratios),
    "seed": seed,
    "integer_binning": "floor(ln(v)^2) for v > 2",
  }
  return builder.finish("criteo", min_count=min_count, metadata=meta)


def useragent_os_browser(ua: str) -> str:
  """make-ipinyou-data's user-agent feature.

  Example:
    >>> useragent_os_browser("Mozilla/5.0 (Windows NT 6.1) Chrome/21.0")
    'windows_chrome'
  """
  ua = ua.lower()
  os_ = next((o for o in _OSES if o in ua), "other")
  br = next((b for b in _BROWSERS if b in ua), "other")
  return f"{os_}_{br}"


def slotprice_bin(price: int) -> str:
  """make-ipinyou-data's slot-price bins."""
  if price > 100:
    return "101+"
  if price > 50:
    return "51-100"
  if price > 10:
    return "11-50"
  if price > 0:
    return "1-10"
  return "0"


def _ipinyou_chunk(frame, path, line, max_usertags):
  feats = {c: frame[c].to_numpy(dtype=object) for c in IPINYOU_DIRECT}
  feats["useragent"] = np.array(
    [useragent_os_browser(u) for u in frame["useragent"]], dtype=object
  )
  price = pd.to_numeric(frame["slotprice"], errors="coerce")
  if price.isna().any():
    i = int(np.flatnonzero(price.isna().to_numpy())[0])
    raise errors.DataFileError(
      path,
      line + i,
      f"slotprice {frame['slotprice'].iloc[i]!r} is not a number",
    )
  feats["slotprice"] = np.array([slotprice_bin(p) for p in price], dtype=object)
  tags = np.full((len(frame), max_usertags), None, dtype=object)
  for i, t in enumerate(frame["usertag"]):
    t = t.strip()
    lst = t.split(",")[:max_usertags] if t else ["null"]
    tags[i, : len(lst)] = lst
  feats["usertag"] = tags
  return feats


def build_ipinyou(
  workdir: str | os.PathLike,
  train: str | os.PathLike,
  test: str | os.PathLike,
  *,
  valid_fraction: float = 0.1,
  max_usertags: int = 5,
  seed: int = 0,
  chunk_rows: int = 1 << 20,
  min_count: int = 1,
):
  """Streams make-ipinyou-data ``train.log.txt``/``test.log.txt``."""
  fields = [*IPINYOU_DIRECT, "useragent", "slotprice", "usertag"]
  bags = dict.fromkeys(fields, 1)
  bags["usertag"] = max_usertags
  builder = streaming.StreamingBuilder(workdir, bags)
  columns = ["click", *IPINYOU_DIRECT, "useragent", "slotprice", "usertag"]
  for role, path in (("train", train), ("test", test)):
    row0 = 0
    for line, frame in tabular.csv_chunks(
      path, sep="\t", columns=columns, chunk_rows=chunk_rows
    ):
      y = tabular.parse_labels(frame["click"].to_numpy(), path, line)
      feats = _ipinyou_chunk(frame, path, line, max_usertags)
      if role == "test":
        builder.add("test", feats, y)
      else:
        _split_and_add(
          builder,
          feats,
          y,
          row0,
          (1 - valid_fraction, valid_fraction, 0.0),
          seed,
        )
      row0 += y.size
  meta = {
    "sources": [str(train), str(test)],
    "valid_fraction": valid_fraction,
    "seed": seed,
    "max_usertags": max_usertags,
  }
  return builder.finish("ipinyou", min_count=min_count, metadata=meta)


def find_ipinyou_files(path: str | os.PathLike) -> tuple[pathlib.Path, ...]:
  """``(train.log.txt, test.log.txt)`` inside folder ``path``."""
  path = pathlib.Path(path)
  train, test = path / "train.log.txt", path / "test.log.txt"
  for p in (train, test):
    if not p.exists():
      raise FileNotFoundError(f"{p} not found (make-ipinyou-data layout)")
  return train, test
