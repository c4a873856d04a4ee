"""Customers and features: who and what the money is spent on (TimescaleDB).

Reads the continuous aggregates; only the cost per feature reads the raw table, since
``feature`` is not an aggregate column. Day-level panels use the daily aggregate, whose rows
are UTC days: a day counts when it starts inside the selected range.
"""

from __future__ import annotations

from tools.dashboards.grafana import (
    PERCENT,
    USD,
    Grid,
    bargauge,
    dashboard,
    sql,
    sql_variable,
    stat,
    table,
    text,
    thresholds,
    timeseries,
)
from tools.dashboards.queries import (
    ALL_TOKENS,
    CUSTOMER,
    DAILY,
    FILTERS,
    HOURLY,
    INPUT_TOKENS,
    NONE,
    OUTPUT_TOKENS,
    PROJECT,
    RAW,
    any_of,
)

UID = "llm-customers-features"

IN_RANGE = f"FROM {DAILY}\nWHERE $__timeFilter(bucket)\n  AND {FILTERS}"


def total(expression: str, name: str) -> str:
    return f'SELECT {expression} AS "{name}"\n{IN_RANGE}'


def build() -> dict:
    grid = Grid()
    grid.add(
        text(
            "How to read this dashboard",
            "What the dashboard shows and where its figures come from.",
            f"""
            **What LLM usage cost, per customer, feature, model and project**, from the usage
            records the applications send to the cost monitor (priced per request, stored in
            TimescaleDB). Figures are per **UTC day**: a day counts when it starts inside the
            selected range, so pick whole days (the default range, *Today*, *This month*,
            *Previous month*). Requests sent without a project or customer are listed as
            **{NONE}**. *Unpriced* requests used a model without a price: their cost is missing
            here, not zero. Every table can be downloaded as CSV (panel menu, *Inspect*, *Data*).
            """,
        ),
        24,
        3,
    )

    grid.row("Totals for the selected days")
    grid.add(
        stat(
            "Spend",
            "Dollars spent on LLM requests on the selected days.",
            sql(total("coalesce(sum(cost_usd), 0)", "Spend")),
            unit=USD,
            decimals=2,
        ),
        5,
        4,
    )
    grid.add(
        stat(
            "Requests",
            "LLM requests the applications reported on the selected days.",
            sql(total("coalesce(sum(requests), 0)", "Requests")),
        ),
        5,
        4,
    )
    grid.add(
        stat(
            "Average cost per request",
            "Spend divided by the number of priced requests.",
            sql(
                total(
                    "sum(cost_usd) / nullif(sum(requests) - sum(unpriced_requests), 0)",
                    "Cost per request",
                )
            ),
            unit=USD,
            decimals=4,
        ),
        5,
        4,
    )
    grid.add(
        stat(
            "Customers",
            f'Distinct customers with at least one request ("{NONE}" counts as one).',
            sql(total(f"count(DISTINCT {CUSTOMER})", "Customers")),
        ),
        5,
        4,
    )
    grid.add(
        stat(
            "Unpriced requests",
            """
            Requests whose model has no price in the catalog: their cost is missing from
            every dollar figure. Should be 0; add the model to the price overrides.
            """,
            sql(total("coalesce(sum(unpriced_requests), 0)", "Unpriced requests")),
            steps=thresholds((1, "orange")),
        ),
        4,
        4,
    )

    grid.row("Who and what")
    grid.add(
        bargauge(
            "Top customers by spend",
            "The 15 customers that cost the most on the selected days.",
            sql(
                f"""
                SELECT {CUSTOMER} AS "Customer", sum(cost_usd) AS "Spend"
                {IN_RANGE}
                GROUP BY 1
                ORDER BY 2 DESC NULLS LAST
                LIMIT 15
                """
            ),
            unit=USD,
            decimals=2,
            rows=True,
        ),
        12,
        9,
    )
    grid.add(
        bargauge(
            "Cost per feature",
            f"""
            Spend per product feature (the `feature` field of each usage record) in the
            selected time range, exactly to the minute (read from the individual requests).
            Requests sent without a feature are listed as {NONE}.
            """,
            sql(
                f"""
                SELECT coalesce(nullif(feature, ''), '{NONE}') AS "Feature",
                       sum(cost_usd) AS "Spend"
                FROM {RAW}
                WHERE $__timeFilter("time")
                  AND {FILTERS}
                GROUP BY 1
                ORDER BY 2 DESC NULLS LAST
                LIMIT 20
                """
            ),
            unit=USD,
            decimals=2,
            rows=True,
        ),
        12,
        9,
    )

    grid.row("Trends")
    grid.add(
        timeseries(
            "Daily spend by project",
            "Dollars spent per UTC day, stacked by project.",
            sql(
                f"""
                SELECT $__timeGroupAlias(bucket, '1d'), {PROJECT} AS metric,
                       sum(cost_usd) AS "Spend"
                {IN_RANGE}
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                series=True,
            ),
            unit=USD,
            axis_label="USD per day",
            stacked=True,
            bars=True,
            legend_calcs=("sum", "mean"),
        ),
        12,
        9,
    )
    grid.add(
        timeseries(
            "Spend rate by provider ($ per hour)",
            """
            Dollars per hour, per provider, at hourly resolution (coarser on long ranges, still
            shown as dollars per hour). Read from the hourly aggregate.
            """,
            sql(
                f"""
                SELECT $__timeGroupAlias(bucket, $__interval), provider AS metric,
                       sum(cost_usd) / ($__interval_ms / 3600000.0) AS "Spend per hour"
                FROM {HOURLY}
                WHERE $__timeFilter(bucket)
                  AND {FILTERS}
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                series=True,
            ),
            unit=USD,
            axis_label="USD per hour",
            stacked=True,
            interval="1h",
        ),
        12,
        9,
    )

    grid.row("Unit costs and showback")
    grid.add(
        table(
            "Cost per 1,000 tokens by model",
            """
            What each model costs per 1,000 tokens (all token types together) and per request
            on the selected days. A model with unpriced requests shows a lower unit cost than
            it really has.
            """,
            sql(
                f"""
                SELECT provider AS "Provider", model AS "Model",
                       sum(requests) AS "Requests",
                       sum({ALL_TOKENS}) AS "Tokens",
                       sum(cost_usd) AS "Spend",
                       sum(cost_usd) / nullif(sum({ALL_TOKENS}), 0) * 1000 AS "Cost per 1k tokens",
                       sum(cost_usd) / nullif(sum(requests) - sum(unpriced_requests), 0)
                         AS "Cost per request",
                       sum(unpriced_requests) AS "Unpriced requests"
                {IN_RANGE}
                GROUP BY 1, 2
                ORDER BY "Spend" DESC NULLS LAST
                """
            ),
            columns={
                "Spend": USD,
                "Cost per 1k tokens": USD,
                "Cost per request": USD,
                "Tokens": "short",
            },
            sort_by="Spend",
        ),
        24,
        8,
    )
    grid.add(
        table(
            "Showback by project and customer",
            """
            What each project and customer used and cost on the selected days, with their
            share of the total: the table to charge costs back. Download it as CSV from the
            panel menu (Inspect, Data).
            """,
            sql(
                f"""
                SELECT {PROJECT} AS "Project", {CUSTOMER} AS "Customer",
                       sum(requests) AS "Requests",
                       sum({INPUT_TOKENS}) AS "Input tokens",
                       sum({OUTPUT_TOKENS}) AS "Output tokens",
                       sum(cost_usd) AS "Spend",
                       sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS "Share of spend",
                       sum(unpriced_requests) AS "Unpriced requests"
                {IN_RANGE}
                GROUP BY 1, 2
                ORDER BY "Spend" DESC NULLS LAST, 1, 2
                """
            ),
            columns={
                "Spend": USD,
                "Share of spend": PERCENT,
                "Input tokens": "short",
                "Output tokens": "short",
            },
            sort_by="Spend",
            footer=("Requests", "Input tokens", "Output tokens", "Spend", "Unpriced requests"),
        ),
        24,
        10,
    )

    return dashboard(
        uid=UID,
        title="Customers and features",
        description="LLM spend per customer, feature, model and project for showback "
        "(TimescaleDB).",
        grid=grid,
        variables=variables(),
        time_from="now-30d/d",
        refresh="",
    )


def variables() -> list[dict]:
    in_range = f"FROM {DAILY} WHERE $__timeFilter(bucket)"
    of_providers = any_of("provider", "provider")
    return [
        sql_variable(
            "provider",
            "Provider",
            f"SELECT DISTINCT provider {in_range} ORDER BY 1",
            "LLM provider (OpenTelemetry names, e.g. openai, anthropic, aws.bedrock).",
        ),
        sql_variable(
            "model",
            "Model",
            f"SELECT DISTINCT model {in_range} AND {of_providers} ORDER BY 1",
            "Model name as the applications report it.",
        ),
        sql_variable(
            "project",
            "Project",
            f"SELECT DISTINCT {PROJECT} {in_range} AND {of_providers} ORDER BY 1",
            f"Project (team or product); {NONE} = requests sent without one.",
        ),
    ]
