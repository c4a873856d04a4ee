from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import requests
from app_helpers import ingest, metric_value, running_app, wait_for_metric
from conftest import app_config
from cost_monitor.config import Budget
from cost_monitor.pricing import PriceCatalog
from prometheus_client.parser import text_string_to_metric_families


def batch(size, **fields):
    now = datetime.now(UTC).isoformat()
    return [
        {
            "time": now,
            "provider": "openai",
            "model": "gpt-5-mini",
            "project": "search",
            "customer_id": f"c{i % 5}",
            "input_tokens": 1000 + i,
            "cache_read_tokens": 200,
            "output_tokens": 100,
            "reasoning_tokens": 50,
            **fields,
        }
        for i in range(size)
    ]


def scalar(conn, query, *params):
    with conn.cursor() as cursor:
        cursor.execute(query, params)
        value = cursor.fetchone()[0]
    conn.commit()
    return value


def test_ingested_batch_is_priced_and_stored(database, conn, tmp_path):
    records = [*batch(500), {**batch(1)[0], "model": "mystery-model"}]
    with running_app(app_config(database, tmp_path)) as app:
        response = ingest(app, records)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 501, "rejected": [], "stored": "database"}
        database_up = metric_value(app.url, "llm_database_up")
        unpriced = metric_value(
            app.url,
            "llm_unpriced_tokens_total",
            provider="openai",
            model="other",  # an unknown model is no label value; the database has its name
            token_type="input",
        )
    catalog = PriceCatalog.load()
    expected = sum(
        catalog.price(
            "gpt-5-mini",
            "openai",
            input_tokens=r["input_tokens"],
            cache_read_tokens=200,
            output_tokens=100,
            reasoning_tokens=50,
        )
        for r in records[:500]
    )
    assert scalar(conn, "SELECT count(*) FROM llm_consumption") == 501
    assert scalar(conn, "SELECT sum(cost_usd) FROM llm_consumption") == expected
    assert scalar(conn, "SELECT count(*) FROM llm_consumption WHERE cost_usd IS NULL") == 1
    assert (
        scalar(conn, "SELECT cost_source FROM llm_consumption WHERE model = 'mystery-model'")
        is None
    )
    assert database_up == 1
    assert unpriced == records[-1]["input_tokens"]


def test_cache_write_lifetimes_and_residency_are_priced_and_stored(database, conn, tmp_path):
    record = {
        "time": datetime.now(UTC).isoformat(),
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1000,
        "cache_creation_input_tokens": 10_000,
        "ephemeral_1h_input_tokens": 8000,
        "output_tokens": 500,
        "data_residency": "us",
    }
    with running_app(app_config(database, tmp_path)) as app:
        response = ingest(app, [record])
        assert response.status_code == 200, response.text
    tokens = {"input_tokens": 1000, "cache_write_tokens": 10_000, "output_tokens": 500}
    catalog = PriceCatalog.load()
    expected = catalog.price(
        "claude-sonnet-4-5", "anthropic", data_residency="us", cache_write_1h_tokens=8000, **tokens
    )
    all_five_minute = catalog.price("claude-sonnet-4-5", "anthropic", **tokens)
    assert expected > all_five_minute
    stored = "SELECT cache_write_tokens, cache_write_1h_tokens, cost_usd FROM llm_consumption"
    with conn.cursor() as cursor:
        cursor.execute(stored)
        assert cursor.fetchall() == [(10_000, 8000, expected)]
    conn.commit()


def test_resent_event_ids_are_stored_once(database, conn, tmp_path):
    records = [{**r, "event_id": str(uuid.uuid4())} for r in batch(50)]
    with running_app(app_config(database, tmp_path)) as app:
        assert ingest(app, records).status_code == 200
        assert ingest(app, records + batch(1)).status_code == 200
    assert scalar(conn, "SELECT count(*) FROM llm_consumption") == 51


