from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from cost_monitor.report import render

MEASURES = (3, 100, 0, 0, 10, 0, Decimal("0.25"), 0)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_escaped():
    names = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain"]
    rows = [(name, "gpt-5", *MEASURES) for name in names]
    cells = csv_rows(render(["project", "model"], rows, "csv"))
    assert [row[0] for row in cells[1:]] == ["'" + name for name in names[:-1]] + ["plain"]


def test_csv_keeps_numbers_and_dates_as_they_are():
    rows = [(date(2026, 11, 28), 3, 100, 0, 0, 10, 0, Decimal("-0.25"), 0)]
    cells = csv_rows(render(["day"], rows, "csv"))
    assert cells[1][0] == "2026-11-28"
    assert cells[1][7] == "-0.250000"


def test_table_strips_control_characters_from_names():
    hostile = "acme\x1b]0;pwned\x07\x1b[2J\r\nfake-row\x9b31m\u202eevil"
    table = render(["customer"], [(hostile, *MEASURES)], "table")
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in table)
    assert "\u202e" not in table
    lines = table.splitlines()
    assert len(lines) == 3  # header, rule, one row: the name could not add a line
    assert lines[2].startswith("acme]0;pwned[2Jfake-row31mevil")


def test_csv_rows_stay_whole_whatever_a_name_holds():
    names = ["a\rb", "c\nd", 'e,"f"', "g\r\nh"]
    cells = csv_rows(render(["project"], [(name, *MEASURES) for name in names], "csv"))
    assert [row[0] for row in cells[1:]] == names
