"""Anthropic Admin API: Messages usage report and cost report.

Endpoints: GET /v1/organizations/usage_report/messages and /v1/organizations/cost_report,
with an Admin key in ``x-api-key`` and ``anthropic-version``; both page with ``has_more`` /
``next_page``. Cost amounts are decimal strings in cents ("123.45" USD is $1.2345).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cost_monitor.collectors.http import HttpClient, client_from_config, get_cursor_pages
from cost_monitor.collectors.model import (
    DAY,
    HOUR,
    Collector,
    UsageBucket,
    configured_width,
    count_field,
    parse_timestamp,
)
from cost_monitor.collectors.secrets import read_secret

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
BUCKET_WIDTHS = {"1d": DAY, "1h": HOUR}
MAX_BUCKETS_PER_PAGE = {"1d": 31, "1h": 168}
USAGE_GROUP_BY = ["model", "workspace_id", "api_key_id", "service_tier"]
COST_GROUP_BY = ["workspace_id", "description"]
CENTS_PER_UNIT = Decimal(100)


def _client(config: Mapping[str, Any]) -> HttpClient:
    key = read_secret(config, "api_key", default_env="ANTHROPIC_ADMIN_KEY")
    headers = {"x-api-key": key, "anthropic-version": API_VERSION}
    return client_from_config(config, DEFAULT_BASE_URL, headers)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tier(result: Mapping[str, Any]) -> str:
    tier = result.get("service_tier") or ""
    return "" if tier == "standard" else tier


def usage_buckets_from_page(
    page: Mapping[str, Any], account: str, bucket_seconds: int
) -> Iterator[UsageBucket]:
    """Buckets from one usage report page (pure: the recorded-payload tests call this)."""
    for time_bucket in page.get("data", []):
        start = parse_timestamp(time_bucket["starting_at"])
        for result in time_bucket.get("results", []):
            cache_creation = result.get("cache_creation") or {}
            yield UsageBucket(
                bucket_start=start,
                bucket_seconds=bucket_seconds,
                provider=AnthropicUsageCollector.provider,
                source=AnthropicUsageCollector.name,
                account=account,
                project=result.get("workspace_id") or "",  # null: the default workspace
                model=result.get("model") or "",
                operation="chat",
                api_key_id=result.get("api_key_id") or "",
                line_item=_tier(result),
                # uncached_input_tokens already excludes cache reads and cache writes.
                input_tokens=count_field(result, "uncached_input_tokens"),
                cache_read_tokens=count_field(result, "cache_read_input_tokens"),
                cache_write_tokens=count_field(cache_creation, "ephemeral_5m_input_tokens")
                + count_field(cache_creation, "ephemeral_1h_input_tokens"),
                cache_write_1h_tokens=count_field(cache_creation, "ephemeral_1h_input_tokens"),
                # Thinking tokens are billed and reported inside output_tokens.
                output_tokens=count_field(result, "output_tokens"),
            )


def cost_buckets_from_page(page: Mapping[str, Any], account: str) -> Iterator[UsageBucket]:
    """Buckets from one cost report page, amounts converted from cents with Decimal."""
    for time_bucket in page.get("data", []):
        start = parse_timestamp(time_bucket["starting_at"])
        for result in time_bucket.get("results", []):
            line_item = result.get("description") or result.get("token_type") or ""
            yield UsageBucket(
                bucket_start=start,
                bucket_seconds=DAY,
                provider=AnthropicCostsCollector.provider,
                source=AnthropicCostsCollector.name,
                account=account,
                project=result.get("workspace_id") or "",
                model=result.get("model") or "",
                operation=result.get("cost_type") or "",
                line_item=line_item,
                cost_amount=Decimal(str(result["amount"])) / CENTS_PER_UNIT,
                currency=str(result.get("currency") or "USD").upper(),
            )


class AnthropicUsageCollector(Collector):
    name = "anthropic_usage"
    provider = "anthropic"

    def __init__(self, config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(config)
        self.width = configured_width(config, BUCKET_WIDTHS)
        self.bucket_seconds = BUCKET_WIDTHS[self.width]
        self.http = http or _client(config)

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        params = {
            "starting_at": _rfc3339(since),
            "ending_at": _rfc3339(until),
            "bucket_width": self.width,
            "group_by[]": USAGE_GROUP_BY,
            "limit": MAX_BUCKETS_PER_PAGE[self.width],
        }
        pages = get_cursor_pages(self.http, "v1/organizations/usage_report/messages", params)
        for page in pages:
            yield from usage_buckets_from_page(page, self.account, self.bucket_seconds)


class AnthropicCostsCollector(Collector):
    name = "anthropic_costs"
    provider = "anthropic"
    bucket_seconds = DAY  # the cost report only has daily buckets

    def __init__(self, config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(config)
        self.http = http or _client(config)

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        params = {
            "starting_at": _rfc3339(since),
            "ending_at": _rfc3339(until),
            "bucket_width": "1d",
            "group_by[]": COST_GROUP_BY,
            "limit": 31,
        }
        pages = get_cursor_pages(self.http, "v1/organizations/cost_report", params)
        for page in pages:
            yield from cost_buckets_from_page(page, self.account)
