"""The usage record: parsing an ingest body into validated records and per-field rejections.

Pure functions, no I/O. A batch is a JSON array, a single JSON object, or NDJSON (one object
per line). Every record is checked on its own, so one bad record never sinks the batch: the
caller stores the valid records and reports the rejected ones by index, field and reason.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
import orjson

from cost_monitor.schema import CACHE_WRITE_LIFETIME_COLUMNS, TOKEN_COUNT_COLUMNS

# OTel gen_ai.provider.name values (plus the ones LLM gateways commonly emit).
KNOWN_PROVIDERS = frozenset(
    {
        "openai",
        "anthropic",
        "aws.bedrock",
        "gcp.gemini",
        "gcp.vertex_ai",
        "gcp.gen_ai",
        "azure.ai.openai",
        "azure.ai.inference",
        "mistral_ai",
        "cohere",
        "deepseek",
        "groq",
        "perplexity",
        "x_ai",
        "ibm.watsonx.ai",
    }
)
# Common spellings that mean one of the names above.
PROVIDER_ALIASES = {
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}


def canonical_provider(name: str) -> str:
    """The OTel name for a provider spelling (``Bedrock`` -> ``aws.bedrock``)."""
    return PROVIDER_ALIASES.get(name.lower(), name.lower())


STATUSES = frozenset({"ok", "error", "timeout", "cancelled", "rate_limited", "content_filtered"})
SERVICE_TIERS = frozenset({"flex", "priority", "fast"})
# Where a request was processed, when the provider charges more for it: OpenAI's regional
# processing ("eu", "us") and FedRAMP endpoint, Anthropic's US-only inference ("us").
DATA_RESIDENCIES = frozenset({"global", "us", "eu", "fedramp"})
# A cloud location such as Vertex AI's "us-east5" or "global" (regional endpoints cost more).
REGION_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_REGION = re.compile(REGION_PATTERN)

# Alias -> canonical field. Native names win when a record carries both.
FIELD_ALIASES = {
    "gen_ai.provider.name": "provider",
    "gen_ai.system": "provider",
    "gen_ai.response.model": "model",
    "gen_ai.request.model": "model",
    "gen_ai.operation.name": "operation",
    "gen_ai.response.id": "request_id",
    "timestamp": "time",
    "duration": "duration_seconds",
    "cache_creation_tokens": "cache_write_tokens",
    "cached_tokens": "cache_read_tokens",
    # Anthropic's usage names (its input_tokens already exclude cached tokens, as ours do).
    "cache_creation_input_tokens": "cache_write_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "ephemeral_1h_input_tokens": "cache_write_1h_tokens",
    "ephemeral_12h_input_tokens": "cache_write_12h_tokens",
}
# OTel token counts are totals (input includes cached, output includes reasoning); the record
# keeps the parts apart, so these are converted rather than renamed.
OTEL_INPUT_TOTAL = "gen_ai.usage.input_tokens"
OTEL_OUTPUT_TOTAL = "gen_ai.usage.output_tokens"
OTEL_TOKEN_PARTS = {
    "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "cache_write_tokens",
    "gen_ai.usage.reasoning.output_tokens": "reasoning_tokens",
}

ALIAS_NAMES = frozenset([*FIELD_ALIASES, *OTEL_TOKEN_PARTS, OTEL_INPUT_TOTAL, OTEL_OUTPUT_TOTAL])
TOKEN_FIELDS = TOKEN_COUNT_COLUMNS
OPTIONAL_TEXT_FIELDS = ("project", "customer_id", "user_id", "api_key_id", "feature", "request_id")
MAX_TEXT_LENGTH = 256
MAX_MODEL_LENGTH = 200
MAX_TAG_LENGTH = 64  # operation and source
MAX_METADATA_BYTES = 8192
MAX_DURATION_SECONDS = 86400.0
MAX_BILLED_COST_USD = Decimal(1_000_000)


@dataclass(frozen=True)
class IngestLimits:
    max_tokens_per_field: int = 100_000_000
    max_future_seconds: float = 300.0
    max_age_days: int = 400
    max_batch_records: int = 10_000
    extra_providers: frozenset[str] = frozenset()


class UsageRecord(msgspec.Struct):
    """One LLM call's usage. A msgspec Struct rather than a dataclass: ingest builds one per
    record, and the fast path (typed_batch) decodes JSON straight into a subclass of it."""

    time: datetime
    event_id: str  # canonical lowercase UUID text
    provider: str
    model: str
    operation: str = "chat"
    project: str | None = None
    customer_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    feature: str | None = None
    request_id: str | None = None
    source: str = "api"
    status: str = "ok"
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    cost_source: str | None = None
    duration_seconds: float | None = None
    metadata: dict[str, Any] | None = None
    batch: bool = False
    service_tier: str | None = None
    data_residency: str | None = None
    region: str | None = None
    cache_write_1h_tokens: int = 0  # of cache_write_tokens
    cache_write_12h_tokens: int = 0  # of cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.output_tokens
            + self.reasoning_tokens
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int | None  # position in the batch (NDJSON: line number from 0); None = whole body
    field: str | None
    reason: str
    code: str  # low-cardinality reason for the rejects metric

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass
class ParsedBatch:
    records: list[UsageRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    received: int = 0


K = TypeVar("K", bound=Hashable)


def grouped(
    records: Iterable[UsageRecord], key: Callable[[UsageRecord], K]
) -> dict[K, list[UsageRecord]]:
    """The records by key, each group in the records' order (one pass, no sort): a batch's
    records are priced and counted a group at a time."""
    groups: dict[K, list[UsageRecord]] = {}
    for record in records:
        terms = key(record)
        group = groups.get(terms)
        if group is None:
            groups[terms] = [record]
        else:
            group.append(record)
    return groups


class BodyError(ValueError):
    """The body as a whole cannot be read as a batch (nothing in it is stored)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def parse_body(
    body: bytes, content_type: str, limits: IngestLimits, now: datetime | None = None
) -> ParsedBatch:
    """Parse a JSON array/object or NDJSON body and validate every record in it."""
    now = now or datetime.now(UTC)
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        return _parse_ndjson(body, limits, now)
    _refuse_if_over_limit(body, limits.max_batch_records)
    from cost_monitor.typed_batch import parse_plain_array  # it builds on this module

    plain = parse_plain_array(body, limits, now)
    if plain is not None:
        return plain
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BodyError(f"malformed JSON: {error}", "malformed_json") from None
    if isinstance(document, dict):
        items: list[Any] = [document]
    elif isinstance(document, list):
        items = document
    else:
        raise BodyError("body must be a JSON array of records or one record object", "wrong_type")
    if len(items) > limits.max_batch_records:
        raise BodyError(
            f"batch has {len(items)} records; the limit is {limits.max_batch_records}",
            "batch_too_large",
        )
    return validate_items(enumerate(items), limits, now, received=len(items))


