"""Tests for examples/ctr/data/errors.py."""

import pickle

import pytest

from examples.ctr.data import errors


@pytest.mark.parametrize(
  "args, text",
  [
    (("d.csv", 3, "label '2' is not 0/1"), "d.csv:3: label '2' is not 0/1"),
    (("d.csv", None, "file is empty"), "d.csv: file is empty"),
    (("d.pq", 7, "label 'x' is not 0/1", "row "), "d.pq:row 7: label 'x' is"),
  ],
)
def test_message_names_file_and_line(args, text):
  e = errors.DataFileError(*args)
  assert isinstance(e, ValueError)
  assert str(e).startswith(text)
  assert (e.path, e.line, e.problem) == args[:3]
  again = pickle.loads(pickle.dumps(e))
  assert type(again) is errors.DataFileError and str(again) == str(e)


def test_read_lines_strips_line_endings_only(tmp_path):
  p = tmp_path / "f.txt"
  p.write_bytes(b"a\tb \r\n\n  c\nlast")
  assert list(errors.read_lines(p)) == [
    (1, "a\tb "),
    (2, ""),
    (3, "  c"),
    (4, "last"),
  ]


def test_read_lines_names_the_line_that_is_not_utf8(tmp_path):
  p = tmp_path / "f.txt"
  p.write_bytes("é\n".encode() * 3 + b"x\xe9y\n")
  with pytest.raises(errors.DataFileError, match=r"f.txt:4: not UTF-8 text"):
    list(errors.read_lines(p))
