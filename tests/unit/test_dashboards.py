"""The Grafana dashboards: the committed JSON is what tools/dashboards writes, it is sound for
Grafana 13's classic model, and tests/support/dashboard_queries.py expands queries as Grafana
does (cases taken from Grafana's own macro tests)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import dashboard_queries as dq
import pytest
from cost_monitor.schema import AGGREGATES, TABLES

from tools.dashboards import generate

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = {
    path.stem: json.loads(path.read_text()) for path in sorted(generate.OUTPUT.glob("*.json"))
}
# The datasources the grafana role provisions: a fixed interface, spelled out on purpose.
PROVISIONED = {
    ("prometheus", "aicost-prometheus"),
    ("grafana-postgresql-datasource", "aicost-timescaledb"),
    ("loki", "aicost-loki"),
}
CORE_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table", "piechart", "text", "row"}
# Series and columns that hold dollars.
MONEY = re.compile(
    r"llm_cost_usd_total|llm_budget_\w+_usd|llm_billing_\w+_usd|cost_usd|cost_amount"
)

by_uid = pytest.mark.parametrize("uid", sorted(DASHBOARDS))


def panels(dashboard: dict) -> list[dict]:
    return list(dq.iter_panels(dashboard["panels"]))


def queries(panel: dict) -> list[str]:
    return [target.get("expr") or target.get("rawSql") or "" for target in panel.get("targets", [])]


def units(panel: dict) -> set[str]:
    field_config = panel.get("fieldConfig", {})
    found = {field_config.get("defaults", {}).get("unit")}
    for override in field_config.get("overrides", []):
        found |= {item["value"] for item in override["properties"] if item["id"] == "unit"}
    return found - {None}


def datasource_references(node) -> list:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [ref for value in node.values() for ref in datasource_references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in datasource_references(value)]
    return []


# The generated files ------------------------------------------------------------------------


def test_the_committed_dashboards_are_what_the_generator_writes():
    committed = {
        path.name: path.read_text(encoding="utf-8") for path in generate.OUTPUT.glob("*.json")
    }
    assert committed == generate.rendered(), "run: .venv/bin/python -m tools.dashboards"
    assert generate.main(["--check"]) == 0
    for text in committed.values():
        assert text.endswith("}\n") and '\n  "annotations"' in text  # sorted, 2-space indent


def test_the_five_dashboards_with_unique_uids():
    assert {uid: dashboard["uid"] for uid, dashboard in DASHBOARDS.items()} == {
        uid: uid
        for uid in (
            "llm-cost-overview",
            "llm-customers-features",
            "llm-estimate-vs-bill",
            "llm-collectors-ingest",
            "aicost-stack-health",
        )
    }
    titles = [dashboard["title"] for dashboard in DASHBOARDS.values()]
    assert len(set(titles)) == len(titles)


# Structure ------------------------------------------------------------------------------------


@by_uid
def test_the_classic_model_in_utc(uid):
    dashboard = DASHBOARDS[uid]
    assert dashboard["schemaVersion"] == 41
    assert dashboard["timezone"] == "utc"
    assert dashboard["description"] and dashboard["time"]["to"] == "now"
    assert "libraryPanel" not in json.dumps(dashboard)
    assert {panel["type"] for panel in panels(dashboard)} <= CORE_PANELS


@by_uid
def test_every_datasource_is_one_the_grafana_role_provisions(uid):
    references = datasource_references(DASHBOARDS[uid])
    assert references
    assert {(ref.get("type"), ref.get("uid")) for ref in references} <= PROVISIONED


@by_uid
def test_panel_ids_are_unique(uid):
    ids = [panel["id"] for panel in panels(DASHBOARDS[uid])]
    assert len(ids) == len(set(ids))


@by_uid
def test_panels_fit_the_grid_without_overlapping(uid):
    boxes = []
    for panel in panels(DASHBOARDS[uid]):
        x, y, w, h = (panel["gridPos"][key] for key in "xywh")
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 24, panel["title"]
        boxes.append((panel["title"], x, y, w, h))
    for (a, ax, ay, aw, ah), (b, bx, by, bw, bh) in itertools.combinations(boxes, 2):
        overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
        assert not overlap, f"{a!r} overlaps {b!r}"


@by_uid
def test_every_panel_has_a_title_a_description_and_queries(uid):
    for panel in panels(DASHBOARDS[uid]):
        assert panel["title"].strip()
        if panel["type"] == "row":  # a section heading: Grafana shows no description for it
            continue
        assert len(panel["description"]) > 20, panel["title"]
        if panel["type"] == "text":
            assert panel["options"]["content"].strip()
            continue
        assert panel["targets"], panel["title"]
        assert all(query.strip() for query in queries(panel)), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


@by_uid
def test_money_is_shown_in_dollars(uid):
    """A panel reading dollars shows currencyUSD (or is a ratio of dollars, in percent); a
    panel in currencyUSD reads dollars."""
    for panel in panels(DASHBOARDS[uid]):
        reads_money = any(MONEY.search(query) for query in queries(panel))
        shown = units(panel)
        if reads_money:
            assert "currencyUSD" in shown or shown == {"percentunit"}, panel["title"]
        if "currencyUSD" in shown:
            assert reads_money, panel["title"]


@by_uid
def test_every_variable_used_is_defined_or_built_in(uid):
    dashboard = DASHBOARDS[uid]
    defined: set[str] = set()
    for variable in dashboard["templating"]["list"]:
        used = set(dq.variable_names(variable["definition"]))
        assert used <= defined | dq.BUILTIN_VARIABLES, (variable["name"], used)
        defined.add(variable["name"])
    for panel in panels(dashboard):
        texts = [panel["title"], *queries(panel)]
        used = {name for text in texts for name in dq.variable_names(text)}
        assert used <= defined | dq.BUILTIN_VARIABLES, (panel["title"], used - defined)


@by_uid
def test_variables_are_multi_value_with_all(uid):
    for variable in DASHBOARDS[uid]["templating"]["list"]:
        assert variable["multi"] and variable["includeAll"], variable["name"]
        assert variable["current"]["value"] == ["$__all"]
        assert variable["description"]
        kind = dq.datasource_kind(variable["datasource"])
        # Prometheus: "All" matches any value, also ones that appear later. SQL: "All" lists
        # every value the variable's query returns, as a quoted list: 'a','b'.
        assert variable.get("allValue") == (".*" if kind == dq.PROMQL else None)


@by_uid
def test_sql_targets_are_raw_queries_on_the_schema(uid):
    known = set(TABLES) | set(AGGREGATES)
    for panel in panels(DASHBOARDS[uid]):
        for target in panel.get("targets", []):
            if dq.datasource_kind(target["datasource"]) != dq.SQL:
                continue
            assert target["rawQuery"] and target["editorMode"] == "code"
            assert target["format"] in ("table", "time_series")
            sql = target["rawSql"]
            assert set(re.findall(r"\bllm_\w+", sql)) <= known, panel["title"]
            if target["format"] == "time_series":
                assert re.search(r'AS "time"|\$__timeGroupAlias\(', sql), panel["title"]
                assert "ORDER BY 1" in sql, panel["title"]


@by_uid
def test_every_query_expands_completely(uid):
    """With every variable pinned (one value with a quote in it), no variable or macro is
    left in any query Grafana would send."""
    dashboard = DASHBOARDS[uid]
    pinned = {variable["name"]: ["it's", "b.c"] for variable in dashboard["templating"]["list"]}
    entries = dq.DashboardRun(dashboard, dq.Settings(pinned=pinned)).run()
    assert entries and all(entry["ok"] for entry in entries), entries
    for entry in entries:
        if entry["panel"].startswith("variable "):
            continue
        assert "$" not in entry["query"].replace("$1", ""), entry
        assert entry["skipped"]


# Grafana's expansion ------------------------------------------------------------------------

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
FIVE_MINUTES = dq.TimeRange(FROM, datetime(2018, 4, 12, 18, 5, tzinfo=UTC))


@pytest.mark.parametrize(
    ("sql", "expected", "timescaledb"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"', False),
        ("select $__timeEpoch(c)", 'select extract(epoch from c) as "time"', False),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
            False,
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'", False),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'", False),
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
            False,
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
            False,
        ),
        (
            "$__timeGroupAlias(time_column , '5m')",
            'floor(extract(epoch from time_column)/300)*300 AS "time"',
            False,
        ),
        (
            "GROUP BY $__timeGroup(time_column,'5m')",
            "GROUP BY time_bucket('300.000s',time_column)",
            True,
        ),
        (
            "GROUP BY $__timeGroup(time_column , '12d')",
            "GROUP BY time_bucket('1036800.000s',time_column)",
            True,
        ),
        (
            "GROUP BY $__timeGroup(time_column , '20ms')",
            "GROUP BY time_bucket('0.020s',time_column)",
            True,
        ),
        (
            "GROUP BY $__timeGroup(c, '12d')",
            "GROUP BY floor(extract(epoch from c)/1.0368e+06)*1.0368e+06",
            False,
        ),
        (
            "select $__unixEpochFilter(time)",
            "select time >= 1523556000 AND time <= 1523556300",
            False,
        ),
        (
            "select $__unixEpochNanoFilter(time)",
            "select time >= 1523556000000000000 AND time <= 1523556300000000000",
            False,
        ),
        ("select $__unixEpochNanoFrom()", "select 1523556000000000000", False),
        (
            "SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
            'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"',
            False,
        ),
    ],
)
def test_sql_macros_expand_as_grafanas_postgresql_datasource(sql, expected, timescaledb):
    assert dq.expand_sql_macros(sql, FIVE_MINUTES, timescaledb) == expected


def test_sql_time_filters_keep_fractional_seconds_and_unix_seconds():
    start = datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=UTC)
    half_seconds = dq.TimeRange(start, datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=UTC))
    assert dq.expand_sql_macros("$__timeFilter(t)", half_seconds) == (
        "t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    )
    intervals = dq.Intervals(3_600_000, 0)
    assert dq.expand_sql(
        "$__unixEpochFrom() $__interval $__interval_ms", {}, FIVE_MINUTES, intervals
    ) == ("1523556000 1h 3600000")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeGroup(c)", "needs time column and interval"),
        ("$__timeGroup(c, 'often')", "error parsing interval"),
        ("$__nosuchmacro(c)", "unknown macro"),
    ],
)
def test_sql_macro_errors_fail_the_query(sql, message):
    with pytest.raises(dq.QueryError, match=message):
        dq.expand_sql_macros(sql, FIVE_MINUTES)


def variable(values, **settings) -> dq.Variable:
    return dq.Variable("v", values, **settings)


@pytest.mark.parametrize(
    ("value", "kind", "fmt", "expected"),
    [
        (variable(["a", "b'c"], multi=True), dq.SQL, None, "'a','b''c'"),
        (variable(["a"], multi=True), dq.SQL, None, "'a'"),
        (variable(["a", "b"], include_all=True, is_all=True), dq.SQL, None, "'a','b'"),
        (variable([], include_all=True, is_all=True), dq.SQL, None, ""),
        (variable(["it's"]), dq.SQL, None, "it''s"),
        (variable(["a"], include_all=True, is_all=True, all_value="*"), dq.SQL, None, "*"),
        (variable(["gpt-4.1"], multi=True), dq.PROMQL, None, "gpt-4\\\\.1"),
        (variable(["a", "aws.bedrock"], multi=True), dq.PROMQL, None, "(a|aws\\\\.bedrock)"),
        (variable(["x"], include_all=True, is_all=True, all_value=".*"), dq.PROMQL, None, ".*"),
        (variable([], include_all=True, is_all=True), dq.PROMQL, None, "()"),
        (variable(["it's"]), dq.PROMQL, None, "it\\\\'s"),
        (variable(["a", "b"], multi=True), dq.PROMQL, "csv", "a,b"),
        (variable(["a", "b"], multi=True), dq.PROMQL, "pipe", "a|b"),
        (variable(["a.b", "c"], multi=True), dq.SQL, "regex", "(a\\.b|c)"),
        (variable(["o'b"], multi=True), dq.PROMQL, "sqlstring", "'o''b'"),
        (variable(["a", "b"], multi=True), dq.SQL, "json", '["a", "b"]'),
    ],
)
def test_variables_are_formatted_as_grafana_datasources_do(value, kind, fmt, expected):
    assert dq.format_variable(value, kind, fmt) == expected


def test_interval_variables_follow_the_range_and_the_panel_width():
    day = dq.TimeRange(FROM, FROM.replace(day=13))
    # 24 h over a full-width panel (1,800 points): 48 s rounds to 1m; rate = max(1m + 30s, 4 x 30s).
    full = dq.Intervals.compute(day, 1800, 30_000, 30_000)
    expr = "$__interval $__interval_ms $__rate_interval $__range $__range_s ${__range_ms}"
    assert dq.expand_promql(expr, {}, day, full) == "1m 60000 2m0s 86400s 86400 86400000"
    month = dq.TimeRange(FROM, FROM.replace(month=5, day=12))
    hourly = dq.Intervals.compute(month, 900, 1, 30_000)
    assert (hourly.interval, dq.go_duration(hourly.rate_interval)) == (3_600_000, "1h0m30s")
    # Prometheus' $__range is not a SQL variable in Grafana: it stays (and the query fails).
    assert dq.expand_sql("[$__range]", {}, day, full) == "[$__range]"


@pytest.mark.parametrize(
    ("text", "round_up", "expected"),
    [
        ("now", False, datetime(2026, 3, 18, 10, 30, 15, tzinfo=UTC)),
        ("now-30d/d", False, datetime(2026, 2, 16, tzinfo=UTC)),
        ("now/d", True, datetime(2026, 3, 18, 23, 59, 59, 999000, tzinfo=UTC)),
        ("now/M", False, datetime(2026, 3, 1, tzinfo=UTC)),
        ("now-1M/M", True, datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=UTC)),
        ("now/w", False, datetime(2026, 3, 16, tzinfo=UTC)),
        ("now-6h", False, datetime(2026, 3, 18, 4, 30, 15, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T04:04:05+01:00", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1767323045000", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_grafana_time_expressions(text, round_up, expected):
    now = datetime(2026, 3, 18, 10, 30, 15, tzinfo=UTC)
    assert dq.parse_time(text, now, round_up) == expected


def test_panel_time_overrides_apply_to_relative_ranges_only():
    now = datetime(2026, 3, 18, 10, 30, tzinfo=UTC)
    relative = dq.TimeRange.parse("now-24h", "now", now)
    today = dq.panel_range({"timeFrom": "now/d"}, relative, now)
    assert (today.start, today.end) == (datetime(2026, 3, 18, tzinfo=UTC), now)
    assert dq.panel_range({"timeFrom": "7d"}, relative, now).start == datetime(
        2026, 3, 11, 10, 30, tzinfo=UTC
    )
    absolute = dq.TimeRange.parse("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", now)
    assert dq.panel_range({"timeFrom": "now/d"}, absolute, now) == absolute
    shifted = dq.panel_range({"timeShift": "1d"}, absolute, now)
    assert shifted.start == datetime(2026, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (dq.go_float, 300, "300"),
        (dq.go_float, 86400, "86400"),
        (dq.go_float, 604800, "604800"),
        (dq.go_float, 1036800, "1.0368e+06"),
        (dq.go_float, 0.02, "0.02"),
        (dq.go_float, 0.00001, "1e-05"),
        (dq.go_duration, 120_000, "2m0s"),
        (dq.go_duration, 3_630_000, "1h0m30s"),
        (dq.go_duration, 90_500, "1m30.5s"),
        (dq.go_duration, 500, "500ms"),
        (dq.format_interval, 90_000, "1m"),
        (dq.format_interval, 86_400_000, "1d"),
        (dq.parse_interval_ms, "1h30m", 5_400_000),
        (dq.parse_interval_ms, "15", 15_000),
    ],
)
def test_go_and_grafana_number_formats(function, value, expected):
    assert function(value) == expected


def test_custom_variables_and_regexes():
    assert dq._custom_options("a, b\\,c ,Label : value") == ["a", "b,c", "value"]
    assert dq._apply_regex("/^llm_(.*)_total$/", ["llm_cost_total", "up"]) == ["cost"]


# Running the queries ------------------------------------------------------------------------


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers Prometheus' API with one series or two label values; records every request."""

    requests: ClassVar[list[tuple[str, str, dict]]] = []

    def do_GET(self):
        path, _separator, query = self.path.partition("?")
        self.answer(path, urllib.parse.parse_qs(query))

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.answer(self.path, urllib.parse.parse_qs(self.rfile.read(length).decode()))

    def answer(self, path: str, form: dict) -> None:
        self.requests.append((self.command, path, form))
        if path.startswith("/api/v1/label/"):
            data = ["openai", "anthropic"]
        elif path == "/api/v1/query_range":
            data = {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"]]}]}
        else:
            data = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_prometheus():
    FakePrometheus.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", FakePrometheus.requests
    server.shutdown()


def test_promql_panels_and_variables_go_to_prometheus_api(fake_prometheus):
    url, requests = fake_prometheus
    overview = DASHBOARDS["llm-cost-overview"]
    entries = dq.DashboardRun(overview, dq.Settings(prometheus=dq.Prometheus(url))).run()
    assert all(entry["ok"] and entry["has_data"] for entry in entries), entries
    calls = [(method, path) for method, path, _form in requests]
    targets = sum(len(panel.get("targets", [])) for panel in panels(overview))
    assert calls.count(("POST", "/api/v1/query")) == targets
    assert calls.count(("POST", "/api/v1/query_range")) == targets
    # Label values are a GET; "All" is the allValue, so chained variables match every value.
    (model,) = [form for _method, path, form in requests if path == "/api/v1/label/model/values"]
    assert model["match[]"] == ['llm_cost_usd_total{provider=~".*"}']

    requests.clear()
    pinned = dq.Settings(prometheus=dq.Prometheus(url), pinned={"provider": ["aws.bedrock", "x"]})
    dq.DashboardRun(overview, pinned).run()
    (model,) = [form for _method, path, form in requests if path == "/api/v1/label/model/values"]
    assert model["match[]"] == ['llm_cost_usd_total{provider=~"(aws\\\\.bedrock|x)"}']


def test_failures_name_errors_and_missing_data():
    entries = [
        {"dashboard": "d", "panel": "Broken", "ref_id": "A", "ok": False, "error": "bad_data: x"},
        {"dashboard": "d", "panel": "Spend", "ref_id": "A", "ok": True, "has_data": False},
        {"dashboard": "d", "panel": "Spend today", "ref_id": "A", "ok": True, "skipped": "no dsn"},
        {"dashboard": "d", "panel": "Quiet", "ref_id": "A", "ok": True, "has_data": False},
        {"rule": "HighSpend", "group": "g", "ok": True, "has_data": True},
    ]
    assert dq.failures(entries, ["^Spend", "HighSpend"]) == [
        "d: Broken [A]: bad_data: x",
        "d: Spend [A]: data expected, none came back",
        "d: Spend today [A]: data expected, but not run (no dsn)",
    ]


# Rule files -----------------------------------------------------------------------------------

HAND_WRITTEN_RULES = """\
# comments, block scalars, quotes and flow mappings, as people write rule files
groups:
  - name: aicost-cost   # trailing comment
    rules:
      - alert: CostHourlySpendHigh
        expr: sum(increase(llm_cost_usd_total[1h])) > 100
        for: 5m
        labels: {severity: critical, team: "fin ops"}
        annotations:
          summary: LLM spend is above $100 per hour
          description: >-
            {{ $value }} was spent in the last 60 minutes,
            more than this alert allows.

      - record: project:llm_cost_usd:rate1h
        expr: |-
          sum by (project) (rate(llm_cost_usd_total[1h]))
          or
          label_replace(sum(rate(llm_cost_usd_total[1h])), "project", "_all", "", "")
  - name: 'quoted: group'
    rules:
    - alert: "Targets down"
      expr: 'up{job=~"node|cost-monitor"} == 0'
    - alert: Multi line plain
      expr: node_filesystem_avail_bytes{fstype!~"tmpfs"}
        / node_filesystem_size_bytes{fstype!~"tmpfs"} < 0.10
"""


def test_hand_written_rules_are_read_completely(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(HAND_WRITTEN_RULES)
    assert list(dq.rules_of(path)) == [
        ("aicost-cost", "CostHourlySpendHigh", "sum(increase(llm_cost_usd_total[1h])) > 100"),
        (
            "aicost-cost",
            "project:llm_cost_usd:rate1h",
            "sum by (project) (rate(llm_cost_usd_total[1h]))\nor\n"
            'label_replace(sum(rate(llm_cost_usd_total[1h])), "project", "_all", "", "")',
        ),
        ("quoted: group", "Targets down", 'up{job=~"node|cost-monitor"} == 0'),
        (
            "quoted: group",
            "Multi line plain",
            'node_filesystem_avail_bytes{fstype!~"tmpfs"}'
            ' / node_filesystem_size_bytes{fstype!~"tmpfs"} < 0.10',
        ),
    ]
