"""Google Cloud billing export rows (standard usage cost export) as NDJSON or JSON files.

The rows are the BigQuery billing export's, extracted as newline-delimited JSON (``bq
extract --destination_format NEWLINE_DELIMITED_JSON``) or as a JSON array. Only rows of the
configured AI services are kept; the billed amount is ``cost`` plus its (negative) credits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from cost_monitor.collectors.files import open_exports
from cost_monitor.collectors.model import (
    DAY,
    HOUR,
    Collector,
    UsageBucket,
    bucket_width,
    parse_timestamp,
)

# service.description -> OTel gen_ai.provider.name
DEFAULT_SERVICES = {"Vertex AI": "gcp.vertex_ai", "Gemini API": "gcp.gemini"}
# SKU descriptions name the token kind, e.g. "Gemini 2.5 Flash Input Text Tokens" or
# "... Cached Input Tokens"; anything else (grounding, storage) is cost without tokens.
_TOKEN_KINDS = (
    ("cache storage", None),
    ("cached", "cache_read_tokens"),
    ("cache", "cache_read_tokens"),
    ("thinking", "reasoning_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("output", "output_tokens"),
    ("input", "input_tokens"),
)


def token_field(sku_description: str) -> str | None:
    lowered = sku_description.lower()
    if "token" not in lowered:
        return None
    for marker, field in _TOKEN_KINDS:
        if marker in lowered:
            return field
    return None


def read_rows(text: IO[str]) -> Iterator[Mapping[str, Any]]:
    """Rows from NDJSON, or from one JSON array (both are what exports produce)."""
    first = text.read(1)
    while first.isspace():
        first = text.read(1)
    if first == "[":
        yield from json.loads(first + text.read())
        return
    for number, line in enumerate([first + text.readline(), *text], start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as error:
                raise ValueError(f"line {number}: {error}") from None


def _decimal(value: Any) -> Decimal:
    # str() keeps the JSON float's shortest repr (0.1 stays 0.1, not its binary expansion).
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def buckets_from_rows(
    rows: Iterable[Mapping[str, Any]],
    since: datetime,
    until: datetime,
    services: Mapping[str, str] = DEFAULT_SERVICES,
) -> Iterator[UsageBucket]:
    """Buckets from billing export rows starting in [since, until) (pure)."""
    for row in rows:
        service = (row.get("service") or {}).get("description", "")
        if service not in services:
            continue
        start = parse_timestamp(row["usage_start_time"])
        if not since <= start < until:
            continue
        width = bucket_width(start, parse_timestamp(row["usage_end_time"]))
        sku = (row.get("sku") or {}).get("description", "")
        usage = row.get("usage") or {}
        tokens: dict[str, int] = {}
        field = token_field(sku)
        if field:
            tokens[field] = int(_decimal(usage.get("amount")).to_integral_value())
        credits = sum((_decimal(c.get("amount")) for c in row.get("credits") or []), Decimal(0))
        yield UsageBucket(
            bucket_start=start,
            bucket_seconds=width,
            provider=services[service],
            source=GcpBillingCollector.name,
            account=row.get("billing_account_id") or "",
            project=(row.get("project") or {}).get("id") or "",
            line_item=sku,
            cost_amount=_decimal(row.get("cost")) + credits,
            currency=row.get("currency") or "USD",
            **tokens,
        )


class GcpBillingCollector(Collector):
    name = "gcp_billing"
    provider = "gcp.vertex_ai"  # rows of the Gemini API service get gcp.gemini
    bucket_seconds = HOUR
    default_overlap_seconds = 3 * DAY  # export rows keep arriving for a day or more

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        if not config.get("path") and not config.get("urls"):
            raise ValueError("gcp_billing needs path (a directory or file) or urls")
        self.services = dict(config.get("services", DEFAULT_SERVICES))

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        for _name, text in open_exports(self.config, pattern="**/*.json*"):
            yield from buckets_from_rows(read_rows(text), since, until, self.services)
