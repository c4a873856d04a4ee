"""A fast path for the common ingest body: a JSON array of plain, valid records.

msgspec decodes such a body straight into typed structs, checking types and bounds in C while
it parses. It covers only the common shape: native field names, the five token counts, the
optional texts, a duration, the batch flag, the service tier, the data residency and the region.
Anything else falls back to ``records.validate_items``, which
reads the body again and reports each problem by index, field and reason. That fallback
happens for any unexpected field, alias, null, out-of-range value, NUL character, unknown
provider or status, and any time the slow path would refuse, so the fast path never has to
explain a rejection. What it accepts, it turns into the very records the slow path would.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

import msgspec

from cost_monitor.records import (
    DATA_RESIDENCIES,
    MAX_DURATION_SECONDS,
    MAX_MODEL_LENGTH,
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
from cost_monitor.schema import TOKEN_COLUMNS

_SHORT_TEXT = 64  # operation and source


@cache
def _decoder(max_tokens: int) -> msgspec.json.Decoder:
    count = Annotated[int, msgspec.Meta(ge=0, le=max_tokens)]
    text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]
    short = Annotated[str, msgspec.Meta(min_length=1, max_length=_SHORT_TEXT)]
    model = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL_LENGTH)]
    duration = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION_SECONDS)]
    # re.search semantics: anchored, and \Z because $ would let a trailing newline through
    region = Annotated[str, msgspec.Meta(pattern=f"^(?:{REGION_PATTERN})\\Z")]
    plain = msgspec.defstruct(
        "PlainRecord",
        [
            ("provider", str),
            ("model", model),
            ("time", str, msgspec.UNSET),
            ("event_id", str, msgspec.UNSET),
            ("operation", short, "chat"),
            ("source", short, "api"),
            ("status", str, "ok"),
            *((name, text, None) for name in OPTIONAL_TEXT_FIELDS),
            *((name, count, 0) for name in TOKEN_COLUMNS),
            ("duration_seconds", duration, msgspec.UNSET),
            ("batch", bool, False),
            ("service_tier", Literal[tuple(sorted(SERVICE_TIERS))], None),
            ("data_residency", Literal[tuple(sorted(DATA_RESIDENCIES))], None),
            ("region", region, None),
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(list[plain])


def parse_plain_array(body: bytes, limits: IngestLimits, now: datetime) -> ParsedBatch | None:
    """The batch, when every record of the array body has the plain shape and is valid;
    None otherwise (the caller then validates the body the slow way)."""
    if b"\\u0000" in body:  # NUL is refused in every text; JSON can only spell it so
        return None
    try:
        plain = _decoder(limits.max_tokens_per_field).decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if len(plain) > limits.max_batch_records:
        return None
    context = _Context(limits, now)
    providers, problems = context.providers, []
    parsed = ParsedBatch(received=len(plain))
    records = parsed.records
    for item in plain:
        if item.provider not in providers or item.status not in STATUSES:
            return None
        if item.time is msgspec.UNSET:
            if item.event_id is not msgspec.UNSET:
                return None  # an event_id needs its time: the slow path says so
            moment: Any = now
        else:
            moment = context._time(item.time, problems)
            if problems:
                return None
        event_id = None
        if item.event_id is not msgspec.UNSET:
            event_id = _event_id(item.event_id, problems)
            if problems:
                return None
        duration = item.duration_seconds
        records.append(
            UsageRecord(
                time=moment,
                event_id=event_id or context.new_event_id(),
                provider=item.provider,
                model=item.model,
                operation=item.operation,
                source=item.source,
                status=item.status,
                project=item.project,
                customer_id=item.customer_id,
                user_id=item.user_id,
                api_key_id=item.api_key_id,
                feature=item.feature,
                request_id=item.request_id,
                input_tokens=item.input_tokens,
                cache_read_tokens=item.cache_read_tokens,
                cache_write_tokens=item.cache_write_tokens,
                output_tokens=item.output_tokens,
                reasoning_tokens=item.reasoning_tokens,
                duration_seconds=None if duration is msgspec.UNSET else float(duration),
                batch=item.batch,
                service_tier=item.service_tier,
                data_residency=item.data_residency,
                region=item.region,
            )
        )
    return parsed
