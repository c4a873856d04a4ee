"""OpenAI organization Usage API (completions, embeddings) and Costs API.

Endpoints: GET /v1/organization/usage/{completions,embeddings} and /v1/organization/costs,
with an Admin key as bearer token. Both page with ``has_more`` / ``next_page``.
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

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BUCKET_WIDTHS = {"1d": DAY, "1h": HOUR}
MAX_BUCKETS_PER_PAGE = {"1d": 31, "1h": 168}
# The OTel gen_ai.operation.name each usage endpoint reports.
USAGE_ENDPOINTS = {"completions": "chat", "embeddings": "embeddings"}
GROUP_BY = {
    "completions": ["project_id", "model", "api_key_id", "batch"],
    "embeddings": ["project_id", "model", "api_key_id"],
}


def _client(config: Mapping[str, Any]) -> HttpClient:
    key = read_secret(config, "api_key", default_env="OPENAI_ADMIN_KEY")
    return client_from_config(config, DEFAULT_BASE_URL, {"Authorization": f"Bearer {key}"})


def usage_buckets_from_page(
    page: Mapping[str, Any], endpoint: str, account: str, bucket_seconds: int
) -> Iterator[UsageBucket]:
    """Buckets from one Usage API page (pure: the recorded-payload tests call this)."""
    for time_bucket in page.get("data", []):
        start = parse_timestamp(time_bucket["start_time"])
        for result in time_bucket.get("results", []):
            # input_tokens includes cached reads and cache writes: keep the three apart.
            total_input = count_field(result, "input_tokens")
            cache_read = count_field(result, "input_cached_tokens")
            cache_write = count_field(result, "input_cache_write_tokens")
            yield UsageBucket(
                bucket_start=start,
                bucket_seconds=bucket_seconds,
                provider=OpenAIUsageCollector.provider,
                source=OpenAIUsageCollector.name,
                account=account,
                project=result.get("project_id") or "",
                model=result.get("model") or "",
                operation=USAGE_ENDPOINTS[endpoint],
                api_key_id=result.get("api_key_id") or "",
                line_item="batch" if result.get("batch") else "",
                input_tokens=max(total_input - cache_read - cache_write, 0),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                # The Usage API does not report reasoning tokens apart from output.
                output_tokens=count_field(result, "output_tokens"),
                requests=count_field(result, "num_model_requests"),
            )


def cost_buckets_from_page(page: Mapping[str, Any], account: str) -> Iterator[UsageBucket]:
    """Buckets from one Costs API page: billed amounts per project and line item."""
    for time_bucket in page.get("data", []):
        start = parse_timestamp(time_bucket["start_time"])
        for result in time_bucket.get("results", []):
            amount = result.get("amount") or {}
            line_item = result.get("line_item") or ""
            # Line items read "<model>, <kind>" (e.g. "gpt-4o-2024-08-06, input") for model usage.
            model = line_item.split(", ", 1)[0] if ", " in line_item else ""
            yield UsageBucket(
                bucket_start=start,
                bucket_seconds=DAY,
                provider=OpenAICostsCollector.provider,
                source=OpenAICostsCollector.name,
                account=account,
                project=result.get("project_id") or "",
                model=model,
                line_item=line_item,
                # str() first: the JSON float 0.1 must become Decimal("0.1"), not its binary.
                cost_amount=Decimal(str(amount.get("value", 0))),
                currency=str(amount.get("currency") or "usd").upper(),
            )


class OpenAIUsageCollector(Collector):
    name = "openai_usage"
    provider = "openai"

    def __init__(self, config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(config)
        self.width = configured_width(config, BUCKET_WIDTHS)
        self.bucket_seconds = BUCKET_WIDTHS[self.width]
        self.endpoints = list(config.get("endpoints", USAGE_ENDPOINTS))
        unknown = set(self.endpoints) - set(USAGE_ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown OpenAI usage endpoints: {sorted(unknown)}")
        self.http = http or _client(config)

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        for endpoint in self.endpoints:
            params = {
                "start_time": int(since.timestamp()),
                "end_time": int(until.timestamp()),
                "bucket_width": self.width,
                "group_by": GROUP_BY[endpoint],
                "limit": MAX_BUCKETS_PER_PAGE[self.width],
            }
            pages = get_cursor_pages(self.http, f"organization/usage/{endpoint}", params)
            for page in pages:
                yield from usage_buckets_from_page(
                    page, endpoint, self.account, self.bucket_seconds
                )


class OpenAICostsCollector(Collector):
    name = "openai_costs"
    provider = "openai"
    bucket_seconds = DAY  # the Costs API only has daily buckets

    def __init__(self, config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(config)
        self.http = http or _client(config)

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        params = {
            "start_time": int(since.timestamp()),
            "end_time": int(until.timestamp()),
            "bucket_width": "1d",
            "group_by": ["project_id", "line_item"],
            "limit": 31,
        }
        pages = get_cursor_pages(self.http, "organization/costs", params)
        for page in pages:
            yield from cost_buckets_from_page(page, self.account)
