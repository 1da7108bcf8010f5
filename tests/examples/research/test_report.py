"""The generated tables regenerate byte-identical from the committed results."""

import os

import pytest

from examples.ctr.research import report

REPO = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
)


@pytest.fixture(scope="module")
def ctx():
  return report.Context(os.path.join(REPO, report.ROOT), "results/")


def test_committed_reports_match_the_results(monkeypatch):
  monkeypatch.chdir(REPO)
  assert report.main(["--check"]) == 0


def test_render_rewrites_only_the_marked_tables(monkeypatch):
  monkeypatch.setitem(report.TABLES, "t", lambda ctx: "| new |")
  text = "a\n<!-- table:t -->\n| old |\n<!-- /table -->\nb | old |\n"
  assert report.render(text, None) == (
    "a\n<!-- table:t -->\n| new |\n<!-- /table -->\nb | old |\n"
  )
  with pytest.raises(KeyError):
    report.render("<!-- table:nope -->\n<!-- /table -->", None)


def test_every_table_renders(ctx):
  for name, table in report.TABLES.items():
    lines = table(ctx).splitlines()
    assert lines[0].startswith("| ") and set(lines[1]) == {"|", "-"}, name


def test_alpha_rows_compare_seed0_runs_of_one_experiment(ctx):
  rows = report.alpha_rows(ctx)
  assert {r["name"] for r in rows} >= {"Sports", "Beauty", "Toys"}
  for r in rows:
    lo, hi, n = r["grid"]
    assert lo <= r["chosen"] <= hi and lo <= 1.0 <= hi and n >= 3
    assert 0.4 < r["at_chosen"] < 1 and 0.4 < r["at_default"] < 1
    if r["chosen"] == 1.0:
      assert r["at_default"] == r["at_chosen"]
