"""Billing reconciliation against the real TimescaleDB: yesterday's reported vs billed cost.

Consumption rows go in the way applications send them (provider spellings and all, through
the ingest parser); billed rows the way the collectors write them (their own page parsers
and provider names), so the test also proves both sides spell providers alike.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from app_helpers import running_app, wait_for_metric
from conftest import app_config
from cost_monitor import storage
from cost_monitor.collectors import anthropic, openai, store
from cost_monitor.collectors.azure_cost import AzureCostCollector
from cost_monitor.collectors.bedrock_cur import BedrockCurCollector
from cost_monitor.collectors.gcp_billing import GcpBillingCollector
from cost_monitor.collectors.model import DAY, HOUR, UsageBucket
from cost_monitor.metrics import Metrics
from cost_monitor.reconciliation import BillingGauges, Reconciler
from cost_monitor.records import IngestLimits, parse_body

# provider -> (reported, billed) for yesterday, in USD
EXPECTED = {
    "openai": (Decimal("3.75"), Decimal("3.65")),
    "anthropic": (Decimal("0"), Decimal("2.51")),  # billed, but nothing reported yesterday
    "aws.bedrock": (Decimal("1.25"), Decimal("1.20")),
    "azure.ai.openai": (Decimal("3.333"), Decimal("3.30")),
    "gcp.vertex_ai": (Decimal("1.00"), Decimal("1.00")),
}


def insert_consumption(conn, now, y0, t0):
    def sent(provider, when, cost, **fields):
        return {"provider": provider, "model": "m", "time": when.isoformat(), **fields} | (
            {} if cost is None else {"cost_usd": cost}
        )

    records = [
        sent("openai", y0, "1.25"),  # the first instant of yesterday counts
        sent("openai", t0 - timedelta(microseconds=1), "2.5"),  # and the last one
        sent("openai", y0 - timedelta(microseconds=1), "50"),  # the day before: no
        sent("openai", t0, "100"),  # today: no
        sent("openai", y0 + timedelta(hours=1), None, model="mystery-model"),  # unpriced
        sent("bedrock", y0 + timedelta(hours=12), "0.75"),
        sent("aws.bedrock", y0 + timedelta(hours=13), "0.5"),
        sent("azure", y0 + timedelta(hours=8), "3.333"),
        sent("vertex_ai", y0 + timedelta(hours=9), "1.0"),
        sent("anthropic", now, "5"),  # today only
        sent("mistral", y0 + timedelta(hours=2), "9.99"),  # never billed: no gauges
    ]
    parsed = parse_body(orjson.dumps(records), "application/json", IngestLimits(), now=now)
    assert not parsed.rejections, parsed.rejections
    storage.copy_rows(conn, storage.encode_rows(parsed.records))


def insert_billing(conn, y0, t0):
    openai_costs = {
        "data": [
            {
                "start_time": int(y0.timestamp()),
                "results": [
                    {"amount": {"value": 1.2, "currency": "usd"}, "line_item": "gpt-5, input"},
                    {"amount": {"value": 2.45, "currency": "usd"}, "line_item": "gpt-5, output"},
                ],
            },
            {
                "start_time": int(t0.timestamp()),
                "results": [{"amount": {"value": 99, "currency": "usd"}, "line_item": "x, input"}],
            },
        ]
    }
    openai_usage = {  # tokens only: cost_amount stays NULL
        "data": [
            {
                "start_time": int(y0.timestamp()),
                "results": [{"input_tokens": 1000, "model": "gpt-5", "num_model_requests": 3}],
            }
        ]
    }
    anthropic_costs = {
        "data": [
            {
                "starting_at": y0.isoformat(),
                "results": [{"amount": "251.0", "currency": "USD", "description": "tokens"}],
            }
        ]
    }

    def bucket(collector, start, cost, width=DAY, currency="USD", provider=None, line_item=""):
        return UsageBucket(
            bucket_start=start,
            bucket_seconds=width,
            provider=provider or collector.provider,
            source=collector.name,
            line_item=line_item,
            cost_amount=Decimal(cost),
            currency=currency,
        )

    buckets = [
        *openai.cost_buckets_from_page(openai_costs, "org"),
        *openai.usage_buckets_from_page(openai_usage, "completions", "org", DAY),
        *anthropic.cost_buckets_from_page(anthropic_costs, "org"),
        bucket(BedrockCurCollector, y0 + timedelta(hours=12), "0.7", HOUR),
        bucket(BedrockCurCollector, y0 + timedelta(hours=23), "0.5", HOUR),
        bucket(BedrockCurCollector, t0, "10", HOUR),  # today: no
        bucket(AzureCostCollector, y0, "3.3"),
        bucket(AzureCostCollector, y0, "1000", currency="EUR", line_item="eur"),  # not USD
        bucket(GcpBillingCollector, y0 + timedelta(hours=9), "0.95", HOUR),
        # gcp_billing's services setting may name a provider in another spelling
        bucket(GcpBillingCollector, y0 + timedelta(hours=10), "0.05", HOUR, provider="vertex_ai"),
    ]
    with conn.cursor() as cursor:
        store.upsert_buckets(cursor, buckets)
    conn.commit()


def seed(conn):
    now = datetime.now(UTC)
    t0 = datetime(now.year, now.month, now.day, tzinfo=UTC)
    y0 = t0 - timedelta(days=1)
    insert_consumption(conn, now, y0, t0)
    insert_billing(conn, y0, t0)
    return now, y0


def test_one_pass_compares_yesterday_per_billed_provider(database, conn):
    now, y0 = seed(conn)
    metrics = Metrics()
    connect = functools.partial(storage.connect, dsn=database.dsn)
    reconciler = Reconciler(connect, metrics, 900, clock=lambda: now)
    metrics.registry.register(BillingGauges(reconciler))

    result = reconciler.run_once()
    assert result is not None
    assert result.day == y0.date()
    assert dict(result.reported) == {p: reported for p, (reported, _) in EXPECTED.items()}
    assert dict(result.billed) == {p: billed for p, (_, billed) in EXPECTED.items()}

    registry = metrics.registry
    for provider, (reported, billed) in EXPECTED.items():
        labels = {"provider": provider}
        assert registry.get_sample_value("llm_billing_reported_usd", labels) == float(reported)
        assert registry.get_sample_value("llm_billing_billed_usd", labels) == float(billed)
        drift = registry.get_sample_value("llm_billing_drift_usd", labels)
        assert round(drift, 2) == round(float(reported - billed), 2), provider
    assert registry.get_sample_value("llm_billing_drift_usd", {"provider": "openai"}) == 0.1
    assert registry.get_sample_value("llm_billing_reported_usd", {"provider": "mistral_ai"}) is None
    assert (
        registry.get_sample_value("llm_billing_reconciled_day_timestamp_seconds") == y0.timestamp()
    )
    assert registry.get_sample_value("llm_billing_reconciliation_errors_total") == 0


def test_serve_exports_the_reconciliation_on_metrics(database, conn, tmp_path):
    seed(conn)
    config = app_config(database, tmp_path)
    config.reconciliation.interval_seconds = 3600
    with running_app(config) as app:
        billed = wait_for_metric(
            app.url, "llm_billing_billed_usd", 3.65, timeout=30, interval=0.2, provider="openai"
        )
        drift = wait_for_metric(
            app.url, "llm_billing_drift_usd", -2.51, timeout=5, interval=0.2, provider="anthropic"
        )
        errors = wait_for_metric(
            app.url, "llm_billing_reconciliation_errors_total", 0, timeout=1, interval=0.2
        )
    assert (billed, drift, errors) == (3.65, -2.51, 0)
