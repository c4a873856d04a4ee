from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from cost_monitor import schema
from cost_monitor.records import UsageRecord
from cost_monitor.storage import COPY_COLUMNS, encode_rows, row_encoder


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


def test_a_column_added_to_the_schema_is_encoded_without_editing_the_encoder():
    class Row(msgspec.Struct):
        time: datetime
        cache_write_1h_tokens: int
        region: str | None
        cost_usd: Decimal | None

    columns = [
        schema.Column("time", "TIMESTAMPTZ", nullable=False),
        schema.Column("cache_write_1h_tokens", "BIGINT", nullable=False, default="0"),
        schema.Column("region", "TEXT"),
        schema.Column("cost_usd", "NUMERIC(20,10)"),
    ]
    encode = row_encoder(columns, Row)
    moment = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert encode(Row(moment, 42, "eu\twest", Decimal("0.5"))) == (
        "2026-11-28T10:30:00+00:00\t42\teu\\twest\t0.5"
    )
    assert encode(Row(moment, 0, None, None)) == "2026-11-28T10:30:00+00:00\t0\t\\N\t\\N"


def test_every_text_cell_is_escaped_when_any_needs_it():
    base = {
        "time": datetime(2026, 11, 28, 10, 30, tzinfo=UTC),
        "event_id": "6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10",
        "provider": "openai",
        "model": "gpt-5",
    }
    for awkward in ("\\N", "a\\Nb", "cr\rhere", "\\", "tab\t", "line\n"):
        record = UsageRecord(**base, project="p\\q", feature=awkward)
        (line,) = encode_rows([record]).decode().split("\n")[:-1]
        row = dict(zip(COPY_COLUMNS, line.split("\t"), strict=True))
        assert row["feature"] == awkward.translate(
            str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
        )
        assert row["project"] == "p\\\\q"
        assert row["customer_id"] == "\\N"
