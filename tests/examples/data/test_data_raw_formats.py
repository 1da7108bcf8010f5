"""Tests for examples/ctr/data/raw_formats.py on files in the raw formats."""

import math

import numpy as np
import pytest

from examples.ctr.data import errors
from examples.ctr.data import raw_formats
from examples.ctr.data import registry
from examples.ctr.data import streaming


def _avazu(path, n=400, seed=0, bad=None):
  rng = np.random.default_rng(seed)
  lines = [",".join(raw_formats.AVAZU_COLUMNS)]
  for i in range(n):
    row = [
      f"{10**18 + i}",
      str(rng.integers(2)),
      f"1410{21 + i % 10:02d}{i % 24:02d}",
      "1005",
      str(rng.integers(2)),
      f"site{rng.zipf(1.6)}",
      "dom",
      "cat",
      "app",
      "ad",
      "ac",
      f"dev{rng.integers(50)}",
      f"ip{rng.integers(300)}",
      "mod",
      "1",
      "0",
      "15706",
      "320",
      "50",
      "1722",
      "0",
      "35",
      "-1",
      "79",
    ]
    lines.append(",".join(row))
  if bad is not None:
    lines.append(bad + "\n0,0,14102100" + ",x" * 21)
  path.write_text("\n".join(lines) + "\n")


def test_avazu(tmp_path):
  p = tmp_path / "train"
  _avazu(p)
  ds = registry.load_dataset(
    "avazu", p, cache_dir=tmp_path / "c", chunk_rows=150
  )
  names = [f.name for f in ds.fields]
  assert names[:3] == ["hour_of_day", "weekday", "C1"] and len(names) == 23
  assert sum(ds.metadata["split_sizes"].values()) == 400
  which = streaming.assign_splits(np.arange(400), (0.8, 0.1, 0.1), 0)
  assert len(ds.train) == (which == 0).sum()
  # 2014-10-21 .. 2014-10-30 span all seven weekdays; 24 hours of day.
  assert ds.fields[1].vocab_size == 7 + 2
  assert ds.fields[0].vocab_size == 24 + 2


@pytest.mark.parametrize(
  "bad, match",
  [
    ("1,2,14102100" + ",x" * 21, r"train:402: label '2' is not 0/1"),
    ("1,,14102100" + ",x" * 21, r"train:402: label '' is not 0/1"),
    ("1,1,141021" + ",x" * 21, r"train:402: hour '141021' is not YYMMDDHH"),
    ("1,1,14133100" + ",x" * 21, r"train:402: hour '14133100' has no valid"),
    ("1,1,14102100,x", r"train:402: too few fields \(4, expected 24\)"),
    ("1,1,14102100" + ",x" * 22, r"train:402: too many fields \(25, expec"),
    ("", r"train:402: blank line"),
  ],
)
def test_avazu_bad_lines(tmp_path, bad, match):
  p = tmp_path / "train"
  _avazu(p, bad=bad)
  with pytest.raises(errors.DataFileError, match=match):
    raw_formats.build_avazu(tmp_path / "w", p)


def _criteo_line(rng, label=None, ints=None):
  label = rng.integers(2) if label is None else label
  ints = ints or [
    str(rng.integers(-1, 200)) if rng.random() > 0.2 else "" for _ in range(13)
  ]
  cats = [
    f"{rng.integers(1000):08x}" if rng.random() > 0.1 else "" for _ in range(26)
  ]
  return "\t".join([str(label), *ints, *cats])


def test_criteo_binning_and_fields(tmp_path):
  rng = np.random.default_rng(0)
  special = ["", "-1", "0", "1", "2", "3", "100", "1000", *["5"] * 5]
  lines = [_criteo_line(rng, 1, special)]
  lines += [_criteo_line(rng) for _ in range(299)]
  p = tmp_path / "train.txt"
  p.write_text("\n".join(lines) + "\n")
  ds = raw_formats.build_criteo(tmp_path / "w", p, ratios=(0.5, 0.0, 0.5))
  assert len(ds.fields) == 39 and ds.valid is None
  assert len(ds.train) + len(ds.test) == 300
  assert [math.floor(math.log(v) ** 2) for v in (3, 100, 1000)] == [1, 21, 47]
  got = raw_formats.criteo_bin(np.array(special, object), p, 1, "I1")
  assert got.tolist()[:8] == ["", "-1", "0", "1", "2", "1", "21", "47"]


def test_criteo_needs_labels_on_the_test_split(tmp_path):
  rng = np.random.default_rng(1)
  p = tmp_path / "train.txt"
  p.write_text("\n".join(_criteo_line(rng) for _ in range(2000)) + "\n")
  ds = registry.load_dataset("criteo", tmp_path, cache_dir=tmp_path / "c")
  assert len(ds.train) + len(ds.valid) + len(ds.test) == 2000
  assert 0.75 < len(ds.train) / 2000 < 0.85


