"""A fast path for the common ingest body: a JSON array of plain, valid records.

msgspec decodes such a body straight into records (a subclass of UsageRecord), checking types
and bounds in C while it parses. It covers only the common shape: native field names, the
five token counts, the optional texts, a duration, the batch flag, the service tier, the data
residency and the region. Anything else falls back to ``records.validate_items``, which reads
the body again and reports each problem by index, field and reason. That fallback happens for
any unexpected field, alias, null, out-of-range value, NUL character, unknown provider or
status, and any time the slow path would refuse, so the fast path never has to explain a
rejection. What it accepts, it turns into records equal, field by field, to the slow path's.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal

import msgspec

from cost_monitor.records import (
    DATA_RESIDENCIES,
    MAX_DURATION_SECONDS,
    MAX_MODEL_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TEXT_LENGTH,
    OPTIONAL_TEXT_FIELDS,
    REGION_PATTERN,
    SERVICE_TIERS,
    STATUSES,
    IngestLimits,
    ParsedBatch,
    UsageRecord,
    _Context,
    _event_id,
)
from cost_monitor.schema import CACHE_WRITE_LIFETIME_COLUMNS, TOKEN_COLUMNS


@cache
def _decoder(max_tokens: int) -> msgspec.json.Decoder:
    """Decodes a JSON array into records of a UsageRecord subclass whose fields carry the
    checks; the fields the plain shape leaves out accept only their default (or null)."""
    count = Annotated[int, msgspec.Meta(ge=0, le=max_tokens)]
    text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]
    short = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TAG_LENGTH)]
    model = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL_LENGTH)]
    duration = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION_SECONDS)]
    # re.search semantics: anchored, and \Z because $ would let a trailing newline through
    region = Annotated[str, msgspec.Meta(pattern=f"^(?:{REGION_PATTERN})\\Z")]
    fields = [
        ("time", str, msgspec.UNSET),  # made a datetime once checked
        ("event_id", str, msgspec.UNSET),  # made canonical, or a new one
        ("provider", str),
        ("model", model),
        ("operation", short, "chat"),
        ("source", short, "api"),
        ("status", Literal[tuple(sorted(STATUSES))], "ok"),
        *((name, text, None) for name in OPTIONAL_TEXT_FIELDS),
        *((name, count, 0) for name in TOKEN_COLUMNS),
        *((name, Literal[0], 0) for name in CACHE_WRITE_LIFETIME_COLUMNS),
        ("duration_seconds", duration, None),
        ("batch", bool, False),
        ("service_tier", Literal[tuple(sorted(SERVICE_TIERS))], None),
        ("data_residency", Literal[tuple(sorted(DATA_RESIDENCIES))], None),
        ("region", region, None),
        ("cost_usd", None, None),
        ("cost_source", None, None),
        ("metadata", None, None),
    ]
    unchecked = set(UsageRecord.__struct_fields__) - {field[0] for field in fields}
    if unchecked:
        raise RuntimeError(f"the plain record shape does not say how to check {unchecked}")
    plain = msgspec.defstruct(
        "PlainRecord", fields, bases=(UsageRecord,), kw_only=True, forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(list[plain])


def parse_plain_array(body: bytes, limits: IngestLimits, now: datetime) -> ParsedBatch | None:
    """The batch, when every record of the array body has the plain shape and is valid;
    None otherwise (the caller then validates the body the slow way)."""
    if b"\\u0000" in body:  # NUL is refused in every text; JSON can only spell it so
        return None
    try:
        records = _decoder(limits.max_tokens_per_field).decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec lets the latter through
        return None
    if len(records) > limits.max_batch_records:
        return None
    context = _Context(limits, now)
    providers, problems = context.providers, []
    unset = msgspec.UNSET
    for record in records:
        if record.provider not in providers:
            return None
        if record.time is unset:
            if record.event_id is not unset:
                return None  # an event_id needs its time: the slow path says so
            record.time = now
        else:
            record.time = context._time(record.time, problems)
        if record.event_id is unset:
            record.event_id = context.new_event_id()
        else:
            record.event_id = _event_id(record.event_id, problems)
        if problems:
            return None
    return ParsedBatch(records=records, received=len(records))
