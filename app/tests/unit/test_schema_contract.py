"""The app's column and measure lists all come from the shared schema, in its order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from cost_monitor import schema
from cost_monitor.collectors.store import usage_columns
from cost_monitor.metrics import DIMENSIONS, Metrics
from cost_monitor.pricing import TOKEN_RATES
from cost_monitor.records import UsageRecord
from cost_monitor.report import MEASURES, render, report_query
from cost_monitor.storage import COPY_COLUMNS, encode_rows
from psycopg2 import sql


def sql_text(composable: sql.Composable) -> str:
    """The SQL a Composed holds, without a connection (identifiers double-quoted)."""
    if isinstance(composable, sql.Composed):
        return "".join(sql_text(part) for part in composable.seq)
    if isinstance(composable, sql.Identifier):
        return ".".join(schema.quote_ident(name) for name in composable.strings)
    return composable.string


def test_copy_puts_every_field_under_its_own_column():
    distinct = {
        column: str(100 + i) for i, column in enumerate(schema.TOKEN_COLUMNS)
    }  # each token count different, so a swapped pair shows
    record = UsageRecord(
        time=datetime(2026, 11, 28, 10, 30, tzinfo=UTC),
        event_id="6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10",
        **{
            field.name: field.name
            for field in msgspec.structs.fields(UsageRecord)
            if field.type in (str, str | None)
            if field.name not in ("event_id",)
        },
        **{column: int(value) for column, value in distinct.items()},
        cost_usd=Decimal("1.5"),
        duration_seconds=2.5,
        metadata={"k": "v"},
    )
    (line,) = encode_rows([record]).decode().splitlines()
    row = dict(zip(COPY_COLUMNS, line.split("\t"), strict=True))
    assert list(COPY_COLUMNS) == schema.written_columns("llm_consumption")
    for column in COPY_COLUMNS:
        value = getattr(record, column)
        if isinstance(value, str) and column != "event_id":
            assert row[column] == column, column
    assert (row["provider"], row["customer_id"], row["status"]) == (
        "provider",
        "customer_id",
        "status",
    )
    for column, value in distinct.items():
        assert row[column] == value
    assert (row["cost_usd"], row["duration_seconds"]) == ("1.5", "2.5")


def test_report_selects_every_schema_measure_under_its_header():
    text = sql_text(report_query(["provider", "model"]))
    positions = [text.index(expression) for expression in schema.measure_select_sql()]
    assert positions == sorted(positions)
    assert tuple(measure.name for measure in schema.CONSUMPTION_MEASURES) == MEASURES
    header = render(["provider", "model"], [], "csv").splitlines()[0].split(",")
    assert header == ["provider", "model", *MEASURES]


def test_collector_upserts_metric_labels_and_prices_follow_the_token_columns():
    assert usage_columns() == schema.written_columns("llm_provider_usage")
    assert tuple(TOKEN_RATES) == schema.TOKEN_COLUMNS
    assert list(schema.TOKEN_TYPES) == list(schema.TOKEN_COLUMNS)
    assert set(DIMENSIONS) <= set(schema.column_names("llm_consumption"))
    assert Metrics().tokens.labels == (*DIMENSIONS, "token_type")
