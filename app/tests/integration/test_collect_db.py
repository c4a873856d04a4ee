"""`cost-monitor collect` and the scheduler's health metrics, on a file-based collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from cost_monitor.config import CollectorConfig
from cost_monitor.metrics import Metrics
from cost_monitor.scheduler import collector_settings, run_once
from cost_monitor.storage import connect

# A Google Cloud billing export recorded for the collector tests (their payload, reused).
EXPORT = Path(__file__).resolve().parents[1] / "collectors" / "payloads"
EXPORT_FILE = EXPORT / "gcp_billing_2026-11-17.ndjson"
LOOKBACK = {"initial_lookback_seconds": 400 * 86400}


def provider_rows(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM llm_provider_usage WHERE source = 'gcp_billing'")
        count = cursor.fetchone()[0]
    conn.commit()
    return count


def test_collect_command_upserts_and_a_second_run_changes_nothing(database, conn, tmp_path):
    config = {
        "database": {"dsn": database.dsn},
        "collectors": {"gcp_billing": {"settings": {"path": str(EXPORT_FILE), **LOOKBACK}}},
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "cost_monitor", "--config", str(path), "collect"]
    first = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("gcp_billing: ")
    stored = provider_rows(conn)
    assert stored > 0
    second = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    assert second.returncode == 0, second.stderr
    assert provider_rows(conn) == stored


def test_run_once_turns_results_into_collector_health_metrics(database, conn, tmp_path):
    metrics = Metrics()

    def connector():
        return connect(dsn=database.dsn)

    good = CollectorConfig(settings={"path": str(EXPORT_FILE), **LOOKBACK})
    result = run_once("gcp_billing", good, connector, metrics)
    assert result.error is None
    registry = metrics.registry
    labels = {"source": "gcp_billing"}
    assert registry.get_sample_value("llm_etl_last_success_timestamp_seconds", labels) > 0
    assert registry.get_sample_value("llm_etl_rows_total", labels) == result.rows_upserted

    broken = CollectorConfig(type="gcp_billing", settings={"path": str(tmp_path / "missing")})
    failed = run_once("gcp_billing_eu", broken, connector, metrics)
    assert failed.error
    assert registry.get_sample_value("llm_etl_errors_total", {"source": "gcp_billing_eu"}) == 1
    assert (
        registry.get_sample_value(
            "llm_etl_last_success_timestamp_seconds", {"source": "gcp_billing_eu"}
        )
        is None
    )


def test_instances_of_one_collector_type_keep_apart_watermarks():
    kind, settings = collector_settings("openai_usage_eu", CollectorConfig(type="openai_usage"))
    assert (kind, settings["state_key"]) == ("openai_usage", "openai_usage_eu")
    kind, settings = collector_settings("openai_usage", CollectorConfig())
    assert (kind, "state_key" in settings) == ("openai_usage", False)
