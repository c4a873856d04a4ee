"""The database side: COPY of usage records into llm_consumption, and the read queries.

Tables come from ``cost_monitor.schema`` (the collection's timescaledb_schema module), the
one definition shared with the timescaledb_init module.
"""

from __future__ import annotations

import io
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from cost_monitor import schema
from cost_monitor.records import UsageRecord
from cost_monitor.schema import TOKEN_COLUMNS

TABLE = "llm_consumption"
# The columns the app writes, in COPY order: encode_rows must follow the schema's order.
COPY_COLUMNS: tuple[str, ...] = tuple(schema.written_columns(TABLE))

# Errors that mean "the database is not reachable right now", as opposed to "it refused this".
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
# psycopg2 reads COPY data in 8 KiB pieces by default, taking the GIL for each one.
COPY_CHUNK = 1 << 20


def connect(**kwargs: Any) -> Connection:
    conn = psycopg2.connect(**kwargs)
    with conn.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


def _text(value: str | None) -> str:
    if value is None:
        return NULL
    # isprintable() is False for tab, newline and CR; only then (or with a backslash) escape.
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


# How a value of each SQL type becomes COPY text ("{}" is the value). Text types (TEXT,
# UUID, and JSONB once dumped) go through the escaping check instead.
_COPY_TEXT_OF_TYPE = {
    "TIMESTAMPTZ": "{}.isoformat()",
    "BIGINT": "{}",  # an f-string formats an int as str() does
    "INTEGER": "{}",
    "NUMERIC": "str({})",
    "DOUBLE PRECISION": "repr({})",
    "BOOLEAN": "('t' if {} else 'f')",
}
_TEXT_TYPES = frozenset({"TEXT", "UUID", "JSONB"})


def _row_encoder_source(columns: Sequence[schema.Column]) -> str:
    """Python source of ``encode_row(record) -> str``: one COPY text line for the columns.

    Generated from the schema once, as dataclasses generates ``__init__``: a function call
    per cell would cost more than the rest of the row. The text cells of a row are looked
    through together for a character COPY must escape, and escaped one by one only then.
    """
    body = ["def encode_row(r):"]
    fast, escaped, probes = [], [], []
    for index, column in enumerate(columns):
        value = f"v{index}"
        sql_type = column.sql_type.split("(")[0].upper()
        body.append(f"    {value} = r.{column.name}")
        if sql_type in _TEXT_TYPES:
            if sql_type == "JSONB":
                body.append(f"    if {value} is not None: {value} = dumps({value}).decode()")
            probes.append(f"{{{value}}}")
            fast.append(f"{{NULL if {value} is None else {value}}}")
            escaped.append(f"{{_text({value})}}")
        else:
            text = _COPY_TEXT_OF_TYPE[sql_type].format(value)
            cell = f"{{NULL if {value} is None else {text}}}"
            fast.append(cell)
            escaped.append(cell)
    tab = "\\t"  # the two characters backslash and t, which the generated f-strings read as a tab
    body += [
        '    probe = f"' + " ".join(probes) + '"',
        '    if not ("\\\\" in probe or "\\t" in probe or "\\n" in probe or "\\r" in probe):',
        '        return f"' + tab.join(fast) + '"',
        '    return f"' + tab.join(escaped) + '"',
    ]
    return "\n".join(body) + "\n"


def row_encoder(
    columns: Sequence[schema.Column], record_type: type = UsageRecord
) -> Callable[[Any], str]:
    """``encode_row(record) -> str`` for the columns, each read from the same-named field."""
    missing = [c.name for c in columns if c.name not in record_type.__struct_fields__]
    if missing:
        raise RuntimeError(f"{record_type.__name__} lacks written columns: {missing}")
    namespace = {"NULL": NULL, "_text": _text, "dumps": orjson.dumps}
    exec(_row_encoder_source(columns), namespace)
    return namespace["encode_row"]


encode_row = row_encoder([schema.TABLES[TABLE].column(name) for name in COPY_COLUMNS])


_COMMA_TO_TAB = bytes.maketrans(b",", b"\t")