# A body with fewer commas than this many is parsed whole at once: the Python objects of
# its top-level items (at most one per comma) stay within tens of MB whatever they are.
DENSE_BODY_COMMAS = 500_000
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _too_large(limit: int) -> BodyError:
    return BodyError(f"batch has more than {limit} records (the limit)", "batch_too_large")


def _refuse_if_over_limit(body: bytes, limit: int) -> None:
    """Refuse a JSON array of more than ``limit`` items before it becomes Python objects.

    Items are at most commas + 1, so most bodies pass on one count of the commas. A body
    dense in commas (millions of tiny items, say) has its top-level items counted one by one,
    stopping at the first item over the limit.
    """
    commas = body.count(b",")
    if commas < limit or commas < DENSE_BODY_COMMAS:
        return
    if count_array_items(body, limit + 1) > limit:
        raise _too_large(limit)


def count_array_items(body: bytes, stop_at: int) -> int:
    """Top-level items of a JSON array body, counted up to ``stop_at``; a body that is not
    an array, or malformed, counts what was read (the parser reports it afterwards)."""
    text = body.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    index = _WHITESPACE.match(text).end()
    if not text.startswith("[", index):
        return 0
    index = _WHITESPACE.match(text, index + 1).end()
    count = 0
    while count < stop_at and not text.startswith("]", index):
        try:
            _, index = decoder.raw_decode(text, index)
        except (ValueError, RecursionError):
            return count
        count += 1
        index = _WHITESPACE.match(text, index).end()
        if not text.startswith(",", index):
            return count
        index = _WHITESPACE.match(text, index + 1).end()
    return count


