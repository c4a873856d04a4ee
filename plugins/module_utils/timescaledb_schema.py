# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database contract shared by the cost monitor app and the timescaledb modules.

Pure Python, standard library only, Python 3.8+ syntax: Ansible ships this file to managed
hosts as module_utils, and the app imports the very same file as ``cost_monitor.schema``.
Names here are a contract: columns may be added, never renamed.

Identifiers are always double-quoted, values are never formatted into SQL: every builder
returns SQL with ``%s`` placeholders for psycopg2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AGGREGATES",
    "CACHE_WRITE_LIFETIME_COLUMNS",
    "CONSUMPTION_MEASURES",
    "TABLES",
    "TOKEN_COLUMNS",
    "TOKEN_COUNT_COLUMNS",
    "TOKEN_TYPES",
    "Aggregate",
    "Column",
    "Index",
    "Measure",
    "Table",
    "aggregate_column_names",
    "aggregate_select_sql",
    "column_names",
    "conflict_columns",
    "create_index_sql",
    "create_table_sql",
    "measure_select_sql",
    "quote_ident",
    "written_columns",
]


@dataclass(frozen=True)
class Column:
    """One column; ``default`` is an SQL expression owned by this file, never user input."""

    name: str
    sql_type: str
    nullable: bool = True
    default: str | None = None
    set_by_database: bool = False  # filled by its default on every write; the app never sends it


@dataclass(frozen=True)
class Index:
    """A non-unique index; ``columns`` may carry a direction, e.g. ``("time", "DESC")``."""

    name: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table; ``time_column`` set means it becomes a hypertable partitioned on it."""

    name: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    time_column: str | None = None
    primary_key: tuple[str, ...] = ()
    indexes: tuple[Index, ...] = ()

    @property
    def unique_constraint_name(self) -> str:
        return self.name + "_natural_key"

    @property
    def primary_key_name(self) -> str:
        return self.name + "_pkey"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name}")


@dataclass(frozen=True)
class Aggregate:
    """A time-bucketed rollup of ``llm_consumption`` (continuous aggregate or plain view)."""

    name: str
    source_table: str
    bucket_width: str  # a PostgreSQL interval literal, e.g. "1 hour"
    date_trunc_unit: str  # the same width for plain PostgreSQL's date_trunc
    group_by: tuple[str, ...]


@dataclass(frozen=True)
class Measure:
    """One figure every rollup of llm_consumption computes: the aggregates, the app's report."""

    name: str
    expression: str  # SQL over llm_consumption, owned by this file, never user input


TOKEN_COLUMNS = (
    "input_tokens",  # uncached input only
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",  # visible output, excluding reasoning
    "reasoning_tokens",
)
# The token_type label value of each token column in the app's metrics ("input", ...).
TOKEN_TYPES = {column: column[: -len("_tokens")] for column in TOKEN_COLUMNS}
# How many of cache_write_tokens were written for a longer cache lifetime than the provider's
# base one (5 minutes at Anthropic, 30 minutes at OpenAI); they cost more. Parts of
# cache_write_tokens, not extra tokens: sums and rollups of the token columns stay right.
# Added after the first release, so they come last in their tables, as ADD COLUMN put them.
CACHE_WRITE_LIFETIME_COLUMNS = ("cache_write_1h_tokens", "cache_write_12h_tokens")
# Every token count a usage row carries.
TOKEN_COUNT_COLUMNS = (*TOKEN_COLUMNS, *CACHE_WRITE_LIFETIME_COLUMNS)


def _count_columns(names: Sequence[str]) -> tuple[Column, ...]:
    return tuple(Column(name, "BIGINT", nullable=False, default="0") for name in names)


def _token_columns() -> tuple[Column, ...]:
    return _count_columns(TOKEN_COLUMNS)


def _dimension(name: str) -> Column:
    # NOT NULL DEFAULT '' so that a missing dimension never breaks the upsert's natural key.
    return Column(name, "TEXT", nullable=False, default="''")


