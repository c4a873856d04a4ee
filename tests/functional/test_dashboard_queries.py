"""Every SQL query of the shipped dashboards, run the way Grafana would on a real TimescaleDB.

A TimescaleDB 2.29.2 container (timescale license) gets its schema from the timescaledb_init
module run by ansible, as the role does, then a month of varied usage records, provider bills
and refreshed continuous aggregates. tests/support/dashboard_queries.py expands each panel's
and each variable's SQL for the dashboards' own time range and runs it as the read-only
Grafana role: nothing may fail, every panel must show rows, and the figures must agree with
the raw rows.

The PromQL of the dashboards runs on a real Prometheus too (Debian's 2.53 stand-in image;
the stack runs 3.x): hours of backfilled samples of every series the panels read. The
molecule scenario repeats both against the deployed stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cost_monitor.schema import AGGREGATES
from dashboard_queries import PROMQL, SQL, Postgres, Prometheus, Settings, run_checks
from pgcontainer import _free_loopback_port

from tests.functional.timescaledb.conftest import connection_args, query
from tools.dashboards.generate import OUTPUT as DASHBOARDS

# The timescaledb fixtures (container, `ansible -m` runner) for this module too.
pytest_plugins = ["tests.functional.timescaledb.conftest"]

RUNNER = Path(__file__).resolve().parents[1] / "support" / "dashboard_queries.py"
READER_PASSWORD = "reader-Dashboards-5e1f"
WRITER_PASSWORD = "writer-Dashboards-0c2d"
ROWS = 6000

# 29 days of requests, all inside the dashboards' default range (now-30d/d to now): five
# provider/model pairs, projects (one with a quote in its name, and none at all), customers,
# features, every token type, and unpriced requests (cost NULL).
USAGE_ROWS = """
INSERT INTO llm_consumption (time, event_id, provider, model, project, customer_id, feature,
    status, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost_usd, cost_source, duration_seconds)
SELECT now() - interval '5 minutes' - (i::double precision / %(rows)s) * interval '29 days',
       gen_random_uuid(),
       (ARRAY['openai', 'openai', 'anthropic', 'aws.bedrock', 'gcp.gemini'])[1 + i %% 5],
       (ARRAY['gpt-4.1', 'o3', 'claude-sonnet-4-5', 'amazon.nova-pro-v1:0',
              'gemini-2.5-pro'])[1 + i %% 5],
       CASE WHEN i %% 6 = 0 THEN NULL
            ELSE (ARRAY['search', 'support-bot', 'o''brien', 'analytics', 'batch'])[1 + i %% 5]
       END,
       CASE WHEN i %% 13 = 0 THEN NULL ELSE 'customer-' || (i %% 40) END,
       CASE WHEN i %% 7 = 0 THEN NULL
            ELSE (ARRAY['chat', 'summarise', 'search', 'classify'])[1 + i %% 4] END,
       CASE WHEN i %% 50 = 0 THEN 'error' ELSE 'ok' END,
       200 + i %% 3000, i %% 900, i %% 5 * 40, 50 + i %% 700, i %% 3 * 30,
       CASE WHEN i %% 29 = 0 THEN NULL
            ELSE round((200 + i %% 3000) * 0.0000025 + (50 + i %% 700) * 0.00001, 10) END,
       'computed', (i %% 90) / 10.0
FROM generate_series(1, %(rows)s) AS i
"""

# What the providers billed: OpenAI and Anthropic, per day and model, 3 % above the
# applications' estimate, up to two days ago (newer days are not billed yet); an unitemised
# line, a bill in another currency and token-only usage buckets that must all stay out of
# the dollar comparison except the first.
BILLED_ROWS = """
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    line_item, cost_amount, currency)
SELECT time_bucket(interval '1 day', time), 86400, provider, provider || '_costs', model,
       model || ', usage', round(sum(cost_usd) * 1.03, 10), 'USD'
FROM llm_consumption
WHERE provider IN ('openai', 'anthropic')
  AND time < time_bucket(interval '1 day', now()) - interval '2 days'
GROUP BY 1, 3, 5;
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    line_item, cost_amount, currency)
SELECT day, 86400, 'anthropic', 'anthropic_costs', '', 'web search', 0.25, 'USD'
FROM generate_series(time_bucket(interval '1 day', now()) - interval '20 days',
                     time_bucket(interval '1 day', now()) - interval '3 days',
                     interval '1 day') AS day;
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    line_item, cost_amount, currency)
VALUES (time_bucket(interval '1 day', now()) - interval '5 days', 86400, 'openai',
        'openai_costs_eu', 'gpt-4.1', 'gpt-4.1, input', 100, 'EUR');
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    input_tokens, output_tokens, requests)
SELECT time_bucket(interval '1 hour', time), 3600, provider, 'openai_usage', model,
       sum(input_tokens), sum(output_tokens), count(*)
