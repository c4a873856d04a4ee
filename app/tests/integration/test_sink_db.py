"""The writer's two lanes against a real database: every request of a write is stored once,
resends included, when its rows are COPYed on two connections side by side."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime

from cost_monitor import storage
from cost_monitor.budgets import SpendTracker
from cost_monitor.metrics import Metrics
from cost_monitor.records import UsageRecord
from cost_monitor.sink import Outcome, Sink, _Submission
from cost_monitor.spool import Spool


def records(count):
    now = datetime.now(UTC)
    return [
        UsageRecord(
            time=now, event_id=str(uuid.uuid4()), provider="openai", model="gpt-5", input_tokens=9
        )
        for _ in range(count)
    ]


def submission(batch):
    return _Submission(batch, storage.encode_rows(batch))


def count_rows(conn):
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM llm_consumption")
        rows = cursor.fetchone()[0]
    conn.commit()
    return rows


def test_two_lanes_store_every_request_once_resends_included(database, conn, tmp_path):
    sink = Sink(
        functools.partial(storage.connect, dsn=database.dsn),
        Spool(tmp_path / "spool", 1 << 20),
        Metrics(),
        SpendTracker(),
    )
    try:
        assert sink._ensure_connection()
        first = [submission(records(100)) for _ in range(4)]
        sink._write(first)
        assert sink._lane_conn is not None  # the write did take the second connection
        for item in first:
            acknowledged = item.future.result(timeout=0)
            assert (acknowledged.outcome, acknowledged.stored) == (Outcome.STORED, item.records)
        assert count_rows(conn) == 400

        resent = first[0].records[:50]
        mixed, fresh = submission(resent + records(50)), submission(records(100))
        sink._write([mixed, fresh])
        assert mixed.future.result(timeout=0).stored == mixed.records[50:]
        assert fresh.future.result(timeout=0).stored == fresh.records
        assert count_rows(conn) == 550
        assert sink.metrics.stored_rows._value.get() == 550
        assert not len(sink.spool)
    finally:
        sink._close_connection()