LLM_CONSUMPTION = Table(
    name="llm_consumption",
    columns=(
        Column("time", "TIMESTAMPTZ", nullable=False),
        Column("event_id", "UUID", nullable=False),
        Column("provider", "TEXT", nullable=False),
        Column("model", "TEXT", nullable=False),
        Column("operation", "TEXT", nullable=False, default="'chat'"),
        Column("project", "TEXT"),
        Column("customer_id", "TEXT"),
        Column("user_id", "TEXT"),
        Column("api_key_id", "TEXT"),
        Column("feature", "TEXT"),
        Column("request_id", "TEXT"),
        Column("source", "TEXT", nullable=False, default="'api'"),
        Column("status", "TEXT", nullable=False, default="'ok'"),
        *_token_columns(),
        Column("cost_usd", "NUMERIC(20,10)"),  # NULL = unpriced, never 0 for unknown models
        Column("cost_source", "TEXT"),  # 'computed' | 'billed'
        Column("duration_seconds", "DOUBLE PRECISION"),
        Column("metadata", "JSONB"),
        *_count_columns(CACHE_WRITE_LIFETIME_COLUMNS),
    ),
    # A hypertable's unique index must include its time column.
    unique=("event_id", "time"),
    time_column="time",
    indexes=(
        Index(
            "llm_consumption_provider_model_time_idx",
            (("provider", "ASC"), ("model", "ASC"), ("time", "DESC")),
        ),
        Index("llm_consumption_project_time_idx", (("project", "ASC"), ("time", "DESC"))),
        Index("llm_consumption_customer_time_idx", (("customer_id", "ASC"), ("time", "DESC"))),
    ),
)

LLM_PROVIDER_USAGE = Table(
    name="llm_provider_usage",
    columns=(
        Column("bucket_start", "TIMESTAMPTZ", nullable=False),
        Column("bucket_seconds", "INTEGER", nullable=False),  # 3600 or 86400
        Column("provider", "TEXT", nullable=False),
        Column("source", "TEXT", nullable=False),  # collector name, e.g. openai_usage
        _dimension("account"),
        _dimension("project"),
        _dimension("model"),
        _dimension("operation"),
        _dimension("api_key_id"),
        _dimension("line_item"),
        *_token_columns(),
        Column("requests", "BIGINT", nullable=False, default="0"),
        Column("cost_amount", "NUMERIC(20,10)"),
        Column("currency", "TEXT", nullable=False, default="'USD'"),
        Column(
            "collected_at", "TIMESTAMPTZ", nullable=False, default="now()", set_by_database=True
        ),
        *_count_columns(CACHE_WRITE_LIFETIME_COLUMNS),
    ),
    unique=(
        "bucket_start",
        "bucket_seconds",
        "provider",
        "source",
        "account",
        "project",
        "model",
        "operation",
        "api_key_id",
        "line_item",
    ),
    time_column="bucket_start",
)

LLM_COLLECTOR_STATE = Table(
    name="llm_collector_state",
    columns=(
        Column("collector", "TEXT", nullable=False),
        Column("watermark", "TIMESTAMPTZ", nullable=False),
        Column("cursor", "TEXT"),
        Column("updated_at", "TIMESTAMPTZ", nullable=False, default="now()"),
    ),
    primary_key=("collector",),
)

TABLES: dict[str, Table] = {
    table.name: table for table in (LLM_CONSUMPTION, LLM_PROVIDER_USAGE, LLM_COLLECTOR_STATE)
}

_AGGREGATE_GROUP_BY = ("provider", "model", "project", "customer_id")

AGGREGATES: dict[str, Aggregate] = {
    aggregate.name: aggregate
    for aggregate in (
        Aggregate(
            "llm_consumption_hourly", "llm_consumption", "1 hour", "hour", _AGGREGATE_GROUP_BY
        ),
        Aggregate("llm_consumption_daily", "llm_consumption", "1 day", "day", _AGGREGATE_GROUP_BY),
    )
}


def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident() does when quoting is forced."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _ident_list(names: Sequence[str]) -> str:
    return ", ".join(quote_ident(name) for name in names)


