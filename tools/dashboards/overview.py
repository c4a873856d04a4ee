"""LLM cost overview: where the money goes right now (Prometheus)."""

from __future__ import annotations

from tools.dashboards.grafana import (
    PERCENT,
    USD,
    Grid,
    bargauge,
    dashboard,
    gauge,
    prometheus_variable,
    promql,
    stat,
    table,
    text,
    thresholds,
    timeseries,
)
from tools.dashboards.queries import COST, selector, usage

UID = "llm-cost-overview"

TOKENS = usage("llm_tokens_total")
CACHE_READ = usage("llm_tokens_total", 'token_type="cache_read"')
PROMPT = usage("llm_tokens_total", 'token_type=~"input|cache_read"')
# Seconds left in the current UTC month, as Prometheus sees the time of evaluation.
MONTH_SECONDS_LEFT = "scalar((days_in_month() - day_of_month() + 1) * 86400 - time() % 86400)"


def budget(metric: str, period: str) -> str:
    """A budget gauge per project, "_all" renamed for readers; filtered by $project."""
    series = selector(metric, f'period="{period}"', 'project=~"$project|_all"')
    return (
        f'label_replace(max by (project) ({series}), "project", "all projects", "project", "_all")'
    )


def budget_used(period: str) -> str:
    # A zero limit means "no budget": dropped instead of dividing by it.
    return (
        f"{budget('llm_budget_spend_usd', period)}\n"
        f"/\n({budget('llm_budget_limit_usd', period)} > 0)"
    )


