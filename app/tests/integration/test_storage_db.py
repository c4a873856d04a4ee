from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from cost_monitor import storage
from cost_monitor.records import UsageRecord


def record(**fields):
    base = dict(
        time=datetime(2026, 11, 28, 10, tzinfo=UTC),
        event_id=str(uuid.uuid4()),
        provider="openai",
        model="gpt-5",
        input_tokens=10,
        output_tokens=5,
    )
    base.update(fields)
    return UsageRecord(**base)


def test_copy_round_trips_awkward_values(conn):
    awkward = record(
        feature="tab\there\nnew\\line ünï 🙂",
        project="p",
        cost_usd=Decimal("0.0000012345"),
        cost_source="computed",
        duration_seconds=0.123456789,
        metadata={"nested": {"q": 'quote" and \\ back', "n": [1, 2]}},
        reasoning_tokens=7,
    )
    storage.copy_rows(conn, storage.encode_rows([awkward, record()]))
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT feature, cost_usd, duration_seconds, metadata, reasoning_tokens, time"
            " FROM llm_consumption WHERE event_id = %s",
            (awkward.event_id,),
        )
        row = cursor.fetchone()
    assert row[0] == awkward.feature
    assert row[1] == Decimal("0.0000012345")
    assert row[2] == awkward.duration_seconds
    assert row[3] == awkward.metadata
    assert row[4] == 7
    assert row[5] == awkward.time


def test_idempotent_copy_inserts_only_new_events(conn):
    first = [record() for _ in range(3)]
    storage.copy_rows(conn, storage.encode_rows(first))
    replay = [*first, record()]
    assert storage.copy_rows_idempotent(conn, storage.encode_rows(replay)) == 1
    assert storage.copy_rows_idempotent(conn, storage.encode_rows(replay)) == 0
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM llm_consumption")
        assert cursor.fetchone() == (4, 4)


def test_spend_this_month_groups_by_project_and_utc_day(conn):
    rows = [
        record(
            project="a", cost_usd=Decimal("1.5"), time=datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
        ),
        record(project="a", cost_usd=Decimal("2"), time=datetime(2026, 11, 2, tzinfo=UTC)),
        record(project="a", cost_usd=Decimal("9"), time=datetime(2026, 10, 31, tzinfo=UTC)),
        record(project=None, cost_usd=Decimal("1"), time=datetime(2026, 11, 28, tzinfo=UTC)),
        record(project="a", cost_usd=None),
    ]
    storage.copy_rows(conn, storage.encode_rows(rows))
    spend = sorted(storage.spend_this_month(conn, date(2026, 11, 28)), key=str)
    assert spend == sorted(
        [
            ("a", date(2026, 11, 28), Decimal("1.5")),
            ("a", date(2026, 11, 2), Decimal("2")),
            (None, date(2026, 11, 28), Decimal("1")),
        ],
        key=str,
    )
