"""Estimate vs bill: what the applications reported against what the providers billed.

Reported = ``cost_usd`` of the usage records (daily aggregate); billed = ``cost_amount`` of the
providers' cost reports the collectors store in ``llm_provider_usage`` (USD rows only; usage
buckets without an amount are left out). Both are summed per UTC day; a day counts when it
starts inside the selected range. Differences are reported minus billed.
"""

from __future__ import annotations

from tools.dashboards.grafana import (
    PERCENT,
    USD,
    Grid,
    dashboard,
    promql,
    sql,
    sql_variable,
    stat,
    table,
    text,
    thresholds,
    timeseries,
)
from tools.dashboards.queries import BILLED, DAILY, any_of

UID = "llm-estimate-vs-bill"
NOT_ITEMISED = "(not itemised)"
PROVIDER = any_of("provider", "provider")
BILLING_GAUGES = {
    "llm_billing_reported_usd": "Reported",
    "llm_billing_billed_usd": "Billed",
    "llm_billing_drift_usd": "Difference",
}


def both_sides(*keys: str) -> str:
    """CTEs ending in ``days``: reported_usd and billed_usd per UTC day and ``keys`` (a side
    without rows for a day is NULL there)."""
    group = ", ".join(("day", *keys))
    positions = ", ".join(str(n) for n in range(1, len(keys) + 2))
    billed_keys = ", ".join(
        f"coalesce(nullif(model, ''), '{NOT_ITEMISED}') AS model" if key == "model" else key
        for key in keys
    )
    return f"""WITH reported AS (
  SELECT bucket AS day, {", ".join(keys)}, sum(cost_usd) AS reported_usd
  FROM {DAILY}
  WHERE $__timeFilter(bucket) AND {PROVIDER}
  GROUP BY {positions}
), billed AS (
  SELECT time_bucket(INTERVAL '1 day', bucket_start) AS day, {billed_keys},
         sum(cost_amount) AS billed_usd
  FROM {BILLED}
  WHERE bucket_start BETWEEN $__timeFrom() AND $__timeTo()::timestamptz + INTERVAL '1 day'
    AND currency = 'USD' AND cost_amount IS NOT NULL AND {PROVIDER}
  GROUP BY {positions}
  HAVING time_bucket(INTERVAL '1 day', bucket_start) BETWEEN $__timeFrom() AND $__timeTo()
), days AS (
  SELECT {group}, reported_usd, billed_usd FROM reported FULL JOIN billed USING ({group})
)"""


PER_PROVIDER = both_sides("provider")