def _parse_ndjson(body: bytes, limits: IngestLimits, now: datetime) -> ParsedBatch:
    if body.count(b"\n") >= limits.max_batch_records:
        # Maybe too many lines: count the non-blank ones, stopping past the limit.
        nonblank = 0
        for line in io.BytesIO(body):
            if line.strip():
                nonblank += 1
                if nonblank > limits.max_batch_records:
                    raise _too_large(limits.max_batch_records)
    lines = [line for line in body.split(b"\n") if line.strip()]
    items: list[tuple[int, Any]] = []
    malformed: list[Rejection] = []
    for index, line in enumerate(lines):
        try:
            items.append((index, orjson.loads(line)))
        except orjson.JSONDecodeError as error:
            malformed.append(Rejection(index, None, f"malformed JSON: {error}", "malformed_json"))
    parsed = validate_items(items, limits, now, received=len(lines))
    parsed.rejections = sorted(malformed + parsed.rejections, key=lambda r: r.index or 0)
    return parsed


def validate_items(
    items: Iterable[tuple[int, Any]], limits: IngestLimits, now: datetime, received: int
) -> ParsedBatch:
    parsed = ParsedBatch(received=received)
    context = _Context(limits, now)
    for index, item in items:
        if not isinstance(item, dict):
            parsed.rejections.append(
                Rejection(index, None, "record must be a JSON object", "wrong_type")
            )
            continue
        record, problems = context.validate(item)
        if problems:
            parsed.rejections.extend(
                Rejection(index, name, reason, code) for name, reason, code in problems
            )
        elif record is not None:
            parsed.records.append(record)
    return parsed


Problem = tuple[str, str, str]  # field, reason, code


