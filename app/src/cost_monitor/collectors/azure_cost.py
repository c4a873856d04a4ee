"""Azure OpenAI billed cost from the Cost Management Query API.

POST {scope}/providers/Microsoft.CostManagement/query?api-version=... with a bearer token;
the result is a table (``properties.columns`` + ``properties.rows``) and further pages are
fetched by POSTing the same body to ``properties.nextLink``. Daily granularity only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from cost_monitor.collectors.http import HttpClient, client_from_config, paginate
from cost_monitor.collectors.model import DAY, Collector, UsageBucket, parse_timestamp
from cost_monitor.collectors.secrets import read_secret

DEFAULT_BASE_URL = "https://management.azure.com"
DEFAULT_API_VERSION = "2025-03-01"
DEFAULT_SERVICE_NAMES = ("Cognitive Services",)
DEFAULT_GROUP_BY = ("ResourceGroupName", "MeterSubCategory", "Meter")
COST_COLUMNS = ("cost", "pretaxcost", "costusd", "totalcost")
CURRENCY_COLUMNS = ("currency", "billingcurrency")
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)


def query_body(
    since: datetime,
    until: datetime,
    cost_type: str = "ActualCost",
    service_names: Sequence[str] = DEFAULT_SERVICE_NAMES,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
) -> dict[str, Any]:
    return {
        "type": cost_type,
        "timeframe": "Custom",
        "timePeriod": {
            "from": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [{"type": "Dimension", "name": name} for name in group_by],
            "filter": {
                "dimensions": {
                    "name": "ServiceName",
                    "operator": "In",
                    "values": list(service_names),
                }
            },
        },
    }


def _usage_date(value: Any) -> datetime:
    # Daily rows carry UsageDate as the number 20261101; some API versions send ISO text.
    text = str(value)
    if text.isdigit() and len(text) == 8:
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return parse_timestamp(text)


def _find(columns: Mapping[str, int], candidates: Sequence[str]) -> int | None:
    return next((columns[name] for name in candidates if name in columns), None)


def buckets_from_page(page: Mapping[str, Any], account: str) -> Iterator[UsageBucket]:
    """Buckets from one query result page (pure: the recorded-payload tests call this)."""
    properties = page.get("properties") or {}
    columns = {
        column["name"].lower(): index for index, column in enumerate(properties.get("columns", []))
    }
    cost_at, currency_at = _find(columns, COST_COLUMNS), _find(columns, CURRENCY_COLUMNS)
    date_at = columns.get("usagedate")
    if cost_at is None or date_at is None:
        raise ValueError(f"query result lacks a cost or UsageDate column: {sorted(columns)}")

    def text(row: Sequence[Any], name: str) -> str:
        index = columns.get(name)
        return "" if index is None or row[index] is None else str(row[index])

    for row in properties.get("rows", []):
        meter = " / ".join(
            part for part in (text(row, "metersubcategory"), text(row, "meter")) if part
        )
        yield UsageBucket(
            bucket_start=_usage_date(row[date_at]),
            bucket_seconds=DAY,
            provider=AzureCostCollector.provider,
            source=AzureCostCollector.name,
            account=account,
            project=text(row, "resourcegroupname") or text(row, "resourcegroup"),
            line_item=meter,
            cost_amount=Decimal(str(row[cost_at])),
            currency=(str(row[currency_at]) if currency_at is not None else "USD").upper(),
        )


def next_link(page: Mapping[str, Any]) -> str | None:
    return (page.get("properties") or {}).get("nextLink") or None


class AzureCostCollector(Collector):
    name = "azure_cost"
    provider = "azure.ai.openai"
    bucket_seconds = DAY

    def __init__(self, config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(config)
        self.scope = str(config.get("scope", "")).strip("/")
        if not self.scope:
            raise ValueError("azure_cost needs scope, e.g. /subscriptions/<id>")
        if not self.account:
            match = _SUBSCRIPTION.search("/" + self.scope)
            self.account = match.group(1) if match else self.scope
        self.api_version = str(config.get("api_version", DEFAULT_API_VERSION))
        self.cost_type = str(config.get("cost_type", "ActualCost"))
        self.service_names = tuple(config.get("service_names", DEFAULT_SERVICE_NAMES))
        self.group_by = tuple(config.get("group_by", DEFAULT_GROUP_BY))
        if http is None:
            token = read_secret(config, "token", default_env="AZURE_ACCESS_TOKEN")
            http = client_from_config(
                config, DEFAULT_BASE_URL, {"Authorization": f"Bearer {token}"}
            )
        self.http = http

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        body = query_body(since, until, self.cost_type, self.service_names, self.group_by)
        first = f"{self.scope}/providers/Microsoft.CostManagement/query"
        params = {"api-version": self.api_version}
        pages = paginate(
            lambda link: (
                self.http.post_json(link, body)
                if link
                else self.http.post_json(first, body, params)
            ),
            next_link,
        )
        for page in pages:
            yield from buckets_from_page(page, self.account)
