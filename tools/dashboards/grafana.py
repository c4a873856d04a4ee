"""Building blocks for Grafana dashboards in the classic JSON model (schemaVersion 41).

Only core panels (timeseries, stat, gauge, bargauge, table, piechart, text, row) and the three
datasources the grafana role provisions. Every helper returns plain dicts; ``Grid`` places
panels left to right on Grafana's 24-column grid, and ``dashboard`` numbers them.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 41
GRID_COLUMNS = 24

PROMETHEUS = {"type": "prometheus", "uid": "aicost-prometheus"}
TIMESCALEDB = {"type": "grafana-postgresql-datasource", "uid": "aicost-timescaledb"}
LOKI = {"type": "loki", "uid": "aicost-loki"}
DATASOURCES = (PROMETHEUS, TIMESCALEDB, LOKI)

# Grafana's "All" option as a variable's current value.
ALL = {"selected": True, "text": ["All"], "value": ["$__all"]}
DASHBOARD_TAG = "llm-cost"

USD = "currencyUSD"
PERCENT = "percentunit"

# How the legend titles its calculations (legend.sortBy names one of them).
LEGEND_CALC_NAMES = {
    "mean": "Mean",
    "max": "Max",
    "min": "Min",
    "sum": "Total",
    "lastNotNull": "Last *",
}


def thresholds(*steps: tuple[float, str], base: str = "green") -> dict:
    """Absolute thresholds: the base colour, then (value, colour) steps upwards."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def value_text(mapping: dict[str, tuple[str, str]]) -> list[dict]:
    """Value mappings: raw value -> (text shown, colour)."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": index}
                for index, (value, (text, color)) in enumerate(mapping.items())
            },
        }
    ]


UP_DOWN = value_text({"1": ("Up", "green"), "0": ("Down", "red")})
OK_FAILED = value_text({"1": ("OK", "green"), "0": ("Failed", "red")})


# Targets ------------------------------------------------------------------------------------


def promql(
    expr: str, legend: str = "__auto", *, instant: bool = False, table: bool = False
) -> dict:
    """A PromQL target: a range query for graphs, an instant query for stats and tables."""
    return {
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": _text(expr),
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
    }


def sql(query: str, *, series: bool = False) -> dict:
    """A raw SQL target on TimescaleDB; ``series`` asks for Grafana's time_series format
    (a "time" column, sorted ascending; a "metric" column names the series)."""
    return {
        "datasource": TIMESCALEDB,
        "editorMode": "code",
        "format": "time_series" if series else "table",
        "rawQuery": True,
        "rawSql": _text(query),
    }


def _text(query: str) -> str:
    """Strip the source code's indentation: that of the first line, from every line that has
    it (lines interpolated from shared fragments start at column 0 and stay as they are)."""
    lines = query.strip("\n").splitlines()
    first = next((line for line in lines if line.strip()), "")
    prefix = first[: len(first) - len(first.lstrip())]
    return "\n".join(
        line[len(prefix) :] if line.startswith(prefix) else line for line in lines
    ).strip()


# Panels -------------------------------------------------------------------------------------


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict],
    *,
    unit: str | None = None,
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    steps: dict | None = None,
    mappings: list | None = None,
    color: dict | None = None,
    custom: dict | None = None,
    overrides: list | None = None,
    options: dict | None = None,
    no_value: str | None = None,
    transformations: list | None = None,
    time_from: str | None = None,
    interval: str | None = None,
) -> dict:
    datasources = {(t["datasource"]["type"], t["datasource"]["uid"]) for t in targets}
    if len(datasources) != 1:
        raise ValueError(f"panel {title!r}: targets must share one datasource")
    defaults: dict[str, Any] = {
        "color": color or {"mode": "thresholds"},
        "mappings": mappings or [],
        "thresholds": steps or thresholds(),
    }
    for key, value in (
        ("unit", unit),
        ("decimals", decimals),
        ("min", minimum),
        ("max", maximum),
        ("custom", custom),
        ("noValue", no_value),
    ):
        if value is not None:
            defaults[key] = value
    result = {
        "type": kind,
        "title": title,
        "description": _text(description),
        "datasource": dict(targets[0]["datasource"]),
        "targets": [
            dict(target, refId=chr(ord("A") + index)) for index, target in enumerate(targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if transformations:
        result["transformations"] = transformations
    if time_from:
        result["timeFrom"] = time_from
    if interval:
        result["interval"] = interval
    return result


def _reduce(calcs: str = "lastNotNull", values: bool = False) -> dict:
    return {"calcs": [calcs], "fields": "", "values": values}


def timeseries(
    title: str,
    description: str,
    *targets: dict,
    unit: str = "short",
    axis_label: str = "",
    stacked: bool = False,
    bars: bool = False,
    legend_calcs: tuple[str, ...] = ("mean", "max"),
    threshold_lines: bool = False,
    **extra: Any,
) -> dict:
    custom = {
        "axisLabel": axis_label,
        "axisSoftMin": 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else (30 if stacked else 10),
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "line" if threshold_lines else "off"},
    }
    options = {
        "legend": {
            "calcs": list(legend_calcs),
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
            "sortBy": LEGEND_CALC_NAMES[legend_calcs[0]] if legend_calcs else None,
            "sortDesc": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    if not legend_calcs:
        del options["legend"]["sortBy"], options["legend"]["sortDesc"]
    extra.setdefault("color", {"mode": "palette-classic"})
    return panel(
        "timeseries", title, description, list(targets), unit=unit, custom=custom,
        options=options, **extra,
    )  # fmt: skip


def stat(
    title: str,
    description: str,
    *targets: dict,
    unit: str = "short",
    graph: bool = False,
    **extra: Any,
) -> dict:
    options = {
        "colorMode": "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": _reduce(),
        "showPercentChange": False,
        "textMode": "auto",
        "wideLayout": True,
    }
    return panel("stat", title, description, list(targets), unit=unit, options=options, **extra)


def gauge(title: str, description: str, *targets: dict, unit: str, **extra: Any) -> dict:
    options = {
        "minVizHeight": 75,
        "minVizWidth": 75,
        "orientation": "auto",
        "reduceOptions": _reduce(),
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "sizing": "auto",
    }
    return panel("gauge", title, description, list(targets), unit=unit, options=options, **extra)


def bargauge(
    title: str,
    description: str,
    *targets: dict,
    unit: str,
    rows: bool = False,
    **extra: Any,
) -> dict:
    """Horizontal bars; ``rows`` shows one bar per row of a table-format result."""
    options = {
        "displayMode": "gradient",
        "maxVizHeight": 300,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "orientation": "horizontal",
        "reduceOptions": _reduce(values=rows),
        "showUnfilled": True,
        "sizing": "auto",
        "valueMode": "color",
    }
    return panel("bargauge", title, description, list(targets), unit=unit, options=options, **extra)


def table(
    title: str,
    description: str,
    *targets: dict,
    columns: dict[str, str] | None = None,
    sort_by: str | None = None,
    footer: tuple[str, ...] = (),
    **extra: Any,
) -> dict:
    """A table; ``columns`` gives a unit per column name, ``footer`` the columns summed."""
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}]
            + ([{"id": "decimals", "value": 2}] if unit == USD else []),
        }
        for name, unit in (columns or {}).items()
    ]
    options: dict[str, Any] = {
        "cellHeight": "sm",
        "footer": {
            "countRows": False,
            "enablePagination": False,
            "fields": list(footer),
            "reducer": ["sum"],
            "show": bool(footer),
        },
        "showHeader": True,
    }
    if sort_by:
        options["sortBy"] = [{"desc": True, "displayName": sort_by}]
    extra.setdefault(
        "custom", {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}
    )
    return panel(
        "table", title, description, list(targets), overrides=overrides, options=options, **extra
    )


def piechart(title: str, description: str, *targets: dict, unit: str, **extra: Any) -> dict:
    options = {
        "displayLabels": ["percent"],
        "legend": {
            "displayMode": "table",
            "placement": "right",
            "showLegend": True,
            "values": ["value", "percent"],
        },
        "pieType": "donut",
        "reduceOptions": _reduce(values=True),
        "tooltip": {"mode": "single", "sort": "none"},
    }
    extra.setdefault("color", {"mode": "palette-classic"})
    return panel("piechart", title, description, list(targets), unit=unit, options=options, **extra)


def text(title: str, description: str, markdown: str) -> dict:
    return {
        "type": "text",
        "title": title,
        "description": _text(description),
        "options": {"mode": "markdown", "content": _text(markdown)},
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


# Variables ----------------------------------------------------------------------------------


def prometheus_variable(name: str, label: str, query: str, description: str) -> dict:
    """A multi-value label variable; All matches every value (also ones seen later)."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": PROMETHEUS,
        "definition": query,
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": ALL,
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def sql_variable(name: str, label: str, query: str, description: str) -> dict:
    """A multi-value variable from SQL; All stands for every value the query returns, which
    Grafana's PostgreSQL datasource inserts as a quoted list ('a','b') (see queries.any_of)."""
    query = _text(query)
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": TIMESCALEDB,
        "definition": query,
        "query": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "current": ALL,
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


# Layout and dashboard -----------------------------------------------------------------------


class Grid:
    """Places panels left to right in rows of 24 columns, starting a new line when full."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def add(self, item: dict, width: int, height: int) -> None:
        if not 0 < width <= GRID_COLUMNS:
            raise ValueError(f"{item['title']!r}: width {width}")
        if self._x + width > GRID_COLUMNS:
            self.newline()
        item["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self.panels.append(item)
        self._x += width
        self._line_height = max(self._line_height, height)

    def row(self, title: str) -> None:
        self.newline()
        self.add(row(title), GRID_COLUMNS, 1)
        self.newline()

    def newline(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    grid: Grid,
    variables: list[dict],
    time_from: str,
    refresh: str,
) -> dict:
    panels = [dict(item, id=index) for index, item in enumerate(grid.panels, start=1)]
    return {
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "dashboard",
                "includeVars": False,
                "keepTime": True,
                "tags": [DASHBOARD_TAG],
                "targetBlank": False,
                "title": "LLM cost dashboards",
                "type": "dashboards",
            }
        ],
        "panels": panels,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["aicost", DASHBOARD_TAG],
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "monday",
    }
