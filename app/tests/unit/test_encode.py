from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cost_monitor.records import UsageRecord
from cost_monitor.storage import COPY_COLUMNS, encode_rows


def test_copy_text_escapes_separators_and_marks_nulls():
    record = UsageRecord(
        time=datetime(2026, 11, 28, 10, 30, tzinfo=UTC),
        event_id="6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10",
        provider="openai",
        model="gpt-5",
        feature="tab\there\nnew\\line",
        cost_usd=Decimal("0.0000012500"),
        cost_source="computed",
        metadata={"note": "a\tb"},
    )
    (line,) = encode_rows([record]).decode().splitlines()
    cells = line.split("\t")
    assert len(cells) == len(COPY_COLUMNS)
    row = dict(zip(COPY_COLUMNS, cells, strict=True))
    assert row["time"] == "2026-11-28T10:30:00+00:00"
    assert row["feature"] == "tab\\there\\nnew\\\\line"
    assert row["project"] == "\\N"
    assert row["cost_usd"] == "0.0000012500"
    assert row["metadata"] == '{"note":"a\\\\tb"}'


def test_no_records_encode_to_nothing():
    assert encode_rows([]) == b""
