from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cost_monitor.records import (
    BodyError,
    IngestLimits,
    count_array_items,
    new_event_ids,
    parse_body,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = IngestLimits()


def parse(records, content_type="application/json", limits=LIMITS):
    return parse_body(orjson.dumps(records), content_type, limits, now=NOW)


def good(**fields):
    record = {
        "time": "2026-11-28T11:00:00Z",
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 100,
        "output_tokens": 20,
    }
    record.update(fields)
    return record


def only_rejection(records, **kwargs):
    parsed = parse(records, **kwargs)
    assert len(parsed.rejections) == 1, parsed.rejections
    return parsed.rejections[0]


def test_valid_record_gets_defaults_and_an_event_id():
    parsed = parse([good(project="search")])
    assert not parsed.rejections
    (record,) = parsed.records
    assert record.time == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert (record.operation, record.source, record.status) == ("chat", "api", "ok")
    assert uuid.UUID(record.event_id).version == 7
    assert str(uuid.UUID(record.event_id)) == record.event_id
    assert record.project == "search"
    assert record.cost_usd is None


def test_single_object_body_is_a_batch_of_one():
    parsed = parse_body(orjson.dumps(good()), "application/json", LIMITS, now=NOW)
    assert len(parsed.records) == 1


def test_client_event_id_is_kept_for_idempotent_resends():
    event_id = "6F1C0A8E-6B1C-4A53-9A57-1F0D1C7F3B10"
    (record,) = parse([good(event_id=event_id)]).records
    assert record.event_id == event_id.lower()


def test_a_client_event_id_needs_the_event_time():
    # The table keys an event by (time, event_id): with "now" as its time, a resend would be
    # stored again.
    event_id = "6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10"
    without_time = {k: v for k, v in good(event_id=event_id).items() if k != "time"}
    rejection = only_rejection([without_time])
    assert (rejection.field, rejection.code) == ("time", "missing")
    assert "event_id" in rejection.reason
    assert len(parse([good(event_id=event_id)]).records) == 1
    assert len(parse([{k: v for k, v in good().items() if k != "time"}]).records) == 1


def test_generated_event_ids_are_distinct_version_7_uuids_of_now():
    before = time.time_ns() // 1_000_000
    records = parse([good()] * 600).records
    after = time.time_ns() // 1_000_000
    ids = {record.event_id for record in records}
    assert len(ids) == 600
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    assert all(before <= uuid.UUID(i).int >> 80 <= after for i in ids)


def test_event_ids_of_separate_calls_do_not_meet():
    # Each call starts its counter at a random point: two calls in the same millisecond
    # would need the same 74 random bits to give an id twice.
    ids = [i for _ in range(2000) for i in new_event_ids(256)]
    assert len(set(ids)) == len(ids)


def test_otel_names_are_aliases_and_totals_are_split_into_parts():
    otel = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.cache_read.input_tokens": 600,
        "gen_ai.usage.cache_creation.input_tokens": 100,
        "gen_ai.usage.output_tokens": 500,
        "gen_ai.usage.reasoning.output_tokens": 200,
        "time": "2026-11-28T11:00:00+01:00",
    }
    (record,) = parse([otel]).records
    assert record.provider == "anthropic"
    assert record.model == "claude-sonnet-4-5"
    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (
        300,
        600,
        100,
    )
    assert (record.output_tokens, record.reasoning_tokens) == (300, 200)
    assert record.time == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_cache_writes_by_lifetime_are_parts_of_the_write_total():
    anthropic_usage = good(
        provider="anthropic",
        model="claude-sonnet-4-5",
        cache_creation_input_tokens=1000,
        ephemeral_1h_input_tokens=400,
        cache_read_input_tokens=50,
    )
    only_parts = good(cache_write_1h_tokens=30, cache_write_12h_tokens=20)
    first, second = parse([anthropic_usage, only_parts]).records
    assert (first.cache_write_tokens, first.cache_write_1h_tokens, first.cache_read_tokens) == (
        1000,
        400,
        50,
    )
    # Without a total, the total is the sum of the lifetimes given.
    assert (second.cache_write_tokens, second.cache_write_1h_tokens) == (50, 30)
    assert second.cache_write_12h_tokens == 20


def test_longer_lived_writes_beyond_the_write_total_are_rejected():
    rejection = only_rejection([good(cache_write_tokens=10, cache_write_1h_tokens=11)])
    assert (rejection.field, rejection.code) == ("cache_write_tokens", "inconsistent")
    otel = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "ephemeral_1h_input_tokens": 6,
    }
    assert only_rejection([otel]).field == "cache_write_tokens"


