"""The HTTP contract, with the real writer and spool and no database reachable.

With the database down every accepted batch goes to the on-disk spool (202), which makes the
ingest semantics testable without PostgreSQL; tests/integration covers the database path.
"""

from __future__ import annotations

import orjson
import pytest
import requests
from app_helpers import ingest, metric_value, running_app, wait_for_metric
from cost_monitor.cli import main
from cost_monitor.config import Budget, ConfigError, load_config
from cost_monitor.service import build_runtime
from cost_monitor.spool import Spool

GOOD = {"provider": "openai", "model": "gpt-5-mini", "input_tokens": 1000, "output_tokens": 50}


def config_for(tmp_path, **sections):
    config = load_config(None, environ={})
    # Nothing listens on port 1: connecting fails at once, as with a stopped database.
    config.database.dsn = "host=127.0.0.1 port=1 dbname=none user=none"
    config.database.connect_timeout_seconds = 1
    config.spool.directory = str(tmp_path / "spool")
    config.metrics.projects = ["search"]
    config.auth.disabled = "auth" not in sections  # tests that need no token say so
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    return config


@pytest.fixture
def app(tmp_path):
    with running_app(config_for(tmp_path, auth={"tokens": ["s3cret"]})) as running:
        yield running


def post(app, body, content_type="application/json", token="s3cret", raw=False):
    return ingest(app, body, token=token, content_type=content_type, raw=raw)


def metric(app, name):
    text = requests.get(app.url + "/metrics", timeout=5).text
    return [line for line in text.splitlines() if line.startswith(name)]


def test_accepted_batch_is_spooled_while_the_database_is_down(app):
    response = post(app, [GOOD, {**GOOD, "project": "search"}])
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": [], "stored": "spool"}
    spooled = Spool(app.runtime.sink.spool.directory, 1 << 30).oldest()
    assert spooled.rows == 2
    assert any(line.endswith(" 2.0") for line in metric(app, "llm_ingest_spooled_rows_total"))


def test_partial_batch_stores_the_valid_records_and_lists_the_rejected(app):
    batch = [GOOD, {**GOOD, "input_tokens": -5}, {**GOOD, "provider": "acme"}, GOOD]
    response = post(app, batch)
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "input_tokens"),
        (2, "provider"),
    ]
    rejects = metric(app, "llm_ingest_rejected_records_total")
    assert any('reason="unknown_provider"' in line for line in rejects)


def test_all_rejected_is_422_and_stores_nothing(app):
    response = post(app, [{**GOOD, "time": "2999-01-01T00:00:00Z"}])
    assert response.status_code == 422
    assert response.json()["rejected"][0]["field"] == "time"
    assert len(app.runtime.sink.spool) == 0


def test_malformed_json_and_wrong_content_type(app):
    response = post(app, b'[{"provider": "openai",', raw=True)
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["rejected"][0]["reason"]
    assert post(app, b"<xml/>", content_type="application/xml", raw=True).status_code == 415


def test_ndjson_batches(app):
    body = orjson.dumps(GOOD) + b"\n" + b"nope\n" + orjson.dumps(GOOD) + b"\n"
    response = post(app, body, content_type="application/x-ndjson", raw=True)
    assert response.status_code == 207
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"][0]["index"] == 1


def test_bearer_token_is_required(app):
    assert post(app, [GOOD], token=None).status_code == 401
    response = post(app, [GOOD], token="wrong")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_oversized_body_is_413_and_the_server_keeps_serving(tmp_path):
    config = config_for(tmp_path, ingest={"max_body_bytes": 2048})
    with running_app(config) as app:
        response = post(app, [GOOD] * 100, token=None)
        assert response.status_code == 413
        assert post(app, [GOOD], token=None).status_code == 202


def test_full_spool_answers_503_with_retry_after_and_keeps_nothing(tmp_path):
    config = config_for(tmp_path, spool={"max_bytes": 1500, "retry_after_seconds": 7})
    with running_app(config) as app:
        statuses = [post(app, [GOOD] * 3, token=None).status_code for _ in range(6)]
        assert statuses[0] == 202
        assert statuses[-1] == 503
        last = post(app, [GOOD] * 3, token=None)
        assert last.headers["Retry-After"] == "7"
        ready = requests.get(app.url + "/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["database"] == "down"
        assert app.runtime.sink.spool.bytes <= 1500


def test_health_readiness_and_metrics_content_type(app):
    assert requests.get(app.url + "/healthz", timeout=5).status_code == 200
    ready = requests.get(app.url + "/readyz", timeout=5)
    assert ready.status_code == 200  # spool has room
    response = requests.get(app.url + "/metrics", timeout=5)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "llm_database_up 0.0" in response.text


def test_spooled_spend_counts_in_budgets_at_once_and_in_counters_once_stored(tmp_path):
    config = config_for(tmp_path)
    config.budgets = {"search": Budget(daily_usd=1.0)}
    with running_app(config) as app:
        post(app, [{**GOOD, "project": "search", "cost_usd": "0.25"}], token=None)
        spend = wait_for_metric(
            app.url, "llm_budget_spend_usd", 0.25, 5, 0.1, project="search", period="day"
        )
        assert spend == 0.25
        assert metric_value(app.url, "llm_budget_limit_usd", project="search", period="day") == 1.0
        # The counters follow the database: the replay counts what it really inserts.
        assert "llm_cost_usd_total{" not in requests.get(app.url + "/metrics", timeout=5).text


def test_an_unauthenticated_api_must_be_asked_for(tmp_path):
    blank = tmp_path / "tokens"
    blank.write_text("\n\n")
    for auth in ({}, {"tokens_file": str(blank)}):
        with pytest.raises(ConfigError, match=r"config\.auth"):
            build_runtime(config_for(tmp_path, auth=auth), run_collectors=False)
    with running_app(config_for(tmp_path, auth={"disabled": True})) as app:
        assert post(app, [GOOD], token=None).status_code == 202


def test_serve_refuses_to_start_without_a_token(tmp_path, capsys):
    blank = tmp_path / "tokens"
    blank.write_text("# no token yet\n")
    config = tmp_path / "config.yml"
    config.write_text(f"auth: {{tokens_file: {blank}}}\nlogging: {{file: '-'}}\n")
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(config), "serve", "--no-collectors"])
    assert stopped.value.code != 0
    assert "holds no token" in str(stopped.value.code)