def build() -> dict:
    grid = Grid()
    grid.add(
        text(
            "How to read this dashboard",
            "What the dashboard compares and how to read a difference.",
            """
            **Reported** is what the applications' usage records cost, priced by the cost
            monitor. **Billed** is what the providers' cost reports say (collected from their
            billing APIs). Both are summed per **UTC day**. A positive difference means the
            estimate is higher than the bill. Providers publish costs a day or more late, so
            the totals compare **only days the provider has billed**; recent days appear as
            *reported, not yet billed*. Model names on bills can be spelled differently from
            the applications' (e.g. with a date suffix), so compare per provider first.
            """,
        ),
        24,
        3,
    )

    grid.row("Selected days the providers have billed")
    grid.add(
        stat(
            "Reported vs billed",
            """
            Over the days each provider has billed: the applications' estimate, the bill, and
            the difference (estimate minus bill).
            """,
            sql(
                f"""
                {PER_PROVIDER}
                SELECT coalesce(sum(coalesce(reported_usd, 0)), 0) AS "Reported by applications",
                       coalesce(sum(billed_usd), 0) AS "Billed by providers",
                       coalesce(sum(coalesce(reported_usd, 0) - billed_usd), 0) AS "Difference"
                FROM days
                WHERE billed_usd IS NOT NULL
                """
            ),
            unit=USD,
            decimals=2,
        ),
        12,
        4,
    )
    grid.add(
        stat(
            "Difference in percent",
            """
            (estimate - bill) / bill over the days the providers have billed. Within a few
            percent is normal (rounding, taxes, discounts); beyond that, look for missing
            usage records or outdated prices.
            """,
            sql(
                f"""
                {PER_PROVIDER}
                SELECT sum(coalesce(reported_usd, 0) - billed_usd) / nullif(sum(billed_usd), 0)
                         AS "Difference"
                FROM days
                WHERE billed_usd IS NOT NULL
                """
            ),
            unit=PERCENT,
            decimals=1,
            steps=thresholds((-0.05, "green"), (0.05, "orange"), base="orange"),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Reported, not yet billed",
            """
            Estimated dollars on selected days for which the provider has not published a
            bill yet (usually the last day or two).
            """,
            sql(
                f"""
                {PER_PROVIDER}
                SELECT coalesce(sum(reported_usd), 0) AS "Not yet billed"
                FROM days
                WHERE billed_usd IS NULL
                """
            ),
            unit=USD,
            decimals=2,
        ),
        6,
        4,
    )

    grid.row("Per day")
    grid.add(
        timeseries(
            "Reported and billed per day",
            "The applications' estimate and the providers' bills, in dollars per UTC day.",
            sql(
                f"""
                {PER_PROVIDER}
                SELECT day AS "time",
                       sum(reported_usd) AS "Reported by applications",
                       sum(billed_usd) AS "Billed by providers"
                FROM days
                GROUP BY 1
                ORDER BY 1
                """,
                series=True,
            ),
            unit=USD,
            axis_label="USD per day",
            legend_calcs=("sum", "mean"),
        ),
        8,
        9,
    )
    grid.add(
        timeseries(
            "Difference per day by provider ($)",
            "Estimate minus bill, per UTC day and provider, on days the provider has billed.",
            sql(
                f"""
                {PER_PROVIDER}
                SELECT day AS "time", provider AS metric,
                       coalesce(reported_usd, 0) - billed_usd AS "Difference"
                FROM days
                WHERE billed_usd IS NOT NULL
                ORDER BY 1, 2
                """,
                series=True,
            ),
            unit=USD,
            axis_label="USD per day",
            legend_calcs=("sum", "max"),
        ),
        8,
        9,
    )
    grid.add(
        timeseries(
            "Difference per day by provider (%)",
            "(estimate - bill) / bill, per UTC day and provider, on days the provider has billed.",
            sql(
                f"""
                {PER_PROVIDER}
                SELECT day AS "time", provider AS metric,
                       (coalesce(reported_usd, 0) - billed_usd) / nullif(billed_usd, 0)
                         AS "Difference"
                FROM days
                WHERE billed_usd IS NOT NULL
                ORDER BY 1, 2
                """,
                series=True,
            ),
            unit=PERCENT,
            legend_calcs=("mean", "max"),
        ),
        8,
        9,
    )
    grid.add(
        table(
            "Per day, provider and model",
            f"""
            Every day, provider and model with what was reported and what was billed. An empty
            Billed cell means no bill yet (or the model is spelled differently on the bill);
            costs the bill does not split by model are listed as {NOT_ITEMISED}.
            """,
            sql(
                f"""
                {both_sides("provider", "model")}
                SELECT day AS "Day", provider AS "Provider", model AS "Model",
                       reported_usd AS "Reported", billed_usd AS "Billed",
                       coalesce(reported_usd, 0) - coalesce(billed_usd, 0) AS "Difference",
                       (coalesce(reported_usd, 0) - billed_usd) / nullif(billed_usd, 0)
                         AS "Difference (%)"
                FROM days
                ORDER BY 1 DESC, abs(coalesce(reported_usd, 0) - coalesce(billed_usd, 0)) DESC, 2, 3
                """
            ),
            columns={
                "Reported": USD,
                "Billed": USD,
                "Difference": USD,
                "Difference (%)": PERCENT,
                "Day": "time: YYYY-MM-DD",
            },
            footer=("Reported", "Billed", "Difference"),
        ),
        24,
        10,
    )

    grid.row("The cost monitor's own reconciliation (Prometheus)")
    grid.add(
        table(
            "Yesterday, as the cost monitor reconciles it",
            """
            The cost monitor's own comparison for the last complete UTC day, per provider
            with a bill that day (its llm_billing_* gauges, which the billing alerts use). It
            matches yesterday in the panels above once the bill is complete.
            """,
            *(
                promql(
                    f'max by (provider) ({name}{{provider=~"$provider"}})', instant=True, table=True
                )
                for name in BILLING_GAUGES
            ),
            columns={label: USD for label in BILLING_GAUGES.values()},
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "provider": "Provider",
                            **{
                                f"Value #{chr(ord('A') + index)}": label
                                for index, label in enumerate(BILLING_GAUGES.values())
                            },
                        },
                    },
                },
            ],
            no_value="No billing collector configured",
        ),
        12,
        7,
    )
    grid.add(
        timeseries(
            "Reconciled difference by provider",
            """
            The cost monitor's difference (estimate minus bill) for the last complete UTC day,
            per provider; it moves on to the next day once a day.
            """,
            promql(
                'max by (provider) (llm_billing_drift_usd{provider=~"$provider"})', "{{provider}}"
            ),
            unit=USD,
            legend_calcs=("lastNotNull", "max"),
        ),
        12,
        7,
    )

    return dashboard(
        uid=UID,
        title="Estimate vs bill",
        description="The applications' cost estimate against the providers' bills, per day, "
        "provider and model (TimescaleDB, Prometheus).",
        grid=grid,
        variables=[
            sql_variable(
                "provider",
                "Provider",
                f"""
                SELECT provider FROM {DAILY} WHERE $__timeFilter(bucket)
                UNION
                SELECT provider FROM {BILLED}
                WHERE $__timeFilter(bucket_start) AND cost_amount IS NOT NULL
                ORDER BY 1
                """,
                "LLM provider: those with usage records or bills in the selected range.",
            )
        ],
        time_from="now-30d/d",
        refresh="",
    )