def test_where_a_request_ran_is_kept_for_pricing_and_checked():
    (record,) = parse([good(data_residency="eu", region="us-east5")]).records
    assert (record.data_residency, record.region) == ("eu", "us-east5")
    assert only_rejection([good(data_residency="EU")]).field == "data_residency"
    assert only_rejection([good(region="us east")]).field == "region"


def test_otel_total_smaller_than_its_parts_is_rejected():
    rejection = only_rejection(
        [
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.cache_read.input_tokens": 50,
            }
        ]
    )
    assert rejection.field == "gen_ai.usage.input_tokens"


def test_provider_spellings_are_normalised_and_unknown_ones_rejected():
    (record,) = parse([good(provider="Bedrock")]).records
    assert record.provider == "aws.bedrock"
    rejection = only_rejection([good(provider="acme-llm")])
    assert (rejection.field, rejection.code) == ("provider", "unknown_provider")
    extra = IngestLimits(extra_providers=frozenset({"acme-llm"}))
    assert parse([good(provider="acme-llm")], limits=extra).records


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"input_tokens": -1}, "input_tokens", "out_of_range"),
        ({"output_tokens": 10**12}, "output_tokens", "out_of_range"),
        ({"input_tokens": "12"}, "input_tokens", "wrong_type"),
        ({"input_tokens": 1.5}, "input_tokens", "wrong_type"),
        ({"input_tokens": True}, "input_tokens", "wrong_type"),
        ({"time": "yesterday"}, "time", "wrong_type"),
        ({"time": "2026-11-28T11:00:00"}, "time", "wrong_type"),
        ({"time": (NOW + timedelta(hours=1)).isoformat()}, "time", "future_time"),
        ({"time": "1999-01-01T00:00:00Z"}, "time", "out_of_range"),
        ({"time": 1e300}, "time", "out_of_range"),
        ({"model": ""}, "model", "missing"),
        ({"model": 5}, "model", "wrong_type"),
        ({"model": "m" * 300}, "model", "out_of_range"),
        ({"project": "a\x00b"}, "project", "out_of_range"),
        ({"status": "maybe"}, "status", "out_of_range"),
        ({"cost_usd": -0.5}, "cost_usd", "out_of_range"),
        ({"cost_usd": "abc"}, "cost_usd", "wrong_type"),
        ({"cost_usd": "NaN"}, "cost_usd", "out_of_range"),
        ({"cost_usd": "1_000"}, "cost_usd", "wrong_type"),
        ({"cost_usd": "-0"}, "cost_usd", "out_of_range"),
        ({"cost_usd": -0.0}, "cost_usd", "out_of_range"),
        ({"cost_usd": " 1.5"}, "cost_usd", "wrong_type"),
        ({"cost_usd": "1e3"}, "cost_usd", "wrong_type"),
        ({"cost_usd": "\u0663"}, "cost_usd", "wrong_type"),
        ({"duration_seconds": -3}, "duration_seconds", "out_of_range"),
        ({"metadata": [1, 2]}, "metadata", "wrong_type"),
        ({"metadata": {"k": "x\x00"}}, "metadata", "out_of_range"),
        ({"metadata": {"k": "x" * 9000}}, "metadata", "out_of_range"),
        ({"event_id": "not-a-uuid"}, "event_id", "wrong_type"),
        ({"batch": "yes"}, "batch", "wrong_type"),
        ({"service_tier": "turbo"}, "service_tier", "out_of_range"),
    ],
)
def test_bad_field_is_rejected_with_index_field_and_reason(fields, field, code):
    parsed = parse([good(), good(**fields), good()])
    assert len(parsed.records) == 2
    (rejection,) = parsed.rejections
    assert (rejection.index, rejection.field, rejection.code) == (1, field, code)
    assert rejection.reason


def test_cost_strings_are_plain_decimals():
    for text in ("0", "12", "0.0000123456789", "1000000"):
        (record,) = parse([good(cost_usd=text)]).records
        assert str(record.cost_usd) == text


def test_deeply_nested_metadata_rejects_only_its_record():
    deep: dict = {}
    for _ in range(300):
        deep = {"k": deep}
    body = json.dumps([good(), good(metadata=deep), good()]).encode()
    parsed = parse_body(body, "application/json", LIMITS, now=NOW)
    assert len(parsed.records) == 2
    (rejection,) = parsed.rejections
    assert (rejection.index, rejection.field, rejection.code) == (1, "metadata", "out_of_range")


