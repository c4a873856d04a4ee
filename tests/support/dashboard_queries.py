"""Run every query of Grafana dashboards and Prometheus rule files against the real servers.

Grafana cannot run on the test machines, so this does what Grafana would do with each query:
it takes every panel target and template-variable query of the dashboard JSON files, and the
``expr`` of every rule in the given Prometheus rule files, expands variables and macros the
way Grafana 13 does for a time range, and executes the result:

- PromQL through Prometheus' HTTP API: an instant query at the range's end and a range query
  over it. An error (or a PromQL warning) fails the query; the report says whether series
  came back.
- SQL through psycopg2 with the given DSN (the read-only Grafana role in practice), each in
  its own READ ONLY transaction that is rolled back. An error fails the query, and so does a
  ``time_series`` result Grafana would refuse (no "time" column, rows not sorted by time).
- LogQL is listed but not executed.

Expansion, as Grafana does it (frontend, then datasource backend):

- template variables: ``$var``, ``${var}``, ``${var:format}``, ``[[var]]``. SQL datasources
  quote each value (``'a','b'``, quotes doubled) for multi-value/All variables; Prometheus
  regex-escapes them and joins several as ``(a|b)``. "All" is the variable's ``allValue``
  when set (inserted as is), else every value its own query returns.
- ``$__interval``/``$__interval_ms`` from the range and the panel's width (max data points)
  with the panel's or the datasource's minimum interval; ``$__rate_interval`` =
  max($__interval + scrape interval, 4 x scrape interval); ``$__range``, ``$__range_s``,
  ``$__range_ms`` (Prometheus only, as in Grafana); ``$__from``/``$__to``.
- SQL macros of Grafana's PostgreSQL datasource (pkg/tsdb/grafana-postgresql-datasource/
  macros.go): ``$__timeFilter(c)`` -> ``c BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC),
  ``$__timeFrom()``, ``$__timeTo()``, ``$__timeGroup(c, '1h'[, fill])`` ->
  ``time_bucket('3600.000s',c)`` when the datasource has ``timescaledb: true`` (the default
  here) else ``floor(extract(epoch from c)/3600)*3600``, ``$__timeGroupAlias`` (adds
  ``AS "time"``), ``$__time``, ``$__timeEpoch``, ``$__unixEpochFilter``, ``$__unixEpochFrom()``,
  ``$__unixEpochTo()``, ``$__unixEpochGroup[Alias]``, ``$__unixEpochNano{Filter,From,To}``.
- panel time overrides (``timeFrom`` such as ``now/d``, ``timeShift``) when the dashboard
  range is relative, as Grafana applies them.

Standard library, psycopg2 (for SQL) and PyYAML (for rule files) only, one file, so that it can
be copied into a test VM that has python3, python3-psycopg2 and python3-yaml.

    python3 dashboard_queries.py --dashboards DIR [--rules FILE ...] --prometheus URL
        --dsn DSN [--from TIME --to TIME] [--var NAME=VALUE[,VALUE]] [--expect-data REGEX ...]

Times are RFC 3339 / ISO 8601 or Grafana expressions (``now-30d/d``); by default each
dashboard uses its own time range and rules the last hour. Prints a JSON report; exits 1 if a
query failed, or if a query whose panel title or rule name matches an --expect-data pattern
returned no data (or could not run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

try:
    import psycopg2
except ImportError:  # PromQL-only runs need no PostgreSQL client
    psycopg2 = None

PROMQL, SQL, LOGQL = "promql", "sql", "logql"
DATASOURCE_TYPES = {
    "prometheus": PROMQL,
    "grafana-postgresql-datasource": SQL,
    "postgres": SQL,
    "loki": LOGQL,
}
# The datasources the grafana role provisions, for targets that name only a uid.
DATASOURCE_UIDS = {"aicost-prometheus": PROMQL, "aicost-timescaledb": SQL, "aicost-loki": LOGQL}
ALL = "$__all"
# Pixels per grid column when a panel has no maxDataPoints: a dashboard 1,800 pixels wide.
PIXELS_PER_COLUMN = 75
DEFAULT_MAX_DATA_POINTS = 1000
# Prometheus refuses more than 11,000 points per series; Grafana widens the step to stay below.
SAFE_RESOLUTION = 11000
# Rows of each SQL result kept in the report, to see what a panel would show.
SAMPLE_ROWS = 3


class QueryError(Exception):
    """A query the server (or Grafana's expansion) refused."""


# Time ---------------------------------------------------------------------------------------

_DATE_MATH = re.compile(r"([+-])(\d*)([smhdwMy])|/([smhdwMy])")
_FIXED_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utc_now() -> datetime:
    """Now at millisecond precision, as Grafana's time picker has it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (following - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _shift(moment: datetime, amount: int, unit: str) -> datetime:
    if unit == "M":
        return _add_months(moment, amount)
    if unit == "y":
        return _add_months(moment, 12 * amount)
    return moment + timedelta(seconds=amount * _FIXED_UNITS[unit])


def _round(moment: datetime, unit: str, up: bool) -> datetime:
    """Start of the unit containing ``moment``; its last millisecond when ``up`` (Grafana's
    "to" side of now/d)."""
    start = moment.replace(microsecond=0)
    if unit in "mhdwMy":
        start = start.replace(second=0)
    if unit in "hdwMy":
        start = start.replace(minute=0)
    if unit in "dwMy":
        start = start.replace(hour=0)
    if unit == "w":
        start -= timedelta(days=start.weekday())
    if unit in "My":
        start = start.replace(day=1)
    if unit == "y":
        start = start.replace(month=1)
    if not up:
        return start
    return _shift(start, 1, unit) - timedelta(milliseconds=1)


def parse_time(text: str, now: datetime, round_up: bool = False) -> datetime:
    """A Grafana time: ``now``, ``now-30d/d``, ``now/M``, RFC 3339 / ISO 8601, or epoch ms."""
    text = text.strip()
    if text.startswith("now"):
        moment, rest, position = now, text[3:], 0
        while position < len(rest):
            match = _DATE_MATH.match(rest, position)
            if match is None:
                raise ValueError(f"invalid relative time {text!r}")
            if match.group(4):
                moment = _round(moment, match.group(4), round_up)
            else:
                amount = int(match.group(2) or 1) * (-1 if match.group(1) == "-" else 1)
                moment = _shift(moment, amount, match.group(3))
            position = match.end()
        return moment
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    # A range picked as "now-...": Grafana applies panel time overrides only to those.
    relative: bool = True

    @classmethod
    def parse(cls, start: str, end: str, now: datetime) -> TimeRange:
        return cls(
            parse_time(start, now), parse_time(end, now, round_up=True), start.startswith("now")
        )

    @property
    def milliseconds(self) -> int:
        return round((self.end - self.start).total_seconds() * 1000)

    def as_dict(self) -> dict[str, str]:
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}


def rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: no fraction when zero, trailing zeros dropped."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def panel_range(panel: dict, dashboard_range: TimeRange, now: datetime) -> TimeRange:
    """The range a panel queries: Grafana's relative time (``timeFrom``) and ``timeShift``."""
    result = dashboard_range
    time_from = str(panel.get("timeFrom") or "").strip()
    if time_from and dashboard_range.relative:
        expression = time_from if "now" in time_from else "now-" + time_from
        result = TimeRange(parse_time(expression, now), now, True)
    time_shift = str(panel.get("timeShift") or "").strip()
    if time_shift:
        shift = now - parse_time("now-" + time_shift.lstrip("-"), now)
        result = TimeRange(result.start - shift, result.end - shift, result.relative)
    return result


# Intervals ----------------------------------------------------------------------------------

_INTERVAL_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_INTERVAL_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
# Grafana's rounding of range / max data points to a "nice" interval: (below, use), in ms.
_NICE_INTERVALS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
    (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
    (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
    (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)  # fmt: skip


def parse_interval_ms(text: str) -> int:
    """``30s``, ``1h``, ``1d``, ``500ms``, ``1h30m``; a bare number is seconds."""
    text = text.strip().strip("'\"<>")
    if text.isdigit():
        return int(text) * 1000
    parts = _INTERVAL_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"invalid interval {text!r}")
    return round(sum(float(number) * _INTERVAL_MS[unit] for number, unit in parts))


def round_interval_ms(milliseconds: float) -> int:
    for below, nice in _NICE_INTERVALS:
        if milliseconds < below:
            return nice
    return 31_536_000_000


def format_interval(milliseconds: int) -> str:
    """Grafana's gtime.FormatInterval: the largest whole unit (``90s`` -> ``1m``)."""
    for unit in ("y", "d", "h", "m", "s", "ms"):
        if milliseconds >= _INTERVAL_MS[unit]:
            return f"{milliseconds // _INTERVAL_MS[unit]}{unit}"
    return "1ms"


def go_duration(milliseconds: int) -> str:
    """Go's time.Duration.String(), as Grafana prints $__rate_interval (``2m0s``)."""
    if milliseconds < 1000:
        return f"{milliseconds}ms" if milliseconds else "0s"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form from 1e+06 (and below 1e-4)."""
    number = Decimal(repr(float(value))).normalize()
    sign, digits, exponent = number.as_tuple()
    if not any(digits):
        return "0"
    point = len(digits) + int(exponent)
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        power = point - 1
        return f"{'-' if sign else ''}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return f"{number:f}"


@dataclass(frozen=True)
class Intervals:
    """The interval variables of one query, in milliseconds."""

    interval: int
    rate_interval: int

    @classmethod
    def compute(
        cls, time_range: TimeRange, max_data_points: int, min_interval_ms: int, scrape_ms: int
    ) -> Intervals:
        interval = max(
            round_interval_ms(time_range.milliseconds / max_data_points),
            min_interval_ms,
            round_interval_ms(time_range.milliseconds / SAFE_RESOLUTION),
        )
        return cls(interval, max(interval + scrape_ms, 4 * scrape_ms))


# Template variables -------------------------------------------------------------------------


@dataclass
class Variable:
    name: str
    values: list[str]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    is_all: bool = False

    @property
    def is_list(self) -> bool:
        """Grafana passes an array for multi-value variables and for "All"."""
        return self.multi or self.is_all


def _prometheus_regex_escape(value: str) -> str:
    return re.sub(
        r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value.replace("\\", "\\" * 4)
    )


def _prometheus_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _regex_escape(value: str) -> str:
    return re.sub(r"[\\^$.*+?()\[\]{}|/-]", lambda m: "\\" + m.group(0), value)


def _join_regex(values: list[str]) -> str:
    escaped = [_regex_escape(value) for value in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


_FORMATS: dict[str, Callable[[list[str], str], str]] = {
    "csv": lambda values, name: ",".join(values),
    "pipe": lambda values, name: "|".join(values),
    "raw": lambda values, name: ",".join(values),
    "text": lambda values, name: " + ".join(values),
    "regex": lambda values, name: _join_regex(values),
    "glob": lambda values, name: values[0] if len(values) == 1 else "{" + ",".join(values) + "}",
    "json": lambda values, name: json.dumps(values if len(values) != 1 else values[0]),
    "singlequote": lambda values, name: ",".join(
        "'" + value.replace("'", "\\'") + "'" for value in values
    ),
    "doublequote": lambda values, name: ",".join(
        '"' + value.replace('"', '\\"') + '"' for value in values
    ),
    "sqlstring": lambda values, name: ",".join(_sql_literal(value) for value in values),
    "percentencode": lambda values, name: urllib.parse.quote(
        values[0] if len(values) == 1 else "{" + ",".join(values) + "}", safe=""
    ),
    "queryparam": lambda values, name: "&".join(
        f"var-{name}={urllib.parse.quote(value, safe='')}" for value in values
    ),
}


def format_variable(variable: Variable, kind: str, fmt: str | None = None) -> str:
    """A variable's text in a query of ``kind``, as Grafana's datasource would insert it."""
    if variable.is_all and variable.all_value is not None and fmt not in ("text", "percentencode"):
        return variable.all_value  # a custom "All" value is never escaped or quoted
    values = variable.values
    if fmt:
        if fmt not in _FORMATS:
            raise QueryError(f"unsupported variable format {fmt!r} in ${{{variable.name}:{fmt}}}")
        return _FORMATS[fmt](values, variable.name)
    quoted = variable.is_list or variable.include_all
    if kind == SQL:
        if quoted:
            return ",".join(_sql_literal(value) for value in values)
        return values[0].replace("'", "''") if values else ""
    if kind == PROMQL:
        if not quoted:
            return _prometheus_escape(values[0]) if values else ""
        escaped = [_prometheus_regex_escape(value) for value in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return ",".join(values)


_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
# Grafana's built-in variables and the SQL macros: names a query may use undefined.
BUILTIN_VARIABLES = frozenset(
    {
        "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms", "__range",
        "__range_s", "__range_ms", "__from", "__to", "__dashboard", "__name", "__org",
        "__user", "__timezone", "__all_variables", "__url_time_range", "__timeFilter",
        "__timeFrom", "__timeTo", "__timeGroup", "__timeGroupAlias", "__time", "__timeEpoch",
        "__unixEpochFilter", "__unixEpochFrom", "__unixEpochTo", "__unixEpochGroup",
        "__unixEpochGroupAlias", "__unixEpochNanoFilter", "__unixEpochNanoFrom",
        "__unixEpochNanoTo",
    }
)  # fmt: skip


def variable_names(text: str) -> list[str]:
    """Every variable a text refers to (``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``)."""
    return [m.group(1) or m.group(2) or m.group(4) for m in _VARIABLE.finditer(text)]


def _time_builtin(moment: datetime, fmt: str | None) -> str:
    if fmt in (None, "date:ms"):
        return str(round(moment.timestamp() * 1000))
    if fmt in ("date:seconds",):
        return str(int(moment.timestamp()))
    if fmt in ("date", "date:iso"):
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise QueryError(f"unsupported time format {fmt!r}")


def interpolate(
    text: str,
    variables: dict[str, Variable],
    kind: str,
    time_range: TimeRange,
    intervals: Intervals,
    dashboard_uid: str = "",
) -> str:
    """Grafana's template service: dashboard variables and the built-ins of ``kind``."""
    builtins = {
        "__interval": format_interval(intervals.interval),
        "__interval_ms": str(intervals.interval),
        "__dashboard": dashboard_uid,
        "__timezone": "utc",
    }
    if kind == PROMQL:  # Grafana supports these in Prometheus and Loki queries only
        seconds = round(time_range.milliseconds / 1000)
        builtins.update(
            __range=f"{seconds}s",
            __range_s=str(seconds),
            __range_ms=str(time_range.milliseconds),
            __rate_interval=go_duration(intervals.rate_interval),
            __rate_interval_ms=str(intervals.rate_interval),
        )

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in variables:
            return format_variable(variables[name], kind, fmt)
        if name in ("__from", "__to"):
            return _time_builtin(time_range.start if name == "__from" else time_range.end, fmt)
        if name in builtins:
            return builtins[name]
        return match.group(0)  # not a variable: left for the datasource (SQL macros)

    return _VARIABLE.sub(replace, text)


# SQL macros (Grafana's PostgreSQL datasource) -----------------------------------------------

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def expand_sql_macros(sql: str, time_range: TimeRange, timescaledb: bool = True) -> str:
    """The datasource's macro engine; raises QueryError as Grafana fails the query."""
    start, end = time_range.start.astimezone(UTC), time_range.end.astimezone(UTC)
    start_s, end_s = int(start.timestamp() // 1), int(end.timestamp() // 1)
    start_ns = int(Decimal(str(start.timestamp())) * 1_000_000_000)
    end_ns = int(Decimal(str(end.timestamp())) * 1_000_000_000)

    def group(name: str, args: list[str], epoch: bool) -> str:
        if len(args) < 2:
            raise QueryError(f"macro {name} needs time column and interval and optional fill value")
        try:
            seconds = parse_interval_ms(args[1].strip("'")) / 1000
        except ValueError:
            raise QueryError(f"error parsing interval {args[1]}") from None
        if epoch:
            return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"

    def evaluate(name: str, args: list[str]) -> str:
        column = args[0] if args else ""
        if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args:
            raise QueryError(f"missing time column argument for macro {name}")
        if name == "__time":
            return f'{column} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {column}) as "time"'
        if name == "__timeFilter":
            return f"{column} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
        if name == "__timeFrom":
            return f"'{rfc3339(start)}'"
        if name == "__timeTo":
            return f"'{rfc3339(end)}'"
        if name == "__timeGroup":
            return group(name, args, epoch=False)
        if name == "__timeGroupAlias":
            return group("__timeGroup", args, epoch=False) + ' AS "time"'
        if name == "__unixEpochFilter":
            return f"{column} >= {start_s} AND {column} <= {end_s}"
        if name == "__unixEpochNanoFilter":
            return f"{column} >= {start_ns} AND {column} <= {end_ns}"
        if name == "__unixEpochNanoFrom":
            return str(start_ns)
        if name == "__unixEpochNanoTo":
            return str(end_ns)
        if name == "__unixEpochGroup":
            return group(name, args, epoch=True)
        if name == "__unixEpochGroupAlias":
            return group("__unixEpochGroup", args, epoch=True) + ' AS "time"'
        raise QueryError(f"unknown macro {name!r}")

    def replace(match: re.Match) -> str:
        name = match.group(1)
        # Grafana 5.3 compatibility, kept by Grafana: a $__timeGroup(...) followed directly by
        # a comma (its first occurrence in the query) gets the alias.
        if name == "__timeGroup":
            at = sql.find(match.group(0)) + len(match.group(0))
            if at < len(sql) and sql[at] == ",":
                name = "__timeGroupAlias"
        return evaluate(name, [arg.strip(" ") for arg in match.group(2).split(",")])

    return _MACRO.sub(replace, sql)


def expand_sql(
    sql: str,
    variables: dict[str, Variable],
    time_range: TimeRange,
    intervals: Intervals,
    timescaledb: bool = True,
    dashboard_uid: str = "",
) -> str:
    """Variables (Grafana's frontend), the global SQL macros, then the datasource's macros."""
    sql = interpolate(sql, variables, SQL, time_range, intervals, dashboard_uid)
    sql = sql.replace("$__interval_ms", str(intervals.interval))
    sql = sql.replace("$__interval", format_interval(intervals.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(time_range.start.timestamp() // 1)))
    sql = sql.replace("$__unixEpochTo()", str(int(time_range.end.timestamp() // 1)))
    return expand_sql_macros(sql, time_range, timescaledb)


def expand_promql(
    expr: str,
    variables: dict[str, Variable],
    time_range: TimeRange,
    intervals: Intervals,
    dashboard_uid: str = "",
) -> str:
    return interpolate(expr, variables, PROMQL, time_range, intervals, dashboard_uid)


# Servers ------------------------------------------------------------------------------------


@dataclass
class PromResult:
    series: int
    points: int = 0
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


class Prometheus:
    """Prometheus' HTTP API (POST forms, as Grafana's datasource sends them)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, path: str, params: list[tuple[str, str]], post: bool = True) -> dict:
        form = urllib.parse.urlencode(params)
        request = (
            urllib.request.Request(
                self.url + path,
                data=form.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            if post
            else urllib.request.Request(f"{self.url}{path}?{form}")
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                body = json.load(error)
            except ValueError:
                raise QueryError(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise QueryError(f"Prometheus unreachable: {error}") from None
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body

    @staticmethod
    def _result(body: dict) -> PromResult:
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind in ("vector", "matrix"):
            series = len(result or [])
            points = sum(len(item.get("values", ())) or 1 for item in result or [])
        else:  # scalar or string: one value
            series = points = 1 if result is not None else 0
        return PromResult(series, points, body.get("warnings", []), body.get("infos", []))

    def instant(self, expr: str, at: datetime) -> PromResult:
        return self._result(
            self._call("/api/v1/query", [("query", expr), ("time", f"{at.timestamp():.3f}")])
        )

    def range(self, expr: str, time_range: TimeRange, step_ms: int) -> PromResult:
        step = step_ms / 1000
        # Grafana aligns the range to the step (start and end rounded down to a multiple).
        start = time_range.start.timestamp() // step * step
        end = time_range.end.timestamp() // step * step
        params = [("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        return self._result(self._call("/api/v1/query_range", [*params, ("step", f"{step:g}")]))

    def label_values(self, label: str, match: str | None, time_range: TimeRange) -> list[str]:
        params = [
            ("start", f"{time_range.start.timestamp():.3f}"),
            ("end", f"{time_range.end.timestamp():.3f}"),
        ]
        if match:
            params.append(("match[]", match))
        if label == "":
            return [str(value) for value in self._call("/api/v1/labels", params).get("data") or []]
        # The label values endpoint answers GET only.
        path = f"/api/v1/label/{urllib.parse.quote(label)}/values"
        return [str(value) for value in self._call(path, params, post=False).get("data") or []]

    def query_values(self, expr: str, at: datetime) -> list[str]:
        """query_result(): each series as Grafana lists it, ``name{labels} value timestamp``."""
        body = self._call("/api/v1/query", [("query", expr), ("time", f"{at.timestamp():.3f}")])
        values = []
        for item in (body.get("data") or {}).get("result") or []:
            labels = dict(item.get("metric", {}))
            name = labels.pop("__name__", "")
            text = ",".join(f'{key}="{value}"' for key, value in labels.items())
            sample = item.get("value", ["", ""])
            values.append(f"{name}{{{text}}} {sample[1]} {int(float(sample[0]) * 1000)}")
        return values


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[tuple]


class Postgres:
    """One connection; every query in its own READ ONLY transaction, rolled back after."""

    def __init__(self, dsn: str, timeout: float = 60.0) -> None:
        if psycopg2 is None:
            raise RuntimeError("SQL queries need psycopg2 (python3-psycopg2)")
        self.dsn = dsn
        self.timeout_ms = int(timeout * 1000)
        self._connection = None

    def _connect(self):
        if self._connection is None or self._connection.closed:
            try:
                self._connection = psycopg2.connect(self.dsn)
            except psycopg2.Error as error:
                raise QueryError(f"cannot connect: {str(error).strip()}") from None
            self._connection.set_session(readonly=True, autocommit=False)
        return self._connection

    def run(self, sql: str) -> SqlResult:
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", (self.timeout_ms,))
                cursor.execute(sql)
                if cursor.description is None:
                    return SqlResult([], [])
                return SqlResult([c.name for c in cursor.description], cursor.fetchall())
        except psycopg2.Error as error:
            raise QueryError(str(error).strip()) from None
        finally:
            if not connection.closed:
                connection.rollback()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def check_time_series(result: SqlResult) -> None:
    """What Grafana refuses in a time_series result: no time column, unsorted rows."""
    if not result.rows:
        return
    if "time" not in result.columns:
        raise QueryError(
            "time column is missing; make sure your data includes a time column for time "
            f"series format (columns: {result.columns})"
        )
    index = result.columns.index("time")
    times = [row[index] for row in result.rows]
    if any(later < earlier for earlier, later in itertools.pairwise(times)):
        raise QueryError("rows are not sorted by time (Grafana needs ascending time)")


# Dashboards -----------------------------------------------------------------------------------


@dataclass
class Settings:
    prometheus: Prometheus | None = None
    postgres: Postgres | None = None
    now: datetime = field(default_factory=utc_now)
    time_from: str | None = None
    time_to: str | None = None
    scrape_interval_ms: int = 30_000
    timescaledb: bool = True
    pinned: dict[str, list[str]] = field(default_factory=dict)
    max_data_points: int | None = None


def iter_panels(panels: list[dict]) -> Iterator[dict]:
    """Every panel, including those inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


def datasource_kind(reference: Any, fallback: Any = None) -> str | None:
    reference = reference or fallback
    if isinstance(reference, dict):
        if reference.get("type") in DATASOURCE_TYPES:
            return DATASOURCE_TYPES[reference["type"]]
        reference = reference.get("uid")
    if isinstance(reference, str):
        return DATASOURCE_UIDS.get(reference)
    return None


def _entry(**fields: Any) -> dict:
    fields.setdefault("ok", True)
    fields.setdefault("error", None)
    return fields


def _data_in(rows: list[tuple]) -> bool:
    return any(value is not None for row in rows for value in row)


class DashboardRun:
    """Resolves one dashboard's variables, then runs every target of every panel."""

    def __init__(self, dashboard: dict, settings: Settings, source: str = "") -> None:
        self.dashboard = dashboard
        self.settings = settings
        self.uid = dashboard.get("uid") or source
        time = dashboard.get("time") or {}
        self.range = TimeRange.parse(
            settings.time_from or time.get("from", "now-6h"),
            settings.time_to or time.get("to", "now"),
            settings.now,
        )
        self.variables: dict[str, Variable] = {}
        self.entries: list[dict] = []

    def run(self) -> list[dict]:
        for spec in (self.dashboard.get("templating") or {}).get("list") or []:
            self.variables[spec["name"]] = self._variable(spec)
        for panel in iter_panels(self.dashboard.get("panels") or []):
            for target in panel.get("targets") or []:
                self.entries.append(self._target(panel, target))
        return self.entries

    def _intervals(self, time_range: TimeRange, kind: str, panel: dict, target: dict) -> Intervals:
        points = panel.get("maxDataPoints") or self.settings.max_data_points
        if not points:
            width = (panel.get("gridPos") or {}).get("w")
            points = width * PIXELS_PER_COLUMN if width else DEFAULT_MAX_DATA_POINTS
        minimum = self.settings.scrape_interval_ms if kind == PROMQL else 1
        for text in (panel.get("interval"), target.get("interval")):
            if text and "$" not in str(text):
                minimum = max(minimum, parse_interval_ms(str(text)))
        return Intervals.compute(time_range, int(points), minimum, self.settings.scrape_interval_ms)

    # Variables

    def _variable(self, spec: dict) -> Variable:
        name = spec["name"]
        variable = Variable(
            name=name,
            values=[],
            multi=bool(spec.get("multi")),
            include_all=bool(spec.get("includeAll")),
            all_value=spec.get("allValue") or None,
        )
        options = self._options(spec)
        regex = spec.get("regex")
        if regex and options:
            options = _apply_regex(regex, options)
        selected = self.settings.pinned.get(name)
        if selected is None:
            current = (spec.get("current") or {}).get("value")
            selected = current if isinstance(current, list) else [current] if current else []
        if selected in ([ALL], ["All"]) and variable.include_all:
            variable.is_all, variable.values = True, options
        elif selected:
            variable.values = [str(value) for value in selected]
        else:
            variable.values = options[:1]
        return variable

    def _options(self, spec: dict) -> list[str]:
        kind = spec.get("type")
        query = spec.get("query")
        if kind == "custom":
            return _custom_options(str(query or ""))
        if kind in ("constant", "textbox"):
            return [str(query or "")]
        if kind == "interval":
            return [item.strip() for item in str(query or "").split(",") if item.strip()]
        if kind != "query":
            return []
        if isinstance(query, dict):
            query = query.get("query") or query.get("rawSql") or ""
        query = str(query or "")
        language = datasource_kind(spec.get("datasource"))
        label = f"variable ${spec['name']}"
        entry = _entry(dashboard=self.uid, panel=label, panel_id=None, ref_id=None, kind=language)
        intervals = Intervals.compute(
            self.range, DEFAULT_MAX_DATA_POINTS, 1, self.settings.scrape_interval_ms
        )
        values: list[str] = []
        try:
            if language == SQL:
                expanded = expand_sql(
                    query,
                    self.variables,
                    self.range,
                    intervals,
                    self.settings.timescaledb,
                    self.uid,
                )
                entry["query"] = expanded
                if self.settings.postgres is None:
                    entry.update(skipped="no --dsn given")
                    self.entries.append(entry)
                    return []
                values = _sql_values(self.settings.postgres.run(expanded))
            elif language == PROMQL:
                expanded = expand_promql(query, self.variables, self.range, intervals, self.uid)
                entry["query"] = expanded
                if self.settings.prometheus is None:
                    entry.update(skipped="no --prometheus given")
                    self.entries.append(entry)
                    return []
                values = _prometheus_values(self.settings.prometheus, expanded, self.range)
            else:
                raise QueryError(f"variable on an unsupported datasource {spec.get('datasource')}")
        except (QueryError, ValueError) as error:
            entry.update(ok=False, error=str(error))
        entry.update(rows=len(values), has_data=bool(values))
        self.entries.append(entry)
        return values

    # Panels

    def _target(self, panel: dict, target: dict) -> dict:
        kind = datasource_kind(target.get("datasource"), panel.get("datasource"))
        entry = _entry(
            dashboard=self.uid,
            panel=panel.get("title", ""),
            panel_id=panel.get("id"),
            ref_id=target.get("refId"),
            kind=kind,
        )
        time_range = panel_range(panel, self.range, self.settings.now)
        entry["time_range"] = time_range.as_dict()
        try:
            intervals = self._intervals(time_range, kind, panel, target)
            if kind == SQL:
                self._run_sql(entry, target, time_range, intervals)
            elif kind == PROMQL:
                self._run_promql(entry, target, time_range, intervals)
            elif kind == LOGQL:
                entry.update(query=target.get("expr", ""), skipped="LogQL is not executed")
            else:
                raise QueryError(f"unknown datasource {target.get('datasource')}")
        except (QueryError, ValueError) as error:
            entry.update(ok=False, error=str(error))
        return entry

    def _run_sql(self, entry: dict, target: dict, time_range: TimeRange, intervals: Intervals):
        query = expand_sql(
            target.get("rawSql", ""),
            self.variables,
            time_range,
            intervals,
            self.settings.timescaledb,
            self.uid,
        )
        entry.update(query=query, format=target.get("format", "time_series"))
        if self.settings.postgres is None:
            entry["skipped"] = "no --dsn given"
            return
        result = self.settings.postgres.run(query)
        entry.update(
            rows=len(result.rows),
            columns=result.columns,
            sample=[list(row) for row in result.rows[:SAMPLE_ROWS]],
            has_data=_data_in(result.rows),
        )
        if entry["format"] == "time_series":
            check_time_series(result)

    def _run_promql(self, entry: dict, target: dict, time_range: TimeRange, intervals: Intervals):
        query = expand_promql(
            target.get("expr", ""), self.variables, time_range, intervals, self.uid
        )
        entry["query"] = query
        if self.settings.prometheus is None:
            entry["skipped"] = "no --prometheus given"
            return
        run_promql(entry, self.settings.prometheus, query, time_range, intervals.interval)


def run_promql(
    entry: dict, prometheus: Prometheus, query: str, time_range: TimeRange, step_ms: int
):
    """Instant query at the range's end and range query over it; fills ``entry``."""
    errors, warnings, infos = [], [], []
    series: dict[str, int | None] = {"instant": None, "range": None}
    for mode in ("instant", "range"):
        try:
            result = (
                prometheus.instant(query, time_range.end)
                if mode == "instant"
                else prometheus.range(query, time_range, step_ms)
            )
        except QueryError as error:
            errors.append(f"{mode}: {error}")
            continue
        series[mode] = result.series
        warnings += [f"{mode}: {text}" for text in result.warnings]
        infos += [f"{mode}: {text}" for text in result.infos]
    entry.update(series=series, has_data=any(series.values()))
    if warnings:
        entry["warnings"] = warnings
    if infos:
        entry["infos"] = infos
    if errors or warnings:
        entry.update(ok=False, error="; ".join(errors + warnings))


def _custom_options(query: str) -> list[str]:
    """A custom variable's ``a,b`` or ``text : value`` list (``\\,`` escapes a comma)."""
    values = []
    for item in re.split(r"(?<!\\),", query):
        item = item.replace("\\,", ",").strip()
        if " : " in item:
            item = item.split(" : ", 1)[1].strip()
        if item:
            values.append(item)
    return values


def _apply_regex(regex: str, options: list[str]) -> list[str]:
    """A variable's regex: keeps matching options, the first group when there is one."""
    pattern = regex.strip()
    flags = 0
    match = re.fullmatch(r"/(.*)/([gimsuy]*)", pattern, re.S)
    if match:
        pattern = match.group(1)
        flags = re.I if "i" in match.group(2) else 0
    compiled = re.compile(pattern, flags)
    result = []
    for option in options:
        found = compiled.search(option)
        if found:
            value = found.group("value") if "value" in compiled.groupindex else None
            value = value or (found.group(1) if compiled.groups else option)
            if value not in result:
                result.append(value)
    return result


def _sql_values(result: SqlResult) -> list[str]:
    """A SQL variable's options: the __value column, else every value of every column."""
    if "__value" in result.columns:
        index = result.columns.index("__value")
        cells = [row[index] for row in result.rows]
    else:
        cells = [value for row in result.rows for value in row]
    values: list[str] = []
    for cell in cells:
        if cell is not None and str(cell) not in values:
            values.append(str(cell))
    return values


_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)\s*$", re.S)
_LABEL_NAMES = re.compile(r"^label_names\((.*)\)\s*$", re.S)
_METRICS = re.compile(r"^metrics\((.*)\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^query_result\((.*)\)\s*$", re.S)


def _prometheus_values(prometheus: Prometheus, query: str, time_range: TimeRange) -> list[str]:
    """Grafana's Prometheus variable functions."""
    query = query.strip()
    match = _LABEL_VALUES.match(query)
    if match:
        return prometheus.label_values(match.group(2), match.group(1), time_range)
    match = _LABEL_NAMES.match(query)
    if match:
        return prometheus.label_values("", match.group(1).strip() or None, time_range)
    match = _METRICS.match(query)
    if match:
        names = prometheus.label_values("__name__", None, time_range)
        pattern = re.compile(match.group(1).strip() or ".*")
        return [name for name in names if pattern.search(name)]
    match = _QUERY_RESULT.match(query)
    return prometheus.query_values(match.group(1) if match else query, time_range.end)


# Rule files -----------------------------------------------------------------------------------


def load_yaml(text: str) -> Any:
    """Every scalar a string, as Prometheus reads an expression."""
    import yaml  # only rule files need it: python3-yaml in a test VM

    return yaml.load(text, Loader=yaml.BaseLoader)


def rules_of(path: Path) -> Iterator[tuple[str, str, str]]:
    """(group, rule name, expr) of every alerting and recording rule in a rule file."""
    document = load_yaml(path.read_text(encoding="utf-8")) or {}
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record") or "(unnamed)"
            yield str(group.get("name", "")), str(name), str(rule.get("expr", ""))


def check_rules(path: Path, settings: Settings) -> list[dict]:
    time_range = TimeRange.parse(
        settings.time_from or "now-1h", settings.time_to or "now", settings.now
    )
    intervals = Intervals.compute(
        time_range,
        settings.max_data_points or DEFAULT_MAX_DATA_POINTS,
        settings.scrape_interval_ms,
        settings.scrape_interval_ms,
    )
    entries = []
    for group, name, expr in rules_of(path):
        entry = _entry(rule_file=str(path), group=group, rule=name, kind=PROMQL, query=expr)
        entry["time_range"] = time_range.as_dict()
        if settings.prometheus is None:
            entry["skipped"] = "no --prometheus given"
        else:
            run_promql(entry, settings.prometheus, expr, time_range, intervals.interval)
        entries.append(entry)
    return entries


# Running it all -------------------------------------------------------------------------------


def dashboard_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return files


def run_checks(dashboards: list[Path], rules: list[Path], settings: Settings) -> list[dict]:
    """One report entry per query: every dashboard's variables and targets, every rule."""
    entries: list[dict] = []
    for path in dashboard_files(dashboards):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        entries += DashboardRun(dashboard, settings, path.stem).run()
    for path in rules:
        entries += check_rules(path, settings)
    return entries


def failures(entries: list[dict], expect_data: list[str]) -> list[str]:
    """Why the run fails: errors, and expected data that did not come back."""
    patterns = [re.compile(pattern) for pattern in expect_data]
    problems = []
    for entry in entries:
        where = entry.get("rule") or f"{entry.get('dashboard')}: {entry.get('panel')}"
        label = f"{where} [{entry.get('ref_id') or entry.get('group') or ''}]"
        if not entry["ok"]:
            problems.append(f"{label}: {entry['error']}")
        elif any(
            pattern.search(entry.get("rule") or entry.get("panel") or "") for pattern in patterns
        ):
            if entry.get("skipped"):
                problems.append(f"{label}: data expected, but not run ({entry['skipped']})")
            elif not entry.get("has_data"):
                problems.append(f"{label}: data expected, none came back")
    return problems


def _parse_var(text: str) -> tuple[str, list[str]]:
    name, separator, values = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE[,VALUE...], got {text!r}")
    return name, [ALL] if values in (ALL, "All") else values.split(",")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dashboards",
        type=Path,
        action="append",
        default=[],
        help="dashboard JSON file or directory of them (repeatable)",
    )
    parser.add_argument(
        "--rules", type=Path, nargs="+", action="extend", default=[], help="Prometheus rule files"
    )
    parser.add_argument("--prometheus", help="Prometheus URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--dsn", help="libpq DSN of the Grafana (read-only) database role")
    parser.add_argument(
        "--from",
        dest="time_from",
        help="range start (default: each dashboard's own; rules: now-1h)",
    )
    parser.add_argument("--to", dest="time_to", help="range end (default: now)")
    parser.add_argument(
        "--var",
        type=_parse_var,
        action="append",
        default=[],
        help="pin a variable: NAME=VALUE[,VALUE...] or NAME=All",
    )
    parser.add_argument(
        "--scrape-interval",
        default="30s",
        help="the Prometheus datasource's scrape interval (default: %(default)s)",
    )
    parser.add_argument(
        "--no-timescaledb",
        dest="timescaledb",
        action="store_false",
        help="expand $__timeGroup without time_bucket (timescaledb: false)",
    )
    parser.add_argument(
        "--max-data-points", type=int, help="instead of the panel width (75 points per grid column)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="per query, seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--expect-data",
        nargs="+",
        action="extend",
        default=[],
        metavar="REGEX",
        help="panel titles / rule names that must return data",
    )
    options = parser.parse_args(argv)
    if not options.dashboards and not options.rules:
        parser.error("nothing to check: give --dashboards and/or --rules")

    settings = Settings(
        prometheus=Prometheus(options.prometheus, options.timeout) if options.prometheus else None,
        postgres=Postgres(options.dsn, options.timeout) if options.dsn else None,
        time_from=options.time_from,
        time_to=options.time_to,
        scrape_interval_ms=parse_interval_ms(options.scrape_interval),
        timescaledb=options.timescaledb,
        pinned=dict(options.var),
        max_data_points=options.max_data_points,
    )
    try:
        entries = run_checks(options.dashboards, options.rules, settings)
    finally:
        if settings.postgres is not None:
            settings.postgres.close()
    problems = failures(entries, options.expect_data)
    summary = {
        "queries": len(entries),
        "failed": sum(not entry["ok"] for entry in entries),
        "skipped": sum(bool(entry.get("skipped")) for entry in entries),
        "without_data": sum(
            entry["ok"] and not entry.get("skipped") and not entry.get("has_data")
            for entry in entries
        ),
    }
    json.dump(
        {"summary": summary, "failures": problems, "queries": entries},
        sys.stdout,
        indent=2,
        default=str,
    )
    sys.stdout.write("\n")
    print(
        f"{summary['queries']} queries: {summary['failed']} failed, {summary['skipped']} "
        f"skipped, {summary['without_data']} without data",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
