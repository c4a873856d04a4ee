from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from cost_monitor import schema
from cost_monitor.records import UsageRecord
from cost_monitor.storage import (
    COPY_COLUMNS,
    encode_plain_rows,
    encode_row,
    encode_rows,
    row_encoder,
)
from hypothesis import given, settings
from hypothesis import strategies as st


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


def copy_cells(payload: bytes) -> list[list[object]]:
    """COPY text read back as PostgreSQL reads it: NULLs, escapes, and each cell's type."""
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    types = [schema.TABLES["llm_consumption"].column(c).sql_type for c in COPY_COLUMNS]
    read = {
        "TIMESTAMPTZ": datetime.fromisoformat,
        "BIGINT": int,
        "NUMERIC(20,10)": Decimal,
        "DOUBLE PRECISION": lambda text: "NaN" if math.isnan(float(text)) else float(text),
    }
    rows = []
    for line in payload.decode().split("\n")[:-1]:
        row = []
        for sql_type, cell in zip(types, line.split("\t"), strict=True):
            if cell == "\\N":
                row.append(None)
                continue
            text = re.sub(r"\\[\\tnr]", lambda m: unescape[m.group()], cell)
            row.append(read.get(sql_type, str)(text))
        rows.append(row)
    return rows


def encode_row_by_row(records) -> bytes:
    return "".join(encode_row(r) + "\n" for r in records).encode()


plain_text = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(list("ab[]:Nnul -ü🙂")), max_size=8),
    st.sampled_from(["null", "nul", "", "[x]", "]["]),
)
awkward_text = st.one_of(
    plain_text,
    st.sampled_from(["],[", "\\N", "a,b", '"q"', "{}", "tab\there"]),
    st.text(alphabet=st.sampled_from(list('ab,"{}[]\\\t\n\r:Nnul ü🙂')), max_size=8),
)


@st.composite
def usage_records(draw, text, metadata=(None,)):
    moment = datetime(2026, 11, 28, 10, 30, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 10**9))
    )
    return UsageRecord(
        time=moment,
        event_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        provider="openai",
        model=draw(
            st.sampled_from(["gpt-5", "gpt-5,mini", 'gpt"5'])
            if text is awkward_text
            else st.just("gpt-5")
        ),
        project=draw(text),
        user_id=draw(text),
        feature=draw(text),
        input_tokens=draw(st.integers(0, 10**12)),
        cost_usd=draw(st.one_of(st.none(), st.decimals(allow_nan=False, places=10))),
        cost_source=draw(st.sampled_from([None, "computed", "billed"])),
        duration_seconds=draw(
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.floats())
        ),
        metadata=draw(st.sampled_from(metadata)),
    )


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.lists(usage_records(plain_text), min_size=1, max_size=6),
        st.lists(usage_records(awkward_text, (None, {"a": "b,c"})), min_size=1, max_size=6),
    )
)
def test_a_batch_encodes_to_the_same_cells_whichever_way_it_is_written(records):
    assert copy_cells(encode_rows(records)) == copy_cells(encode_row_by_row(records))


def test_a_plain_batch_is_written_through_json_and_an_awkward_one_row_by_row():
    plain = UsageRecord(
        time=datetime(2026, 11, 28, 10, 30, 5, 250, tzinfo=UTC),
        event_id="6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10",
        provider="openai",
        model="gpt-5",
        project="",
        cost_usd=Decimal("0.0000012500"),
        duration_seconds=0.8,
    )
    assert (
        encode_plain_rows([plain, plain])
        == (
            b"2026-11-28T10:30:05.000250Z\t6f1c0a8e-6b1c-4a53-9a57-1f0d1c7f3b10\topenai\tgpt-5\tchat"
            b"\t\t\\N\t\\N\t\\N\t\\N\t\\N\tapi\tok\t0\t0\t0\t0\t0\t0.0000012500\t\\N\t0.8\t\\N\t0\t0\n"
        )
        * 2
    )
    for awkward in ({"feature": "a,b"}, {"user_id": 'say "hi"'}, {"metadata": {"a": 1}}):
        assert encode_plain_rows([plain, msgspec.structs.replace(plain, **awkward)]) is None
    assert encode_plain_rows([msgspec.structs.replace(plain, duration_seconds=math.inf)]) is None
