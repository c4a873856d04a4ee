"""Collectors and ingest: is usage data arriving, complete and on time? (Prometheus)"""

from __future__ import annotations

from tools.dashboards.grafana import (
    UP_DOWN,
    Grid,
    dashboard,
    prometheus_variable,
    promql,
    stat,
    table,
    text,
    thresholds,
    timeseries,
)
from tools.dashboards.queries import selector

UID = "llm-collectors-ingest"

SOURCE = 'source=~"$source"'
LAST_SUCCESS = f"max by (source) ({selector('llm_etl_last_success_timestamp_seconds', SOURCE)})"
INTERVAL = f"max by (source) ({selector('llm_etl_interval_seconds', SOURCE)})"
AGE = f"time() - {LAST_SUCCESS}"


def per_source(metric: str, window: str, function: str = "increase") -> str:
    return f"sum by (source) ({function}({selector(metric, SOURCE)}[{window}]))"


def write_latency(quantile: str) -> str:
    return (
        f"histogram_quantile({quantile}, "
        "sum by (le) (rate(llm_ingest_write_seconds_bucket[$__rate_interval])))"
    )


def build() -> dict:
    grid = Grid()
    grid.add(
        text(
            "How to read this dashboard",
            "What the dashboard shows.",
            """
            **Whether usage data reaches the cost monitor.** *Collectors* fetch usage and
            billing data from the providers' APIs on an interval: each should succeed about
            once per interval. The *ingest API* receives the applications' usage records: they
            are stored in TimescaleDB, or kept in the on-disk spool while the database is down
            and written later. Rejected records are lost until the sender fixes them.
            """,
        ),
        24,
        3,
    )

    grid.row("Collectors")
    grid.add(
        table(
            "Collector status",
            """
            Per collector: time since its last successful run, its interval, that age in
            intervals (above 2 means at least one run was missed), and the rows collected and
            errors in the selected time range.
            """,
            promql(AGE, instant=True, table=True),
            promql(INTERVAL, instant=True, table=True),
            promql(f"({AGE}) / {INTERVAL}", instant=True, table=True),
            promql(per_source("llm_etl_rows_total", "$__range"), instant=True, table=True),
            promql(per_source("llm_etl_errors_total", "$__range"), instant=True, table=True),
            columns={
                "Since last success": "s",
                "Interval": "s",
                "Age in intervals": "none",
                "Rows": "short",
                "Errors": "short",
            },
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "source": "Collector",
                            "Value #A": "Since last success",
                            "Value #B": "Interval",
                            "Value #C": "Age in intervals",
                            "Value #D": "Rows",
                            "Value #E": "Errors",
                        },
                    },
                },
            ],
            no_value="No collectors configured",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Collection delay (in intervals)",
            """
            Time since each collector's last success divided by its interval. Up to about 1 is
            normal; above 2 a run was missed (see the errors and the cost monitor's log).
            """,
            promql(f"({AGE}) / {INTERVAL}", "{{source}}"),
            unit="none",
            steps=thresholds((2, "orange"), (4, "red")),
            threshold_lines=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Rows collected per hour",
            "Usage and cost rows each collector stored, per hour.",
            promql(
                f"{per_source('llm_etl_rows_total', '$__rate_interval', 'rate')} * 3600",
                "{{source}}",
            ),
            axis_label="rows per hour",
        ),
        12,
        7,
    )
    grid.add(
        timeseries(
            "Collector errors per hour",
            "Failed collector runs per hour (API errors, authentication, timeouts).",
            promql(
                f"{per_source('llm_etl_errors_total', '$__rate_interval', 'rate')} * 3600",
                "{{source}}",
            ),
            axis_label="errors per hour",
        ),
        12,
        7,
    )

    grid.row("Ingest API")
    grid.add(
        stat(
            "Database reachable",
            "Whether the cost monitor can write to TimescaleDB right now.",
            promql("min(llm_database_up)", "Database", instant=True),
            mappings=UP_DOWN,
            steps=thresholds((1, "green"), base="red"),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Spool",
            """
            Records waiting on disk for the database (written when it is back). Should be 0
            B; it grows while the database is unreachable.
            """,
            promql("max(llm_spool_bytes)", "Spool", instant=True),
            unit="bytes",
            steps=thresholds((1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Price catalog age",
            """
            How old the price catalog's snapshot is. Providers change prices a few times a
            year: refresh the catalog when this gets beyond a few months.
            """,
            promql(
                "time() - max(llm_price_catalog_timestamp_seconds)", "Catalog age", instant=True
            ),
            unit="dtdurations",
            steps=thresholds((90 * 86400, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Records rejected in the selected range",
            "Usage records the ingest API refused (see the reasons below).",
            promql(
                "sum(increase(llm_ingest_rejected_records_total[$__range]))",
                "Rejected",
                instant=True,
            ),
            steps=thresholds((1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        timeseries(
            "Spool size",
            "Bytes of records waiting on disk for the database.",
            promql("max(llm_spool_bytes)", "Spool"),
            unit="bytes",
        ),
        8,
        4,
    )
    grid.add(
        timeseries(
            "Rows stored and spooled per second",
            """
            Usage rows written to the database, and rows written to the on-disk spool because
            the database was unreachable.
            """,
            promql("sum(rate(llm_ingest_stored_rows_total[$__rate_interval]))", "Stored"),
            promql("sum(rate(llm_ingest_spooled_rows_total[$__rate_interval]))", "Spooled"),
            unit="short",
            axis_label="rows per second",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Rejected records per second by reason",
            """
            Records refused by the ingest API, by reason: wrong_type, out_of_range, missing,
            unknown_provider, future_time, inconsistent, malformed_json, body_too_large,
            batch_too_large.
            """,
            promql(
                "sum by (reason) (rate(llm_ingest_rejected_records_total[$__rate_interval]))",
                "{{reason}}",
            ),
            unit="short",
            axis_label="records per second",
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "HTTP responses per second by code",
            """
            Ingest API answers: 200 stored, 202 spooled, 207 partly rejected, 4xx refused,
            503 database down and spool full.
            """,
            promql(
                "sum by (code) (rate(llm_ingest_http_responses_total[$__rate_interval]))",
                "{{code}}",
            ),
            unit="reqps",
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Database write latency",
            "Time to write one batch of rows to TimescaleDB (COPY and commit).",
            promql(write_latency("0.5"), "median"),
            promql(write_latency("0.95"), "95th percentile"),
            promql(write_latency("0.99"), "99th percentile"),
            unit="s",
        ),
        24,
        7,
    )

    return dashboard(
        uid=UID,
        title="Collectors and ingest",
        description="Provider collectors (last success, rows, errors) and the ingest API "
        "(rates, rejections, spool, database) of the cost monitor (Prometheus).",
        grid=grid,
        variables=[
            prometheus_variable(
                "source",
                "Collector",
                "label_values(llm_etl_last_success_timestamp_seconds, source)",
                "Collector instance, as named in the cost monitor's configuration.",
            )
        ],
        time_from="now-24h",
        refresh="1m",
    )
