"""Tests for examples/ctr/data/movielens.py (RecBole atomic format)."""

import numpy as np
import pandas as pd
import pytest

from examples.ctr.data import errors
from examples.ctr.data import registry
from examples.ctr.data.movielens import load_atomic


def _write(d, inter_rows, extra_line=None):
  lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
  lines += ["\t".join(map(str, r)) for r in inter_rows]
  if extra_line is not None:
    lines.append(extra_line)
  (d / "toy.inter").write_text("\n".join(lines) + "\n")
  (d / "toy.user").write_text("user_id:token\tgender:token\nu1\tF\nu2\tM\n")
  (d / "toy.item").write_text(
    "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
    "m1\tToy Story\tAnimation Comedy\nm2\tHeat\tAction\n"
  )


def test_label_time_split_and_side_fields(tmp_path):
  rows = [
    ("u1", "m1", 5, 30),
    ("u2", "m2", 3, 10),
    ("u1", "m2", 4, 20),
    ("u2", "m1", 1, 50),
    ("u3", "m1", 4, 40),
  ]
  _write(tmp_path, rows)
  ds = load_atomic(tmp_path, "toy", name="toy", ratios=(0.6, 0.2, 0.2))
  assert [f.name for f in ds.fields] == [
    "user_id",
    "item_id",
    "gender",
    "class",
  ]
  assert ds.fields[3].bag_size == 2
  # Time order 10, 20, 30 | 40 | 50; label rating >= 4.
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (3, 1, 1)
  assert ds.train.labels.tolist() == [0, 1, 1]
  assert ds.valid.labels.tolist() == [1] and ds.test.labels.tolist() == [0]
  # u3 is not in the training split and not in toy.user: OOV user, and its
  # missing gender is the empty value, unseen in training: OOV too.
  assert ds.valid.features["user_id"].tolist() == [1]
  assert ds.valid.features["gender"].tolist() == [1]
  assert ds.metadata["interactions_without_user_row"] == 1
  # Genres bag: m2 = Action (one tag, padded).
  assert ds.train.features["class"][0].tolist()[1] == 0


@pytest.mark.parametrize(
  "extra, match",
  [
    # A line with the wrong number of fields.
    ("u1\tm1\t5", r"toy.inter:3: expected 4 tab-separated columns, got 3"),
    ("u1\tm1\t5\t10\tx", r"toy.inter:3: expected 4 tab-separated columns"),
    ("", r"toy.inter:3: expected 4 tab-separated columns, got 1"),
    # A label (rating) or time that is not a finite number.
    ("u1\tm1\tfive\t10", r"toy.inter:3: rating 'five' is not a finite number"),
    ("u1\tm1\tnan\t10", r"toy.inter:3: rating 'nan' is not a finite number"),
    ("u1\tm1\t\t10", r"toy.inter:3: rating '' is not a finite number"),
    ("u1\tm1\t4\tinf", r"toy.inter:3: timestamp 'inf' is not a finite"),
  ],
)
def test_bad_lines(tmp_path, extra, match):
  _write(tmp_path, [("u1", "m1", 5, 30)], extra_line=extra)
  with pytest.raises(errors.DataFileError, match=match):
    load_atomic(tmp_path, "toy")


@pytest.mark.parametrize(
  "name, text, match",
  [
    ("inter", "", r"toy.inter:1: file is empty"),
    ("inter", "\n", r"toy.inter:1: file is empty"),
    ("inter", "user_id\titem_id\n1\t2\n", r"toy.inter:1: header column "),
    ("inter", "user_id:tok\n1\n", r"toy.inter:1: header column 'user_id:tok'"),
    (
      "inter",
      "user_id:token\titem_id:token\n1\t2\n",
      r"toy.inter:1: missing column 'rating'",
    ),
    (
      "inter",
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n",
      r"toy.inter:2: no data rows",
    ),
    ("user", "user_id:token\tgender:token\nu1\tF\nu1\tM\n", r"toy.user:3: dup"),
    (
      "item",
      b"item_id:token\tclass:token_seq\nm1\t\xe9t\xe9\n",
      r"toy.item:2: not",
    ),
  ],
)
def test_bad_files(tmp_path, name, text, match):
  _write(tmp_path, [("u1", "m1", 5, 30), ("u2", "m2", 1, 40)])
  p = tmp_path / f"toy.{name}"
  p.write_bytes(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(errors.DataFileError, match=match):
    load_atomic(tmp_path, "toy")


def test_movielens_100k_matches_readme(shared_data_dir, tmp_path):
  ds = registry.load_dataset(
    "movielens-100k", shared_data_dir, cache_dir=tmp_path
  )
  assert (len(ds.train), len(ds.valid), len(ds.test)) == (
    80_000,
    10_000,
    10_000,
  )
  inter = pd.read_csv(
    shared_data_dir / "movielens-100k" / "ml-100k.inter", sep="\t"
  )
  assert inter["user_id:token"].nunique() == 943
  assert inter["item_id:token"].nunique() == 1_682
  labels = np.concatenate([ds.train.labels, ds.valid.labels, ds.test.labels])
  assert labels.sum() == (inter["rating:float"] >= 4).sum()
  t = np.sort(inter["timestamp:float"].to_numpy(), kind="stable")
  assert ds.train.labels.size == 80_000 and t[79_999] <= t[80_000]
  assert [f.name for f in ds.fields] == [
    "user_id",
    "item_id",
    "age",
    "gender",
    "occupation",
    "zip_code",
    "release_year",
    "class",
  ]
  assert ds.fields[0].vocab_size <= 943 + 2
