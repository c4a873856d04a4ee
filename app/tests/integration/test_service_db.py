from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import requests
from app_helpers import metric_value, running_app, wait_for_metric
from cost_monitor.config import Budget
from cost_monitor.pricing import PriceCatalog

from conftest import app_config


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


def post(app, records):
    return requests.post(
        app.url + "/v1/ingest",
        data=orjson.dumps(records),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def scalar(conn, query, *params):
    with conn.cursor() as cursor:
        cursor.execute(query, params)
        value = cursor.fetchone()[0]
    conn.commit()
    return value


def test_ingested_batch_is_priced_and_stored(database, conn, tmp_path):
    records = [*batch(500), {**batch(1)[0], "model": "mystery-model"}]
    with running_app(app_config(database, tmp_path)) as app:
        response = post(app, records)
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


def test_resent_event_ids_are_stored_once(database, conn, tmp_path):
    records = [{**r, "event_id": str(uuid.uuid4())} for r in batch(50)]
    with running_app(app_config(database, tmp_path)) as app:
        assert post(app, records).status_code == 200
        assert post(app, records + batch(1)).status_code == 200
    assert scalar(conn, "SELECT count(*) FROM llm_consumption") == 51


def test_budget_spend_starts_from_what_the_database_holds(database, conn, tmp_path):
    config = app_config(database, tmp_path)
    with running_app(config) as app:
        post(app, batch(3, cost_usd="1.25"))
    config.budgets = {"search": Budget(daily_usd=10), "_all": Budget(monthly_usd=100)}
    with running_app(config) as app:
        post(app, batch(1, cost_usd="0.5"))
        spend = wait_for_metric(
            app.url, "llm_budget_spend_usd", 4.25, 10, 0.2, project="search", period="day"
        )
        assert spend == 4.25
        total = metric_value(app.url, "llm_budget_spend_usd", project="_all", period="month")
        assert total == 4.25


def test_report_prints_spend_by_provider_and_model(database, conn, tmp_path):
    with running_app(app_config(database, tmp_path)) as app:
        post(app, batch(4, cost_usd="0.25") + batch(2, model="o3", cost_usd="1"))
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