class _Context:
    """Validation state shared by the records of one batch (limits and the clock)."""

    def __init__(self, limits: IngestLimits, now: datetime) -> None:
        self.limits = limits
        self.now = now
        self.latest = now + timedelta(seconds=limits.max_future_seconds)
        self.earliest = now - timedelta(days=limits.max_age_days)
        self.providers = KNOWN_PROVIDERS | limits.extra_providers
        self._ids: list[str] = []

    def new_event_id(self) -> str:
        """A new (version 7) UUID; made 256 at a time, consecutive, for one clock read and
        one os.urandom call per 256."""
        if not self._ids:
            self._ids = new_event_ids(256)
        return self._ids.pop()

    def validate(self, raw: Mapping[str, Any]) -> tuple[UsageRecord | None, list[Problem]]:
        problems: list[Problem] = []
        if raw.keys().isdisjoint(ALIAS_NAMES):
            item = raw
            fields = self._native_tokens(item, problems)
        else:
            item = _canonical_names(raw)
            fields = self._tokens(raw, item, problems)
        record_time = self._time(item.get("time"), problems)
        if item.get("time") is None and item.get("event_id") is not None:
            problems.append(
                (
                    "time",
                    "required with event_id: events are keyed by time and event_id, so a"
                    " resend without its time would be stored again",
                    "missing",
                )
            )
        provider = self._provider(item.get("provider"), problems)
        # Each check inlines its common case (present and valid, or absent) and leaves the
        # explaining to the helper: this runs once per record on the ingest path.
        model = item.get("model")
        if not (type(model) is str and 0 < len(model) <= MAX_MODEL_LENGTH and "\x00" not in model):
            model = _text(item, "model", problems, required=True, max_length=MAX_MODEL_LENGTH)
        operation = item.get("operation")
        if not (
            type(operation) is str
            and 0 < len(operation) <= MAX_TAG_LENGTH
            and "\x00" not in operation
        ):
            operation = _text(item, "operation", problems, max_length=MAX_TAG_LENGTH) or "chat"
        source = item.get("source")
        if not (type(source) is str and 0 < len(source) <= MAX_TAG_LENGTH and "\x00" not in source):
            source = _text(item, "source", problems, max_length=MAX_TAG_LENGTH) or "api"
        status = item.get("status")
        if status is None:
            status = "ok"
        elif not (type(status) is str and status in STATUSES):
            status = self._status(status, problems)
        # fields: the token counts so far, then the optional texts (one ** at the end).
        for name in OPTIONAL_TEXT_FIELDS:
            value = item.get(name)
            # Inline common case (short text or absent); _text explains anything else.
            if value is None or (
                type(value) is str and 0 < len(value) <= MAX_TEXT_LENGTH and "\x00" not in value
            ):
                fields[name] = value
            else:
                fields[name] = _text(item, name, problems)
        event_id = item.get("event_id")
        if event_id is not None:
            event_id = _event_id(event_id, problems)
        cost = item.get("cost_usd")
        if cost is not None:
            cost = _billed_cost(cost, problems)
        duration = item.get("duration_seconds")
        if type(duration) is float and 0 <= duration <= MAX_DURATION_SECONDS:
            pass
        elif duration is not None:
            duration = _duration(duration, problems)
        metadata = item.get("metadata")
        if metadata is not None:
            metadata = _metadata(metadata, problems)
        batch = item.get("batch", False)
        if not isinstance(batch, bool):
            problems.append(("batch", "must be true or false", "wrong_type"))
        tier = item.get("service_tier")
        if tier is not None and (not isinstance(tier, str) or tier not in SERVICE_TIERS):
            problems.append(
                ("service_tier", f"must be one of {sorted(SERVICE_TIERS)}", "out_of_range")
            )
        residency = item.get("data_residency")
        if residency is not None and (
            not isinstance(residency, str) or residency not in DATA_RESIDENCIES
        ):
            problems.append(
                ("data_residency", f"must be one of {sorted(DATA_RESIDENCIES)}", "out_of_range")
            )
        region = item.get("region")
        if region is not None and (not isinstance(region, str) or not _REGION.fullmatch(region)):
            problems.append(
                ("region", "must be a cloud location such as us-east5 or global", "wrong_type")
            )
        if problems:
            return None, problems
        return (
            UsageRecord(
                time=record_time,  # type: ignore[arg-type]
                event_id=event_id or self.new_event_id(),
                provider=provider,  # type: ignore[arg-type]
                model=model,  # type: ignore[arg-type]
                operation=operation,
                source=source,
                status=status,
                cost_usd=cost,
                cost_source="billed" if cost is not None else None,
                duration_seconds=duration,
                metadata=metadata,
                batch=batch,
                service_tier=tier,
                data_residency=residency,
                region=region,
                **fields,
            ),
            [],
        )

    def _native_tokens(self, item: Mapping[str, Any], problems: list[Problem]) -> dict[str, int]:
        counts: dict[str, int] = {}
        limit = self.limits.max_tokens_per_field
        for name in TOKEN_FIELDS:
            value = item.get(name)
            if value is None:
                continue
            if type(value) is int and 0 <= value <= limit:
                counts[name] = value
            else:
                self._token_count(name, value, problems)
        if counts.keys().isdisjoint(CACHE_WRITE_LIFETIME_COLUMNS):
            return counts
        self._cache_write_lifetimes(counts, problems)
        return counts

    @staticmethod
    def _cache_write_lifetimes(counts: dict[str, int], problems: list[Problem]) -> None:
        """cache_write_tokens is the total of every lifetime; without it, the parts' sum."""
        longer = sum(counts.get(name, 0) for name in CACHE_WRITE_LIFETIME_COLUMNS)
        total = counts.setdefault("cache_write_tokens", longer)
        if longer > total:
            problems.append(
                (
                    "cache_write_tokens",
                    f"{total} is the total of cache writes, but the 1-hour and 12-hour writes"
                    f" alone are {longer}",
                    "inconsistent",
                )
            )

    def _tokens(
        self, raw: Mapping[str, Any], item: Mapping[str, Any], problems: list[Problem]
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in TOKEN_FIELDS:
            if name in item and self._token_count(name, item[name], problems):
                counts[name] = item[name]
        for alias, name in OTEL_TOKEN_PARTS.items():
            if name not in item and alias in raw:
                value = raw[alias]
                if self._token_count(alias, value, problems):
                    counts[name] = value
        self._cache_write_lifetimes(counts, problems)
        # OTel totals: the uncached/visible part is what remains after the named parts.
        for alias, name, parts in (
            (OTEL_INPUT_TOTAL, "input_tokens", ("cache_read_tokens", "cache_write_tokens")),
            (OTEL_OUTPUT_TOTAL, "output_tokens", ("reasoning_tokens",)),
        ):
            if name in item or alias not in raw:
                continue
            total = raw[alias]
            if not self._token_count(alias, total, problems):
                continue
            remainder = total - sum(counts.get(part, 0) for part in parts)
            if remainder < 0:
                problems.append(
                    (
                        alias,
                        f"total {total} is smaller than its parts {list(parts)}",
                        "inconsistent",
                    )
                )
            else:
                counts[name] = remainder
        return counts

    def _token_count(self, name: str, value: Any, problems: list[Problem]) -> bool:
        if type(value) is not int:
            problems.append((name, "must be a whole number", "wrong_type"))
            return False
        if value < 0:
            problems.append((name, "must not be negative", "out_of_range"))
            return False
        if value > self.limits.max_tokens_per_field:
            problems.append(
                (name, f"exceeds {self.limits.max_tokens_per_field} tokens", "out_of_range")
            )
            return False
        return True

    def _time(self, value: Any, problems: list[Problem]) -> datetime | None:
        if value is None:
            return self.now
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                problems.append(("time", "not an RFC 3339 timestamp", "wrong_type"))
                return None
            if moment.tzinfo is None:
                problems.append(("time", "timestamp needs a UTC offset, e.g. Z", "wrong_type"))
                return None
            if moment.tzinfo is not UTC:
                moment = moment.astimezone(UTC)
        elif type(value) in (int, float):
            try:
                moment = datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                problems.append(("time", "epoch seconds out of range", "out_of_range"))
                return None
        else:
            problems.append(("time", "must be an RFC 3339 string or epoch seconds", "wrong_type"))
            return None
        if moment > self.latest:
            problems.append(("time", "timestamp is in the future", "future_time"))
            return None
        if moment < self.earliest:
            problems.append(("time", f"older than {self.limits.max_age_days} days", "out_of_range"))
            return None
        return moment

    def _provider(self, value: Any, problems: list[Problem]) -> str | None:
        if type(value) is str and value in self.providers:
            return value
        if not isinstance(value, str) or not value:
            problems.append(("provider", "required text", "missing"))
            return None
        provider = canonical_provider(value)
        if provider not in self.providers:
            problems.append(("provider", f"unknown provider {value[:64]!r}", "unknown_provider"))
            return None
        return provider

    def _status(self, value: Any, problems: list[Problem]) -> str:
        if value is None:
            return "ok"
        if not isinstance(value, str) or value not in STATUSES:
            problems.append(("status", f"must be one of {sorted(STATUSES)}", "out_of_range"))
            return "ok"
        return str(value)


# The 62 bits after a UUID's variant: 14 random ones, then a 48-bit counter.
_COUNTER_SPAN = 1 << 48


def new_event_ids(count: int) -> list[str]:
    """``count`` distinct version 7 UUIDs as text (RFC 9562, with a dedicated counter).

    The first 48 bits are the Unix time in milliseconds, then 26 random bits, then a counter
    from a random start: the ids of one call are consecutive, so the rows of a batch land
    side by side in the (event_id, time) index rather than on random pages, and one
    formatted integer per id costs less than random hex cut into groups.
    """
    millis = time.time_ns() // 1_000_000
    bits = int.from_bytes(os.urandom(12), "big")
    start = (bits >> 26) % (_COUNTER_SPAN - count)
    prefix = f"{millis >> 16:08x}-{millis & 0xFFFF:04x}-7{bits & 0xFFF:03x}-"
    prefix += f"{0x8000 | (bits >> 12) & 0x3FFF:04x}-"
    return [f"{prefix}{n:012x}" for n in range(start, start + count)]


def _canonical_names(raw: Mapping[str, Any]) -> dict[str, Any]:
    item = dict(raw)
    for alias, name in FIELD_ALIASES.items():
        if alias in raw and name not in raw:
            item[name] = raw[alias]
    return item


def _text(
    item: Mapping[str, Any],
    name: str,
    problems: list[Problem],
    required: bool = False,
    max_length: int = MAX_TEXT_LENGTH,
) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            problems.append((name, "required text", "missing"))
        return None
    if not isinstance(value, str):
        problems.append((name, "must be text", "wrong_type"))
        return None
    if len(value) > max_length or "\x00" in value:
        problems.append((name, f"longer than {max_length} characters or has NUL", "out_of_range"))
        return None
    return value


def _event_id(value: Any, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(("event_id", "must be a UUID string", "wrong_type"))
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        problems.append(("event_id", "must be a UUID string", "wrong_type"))
        return None


_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _billed_cost(value: Any, problems: list[Problem]) -> Decimal | None:
    if value is None:
        return None
    if type(value) in (int, float) or isinstance(value, str):
        try:
            cost = Decimal(str(value))
        except InvalidOperation:
            problems.append(("cost_usd", "not a number", "wrong_type"))
            return None
        if not cost.is_finite() or cost.is_signed() or cost > MAX_BILLED_COST_USD:
            problems.append(
                ("cost_usd", f"must be between 0 and {MAX_BILLED_COST_USD}", "out_of_range")
            )
            return None
        # Decimal() also reads "1_000", " 1.5", "1e3" and non-ASCII digits: a string is
        # taken only in the plain form every client library writes.
        if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value) is None:
            problems.append(("cost_usd", "not a plain decimal such as 0.0125", "wrong_type"))
            return None
        return cost
    problems.append(("cost_usd", "must be a number or a decimal string", "wrong_type"))
    return None


def _duration(value: Any, problems: list[Problem]) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float):
        problems.append(("duration_seconds", "must be a number", "wrong_type"))
        return None
    if not 0 <= value <= MAX_DURATION_SECONDS:
        problems.append(
            ("duration_seconds", f"must be between 0 and {MAX_DURATION_SECONDS}", "out_of_range")
        )
        return None
    return float(value)


def _metadata(value: Any, problems: list[Problem]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(("metadata", "must be a JSON object", "wrong_type"))
        return None
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        problems.append(("metadata", "nested too deeply to store", "out_of_range"))
        return None
    if len(encoded) > MAX_METADATA_BYTES:
        problems.append(("metadata", f"larger than {MAX_METADATA_BYTES} bytes", "out_of_range"))
        return None
    if b"\\u0000" in encoded:
        # PostgreSQL's jsonb cannot hold NUL; storing it would fail the whole COPY.
        problems.append(("metadata", "must not contain NUL characters", "out_of_range"))
        return None
    return value
