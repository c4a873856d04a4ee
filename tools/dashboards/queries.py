"""Query pieces the dashboards share: label filters, SQL filters, table and column names.

The tables, aggregates and token columns come from the schema module the database is built
from (plugins/module_utils/timescaledb_schema.py), so a renamed or added token column shows up
here instead of silently missing from the dashboards.
"""

from __future__ import annotations

from plugins.module_utils.timescaledb_schema import AGGREGATES, TABLES, TOKEN_COLUMNS

RAW = TABLES["llm_consumption"].name
BILLED = TABLES["llm_provider_usage"].name
HOURLY = AGGREGATES["llm_consumption_hourly"].name
DAILY = AGGREGATES["llm_consumption_daily"].name

# PromQL ---------------------------------------------------------------------------------------

USAGE_FILTERS = ('provider=~"$provider"', 'model=~"$model"', 'project=~"$project"')


def selector(metric: str, *matchers: str) -> str:
    return metric + "{" + ", ".join(matchers) + "}"


def usage(metric: str, *extra: str) -> str:
    """A usage series filtered by the provider, model and project variables."""
    return selector(metric, *USAGE_FILTERS, *extra)


COST = usage("llm_cost_usd_total")

# SQL ------------------------------------------------------------------------------------------


def any_of(expression: str, variable: str) -> str:
    """``expression`` is one of the variable's values. Grafana's PostgreSQL datasource expands
    a multi-value variable to a quoted list ('a','b'): inside ARRAY[...] rather than IN (...),
    so that an empty list ("All" of a variable with no values, e.g. a range without usage)
    matches nothing instead of failing as `IN ()` (a syntax error) on every panel."""
    return f"{expression} = ANY(ARRAY[${variable}]::text[])"


# Requests without a project or customer are grouped and filtered under this name, so that
# "All" keeps them (a plain comparison with the project's values would drop NULLs).
NONE = "(none)"
PROJECT = f"coalesce(project, '{NONE}')"
CUSTOMER = f"coalesce(customer_id, '{NONE}')"
# The three dashboard variables, one condition a line.
FILTERS = "\n  AND ".join(
    (any_of("provider", "provider"), any_of("model", "model"), any_of(PROJECT, "project"))
)
# Every token the request used: uncached input, cache reads and writes, output, reasoning.
ALL_TOKENS = " + ".join(TOKEN_COLUMNS)
_INPUT = [name for name in TOKEN_COLUMNS if name.startswith(("input", "cache"))]
_OUTPUT = [name for name in TOKEN_COLUMNS if name not in _INPUT]
INPUT_TOKENS = " + ".join(_INPUT)  # uncached input, cache reads, cache writes
OUTPUT_TOKENS = " + ".join(_OUTPUT)  # visible output and reasoning
