"""The database contract: names, keys and the SQL built from them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils import timescaledb_schema as schema

SCHEMA_FILE = Path(schema.__file__)


def test_tables_are_declared_in_creation_order():
    assert list(schema.TABLES) == ["llm_consumption", "llm_provider_usage", "llm_collector_state"]


def test_consumption_columns_follow_the_contract():
    assert schema.column_names("llm_consumption") == [
        "time", "event_id", "provider", "model", "operation", "project", "customer_id",
        "user_id", "api_key_id", "feature", "request_id", "source", "status",
        "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
        "reasoning_tokens", "cost_usd", "cost_source", "duration_seconds", "metadata",
        "cache_write_1h_tokens", "cache_write_12h_tokens",
    ]  # fmt: skip
    table = schema.TABLES["llm_consumption"]
    assert table.column("cost_usd") == schema.Column("cost_usd", "NUMERIC(20,10)")
    assert table.column("operation").default == "'chat'"
    for name in (*schema.TOKEN_COLUMNS, *schema.CACHE_WRITE_LIFETIME_COLUMNS):
        assert table.column(name) == schema.Column(name, "BIGINT", nullable=False, default="0")


def test_cache_write_lifetimes_are_parts_of_the_total_so_rollups_keep_their_definition():
    measured = {measure.name for measure in schema.CONSUMPTION_MEASURES}
    assert "cache_write_tokens" in measured
    assert measured.isdisjoint(schema.CACHE_WRITE_LIFETIME_COLUMNS)
    for table in ("llm_consumption", "llm_provider_usage"):
        # Added after the first release: last, where ADD COLUMN puts them on an upgrade.
        names = schema.written_columns(table)
        assert names[-2:] == list(schema.CACHE_WRITE_LIFETIME_COLUMNS)


@pytest.mark.parametrize("table", list(schema.TABLES.values()), ids=lambda t: t.name)
def test_a_hypertable_unique_key_includes_its_time_column(table):
    if table.time_column:
        assert table.time_column in table.unique


def test_provider_usage_dimensions_never_hold_null():
    table = schema.TABLES["llm_provider_usage"]
    for name in ("account", "project", "model", "operation", "api_key_id", "line_item"):
        column = table.column(name)
        assert (column.nullable, column.default) == (False, "''")
        assert name in table.unique


def test_create_table_sql_carries_the_natural_key():
    statement = schema.create_table_sql(schema.TABLES["llm_consumption"])
    assert statement.startswith('CREATE TABLE IF NOT EXISTS "llm_consumption" (')
    assert 'CONSTRAINT "llm_consumption_natural_key" UNIQUE ("event_id", "time")' in statement
    assert '"cost_usd" NUMERIC(20,10),' in statement
    state = schema.create_table_sql(schema.TABLES["llm_collector_state"])
    assert 'CONSTRAINT "llm_collector_state_pkey" PRIMARY KEY ("collector")' in state


def test_written_columns_leave_out_what_the_database_sets():
    written = schema.written_columns("llm_provider_usage")
    assert "collected_at" not in written
    assert written == [
        name for name in schema.column_names("llm_provider_usage") if name != "collected_at"
    ]
    assert schema.written_columns("llm_consumption") == schema.column_names("llm_consumption")


def test_measures_cover_every_token_column_in_order():
    names = [measure.name for measure in schema.CONSUMPTION_MEASURES]
    assert names == ["requests", *schema.TOKEN_COLUMNS, "cost_usd", "unpriced_requests"]
    assert schema.measure_select_sql()[1] == 'sum("input_tokens")::bigint AS "input_tokens"'
    assert schema.TOKEN_TYPES["cache_read_tokens"] == "cache_read"


def test_quote_ident_doubles_quotes_and_rejects_empty_names():
    assert schema.quote_ident('we"ird') == '"we""ird"'
    with pytest.raises(ValueError):
        schema.quote_ident("")


def test_aggregates_expose_the_contract_columns_in_both_bucket_flavours():
    hourly = schema.AGGREGATES["llm_consumption_hourly"]
    assert "time_bucket(INTERVAL '1 hour', \"time\")" in schema.aggregate_select_sql(hourly)
    daily = schema.aggregate_select_sql(schema.AGGREGATES["llm_consumption_daily"], "date_trunc")
    assert "date_trunc('day', \"time\", 'UTC') AS \"bucket\"" in daily
    assert 'count(*) FILTER (WHERE "cost_usd" IS NULL) AS "unpriced_requests"' in daily
    assert schema.aggregate_column_names() == [
        "bucket", "provider", "model", "project", "customer_id", "requests", "input_tokens",
        "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
        "cost_usd", "unpriced_requests",
    ]  # fmt: skip


def test_contract_file_is_stdlib_only_and_parses_as_python_38():
    tree = ast.parse(SCHEMA_FILE.read_text(), feature_version=(3, 8))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections", "dataclasses"}