def test_a_batch_over_the_limit_is_refused_before_it_is_parsed(monkeypatch):
    """A 15 MiB body of tiny items must not become millions of objects first."""
    limits = IngestLimits(max_batch_records=10)
    loaded = []
    monkeypatch.setattr(
        "cost_monitor.records.orjson.loads", lambda body: loaded.append(len(body)) or []
    )
    for body, content_type in (
        (b"[" + b",".join([b"{}"] * 5_000_000) + b"]", "application/json"),
        (b"\n".join([b"{}"] * 5_000_000), "application/x-ndjson"),
    ):
        with pytest.raises(BodyError) as error:
            parse_body(body, content_type, limits, now=NOW)
        assert error.value.code == "batch_too_large"
        assert "more than 10 records" in error.value.reason
    assert loaded == []


def test_batches_at_the_limit_are_counted_exactly():
    limits = IngestLimits(max_batch_records=3)
    nested = good(metadata={"list": [1, 2, 3, 4], "text": "a,b,c,d"})
    assert len(parse([nested] * 3, limits=limits).records) == 3
    with pytest.raises(BodyError):
        parse([nested] * 4, limits=limits)
    body = b"\n".join([orjson.dumps(nested)] * 3 + [b"", b"  "])
    assert len(parse_body(body, "application/x-ndjson", limits, now=NOW).records) == 3


def test_every_bad_field_of_a_record_is_reported():
    parsed = parse([good(input_tokens=-1, provider="nope", model=None)])
    assert {r.field for r in parsed.rejections} == {"input_tokens", "provider", "model"}
    assert {r.index for r in parsed.rejections} == {0}


def test_non_object_items_are_rejected_by_index():
    parsed = parse([good(), 42, "x", None])
    assert [r.index for r in parsed.rejections] == [1, 2, 3]
    assert len(parsed.records) == 1


def test_malformed_json_rejects_the_whole_body():
    with pytest.raises(BodyError) as error:
        parse_body(b'[{"provider": ', "application/json", LIMITS, now=NOW)
    assert error.value.code == "malformed_json"
    with pytest.raises(BodyError):
        parse_body(b"42", "application/json", LIMITS, now=NOW)


def test_ndjson_rejects_only_the_malformed_line():
    body = b"\n".join([orjson.dumps(good()), b"{broken", b"", orjson.dumps(good(model="o3"))])
    parsed = parse_body(body, "application/x-ndjson", LIMITS, now=NOW)
    assert [r.model for r in parsed.records] == ["gpt-5-mini", "o3"]
    (rejection,) = parsed.rejections
    assert (rejection.index, rejection.code) == (1, "malformed_json")


def test_batch_over_the_record_limit_is_refused_whole():
    limits = IngestLimits(max_batch_records=3)
    with pytest.raises(BodyError) as error:
        parse([good()] * 4, limits=limits)
    assert error.value.code == "batch_too_large"


def test_epoch_seconds_are_accepted():
    (record,) = parse([good(time=NOW.timestamp() - 60)]).records
    assert record.time == NOW - timedelta(seconds=60)


def test_billed_cost_is_kept_exactly():
    (record,) = parse([good(cost_usd="0.0000123456789")]).records
    assert str(record.cost_usd) == "0.0000123456789"
    assert record.cost_source == "billed"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=30), children, max_size=6)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "time",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cost_usd",
        "metadata",
        "event_id",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.provider.name",
        "duration_seconds",
        "status",
        "batch",
        "service_tier",
    ]
)
records_strategy = st.lists(st.dictionaries(field_names, json_values, max_size=10), max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["application/json", "application/x-ndjson"]))
def test_fuzz_arbitrary_bytes_never_crash_the_parser(body, content_type):
    try:
        parsed = parse_body(body, content_type, LIMITS, now=NOW)
    except BodyError:
        return
    assert len(parsed.records) + len({r.index for r in parsed.rejections}) <= max(
        parsed.received, 1
    )


@settings(max_examples=400, deadline=None)
@given(records_strategy)
def test_fuzz_structured_records_are_either_valid_or_explained(records):
    # The standard library encodes integers of any size; orjson reads big ones as floats.
    parsed = parse_body(json.dumps(records).encode(), "application/json", LIMITS, now=NOW)
    rejected = {r.index for r in parsed.rejections}
    assert len(parsed.records) + len(rejected) == len(records)
    for record in parsed.records:
        assert all(getattr(record, name) >= 0 for name in ("input_tokens", "output_tokens"))
        assert record.time.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=12), st.integers(min_value=0, max_value=12))
def test_fuzz_the_early_item_count_matches_the_parser(items, limit):
    body = json.dumps(items, indent=1 if limit % 2 else None).encode()
    assert count_array_items(body, limit + 1) == min(len(items), limit + 1)