@pytest.mark.parametrize(
  "line, match",
  [
    ("1\t" + "\t".join(["x"] + [""] * 38), r"train.txt:2: I1 = 'x' is not an"),
    ("1\t" + "\t".join(["", "2.5"] + [""] * 37), r"train.txt:2: I2 = '2.5' is"),
    ("1\t" + "\t".join([""] * 30), r"train.txt:2: too few fields \(31, exp"),
    ("1\t" + "\t".join([""] * 45), r"train.txt:2: too many fields \(46, e"),
    ("\t".join(["-1"] + [""] * 39), r"train.txt:2: label '-1' is not 0/1"),
    ("\t".join(["click"] + [""] * 39), r"train.txt:2: label 'click' is not"),
    ("", r"train.txt:2: blank line"),
  ],
)
def test_criteo_bad_lines(tmp_path, line, match):
  rng = np.random.default_rng(2)
  p = tmp_path / "train.txt"
  p.write_text(_criteo_line(rng) + "\n" + line + "\n" + _criteo_line(rng))
  with pytest.raises(errors.DataFileError, match=match):
    raw_formats.build_criteo(tmp_path / "w", p)


IPINYOU_HEADER = (
  "click weekday hour bidid timestamp logtype ipinyouid "
  "useragent IP region city adexchange domain url urlid slotid "
  "slotwidth slotheight slotvisibility slotformat slotprice "
  "creative bidprice payprice keypage advertiser usertag"
).split()


def _ipinyou(path, n, rng, tags=True):
  rows = ["\t".join(IPINYOU_HEADER)]
  uas = [
    "Mozilla/5.0 (Windows NT 6.1) Chrome/21.0",
    "Mozilla (iPhone; iOS) Safari",
    "weird agent",
  ]
  for i in range(n):
    r = dict.fromkeys(IPINYOU_HEADER, "x")
    r.update(
      click=str(int(rng.random() < 0.1)),
      weekday=str(i % 7),
      hour=f"{i % 24:02d}",
      useragent=uas[i % 3],
      IP=f"1.2.{rng.integers(40)}.*",
      slotprice=str(rng.integers(0, 300)),
      usertag=",".join(str(t) for t in rng.integers(10000, 10050, 7))
      if tags and i % 4
      else "",
    )
    rows.append("\t".join(r[c] for c in IPINYOU_HEADER))
  path.write_text("\n".join(rows) + "\n")


def test_ipinyou(tmp_path):
  rng = np.random.default_rng(0)
  _ipinyou(tmp_path / "train.log.txt", 300, rng)
  _ipinyou(tmp_path / "test.log.txt", 100, rng)
  ds = registry.load_dataset("ipinyou", tmp_path, cache_dir=tmp_path / "c")
  f = {x.name: x for x in ds.fields}
  assert len(f) == 17 and f["usertag"].bag_size == 5
  assert len(ds.test) == 100 and len(ds.train) + len(ds.valid) == 300
  assert 10 < len(ds.valid) < 60
  assert f["useragent"].vocab_size == 3 + 2  # windows_chrome, ios_safari, other
  assert f["slotprice"].vocab_size <= 5 + 2
  tags = np.asarray(ds.train.features["usertag"])
  # Rows with an empty usertag have the single tag "null".
  assert ((tags > 0).sum(1) >= 1).all()
  assert raw_formats.slotprice_bin(0) == "0"
  assert raw_formats.slotprice_bin(77) == "51-100"
  assert raw_formats.useragent_os_browser("Linux Firefox") == "linux_firefox"


def test_ipinyou_missing_column(tmp_path):
  (tmp_path / "train.log.txt").write_text("click\tweekday\n1\t2\n")
  (tmp_path / "test.log.txt").write_text("click\tweekday\n1\t2\n")
  with pytest.raises(ValueError, match=r"train.log.txt:1: missing column"):
    registry.load_dataset("ipinyou", tmp_path, use_cache=False)


@pytest.mark.parametrize(
  "change, match",
  [
    ({"click": "3"}, r"test.log.txt:6: label '3' is not 0/1"),
    ({"slotprice": "cheap"}, r"test.log.txt:6: slotprice 'cheap' is not a num"),
    ({"usertag": "a\tb"}, r"test.log.txt:6: too many fields \(28, expected"),
  ],
)
def test_ipinyou_bad_lines(tmp_path, change, match):
  rng = np.random.default_rng(0)
  _ipinyou(tmp_path / "train.log.txt", 30, rng)
  _ipinyou(tmp_path / "test.log.txt", 10, rng)
  p = tmp_path / "test.log.txt"
  lines = p.read_text().splitlines()
  row = dict(zip(IPINYOU_HEADER, lines[5].split("\t"), strict=True))
  row.update(change)
  lines[5] = "\t".join(row[c] for c in IPINYOU_HEADER)
  p.write_text("\n".join(lines) + "\n")
  with pytest.raises(errors.DataFileError, match=match):
    registry.load_dataset("ipinyou", tmp_path, use_cache=False)


@pytest.mark.parametrize("name", ["avazu", "criteo", "ipinyou"])
@pytest.mark.parametrize(
  "text, match", [("", r":1: file is empty"), ("\n", r":1: blank line")]
)
def test_empty_files(tmp_path, name, text, match):
  rng = np.random.default_rng(0)
  file = {"avazu": "train", "criteo": "train.txt", "ipinyou": "test.log.txt"}
  if name == "ipinyou":
    _ipinyou(tmp_path / "train.log.txt", 30, rng)
  (tmp_path / file[name]).write_text(text)
  with pytest.raises(errors.DataFileError, match=file[name] + match):
    registry.load_dataset(name, tmp_path, use_cache=False)