def _consumption_measures() -> tuple[Measure, ...]:
    cost = quote_ident("cost_usd")
    return (
        Measure("requests", "count(*)"),
        *(Measure(name, f"sum({quote_ident(name)})::bigint") for name in TOKEN_COLUMNS),
        Measure("cost_usd", f"sum({cost})"),  # NULL when nothing in it is priced
        Measure("unpriced_requests", f"count(*) FILTER (WHERE {cost} IS NULL)"),
    )


CONSUMPTION_MEASURES = _consumption_measures()


def measure_select_sql() -> list[str]:
    """``expression AS "name"`` for every measure, in order."""
    return [f"{m.expression} AS {quote_ident(m.name)}" for m in CONSUMPTION_MEASURES]


def column_definition_sql(column: Column) -> str:
    parts = [quote_ident(column.name), column.sql_type]
    if not column.nullable:
        parts.append("NOT NULL")
    if column.default is not None:
        parts.append("DEFAULT " + column.default)
    return " ".join(parts)


def create_table_sql(table: Table) -> str:
    """CREATE TABLE IF NOT EXISTS with its primary or unique (natural) key."""
    lines = ["    " + column_definition_sql(column) for column in table.columns]
    if table.primary_key:
        name, key = quote_ident(table.primary_key_name), _ident_list(table.primary_key)
        lines.append(f"    CONSTRAINT {name} PRIMARY KEY ({key})")
    if table.unique:
        name, key = quote_ident(table.unique_constraint_name), _ident_list(table.unique)
        lines.append(f"    CONSTRAINT {name} UNIQUE ({key})")
    return "CREATE TABLE IF NOT EXISTS {} (\n{}\n)".format(
        quote_ident(table.name), ",\n".join(lines)
    )


def create_index_sql(table: Table, index: Index) -> str:
    keys = ", ".join(f"{quote_ident(name)} {direction}" for name, direction in index.columns)
    name, on = quote_ident(index.name), quote_ident(table.name)
    return f"CREATE INDEX IF NOT EXISTS {name} ON {on} ({keys})"


def column_names(table_name: str) -> list[str]:
    return [column.name for column in TABLES[table_name].columns]


def written_columns(table_name: str) -> list[str]:
    """The columns the app writes (COPY, upsert), in table order."""
    return [column.name for column in TABLES[table_name].columns if not column.set_by_database]


def conflict_columns(table_name: str) -> tuple[str, ...]:
    """The key an idempotent insert or upsert conflicts on."""
    table = TABLES[table_name]
    return table.primary_key or table.unique


def aggregate_select_sql(aggregate: Aggregate, bucket_function: str = "time_bucket") -> str:
    """The SELECT behind an aggregate.

    ``bucket_function``: ``"time_bucket"`` (TimescaleDB, required by continuous aggregates)
    or ``"date_trunc"`` (plain PostgreSQL; buckets in UTC whatever the session time zone).
    """
    source = TABLES[aggregate.source_table]
    time_column = quote_ident(source.time_column or "time")
    if bucket_function == "time_bucket":
        bucket = f"time_bucket(INTERVAL '{aggregate.bucket_width}', {time_column})"
    elif bucket_function == "date_trunc":
        bucket = f"date_trunc('{aggregate.date_trunc_unit}', {time_column}, 'UTC')"
    else:
        raise ValueError("bucket_function must be 'time_bucket' or 'date_trunc'")
    measures = measure_select_sql()
    select = [bucket + " AS " + quote_ident("bucket")]
    select += [quote_ident(name) for name in aggregate.group_by] + measures
    group_by = ", ".join(str(position) for position in range(1, len(aggregate.group_by) + 2))
    return "SELECT {}\nFROM {}\nGROUP BY {}".format(
        ",\n       ".join(select), quote_ident(source.name), group_by
    )


def aggregate_column_names() -> list[str]:
    """Columns every aggregate exposes, in order (Grafana queries these)."""
    first = next(iter(AGGREGATES.values()))
    return ["bucket", *first.group_by, *(measure.name for measure in CONSUMPTION_MEASURES)]
