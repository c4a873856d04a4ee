"""The database side: COPY of usage records into llm_consumption, and the read queries.

Tables come from ``cost_monitor.schema`` (the collection's timescaledb_schema module), the
one definition shared with the timescaledb_init module.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

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


def encode_rows(records: Iterable[UsageRecord]) -> bytes:
    """Rows in PostgreSQL's COPY text format, in COPY_COLUMNS order."""
    lines = []
    for r in records:
        lines.append(
            "\t".join(
                (
                    r.time.isoformat(),
                    r.event_id,
                    _text(r.provider),
                    _text(r.model),
                    _text(r.operation),
                    _text(r.project),
                    _text(r.customer_id),
                    _text(r.user_id),
                    _text(r.api_key_id),
                    _text(r.feature),
                    _text(r.request_id),
                    _text(r.source),
                    _text(r.status),
                    str(r.input_tokens),
                    str(r.cache_read_tokens),
                    str(r.cache_write_tokens),
                    str(r.output_tokens),
                    str(r.reasoning_tokens),
                    NULL if r.cost_usd is None else str(r.cost_usd),
                    _text(r.cost_source),
                    NULL if r.duration_seconds is None else repr(r.duration_seconds),
                    NULL if r.metadata is None else _text(orjson.dumps(r.metadata).decode()),
                    str(r.cache_write_1h_tokens),
                    str(r.cache_write_12h_tokens),
                )
            )
        )
    if not lines:
        return b""
    return ("\n".join(lines) + "\n").encode()


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
