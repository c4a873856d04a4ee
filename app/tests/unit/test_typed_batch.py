"""The fast path accepts only what the slow path accepts, and makes the same records of it."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import orjson
from cost_monitor.records import IngestLimits, validate_items
from cost_monitor.schema import TOKEN_COLUMNS
from cost_monitor.typed_batch import parse_plain_array
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = IngestLimits(max_tokens_per_field=1_000_000)
EVENT_ID = "0b7e7f4e-8c1a-4f7e-9d3e-2f5a6b7c8d9e"


def full_record(**fields):
    record = {
        "time": "2026-11-28T11:00:00.5+01:00",
        "event_id": EVENT_ID.upper(),
        "provider": "openai",
        "model": "gpt-5-mini",
        "operation": "embeddings",
        "source": "gateway",
        "status": "error",
        "project": "p",
        "customer_id": "c",
        "user_id": "u",
        "api_key_id": "k",
        "feature": "f",
        "request_id": "r",
        "duration_seconds": 3,
        "batch": True,
        "service_tier": "priority",
        "data_residency": "eu",
        "region": "us-east5",
        **{name: i + 1 for i, name in enumerate(TOKEN_COLUMNS)},
    }
    record.update(fields)
    return record


def slow(body: bytes):
    items = orjson.loads(body)
    return validate_items(enumerate(items), LIMITS, NOW, received=len(items))


def comparable(records):
    """Each record's fields by name, a generated event id blanked."""
    fields = [msgspec.structs.asdict(record) for record in records]
    for record in fields:
        if record["event_id"] != EVENT_ID:
            record["event_id"] = ""
    return fields


def test_a_record_with_every_plain_field_becomes_the_slow_paths_record():
    minimal = {"provider": "anthropic", "model": "claude-x"}
    body = orjson.dumps([full_record(), minimal])
    fast = parse_plain_array(body, LIMITS, NOW)
    assert fast is not None
    assert comparable(fast.records) == comparable(slow(body).records)
    assert fast.records[0].event_id == EVENT_ID and fast.records[0].duration_seconds == 3.0


def test_anything_outside_the_plain_shape_goes_the_slow_way():
    for odd in (
        {"gen_ai.request.model": "x"},  # an alias
        {"cost_usd": 0.5},  # a field the plain shape leaves out
        {"project": None},  # null
        {"project": ""},  # empty text means absent
        {"model": "a\x00b"},  # NUL
        {"provider": "OpenAI"},  # a spelling the slow path canonicalises
        {"status": "weird"},
        {"time": 1795824000},  # epoch seconds
        {"time": "2026-11-28T11:00:00"},  # no offset
        {"time": "2099-01-01T00:00:00Z"},  # in the future
        {"input_tokens": 1_000_001},
        {"input_tokens": 1.0},
        {"event_id": "not-a-uuid"},
        {"duration_seconds": -1},
        {"batch": 1},
        {"service_tier": "standard"},
        {"data_residency": "EU"},
        {"region": "us-east5\n"},  # $ would match before a final newline; the slow path refuses it
        {"cache_write_1h_tokens": 1},  # lifetimes need the slow path's consistency check
    ):
        body = orjson.dumps([full_record(), full_record(**odd)])
        assert parse_plain_array(body, LIMITS, NOW) is None, odd
    assert parse_plain_array(orjson.dumps(full_record()), LIMITS, NOW) is None  # one object
    assert parse_plain_array(b"[{", LIMITS, NOW) is None
    assert parse_plain_array(b'[{"provider": "openai", "model": "\xff"}]', LIMITS, NOW) is None


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(
        [
            "openai",
            "ok",
            "error",
            "2026-11-28T11:00:00Z",
            EVENT_ID,
            "x" * 300,
            "fast",
            "eu",
            "us-east5",
            "us-east5\n",
            "-us",
        ]
    ),
)
fields = st.sampled_from(
    ["time", "event_id", "provider", "model", "operation", "source", "status", "project",
     "duration_seconds", "input_tokens", "output_tokens", "batch", "service_tier",
     "data_residency", "region", "cost_usd", "cost_source", "metadata", "cache_write_1h_tokens",
     "unknown"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(fields, values, max_size=5), max_size=4))
def test_whatever_the_fast_path_accepts_the_slow_path_accepts_alike(changes):
    body = orjson.dumps([full_record(**change) for change in changes])
    fast = parse_plain_array(body, LIMITS, NOW)
    if fast is not None:
        expected = slow(body)
        assert expected.rejections == []
        assert comparable(fast.records) == comparable(expected.records)
        assert fast.received == expected.received
