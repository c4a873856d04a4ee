"""Spend reports from llm_consumption, grouped by day, provider, model, project or customer."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg2 import sql

from cost_monitor import schema

GROUPINGS = {
    "day": sql.SQL("(time AT TIME ZONE 'UTC')::date"),
    "provider": sql.Identifier("provider"),
    "model": sql.Identifier("model"),
    "project": sql.Identifier("project"),
    "customer": sql.Identifier("customer_id"),
}
MEASURES = tuple(measure.name for measure in schema.CONSUMPTION_MEASURES)
TABLE = "llm_consumption"


def report_query(group_by: Sequence[str]) -> sql.Composed:
    """One row per group: the keys, then every schema measure in MEASURES order."""
    unknown = [name for name in group_by if name not in GROUPINGS]
    if unknown or not group_by:
        raise ValueError(f"group by one or more of {sorted(GROUPINGS)}")
    keys = [GROUPINGS[name] for name in group_by]
    positions = sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(keys)))
    time = sql.Identifier(schema.TABLES[TABLE].time_column or "time")
    return sql.SQL(
        "SELECT {keys}, {measures} FROM {table} WHERE {time} >= %s AND {time} < %s"
        " GROUP BY {positions} ORDER BY {positions}"
    ).format(
        keys=sql.SQL(", ").join(keys),
        measures=sql.SQL(", ").join(sql.SQL(m) for m in schema.measure_select_sql()),
        table=sql.Identifier(TABLE),
        time=time,
        positions=positions,
    )


def fetch_report(
    conn: Any, group_by: Sequence[str], since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(report_query(group_by), (since, until))
        rows = cursor.fetchall()
    conn.commit()
    return rows


# A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# C0 and C1 controls (escape sequences, carriage returns) and the bidirectional overrides
# that make a terminal show text other than what it holds.
TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    return str(value)


def csv_text_cell(text: str) -> str:
    """A text value a spreadsheet shows as text: a formula start gets a leading quote."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def terminal_text(text: str) -> str:
    return TERMINAL_CONTROLS.sub("", text)


def render(group_by: Sequence[str], rows: Sequence[Sequence[Any]], output_format: str) -> str:
    header = [*group_by, *MEASURES]
    if output_format == "csv":
        # Only text from the database is escaped: numbers we format (a credit is negative)
        # and dates stay as they are.
        cells = [
            [csv_text_cell(value) if isinstance(value, str) else _cell(value) for value in row]
            for row in rows
        ]
        buffer = io.StringIO()
        # RFC 4180 line ends: Python 3.11 quotes a field holding a character of the line
        # terminator only, so with "\n" a carriage return in a name would split its row.
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(cells)
        return buffer.getvalue()
    cells = [[_cell(value) for value in row] for row in rows]
    return format_table(header, cells, numeric_from=len(group_by))


def format_table(
    header: Sequence[str],
    cells: Sequence[Sequence[str]],
    numeric_from: int,
    numeric_until: int | None = None,
) -> str:
    """A plain-text table; the numeric columns [numeric_from, numeric_until) align right.

    Control characters are stripped from every cell: names come from callers and price files.
    """
    header = [terminal_text(value) for value in header]
    cells = [[terminal_text(value) for value in row] for row in cells]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    numeric = range(numeric_from, len(header) if numeric_until is None else numeric_until)

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if i in numeric else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    lines = [line(header), line(["-" * w for w in widths])]
    lines += [line(row) for row in cells]
    return "\n".join(lines) + "\n"
