"""Gauges serve exports from its configuration: catalog date, collector intervals, billing."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from cost_monitor.api import SERVICES
from cost_monitor.collectors.runner import CollectResult
from cost_monitor.config import load_config
from cost_monitor.metrics import Metrics
from cost_monitor.reconciliation import BillingGauges, Reconciler, Reconciliation
from cost_monitor.scheduler import run_once
from cost_monitor.service import build_runtime
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families


def samples(metrics, name):
    """{label values: value} of one metric in the app's own exposition."""
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def config_for(tmp_path, text):
    path = tmp_path / "config.yml"
    path.write_text(text)
    config = load_config(path, environ={})
    config.database.dsn = "host=127.0.0.1 port=1 dbname=none user=none"
    config.spool.directory = str(tmp_path / "spool")
    config.auth.disabled = True
    return config


def runtime_metrics(config, run_collectors=True):
    return build_runtime(config, run_collectors=run_collectors).app[SERVICES].metrics


def test_catalog_timestamp_is_the_shipped_date_or_a_newer_file(tmp_path):
    metrics = runtime_metrics(config_for(tmp_path, "{}\n"))
    expected = datetime(2026, 11, 28, tzinfo=UTC).timestamp()
    assert samples(metrics, "llm_price_catalog_timestamp_seconds") == {(): expected}

    upstream = tmp_path / "model_prices_and_context_window.json"
    upstream.write_text(json.dumps({"gpt-9": {"input_cost_per_token": 1e-06}}))
    modified = datetime(2027, 5, 6, 7, 8, tzinfo=UTC).timestamp()
    os.utime(upstream, (modified, modified))
    metrics = runtime_metrics(config_for(tmp_path, f"prices: {{files: [{upstream}]}}\n"))
    expected = datetime(2027, 5, 6, tzinfo=UTC).timestamp()
    assert samples(metrics, "llm_price_catalog_timestamp_seconds") == {(): expected}


COLLECTORS = """
collectors:
  openai_usage: {interval_seconds: 600, settings: {api_key_env: OPENAI_TEST_KEY}}
  cur_eu: {type: bedrock_cur, interval_seconds: 21600, settings: {path: /data/cur}}
  anthropic_usage: {enabled: false, settings: {api_key_env: ANTHROPIC_TEST_KEY}}
"""


def test_interval_gauge_per_enabled_collector(tmp_path):
    metrics = runtime_metrics(config_for(tmp_path, COLLECTORS))
    assert samples(metrics, "llm_etl_interval_seconds") == {
        (("source", "openai_usage"),): 600.0,
        (("source", "cur_eu"),): 21600.0,
    }
    # serve --no-collectors runs none, so it exports no interval either
    no_collectors = runtime_metrics(config_for(tmp_path, COLLECTORS), run_collectors=False)
    assert samples(no_collectors, "llm_etl_interval_seconds") == {}


def test_interval_and_last_success_carry_the_same_source_label(tmp_path, monkeypatch):
    config = config_for(tmp_path, COLLECTORS)
    metrics = runtime_metrics(config)

    def succeed(kind, settings, conn):
        return CollectResult(settings.get("state_key", kind), 3, None, None, 0.1)

    class Connection:
        def close(self):
            pass

    monkeypatch.setattr("cost_monitor.collectors.runner.run_collector", succeed)
    for name in ("openai_usage", "cur_eu"):
        run_once(name, config.collectors[name], Connection, metrics)
    last_success = samples(metrics, "llm_etl_last_success_timestamp_seconds")
    interval = samples(metrics, "llm_etl_interval_seconds")
    assert (
        set(last_success)
        == set(interval)
        == {
            (("source", "openai_usage"),),
            (("source", "cur_eu"),),
        }
    )


class Clock:
    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


class Closing:
    def close(self):
        pass


def reconciler_with(monkeypatch, outcomes):
    """A Reconciler whose passes return (or raise) ``outcomes`` in turn."""
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry)
    days = []

    def reconcile_day(conn, day):
        days.append(day)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr("cost_monitor.reconciliation.reconcile_day", reconcile_day)
    reconciler = Reconciler(
        Closing, metrics, 900, clock=Clock(datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    )
    registry.register(BillingGauges(reconciler))
    return reconciler, metrics, days


def test_reconciliation_gauges_keep_the_last_good_values_after_a_failure(monkeypatch):
    good = Reconciliation(
        date(2026, 11, 30),
        reported={"openai": Decimal("12.345"), "anthropic": Decimal("0")},
        billed={"openai": Decimal("12.005"), "anthropic": Decimal("3.5")},
    )
    reconciler, metrics, days = reconciler_with(
        monkeypatch, [ConnectionError("database down"), good, RuntimeError("query failed")]
    )
    assert reconciler.run_once() is None
    assert samples(metrics, "llm_billing_drift_usd") == {}
    assert samples(metrics, "llm_billing_reconciliation_errors_total") == {(): 1.0}

    assert reconciler.run_once() is good
    assert reconciler.run_once() is None
    assert days == [date(2026, 11, 30)] * 3  # yesterday, in UTC
    assert samples(metrics, "llm_billing_reconciliation_errors_total") == {(): 2.0}
    assert samples(metrics, "llm_billing_reported_usd") == {
        (("provider", "anthropic"),): 0.0,
        (("provider", "openai"),): 12.345,
    }
    assert samples(metrics, "llm_billing_billed_usd") == {
        (("provider", "anthropic"),): 3.5,
        (("provider", "openai"),): 12.005,
    }
    assert samples(metrics, "llm_billing_drift_usd") == {
        (("provider", "anthropic"),): -3.5,
        (("provider", "openai"),): pytest.approx(0.34),
    }
    assert samples(metrics, "llm_billing_reconciled_day_timestamp_seconds") == {
        (): datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    }


def test_reconciliation_can_be_disabled(tmp_path):
    enabled = build_runtime(config_for(tmp_path, "{}\n"), run_collectors=False)
    assert enabled.reconciler is not None
    assert enabled.reconciler.interval_seconds == 900
    config = config_for(tmp_path, "reconciliation: {enabled: false}\n")
    runtime = build_runtime(config, run_collectors=False)
    assert runtime.reconciler is None
    assert "llm_billing_drift_usd" not in runtime.app[SERVICES].metrics.render().decode()