def build() -> dict:
    grid = Grid()
    grid.add(
        text(
            "How to read this dashboard",
            "What the dashboard shows and where its figures come from.",
            """
            **Spend on LLM APIs as the cost monitor prices each request**, live from Prometheus.
            Days and months are UTC calendar days and months. The filters at the top (provider,
            model, project) apply to every panel except the budgets, which are set per project.
            Figures here are close to real time but approximate (a restart of the cost monitor or
            of Prometheus can hide a few minutes); the **Customers and features** and **Estimate
            vs bill** dashboards read the database and are the figures to report.
            """,
        ),
        24,
        3,
    )

    grid.row("Spend and budgets")
    grid.add(
        stat(
            "Spend in the selected range",
            "Dollars spent on LLM requests in the time range picked at the top right.",
            promql(f"sum(increase({COST}[$__range]))", "Spend", instant=True),
            unit=USD,
            decimals=2,
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Spend today (UTC)",
            "Dollars spent since 00:00 UTC today.",
            promql(f"sum(increase({COST}[$__range]))", "Today", instant=True),
            unit=USD,
            decimals=2,
            time_from="now/d",
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Spend this month (UTC)",
            "Dollars spent since the first day of this month, 00:00 UTC.",
            promql(f"sum(increase({COST}[$__range]))", "This month", instant=True),
            unit=USD,
            decimals=2,
            time_from="now/M",
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Month-end forecast",
            """
            What this month will cost if spending continues at the average pace of the last
            7 days: spend so far this month plus that pace for the rest of the month. Shown
            beside the monthly budget of all projects together, when one is set.
            """,
            promql(
                f"""
                sum(increase({COST}[$__range]))
                + sum(rate({COST}[7d])) * {MONTH_SECONDS_LEFT}
                """,
                "Forecast",
                instant=True,
            ),
            promql(
                'max(llm_budget_limit_usd{project="_all", period="month"})',
                "Monthly budget",
                instant=True,
            ),
            unit=USD,
            decimals=0,
            time_from="now/M",
        ),
        4,
        5,
    )
    grid.add(
        gauge(
            "Daily budget used",
            """
            Share of each project's daily budget spent so far today (UTC), from the cost
            monitor's own spend and budget figures. "all projects" is the budget of all
            projects together. Orange from 80 %, red when the budget is exceeded.
            """,
            promql(budget_used("day"), "{{project}}", instant=True),
            unit=PERCENT,
            minimum=0,
            maximum=1,
            steps=thresholds((0.8, "orange"), (1, "red")),
            no_value="No daily budgets set",
        ),
        4,
        5,
    )
    grid.add(
        gauge(
            "Monthly budget used",
            """
            Share of each project's monthly budget spent so far this month (UTC), from the
            cost monitor's own spend and budget figures. Orange from 80 %, red when exceeded.
            """,
            promql(budget_used("month"), "{{project}}", instant=True),
            unit=PERCENT,
            minimum=0,
            maximum=1,
            steps=thresholds((0.8, "orange"), (1, "red")),
            no_value="No monthly budgets set",
        ),
        4,
        5,
    )
    grid.add(
        table(
            "Budgets in dollars",
            """
            Each budget beside what has been spent against it: today and this month (UTC),
            per project. Only projects with a budget in the cost monitor's configuration are
            listed.
            """,
            promql(budget("llm_budget_spend_usd", "day"), instant=True, table=True),
            promql(budget("llm_budget_limit_usd", "day"), instant=True, table=True),
            promql(budget("llm_budget_spend_usd", "month"), instant=True, table=True),
            promql(budget("llm_budget_limit_usd", "month"), instant=True, table=True),
            columns={
                "Spent today": USD,
                "Daily budget": USD,
                "Spent this month": USD,
                "Monthly budget": USD,
            },
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "project": "Project",
                            "Value #A": "Spent today",
                            "Value #B": "Daily budget",
                            "Value #C": "Spent this month",
                            "Value #D": "Monthly budget",
                        },
                    },
                },
            ],
            no_value="No budgets set",
        ),
        12,
        6,
    )
    grid.add(
        bargauge(
            "Top models by spend",
            "The ten models that cost the most in the selected time range.",
            promql(
                f"sort_desc(topk(10, sum by (model) (increase({COST}[$__range]))))",
                "{{model}}",
                instant=True,
            ),
            unit=USD,
            decimals=2,
        ),
        12,
        6,
    )

    grid.row("Spend over time")
    for dimension, label in (("provider", "provider"), ("model", "model"), ("project", "project")):
        grid.add(
            timeseries(
                f"Spend rate by {label} ($ per hour)",
                f"""
                How fast money is being spent, per {label}, in dollars per hour. The area
                under a line over one hour is the dollars spent in that hour.
                """,
                promql(
                    f"sum by ({dimension}) (rate({COST}[$__rate_interval])) * 3600",
                    f"{{{{{dimension}}}}}",
                ),
                unit=USD,
                axis_label="USD per hour",
                stacked=True,
            ),
            8,
            8,
        )

    grid.row("Tokens and caching")
    grid.add(
        timeseries(
            "Tokens per hour by type",
            """
            Tokens used per hour, split into uncached input, cache reads, cache writes, visible
            output and reasoning. Output and reasoning tokens usually cost several times more
            than input tokens; cache reads cost a fraction of input.
            """,
            promql(
                f"sum by (token_type) (rate({TOKENS}[$__rate_interval])) * 3600", "{{token_type}}"
            ),
            axis_label="tokens per hour",
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Cache-hit ratio by provider",
            """
            Share of prompt tokens served from the provider's prompt cache: cache reads /
            (uncached input + cache reads). Higher is cheaper; a sudden drop after a deploy
            often means prompts stopped sharing a common prefix.
            """,
            promql(
                f"""
                sum by (provider) (rate({CACHE_READ}[$__rate_interval]))
                /
                sum by (provider) (rate({PROMPT}[$__rate_interval]))
                """,
                "{{provider}}",
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
        ),
        8,
        8,
    )
    grid.add(
        stat(
            "Cache-hit ratio in the selected range",
            "Cache reads / (uncached input + cache reads) over the whole selected time range.",
            promql(
                f"sum(increase({CACHE_READ}[$__range])) / sum(increase({PROMPT}[$__range]))",
                "Cache hits",
                instant=True,
            ),
            unit=PERCENT,
            decimals=1,
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Unpriced tokens in the selected range",
            """
            Tokens of models the price catalog does not know. Their cost is missing from every
            dollar figure (never counted as $0): add the model to the catalog or to the price
            overrides. Should be 0.
            """,
            promql(
                "sum(increase(llm_unpriced_tokens_total"
                '{provider=~"$provider", model=~"$model"}[$__range]))',
                "Unpriced tokens",
                instant=True,
            ),
            steps=thresholds((1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        bargauge(
            "Unpriced tokens by model",
            """
            Which models the unpriced tokens belong to, in the selected time range. Empty
            when every model has a price. "other" stands for every model outside the catalog
            and metrics.models: `cost-monitor report --by provider,model` names them.
            """,
            promql(
                "sum by (provider, model) (increase(llm_unpriced_tokens_total"
                '{provider=~"$provider", model=~"$model"}[$__range])) > 0',
                "{{provider}} {{model}}",
                instant=True,
            ),
            unit="short",
            steps=thresholds(base="orange"),
            no_value="Every model has a price",
        ),
        8,
        4,
    )

    grid.row("Traffic")
    grid.add(
        timeseries(
            "Requests per second by status",
            """
            LLM requests the applications reported, per second, by outcome (ok, error,
            timeout, rate_limited, ...). Failed requests can still cost money.
            """,
            promql(
                f"sum by (status) (rate({usage('llm_requests_total')}[$__rate_interval]))",
                "{{status}}",
            ),
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Request duration by model (95th percentile)",
            """
            How long LLM requests take, as the applications report it: 95 % of the requests
            of each model finish within this time.
            """,
            promql(
                "histogram_quantile(0.95, sum by (le, model) ("
                'rate(llm_request_duration_seconds_bucket{provider=~"$provider", model=~"$model"}'
                "[$__rate_interval])))",
                "{{model}}",
            ),
            unit="s",
        ),
        12,
        8,
    )

    return dashboard(
        uid=UID,
        title="LLM cost overview",
        description="LLM spend now: budgets, month-end forecast, spend by provider, model and "
        "project, tokens and caching (Prometheus).",
        grid=grid,
        variables=[
            prometheus_variable(
                "provider",
                "Provider",
                "label_values(llm_cost_usd_total, provider)",
                "LLM provider (OpenTelemetry names, e.g. openai, anthropic, aws.bedrock).",
            ),
            prometheus_variable(
                "model",
                "Model",
                'label_values(llm_cost_usd_total{provider=~"$provider"}, model)',
                "Model name as the applications report it.",
            ),
            prometheus_variable(
                "project",
                "Project",
                "label_values(llm_cost_usd_total, project)",
                "Project (team or product). Projects missing from the cost monitor's list of "
                'projects show as "other".',
            ),
        ],
        time_from="now-24h",
        refresh="1m",
    )