FROM llm_consumption WHERE provider = 'openai'
GROUP BY 1, 3, 5
"""

PROJECT_CUSTOMER_PAIRS = """
SELECT count(DISTINCT (coalesce(project, '(none)'), coalesce(customer_id, '(none)')))
FROM llm_consumption
"""

# The estimate-vs-bill difference computed from the raw rows, independently of the panels.
EXPECTED_DIFFERENCE = """
WITH reported AS (
  SELECT time_bucket(interval '1 day', time) AS day, provider, sum(cost_usd) AS usd
  FROM llm_consumption GROUP BY 1, 2
), billed AS (
  SELECT time_bucket(interval '1 day', bucket_start) AS day, provider, sum(cost_amount) AS usd
  FROM llm_provider_usage WHERE currency = 'USD' AND cost_amount IS NOT NULL GROUP BY 1, 2
)
SELECT sum(coalesce(reported.usd, 0)), sum(billed.usd)
FROM billed LEFT JOIN reported USING (day, provider)
"""


@pytest.fixture(scope="module")
def usage_database(timescale_server, run_module) -> str:
    database = "aicost_dashboards_" + uuid.uuid4().hex[:8]
    init = run_module(
        "timescaledb_init",
        dict(
            connection_args(timescale_server, database),
            writer_password=WRITER_PASSWORD,
            reader_password=READER_PASSWORD,
        ),
    )
    assert init.changed and not init.failed, init.result
    query(timescale_server, database, USAGE_ROWS, {"rows": ROWS})
    query(timescale_server, database, BILLED_ROWS)
    for name in AGGREGATES:
        query(
            timescale_server, database, "CALL refresh_continuous_aggregate(%s, NULL, NULL)", (name,)
        )
    return database


@pytest.fixture(scope="module")
def reader_dsn(timescale_server, usage_database) -> str:
    return (
        f"host={timescale_server.host} port={timescale_server.port} dbname={usage_database} "
        f"user=aicost_reader password={READER_PASSWORD}"
    )


def run(reader_dsn: str, dashboards: list[Path] | None = None, **settings) -> list[dict]:
    postgres = Postgres(reader_dsn)
    try:
        return run_checks(dashboards or [DASHBOARDS], [], Settings(postgres=postgres, **settings))
    finally:
        postgres.close()


def by_panel(entries: list[dict], dashboard: str) -> dict[str, dict]:
    return {entry["panel"]: entry for entry in entries if entry["dashboard"] == dashboard}


def test_every_sql_query_runs_as_the_reader_and_every_panel_shows_rows(reader_dsn):
    entries = [entry for entry in run(reader_dsn) if entry["kind"] == SQL]
    failed = [
        (entry["panel"], entry["error"], entry.get("query")) for entry in entries if not entry["ok"]
    ]
    assert failed == []
    assert {entry["dashboard"] for entry in entries} == {
        "llm-customers-features",
        "llm-estimate-vs-bill",
    }
    panels = {(entry["dashboard"], entry["panel"]) for entry in entries}
    assert len(panels) >= 20, sorted(panels)
    empty = [(entry["dashboard"], entry["panel"]) for entry in entries if not entry["has_data"]]
    assert empty == []
    # "All" expanded to every value, quotes doubled, NULL projects kept under "(none)".
    projects = next(e for e in entries if e["panel"] == "variable $project")
    assert projects["rows"] == 6
    assert "'o''brien'" in by_panel(entries, "llm-customers-features")["Spend"]["query"]


def test_the_figures_agree_with_the_raw_rows(timescale_server, usage_database, reader_dsn):
    entries = run(reader_dsn)
    customers = by_panel(entries, "llm-customers-features")
    (raw_total,) = query(
        timescale_server, usage_database, "SELECT sum(cost_usd) FROM llm_consumption"
    )[0]
    assert customers["Spend"]["sample"] == [[raw_total]]
    (requests,) = query(timescale_server, usage_database, "SELECT count(*) FROM llm_consumption")[0]
    assert customers["Requests"]["sample"] == [[requests]]
    assert customers["Customers"]["sample"] == [[41]]  # customer-0..39 and "(none)"
    (pairs,) = query(timescale_server, usage_database, PROJECT_CUSTOMER_PAIRS)[0]
    assert customers["Showback by project and customer"]["rows"] == pairs

    estimate = by_panel(entries, "llm-estimate-vs-bill")
    reported, billed = query(timescale_server, usage_database, EXPECTED_DIFFERENCE)[0]
    assert estimate["Reported vs billed"]["sample"] == [[reported, billed, reported - billed]]
    (difference,) = estimate["Difference in percent"]["sample"][0]
    assert float(difference) == pytest.approx(float((reported - billed) / billed))
    assert difference < 0  # the bills are 3 % above the estimate, plus unitemised lines
    assert estimate["Reported, not yet billed"]["sample"][0][0] > 0
    table = estimate["Per day, provider and model"]
    assert table["columns"][:3] == ["Day", "Provider", "Model"]


def test_a_chosen_provider_narrows_every_panel(timescale_server, usage_database, reader_dsn):
    entries = run(reader_dsn, pinned={"provider": ["anthropic"]})
    assert [entry["error"] for entry in entries if not entry["ok"] and entry["kind"] == SQL] == []
    customers = by_panel(entries, "llm-customers-features")
    assert "provider = ANY(ARRAY['anthropic']::text[])" in customers["Spend"]["query"]
    (anthropic,) = query(
        timescale_server,
        usage_database,
        "SELECT sum(cost_usd) FROM llm_consumption WHERE provider = 'anthropic'",
    )[0]
    assert customers["Spend"]["sample"] == [[anthropic]]
    models = customers["Cost per 1,000 tokens by model"]
    assert models["rows"] == 1 and models["sample"][0][:2] == ["anthropic", "claude-sonnet-4-5"]


def test_a_range_without_usage_shows_no_data_instead_of_errors(reader_dsn):
    """The variables have no values then, and "All" of nothing expands to nothing: the
    filters (ARRAY[...] rather than IN (...)) stay valid SQL and the panels show no data."""
    entries = run(reader_dsn, time_from="2001-01-01T00:00:00Z", time_to="2001-01-31T00:00:00Z")
    entries = [entry for entry in entries if entry["kind"] == SQL]
    assert [entry["error"] for entry in entries if not entry["ok"]] == []
    top = by_panel(entries, "llm-customers-features")["Top customers by spend"]
    assert "provider = ANY(ARRAY[]::text[])" in top["query"] and top["rows"] == 0


def test_the_reader_cannot_change_anything_through_a_dashboard(reader_dsn, tmp_path):
    dashboard = {
        "uid": "hostile",
        "time": {"from": "now-1d", "to": "now"},
        "panels": [
            {
                "title": "Deletes",
                "type": "table",
                "datasource": {"type": "grafana-postgresql-datasource", "uid": "x"},
                "targets": [
                    {"refId": "A", "format": "table", "rawSql": "DELETE FROM llm_consumption"}
                ],
            }
        ],
    }
    (tmp_path / "hostile.json").write_text(json.dumps(dashboard))
    (entry,) = run(reader_dsn, [tmp_path])
    assert not entry["ok"]
    assert "read-only transaction" in entry["error"] or "permission denied" in entry["error"]


def test_the_command_line_reports_json_and_fails_on_missing_data(reader_dsn):
    def cli(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(RUNNER), "--dashboards", str(DASHBOARDS), "--dsn", reader_dsn,
             *arguments],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip

    ok = cli("--expect-data", "^Top customers", "^Per day")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["failures"] == []
    # Without --prometheus the PromQL queries are listed as skipped, not silently dropped.
    assert report["summary"]["skipped"] > 0
    assert {entry["kind"] for entry in report["queries"]} == {"sql", "promql"}

    # Long before any usage: the pinned filters keep the SQL valid, and nothing comes back.
    past = cli(
        "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-31T00:00:00Z",
        "--var", "provider=openai", "--var", "model=gpt-4.1", "--var", "project=search",
        "--expect-data", "^Top customers",
    )  # fmt: skip
    assert past.returncode == 1
    failures = json.loads(past.stdout)["failures"]
    assert failures == [
        "llm-customers-features: Top customers by spend [A]: data expected, none came back"
    ]

    # A PromQL panel expected to have data cannot pass without a Prometheus to ask.
    unrun = cli("--expect-data", "^Spend today")
    assert unrun.returncode == 1
    assert "not run (no --prometheus given)" in unrun.stderr


# PromQL against a real Prometheus -------------------------------------------------------------

PROMETHEUS_IMAGE = "aicost-test/prometheus:trixie"  # Debian's Prometheus, tests/images/prometheus
HOURS = 6
STEP = 30  # seconds between backfilled samples, the stack's scrape interval
USAGE = [
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4-5"),
    ("aws.bedrock", "amazon.nova-pro-v1:0"),
]
# Panels (or one of their queries) that are rightly empty here: no rules are loaded, no
# Alertmanager is configured, and Prometheus' own counters have a single sample yet.
QUIET_PANELS = {
    "Rule evaluation failures per second",
    "Alert notifications failing per second",
    "Samples rejected per second",
}


def series(now: int) -> dict[str, list[tuple[dict, object]]]:
    """Every metric the dashboards read: name -> [(labels, value or f(seconds elapsed))]."""
    app = {"job": "cost-monitor", "instance": "cost-monitor:8080", "host": "vm1"}
    out: dict[str, list] = {}

    def add(name, labels, value):
        out.setdefault(name, []).append(({**app, **labels}, value))

    def rising(per_second):
        return lambda elapsed: round(per_second * elapsed, 6)

    for index, (provider, model) in enumerate(USAGE, start=1):
        for project in ("search", "support-bot"):
            usage = {"provider": provider, "model": model, "operation": "chat",
                     "project": project, "source": "api"}  # fmt: skip
            add("llm_cost_usd_total", usage, rising(0.001 * index))
            for kind, rate in (("input", 40), ("cache_read", 25), ("cache_write", 5),
                               ("output", 10), ("reasoning", 2)):  # fmt: skip
                add("llm_tokens_total", {**usage, "token_type": kind}, rising(rate))
            add("llm_requests_total", {**usage, "status": "ok"}, rising(0.2))
            add("llm_requests_total", {**usage, "status": "error"}, rising(0.01))
        call = {"provider": provider, "model": model, "operation": "chat"}
        for le, share in (("0.5", 0.2), ("1.0", 0.5), ("2.0", 0.8), ("5.0", 0.95), ("+Inf", 1)):
            add("llm_request_duration_seconds_bucket", {**call, "le": le}, rising(0.4 * share))
        add("llm_billing_reported_usd", {"provider": provider}, 100.0 * index)
        add("llm_billing_billed_usd", {"provider": provider}, 103.0 * index)
        add("llm_billing_drift_usd", {"provider": provider}, -3.0 * index)
    unpriced = {"provider": "openai", "model": "my-finetune", "token_type": "input"}
    add("llm_unpriced_tokens_total", unpriced, rising(3))
    for project in ("search", "_all"):
        for period, limit in (("day", 50.0), ("month", 1000.0)):
            add("llm_budget_limit_usd", {"project": project, "period": period}, limit)
            add("llm_budget_spend_usd", {"project": project, "period": period}, limit * 0.42)
    for source in ("openai_costs", "anthropic_usage"):
        add("llm_etl_last_success_timestamp_seconds", {"source": source},
            lambda elapsed: float(now - HOURS * 3600 + elapsed - elapsed % 3600))  # fmt: skip
        add("llm_etl_interval_seconds", {"source": source}, 3600.0)
        add("llm_etl_rows_total", {"source": source}, rising(0.05))
        add("llm_etl_errors_total", {"source": source}, 0.0)
    add("llm_ingest_rejected_records_total", {"reason": "wrong_type"}, rising(0.001))
    add("llm_ingest_http_responses_total", {"code": "200"}, rising(0.5))
    add("llm_ingest_stored_rows_total", {}, rising(20))
    add("llm_ingest_spooled_rows_total", {}, 0.0)
    add("llm_spool_bytes", {}, 0.0)
    add("llm_database_up", {}, 1.0)
    add("llm_price_catalog_timestamp_seconds", {}, float(now - 40 * 86400))
    for le, share in (("0.01", 0.3), ("0.05", 0.9), ("0.25", 0.99), ("+Inf", 1)):
        add("llm_ingest_write_seconds_bucket", {"le": le}, rising(2 * share))
    for job, instance in (("cost-monitor", "cost-monitor:8080"), ("node", "node-exporter:9100"),
                          ("alertmanager", "alertmanager:9093")):  # fmt: skip
        add("up", {"job": job, "instance": instance}, 1.0)
        add("scrape_duration_seconds", {"job": job, "instance": instance}, 0.02)
    node = {"job": "node", "instance": "node-exporter:9100"}
    disk = {**node, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
    add("node_filesystem_avail_bytes", disk, 30e9)
    add("node_filesystem_size_bytes", disk, 100e9)
    add("node_memory_MemAvailable_bytes", node, 3e9)
    add("node_memory_MemTotal_bytes", node, 8e9)
    for mode, share in (("idle", 0.7), ("user", 0.3)):
        add("node_cpu_seconds_total", {**node, "cpu": "0", "mode": mode}, rising(share))
    for service, limit in (("loki", 1 << 30), ("cost-monitor", 512 << 20)):
        box = {"job": "cadvisor", "instance": "cadvisor:8081", "name": f"aicost-{service}-1",
               "container_label_com_docker_compose_service": service}  # fmt: skip
        add("container_memory_working_set_bytes", box, limit * 0.4)
        add("container_spec_memory_limit_bytes", box, float(limit))
        add("container_cpu_usage_seconds_total", box, rising(0.05))
        add("container_oom_events_total", box, 0.0)
    manager = {"job": "alertmanager", "instance": "alertmanager:9093"}
    add("alertmanager_config_last_reload_successful", manager, 1.0)
    add("alertmanager_alerts", {**manager, "state": "active"}, 1.0)
    add("alertmanager_notifications_failed_total", {**manager, "integration": "webhook"}, 0.0)
    return out


def openmetrics(now: int) -> str:
    """HOURS of samples every STEP seconds up to a minute ago, for promtool's backfill."""
    start = now - HOURS * 3600
    lines = []
    for name, items in series(now).items():
        for labels, value in items:
            text = ",".join(f'{key}="{val}"' for key, val in sorted(labels.items()))
            for moment in range(start, now - 60, STEP):
                sample = value(moment - start) if callable(value) else value
                lines.append(f"{name}{{{text}}} {sample} {moment}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("prometheus")
    data.chmod(0o777)
    now = int(time.time())
    (data / "metrics.om").write_text(openmetrics(now))
    (data / "prometheus.yml").write_text(
        "global: {scrape_interval: 5s}\n"
        "scrape_configs:\n"
        "  - job_name: prometheus\n"
        "    static_configs: [{targets: ['localhost:9090'], labels: {host: vm1}}]\n"
    )
    subprocess.run(
        ["docker", "run", "--rm", "--user", "65534", "-v", f"{data}:/data",
         "--entrypoint", "/bin/promtool", PROMETHEUS_IMAGE,
         "tsdb", "create-blocks-from", "openmetrics", "--quiet", "/data/metrics.om", "/data/tsdb"],
        check=True, capture_output=True,
    )  # fmt: skip
    name, port = f"b-prometheus-{uuid.uuid4().hex[:8]}", _free_loopback_port()
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-v", f"{data}:/data",
         "-p", f"127.0.0.1:{port}:9090", PROMETHEUS_IMAGE,
         "--config.file=/data/prometheus.yml", "--storage.tsdb.path=/data/tsdb"],
        check=True, capture_output=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, and its own first scrape is in
            try:
                with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as answer:
                    if '"prometheus"' in answer.read().decode():
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not start"
            time.sleep(0.5)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_every_query_runs_on_prometheus_and_timescaledb_as_in_the_stack(prometheus, reader_dsn):
    """The whole set, as the molecule scenario runs it: SQL variables feed PromQL panels."""
    postgres = Postgres(reader_dsn)
    try:
        entries = run_checks(
            [DASHBOARDS], [], Settings(prometheus=Prometheus(prometheus), postgres=postgres)
        )
    finally:
        postgres.close()
    assert [(e["panel"], e["error"]) for e in entries if not e["ok"]] == []
    promql = [entry for entry in entries if entry["kind"] == PROMQL]
    assert len(promql) > 60
    empty = {entry["panel"] for entry in entries if not entry["has_data"]}
    assert empty <= QUIET_PANELS, sorted(empty - QUIET_PANELS)
    overview = by_panel(entries, "llm-cost-overview")
    assert overview["variable $provider"]["rows"] == len(USAGE)
    assert overview["Spend today (UTC)"]["time_range"]["from"].endswith("T00:00:00Z")
    bill = by_panel(entries, "llm-estimate-vs-bill")
    assert "aws\\\\.bedrock" in bill["Reconciled difference by provider"]["query"]


def test_rule_files_run_on_prometheus(prometheus, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n"
        "  - name: spend\n"
        "    rules:\n"
        "      - alert: HourlySpendHigh\n"
        "        expr: sum(increase(llm_cost_usd_total[1h])) > 0\n"
        "      - record: project:llm_cost_usd:rate5m\n"
        "        expr: >-\n"
        "          sum by (project) (rate(llm_cost_usd_total[5m]))\n"
        "      - alert: Broken\n"
        "        expr: sum(rate(llm_cost_usd_total[5m]) by (project)\n"
    )
    entries = run_checks([], [rules], Settings(prometheus=Prometheus(prometheus)))
    assert [(entry["rule"], entry["ok"], entry["has_data"]) for entry in entries] == [
        ("HourlySpendHigh", True, True),
        ("project:llm_cost_usd:rate5m", True, True),
        ("Broken", False, False),
    ]
    assert "parse error" in entries[2]["error"]
