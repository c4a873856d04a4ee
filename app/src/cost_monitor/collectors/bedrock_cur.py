"""AWS Bedrock usage and billed cost from CUR 2.0 rows (CSV or CSV.gz exports, no boto3).

CUR 2.0 writes one line item per token type per hour (or day): the usage type names the
region, model and token type, e.g. ``USE1-Claude4.5Sonnet-input-tokens`` or
``USE1-Claude4.5Sonnet-cache-read-input-token-count``. The line item's net unblended cost
is the billed amount.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cost_monitor.collectors.files import open_exports
from cost_monitor.collectors.model import (
    DAY,
    Collector,
    UsageBucket,
    bucket_width,
    parse_timestamp,
)

DEFAULT_PRODUCT_CODES = ("AmazonBedrock",)
DEFAULT_LINE_ITEM_TYPES = ("Usage", "DiscountedUsage")
COST_COLUMNS = ("line_item_net_unblended_cost", "line_item_unblended_cost")
_REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d?-")
# Token-type markers in usage types, most specific first.
TOKEN_MARKERS = (
    ("cache-read", "cache_read_tokens"),
    ("cache-write", "cache_write_tokens"),
    ("output-token", "output_tokens"),
    ("input-token", "input_tokens"),
)
_MODEL_END = re.compile(r"-(?:mantle-)?(?:cache-read-|cache-write-)?(?:input|output)-token")


def token_field(usage_type: str) -> str | None:
    """Which UsageBucket token column a usage type counts, or None (not a token charge)."""
    lowered = usage_type.lower()
    for marker, field in TOKEN_MARKERS:
        if marker in lowered:
            return field
    return None


def model_from_usage_type(usage_type: str) -> str:
    """``USE1-Claude4.5Sonnet-input-tokens`` -> ``Claude4.5Sonnet``."""
    without_region = _REGION_PREFIX.sub("", usage_type, count=1)
    match = _MODEL_END.search(without_region.lower())
    return without_region[: match.start()] if match else ""


def _map_column(text: str | None) -> dict[str, str]:
    # CUR 2.0 map columns (resource_tags, product) arrive in CSV as JSON objects.
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None


def buckets_from_rows(
    rows: Iterable[Mapping[str, str]],
    since: datetime,
    until: datetime,
    *,
    product_codes: Iterable[str] = DEFAULT_PRODUCT_CODES,
    line_item_types: Iterable[str] = DEFAULT_LINE_ITEM_TYPES,
    project_tag: str | None = None,
) -> Iterator[UsageBucket]:
    """Buckets from CUR 2.0 rows starting in [since, until) (pure, for the payload tests)."""
    product_codes, line_item_types = set(product_codes), set(line_item_types)
    for row in rows:
        if row.get("line_item_product_code") not in product_codes:
            continue
        if row.get("line_item_line_item_type") not in line_item_types:
            continue
        start = parse_timestamp(row["line_item_usage_start_date"])
        if not since <= start < until:
            continue
        width = bucket_width(start, parse_timestamp(row["line_item_usage_end_date"]))
        usage_type = row.get("line_item_usage_type", "")
        tokens: dict[str, int] = {}
        field = token_field(usage_type)
        amount = _decimal(row.get("line_item_usage_amount"))
        if field and amount is not None:
            tokens[field] = int(amount.to_integral_value())
        cost = next(
            (value for column in COST_COLUMNS if (value := _decimal(row.get(column))) is not None),
            None,
        )
        tags = _map_column(row.get("resource_tags"))
        yield UsageBucket(
            bucket_start=start,
            bucket_seconds=width,
            provider=BedrockCurCollector.provider,
            source=BedrockCurCollector.name,
            account=row.get("line_item_usage_account_id", ""),
            project=tags.get(project_tag, "") if project_tag else "",
            model=model_from_usage_type(usage_type),
            operation=row.get("line_item_operation", ""),
            api_key_id=row.get("line_item_iam_principal", ""),
            line_item=usage_type,
            cost_amount=cost,
            currency=row.get("line_item_currency_code") or "USD",
            **tokens,
        )


class BedrockCurCollector(Collector):
    name = "bedrock_cur"
    provider = "aws.bedrock"
    bucket_seconds = DAY  # hourly and daily exports both re-read whole days
    default_overlap_seconds = 3 * DAY  # CUR refreshes the open billing period for days

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        if not config.get("path") and not config.get("urls"):
            raise ValueError("bedrock_cur needs path (a directory or file) or urls")
        self.product_codes = tuple(config.get("product_codes", DEFAULT_PRODUCT_CODES))
        self.line_item_types = tuple(config.get("line_item_types", DEFAULT_LINE_ITEM_TYPES))
        self.project_tag = config.get("project_tag")

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        for _name, text in open_exports(self.config, pattern="**/*.csv*"):
            yield from buckets_from_rows(
                csv.DictReader(text),
                since,
                until,
                product_codes=self.product_codes,
                line_item_types=self.line_item_types,
                project_tag=self.project_tag,
            )
