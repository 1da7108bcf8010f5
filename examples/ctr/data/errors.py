"""The error every loader raises for a bad data file, naming file and line.

Usage: ``raise DataFileError(path, 7, "label '2' is not 0/1")``.

Messages read ``<path>:<line>: <problem>`` (the format of compilers and
linters, which editors and terminals turn into links); a problem of a whole
file has no line (``<path>: <problem>``), and Parquet files count rows
instead (``<path>:row <n>: <problem>``). ``read_lines`` reads a text file
line by line and reports bytes that are not UTF-8 the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator


class DataFileError(ValueError):
  """A data file that cannot be read as its format says.

  ``str(error)`` is ``f"{path}:{unit}{line}: {problem}"``, or
  ``f"{path}: {problem}"`` when ``line`` is None.

  Args:
    path: the file.
    line: 1-based line (or row) number of the problem; None for the file.
    problem: what is wrong, e.g. ``"label '2' is not 0/1"``.
    unit: written before the number: ``""`` for lines, ``"row "`` for rows.

  Attributes:
    path: the file, as given.
    line: the line (or row) number, or None.
    problem: the problem, as given.
    unit: as given.

  Example:
    >>> e = DataFileError("clicks.csv", 3, "label '2' is not 0/1")
    >>> str(e), isinstance(e, ValueError)
    ("clicks.csv:3: label '2' is not 0/1", True)
    >>> str(DataFileError("t.parquet", 9, "label 'x' is not 0/1", "row "))
    "t.parquet:row 9: label 'x' is not 0/1"
  """

  def __init__(
    self,
    path: str | os.PathLike,
    line: int | None,
    problem: str,
    unit: str = "",
  ):
    self.path = path
    self.line = None if line is None else int(line)
    self.problem = problem
    self.unit = unit
    where = "" if line is None else f":{unit}{self.line}"
    super().__init__(f"{path}{where}: {problem}")

  def __reduce__(self):  # pickles (e.g. across processes) with its fields
    return type(self), (self.path, self.line, self.problem, self.unit)


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
  """Yields ``(line number, text)`` of a UTF-8 file, without line endings.

  Lines end at ``\\n``; a ``\\r`` before it is dropped too.

  Raises:
    DataFileError: at the first line that is not valid UTF-8.

  Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.txt"
    >>> _ = p.write_bytes(b"a b\\r\\nc\\n")
    >>> list(read_lines(p))
    [(1, 'a b'), (2, 'c')]
    >>> _ = p.write_bytes(b"a b\\r\\nc\\n\\xff\\n")
    >>> list(read_lines(p))
    Traceback (most recent call last):
    ...
    examples.ctr.data.errors.DataFileError: .../f.txt:3: not UTF-8 text ...
  """
  with open(path, "rb") as f:
    for lineno, raw in enumerate(f, start=1):
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataFileError(
          path, lineno, f"not UTF-8 text (byte {raw[e.start]:#04x})"
        ) from e
      if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
      yield lineno, text
