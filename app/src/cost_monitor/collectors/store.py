"""SQL for collector output: the llm_provider_usage upsert and the llm_collector_state watermark.

Table and column names come from the shared schema module (cost_monitor.schema); identifiers
are composed with psycopg2.sql and values always travel as parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extras import execute_values

from cost_monitor import schema
from cost_monitor.collectors.model import UsageBucket

USAGE_TABLE = "llm_provider_usage"
STATE_TABLE = "llm_collector_state"
PAGE_SIZE = 500


def usage_columns() -> list[str]:
    """The llm_provider_usage columns a UsageBucket fills, in table order."""
    columns = schema.written_columns(USAGE_TABLE)
    fields = {field.name for field in dataclasses.fields(UsageBucket)}
    missing = [column for column in columns if column not in fields]
    if missing:
        raise RuntimeError(f"UsageBucket lacks llm_provider_usage columns: {missing}")
    return columns


def upsert_sql(columns: Sequence[str]) -> sql.Composed:
    """INSERT ... ON CONFLICT (natural key) DO UPDATE, touching a row only if a value changed.

    The WHERE clause keeps re-collection of unchanged buckets a no-op (no new row version,
    collected_at unchanged) and makes RETURNING count only rows really inserted or changed.
    """
    key = schema.conflict_columns(USAGE_TABLE)
    values = [column for column in columns if column not in key]
    table = sql.Identifier(USAGE_TABLE)
    current = sql.Identifier("current")

    def ids(names: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, names))

    assignments = sql.SQL(", ").join(
        [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in values]
        + [sql.SQL("{} = now()").format(sql.Identifier("collected_at"))]
    )
    old_values = sql.SQL(", ").join(
        sql.SQL("{}.{}").format(current, sql.Identifier(n)) for n in values
    )
    new_values = sql.SQL(", ").join(
        sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in values
    )
    return sql.SQL(
        "INSERT INTO {table} AS {current} ({columns}) VALUES %s "
        "ON CONFLICT ({key}) DO UPDATE SET {assignments} "
        "WHERE ({old_values}) IS DISTINCT FROM ({new_values}) "
        "RETURNING 1"
    ).format(
        table=table,
        current=current,
        columns=ids(columns),
        key=ids(key),
        assignments=assignments,
        old_values=old_values,
        new_values=new_values,
    )


def upsert_buckets(cursor: Any, buckets: Sequence[UsageBucket]) -> int:
    """Upsert buckets (one per natural key); return how many rows were inserted or changed."""
    if not buckets:
        return 0
    columns = usage_columns()
    rows = [tuple(getattr(bucket, column) for column in columns) for bucket in buckets]
    changed = execute_values(
        cursor, upsert_sql(columns).as_string(cursor), rows, page_size=PAGE_SIZE, fetch=True
    )
    return len(changed)


def read_watermark(cursor: Any, collector: str) -> datetime | None:
    cursor.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
            sql.Identifier("watermark"), sql.Identifier(STATE_TABLE), sql.Identifier("collector")
        ),
        (collector,),
    )
    row = cursor.fetchone()
    return row[0] if row else None


def advance_watermark(cursor: Any, collector: str, watermark: datetime) -> datetime:
    """Move the watermark forward (never back) and return the stored value."""
    state, mark = sql.Identifier(STATE_TABLE), sql.Identifier("watermark")
    cursor.execute(
        sql.SQL(
            "INSERT INTO {state} AS {current} ({collector}, {mark}, {updated}) "
            "VALUES (%s, %s, now()) "
            "ON CONFLICT ({collector}) DO UPDATE SET "
            "{mark} = GREATEST({current}.{mark}, EXCLUDED.{mark}), {updated} = now() "
            "RETURNING {mark}"
        ).format(
            state=state,
            current=sql.Identifier("current"),
            collector=sql.Identifier("collector"),
            mark=mark,
            updated=sql.Identifier("updated_at"),
        ),
        (collector, watermark),
    )
    return cursor.fetchone()[0]
