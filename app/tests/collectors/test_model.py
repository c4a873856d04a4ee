"""UsageBucket invariants, merging, time helpers and the secret reader."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from cost_monitor import schema
from cost_monitor.collectors import COLLECTORS
from cost_monitor.collectors.model import (
    DAY,
    HOUR,
    UsageBucket,
    floor_time,
    merge_buckets,
    parse_timestamp,
)
from cost_monitor.collectors.secrets import MissingSecretError, read_secret

START = datetime(2026, 11, 17, tzinfo=UTC)


def bucket(**changes) -> UsageBucket:
    values = {"bucket_start": START, "bucket_seconds": DAY, "provider": "openai", "source": "x"}
    return UsageBucket(**{**values, **changes})


def test_bucket_fields_are_the_provider_usage_columns_except_collected_at():
    fields = [field.name for field in dataclasses.fields(UsageBucket)]
    assert fields == [c for c in schema.column_names("llm_provider_usage") if c != "collected_at"]
    assert tuple(fields[:10]) == schema.conflict_columns("llm_provider_usage")


def test_registry_names_match_the_source_column_values():
    assert sorted(COLLECTORS) == [
        "anthropic_costs",
        "anthropic_usage",
        "azure_cost",
        "bedrock_cur",
        "gcp_billing",
        "openai_costs",
        "openai_usage",
    ]
    assert all(cls.name == name for name, cls in COLLECTORS.items())


def test_bucket_rejects_naive_times_odd_widths_and_negative_counts():
    with pytest.raises(ValueError, match="timezone"):
        bucket(bucket_start=datetime(2026, 11, 17))
    with pytest.raises(ValueError, match="3600 or 86400"):
        bucket(bucket_seconds=60)
    with pytest.raises(ValueError, match="output_tokens is negative"):
        bucket(output_tokens=-1)


def test_bucket_normalises_to_utc_and_none_dimensions_to_empty():
    local = START.astimezone(timezone(timedelta(hours=-5)))
    made = bucket(bucket_start=local, project=None)
    assert made.bucket_start.utcoffset() == timedelta(0) and made.bucket_start == START
    assert made.project == ""


def test_merge_sums_counts_and_costs_per_key_and_keeps_unpriced_as_none():
    merged = merge_buckets(
        [
            bucket(model="m", input_tokens=1, requests=2, cost_amount=Decimal("0.1")),
            bucket(model="m", input_tokens=3, cache_read_tokens=5, cost_amount=Decimal("0.2")),
            bucket(model="n", output_tokens=7),
            bucket(model="n", output_tokens=1),
        ]
    )
    m, n = merged
    assert (m.input_tokens, m.cache_read_tokens, m.requests, m.cost_amount) == (
        4,
        5,
        2,
        Decimal("0.3"),
    )
    assert (n.output_tokens, n.cost_amount) == (8, None)


def test_merge_refuses_mixed_currencies():
    with pytest.raises(ValueError, match="currency"):
        merge_buckets([bucket(currency="USD"), bucket(currency="EUR")])


def test_floor_time_and_parse_timestamp():
    moment = datetime(2026, 11, 17, 13, 45, 12, tzinfo=UTC)
    assert floor_time(moment, HOUR) == datetime(2026, 11, 17, 13, tzinfo=UTC)
    assert floor_time(moment, DAY) == START
    assert parse_timestamp("2026-11-17T00:00:00Z") == START
    assert parse_timestamp("2026-11-17T00:00:00.000Z") == START
    assert parse_timestamp("2026-11-17 00:00:00 UTC") == START
    assert parse_timestamp("2026-11-17T01:00:00+01:00") == START
    assert parse_timestamp(int(START.timestamp())) == START


def test_secret_from_file_or_env_never_inline(tmp_path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    assert read_secret({"api_key_file": str(key_file)}, "api_key") == "sk-from-file"
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    assert read_secret({"api_key_env": "MY_KEY"}, "api_key") == "sk-from-env"
    assert read_secret({}, "api_key", default_env="MY_KEY") == "sk-from-env"
    with pytest.raises(ValueError, match="api_key_file"):
        read_secret({"api_key": "sk-inline"}, "api_key")
    with pytest.raises(MissingSecretError, match="UNSET_VAR"):
        read_secret({"api_key_env": "UNSET_VAR"}, "api_key")
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(MissingSecretError, match="empty"):
        read_secret({"api_key_file": str(tmp_path / "empty")}, "api_key")