def metric_sum(url, name, **labels):
    text = requests.get(url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_resends_are_stored_once_and_the_metrics_agree_with_the_database(database, conn, tmp_path):
    config = app_config(database, tmp_path)
    config.metrics.projects = ["search"]
    config.budgets = {"search": Budget(daily_usd=1000, monthly_usd=10000)}
    billed = [{**r, "event_id": str(uuid.uuid4()), "cost_usd": "0.0125"} for r in batch(20)]
    priced = [{**r, "event_id": str(uuid.uuid4())} for r in batch(30)]  # cost from the catalog
    records = billed + priced
    untimed = [{k: v for k, v in r.items() if k != "time"} for r in records]
    with running_app(config) as app:
        for _ in range(3):
            response = ingest(app, records)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 50
            untimed_response = ingest(app, untimed)
            assert untimed_response.status_code == 422
            assert {r["field"] for r in untimed_response.json()["rejected"]} == {"time"}
        # The same record twice in one batch, and a resend beside a new record.
        twice = batch(1, event_id=str(uuid.uuid4()), cost_usd="1.5")
        assert ingest(app, twice * 2).status_code == 200
        assert ingest(app, [records[0], *batch(1, cost_usd="0.5")]).status_code == 200

        rows = scalar(conn, "SELECT count(*) FROM llm_consumption")
        spend = scalar(conn, "SELECT sum(cost_usd) FROM llm_consumption")
        assert rows == 50 + 1 + 1
        assert metric_sum(app.url, "llm_ingest_stored_rows_total") == rows
        assert metric_sum(app.url, "llm_requests_total") == rows
        assert round(metric_sum(app.url, "llm_cost_usd_total"), 8) == round(float(spend), 8)
        input_tokens = scalar(conn, "SELECT sum(input_tokens) FROM llm_consumption")
        assert metric_sum(app.url, "llm_tokens_total", token_type="input") == input_tokens
        for period in ("day", "month"):
            gauge = metric_value(app.url, "llm_budget_spend_usd", project="search", period=period)
            assert round(gauge, 8) == round(float(spend), 8)


def test_the_database_error_text_is_logged_not_sent(database, conn, tmp_path, caplog):
    with conn.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE llm_consumption ADD CONSTRAINT test_refuse CHECK (model <> 'refuse-me')"
        )
    conn.commit()
    try:
        with running_app(app_config(database, tmp_path)) as app:
            response = ingest(app, batch(2, model="refuse-me"))
    finally:
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE llm_consumption DROP CONSTRAINT test_refuse")
        conn.commit()
    assert response.status_code == 500
    assert response.json() == {"error": "the database refused the batch; the reason is logged"}
    assert "test_refuse" in caplog.text


def test_a_zero_byte_spool_file_is_quarantined_and_ingest_goes_on(database, conn, tmp_path):
    config = app_config(database, tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"{1:016d}.copy").write_bytes(b"")  # as a crash on a filesystem can leave it
    with running_app(config) as app:
        quarantined = wait_for_metric(
            app.url, "llm_spool_quarantined_batches_total", 1, 10, 0.1, reason="unreadable"
        )
        assert quarantined == 1
        assert requests.get(app.url + "/healthz", timeout=5).status_code == 200
        assert ingest(app, batch(3)).status_code == 200
        assert metric_value(app.url, "llm_spool_quarantine_batches") == 1
    assert [path.stat().st_size for path in (spool / "quarantine").iterdir()] == [0]
    assert scalar(conn, "SELECT count(*) FROM llm_consumption") == 3


def test_budget_spend_starts_from_what_the_database_holds(database, conn, tmp_path):
    config = app_config(database, tmp_path)
    with running_app(config) as app:
        ingest(app, batch(3, cost_usd="1.25"))
    config.budgets = {"search": Budget(daily_usd=10), "_all": Budget(monthly_usd=100)}
    with running_app(config) as app:
        ingest(app, batch(1, cost_usd="0.5"))
        spend = wait_for_metric(
            app.url, "llm_budget_spend_usd", 4.25, 10, 0.2, project="search", period="day"
        )
        assert spend == 4.25
        total = metric_value(app.url, "llm_budget_spend_usd", project="_all", period="month")
        assert total == 4.25


def test_report_prints_spend_by_provider_and_model(database, conn, tmp_path):
    with running_app(app_config(database, tmp_path)) as app:
        ingest(app, batch(4, cost_usd="0.25") + batch(2, model="o3", cost_usd="1"))
    env = {**os.environ, "COST_MONITOR_DATABASE_DSN": database.dsn}
    command = [sys.executable, "-m", "cost_monitor", "report", "--by", "provider,model"]
    table = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["provider", "model", "requests"]
    assert any(line.split()[:3] == ["openai", "gpt-5-mini", "4"] for line in lines)
    csv_text = subprocess.run(
        [*command, "--format", "csv"], env=env, capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(",") for line in csv_text.splitlines()]
    by_model = {row[1]: row for row in rows[1:]}
    assert Decimal(by_model["o3"][8]) == Decimal("2")
    assert Decimal(by_model["gpt-5-mini"][8]) == Decimal("1")