def json_row_encoder(
    columns: Sequence[schema.Column],
) -> Callable[[list[Any]], bytes | None]:
    """``encode(records) -> bytes | None``: the COPY text of plain records, by way of
    msgspec's JSON encoder (in C) and a few replacements over the whole batch, or None when
    the batch is not plain (the per-row encoder then writes it).

    Plain: no text holds a backslash (JSON's escapes: quotes, control characters), a comma
    or a brace (the only JSON object would be a JSONB cell), and every DOUBLE PRECISION
    cell is finite (JSON has no NaN; msgspec writes null). In such a batch, JSON's commas
    are the cell and row separators, its quotes delimit texts only, and an unquoted null is
    a NULL cell, so the replacements cannot touch a value.
    """
    cells = operator.attrgetter(*(column.name for column in columns))
    floats = [
        operator.attrgetter(column.name)
        for column in columns
        if column.sql_type.upper() == "DOUBLE PRECISION"
    ]
    separators_per_row = len(columns)  # the row's cell separators, and the one after it
    # A first cell that may be NULL would start a row with null rather than follow a comma.
    null_first = columns[0].nullable
    encode_json = msgspec.json.Encoder().encode

    def encode(records: list[Any]) -> bytes | None:
        for value_of in floats:
            values = [v for v in map(value_of, records) if v is not None]
            if not math.isfinite(sum(values)):  # inf - inf is nan too
                return None
        try:
            data = encode_json(list(map(cells, records)))
        except (TypeError, msgspec.EncodeError):  # a value JSON cannot hold
            return None
        if (
            b"\\" in data
            or b"{" in data
            or data.count(b",") != separators_per_row * len(records) - 1
        ):
            return None
        data = data[2:-2].replace(b"],[", b"\n").replace(b",null", b",\\N")
        if null_first:
            data = b"\n".join(
                b"\\N" + row[4:] if row.startswith(b"null") else row for row in data.split(b"\n")
            )
        return data.translate(_COMMA_TO_TAB, b'"') + b"\n"

    return encode


encode_plain_rows = json_row_encoder([schema.TABLES[TABLE].column(name) for name in COPY_COLUMNS])


def encode_rows(records: Iterable[UsageRecord]) -> bytes:
    """Rows in PostgreSQL's COPY text format, in COPY_COLUMNS order."""
    records = list(records)
    if not records:
        return b""
    plain = encode_plain_rows(records)
    if plain is not None:
        return plain
    lines = list(map(encode_row, records))
    lines.append("")
    return "\n".join(lines).encode()


def _copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def copy_rows(conn: Connection, payload: bytes, columns: Sequence[str] = COPY_COLUMNS) -> None:
    """Append rows with one COPY and commit (fails on a duplicate event)."""
    with conn.cursor() as cursor:
        cursor.copy_expert(_copy_statement(TABLE, columns), io.BytesIO(payload), COPY_CHUNK)
    conn.commit()


# What a skipped-or-stored check needs back from an idempotent insert.
STORED_KEY: tuple[str, ...] = ("event_id", "time")
# What metrics and budgets need to count a row that exists only as COPY text (a spool file).
USAGE_COLUMNS: tuple[str, ...] = (
    "time",
    "event_id",
    "provider",
    "model",
    "operation",
    "project",
    "source",
    "status",
    *TOKEN_COLUMNS,
    "cost_usd",
    "cost_source",
    "duration_seconds",
)


def copy_new_rows(
    conn: Connection,
    payload: bytes,
    columns: Sequence[str] = COPY_COLUMNS,
    returning: Sequence[str] = STORED_KEY,
) -> list[tuple[Any, ...]]:
    """COPY through a temporary table, inserting only events not stored yet; commits.

    Returns the ``returning`` columns of the rows really inserted (a row already in the table,
    or twice in the payload, is inserted once). Used when a batch may already be in the
    table: a replayed spool file whose first attempt lost its connection during COMMIT, or a
    client resending the same event ids.
    """
    staging = "llm_consumption_staging"
    key = sql.SQL(", ").join(map(sql.Identifier, schema.conflict_columns(TABLE)))
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(staging), sql.Identifier(TABLE))
        )
        cursor.copy_expert(_copy_statement(staging, columns), io.BytesIO(payload), COPY_CHUNK)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} ({names}) SELECT {names} FROM {staging}"
                " ON CONFLICT ({key}) DO NOTHING RETURNING {returning}"
            ).format(
                table=sql.Identifier(TABLE),
                names=names,
                staging=sql.Identifier(staging),
                key=key,
                returning=sql.SQL(", ").join(map(sql.Identifier, returning)),
            )
        )
        inserted = cursor.fetchall()
    conn.commit()
    return inserted


def copy_rows_idempotent(
    conn: Connection, payload: bytes, columns: Sequence[str] = COPY_COLUMNS
) -> int:
    """copy_new_rows, counting the rows inserted."""
    return len(copy_new_rows(conn, payload, columns))


def usage_records(rows: Iterable[Sequence[Any]]) -> list[UsageRecord]:
    """Records from rows of USAGE_COLUMNS, enough to count them in metrics and budgets."""
    return [UsageRecord(**dict(zip(USAGE_COLUMNS, row, strict=True))) for row in rows]


def spend_this_month(conn: Connection, today: date) -> list[tuple[str | None, date, Decimal]]:
    """(project, UTC day, spend) for every day of the month up to today."""
    month_start = datetime(today.year, today.month, 1).isoformat() + "+00:00"
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT project, (time AT TIME ZONE 'UTC')::date, sum(cost_usd)"
            " FROM llm_consumption WHERE time >= %s AND cost_usd IS NOT NULL"
            " GROUP BY 1, 2",
            (month_start,),
        )
        rows = cursor.fetchall()
    conn.commit()
    return rows


def is_unique_violation(error: BaseException) -> bool:
    return isinstance(error, psycopg2.errors.UniqueViolation)
