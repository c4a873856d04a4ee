#!/usr/bin/env python3
"""The dashboards' SQL on the continuous aggregates beside the same SQL on the raw table.

Starts a throwaway TimescaleDB container (the timescale-license test image), creates the
schema with `ansible -m aicost.monitoring.timescaledb_init` as the role does, loads --rows
usage rows spread over --days with INSERT ... SELECT generate_series, refreshes both
continuous aggregates, stores what the providers billed (daily cost rows per provider and
model, hourly token buckets), compresses the chunks the columnstore policy would (older
than 7 days), and pauses the database's own jobs so that they do not run during the measurements.

Then every SQL query of the shipped dashboards, expanded as Grafana would for the
dashboards' default range (tests/support/dashboard_queries.py) and run as the read-only
Grafana role, is timed two ways in interleaved rounds (one discarded warm-up round):

  aggregate   the query as the dashboard sends it (llm_consumption_hourly / _daily)
  raw         the same query with each aggregate replaced by its defining SELECT on
              llm_consumption (cost_monitor.schema.aggregate_select_sql)

and the medians and the ratio raw/aggregate are printed per query. Queries that read the
raw table anyway (cost per feature) are timed once per round and listed as such. It
measures, it does not judge: the exit status is 0 whatever the timings.

    .venv/bin/python benchmarks/dashboards_sql.py [--rows 5000000] [--days 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from cost_monitor.schema import AGGREGATES, aggregate_select_sql  # noqa: E402
from dashboard_queries import SQL, DashboardRun, Postgres, Settings  # noqa: E402
from pgcontainer import TIMESCALEDB_IMAGE, postgres_container  # noqa: E402
from timescaledb_modules import Modules, interleaved  # noqa: E402

DASHBOARDS = REPO / "roles" / "grafana" / "files" / "dashboards"
DATABASE = "aicost"
READER_PASSWORD = "bench-" + secrets.token_hex(8)
BATCH = 1_000_000

# Usage ordered by time (as it arrives), with a realistic spread: eight models of four
# providers, 12 projects (some requests without one), 500 customers of very different
# sizes, 15 features, cache and reasoning tokens, 1 % unpriced requests.
LOAD_ROWS = """
INSERT INTO llm_consumption (time, event_id, provider, model, project, customer_id, feature,
    status, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost_usd, cost_source, duration_seconds)
SELECT now() - interval '1 minute'
         - ({rows} - i) * ({days} * 86400.0 / {rows}) * interval '1 second',
       gen_random_uuid(),
       (ARRAY['openai', 'openai', 'openai', 'anthropic', 'anthropic', 'aws.bedrock',
              'gcp.gemini', 'gcp.gemini'])[m],
       (ARRAY['gpt-4.1', 'gpt-4.1-mini', 'o3', 'claude-sonnet-4-5', 'claude-haiku-4-5',
              'amazon.nova-pro-v1:0', 'gemini-2.5-pro', 'gemini-2.5-flash'])[m],
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'project-' || (i * 7 % 12) END,
       'customer-' || floor(500 * power(random(), 3))::int,
       'feature-' || (i * 13 % 15),
       CASE WHEN i % 97 = 0 THEN 'error' ELSE 'ok' END,
       input, cache_read, cache_read / 10, output, CASE WHEN m = 3 THEN output ELSE 0 END,
       CASE WHEN i % 100 = 0 THEN NULL
            ELSE round((input + cache_read * 0.1) * 0.000002 + output * 0.000008, 10) END,
       'computed', output / 80.0
FROM (
  SELECT i, 1 + (i * 5 % 8) AS m, 100 + (random() * 4000)::int AS input,
         (random() * 2000)::int AS cache_read, 20 + (random() * 800)::int AS output
  FROM generate_series({first}, {last}) AS i
) AS request
"""

# What the providers billed: per day, provider and model, 2 % above the estimate, except the
# last two days (not billed yet); the usage collectors' hourly token buckets have no amount.
BILLED_ROWS = """
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    line_item, cost_amount, currency)
SELECT bucket, 86400, provider, provider || '_costs', model, model || ', usage',
       sum(cost_usd) * 1.02, 'USD'
FROM llm_consumption_daily
WHERE bucket < time_bucket(interval '1 day', now()) - interval '2 days'
GROUP BY bucket, provider, model;
INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
    input_tokens, output_tokens, requests)
SELECT bucket, 3600, provider, provider || '_usage', model, sum(input_tokens),
       sum(output_tokens), sum(requests)
FROM llm_consumption_hourly GROUP BY bucket, provider, model
"""


def load(container, rows: int, days: int) -> float:
    started = time.perf_counter()
    for first in range(1, rows + 1, BATCH):
        last = min(first + BATCH - 1, rows)
        container.exec(
            "psql", "-U", "postgres", "-d", DATABASE, "-v", "ON_ERROR_STOP=1", "-qc",
            LOAD_ROWS.format(first=first, last=last, rows=rows, days=days),
        )  # fmt: skip
        print(f"  loaded {last:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


def psql(container, statement: str) -> str:
    return container.exec(
        "psql", "-U", "postgres", "-d", DATABASE, "-v", "ON_ERROR_STOP=1", "-Atqc", statement
    ).strip()


def timed_psql(container, statement: str) -> float:
    started = time.perf_counter()
    psql(container, statement)
    return time.perf_counter() - started


def on_raw_rows(query: str) -> str:
    """The query with each aggregate replaced by its defining SELECT on the raw table."""
    return re.sub(
        r"\b(" + "|".join(AGGREGATES) + r")\b",
        lambda match: f"({aggregate_select_sql(AGGREGATES[match.group(1)])}) AS {match.group(1)}",
        query,
    )


def dashboard_queries(reader: Postgres) -> list[tuple[str, str]]:
    """(label, expanded SQL) of every SQL query of the dashboards, variables included."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        entries = DashboardRun(json.loads(path.read_text()), Settings(postgres=reader)).run()
        for entry in entries:
            if entry["kind"] != SQL:
                continue
            if not entry["ok"]:
                raise RuntimeError(f"{entry['dashboard']}: {entry['panel']}: {entry['error']}")
            ref = f" [{entry['ref_id']}]" if entry["ref_id"] not in (None, "A") else ""
            found.append((f"{entry['dashboard']}: {entry['panel']}{ref}", entry["query"]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", default=TIMESCALEDB_IMAGE)
    parser.add_argument("--no-columnstore", dest="columnstore", action="store_false",
                        help="leave every chunk in the rowstore")  # fmt: skip
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="b-bench-dashboards-"))
    collections = workdir / "ansible_collections" / "aicost"
    collections.mkdir(parents=True)
    (collections / "monitoring").symlink_to(REPO)
    with postgres_container(options.image, prefix="b-bench") as container:
        modules = Modules(
            workdir,
            dict(login_host=container.host, login_port=container.port,
                 login_password=container.password, database=DATABASE),
        )  # fmt: skip
        init = modules("timescaledb_init", reader_password=READER_PASSWORD)
        print(f"TimescaleDB {init['extension_version']} ({init['license']} license), "
              f"{options.rows:,} rows over {options.days} days")  # fmt: skip
        load_seconds = load(container, options.rows, options.days)
        setup = {"load": load_seconds}
        for name in AGGREGATES:
            setup[f"refresh {name}"] = timed_psql(
                container, f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)"
            )
        setup["provider bills"] = timed_psql(container, BILLED_ROWS)
        if options.columnstore:
            job = psql(
                container,
                "SELECT job_id FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_compression'",
            )
            setup["columnstore job"] = timed_psql(container, f"CALL run_job({job})")
        # The policies' own runs would compete with the measurements.
        psql(container, "SELECT alter_job(job_id, scheduled => false) FROM"
                        " timescaledb_information.jobs WHERE job_id >= 1000")  # fmt: skip
        setup["vacuum analyze"] = timed_psql(container, "VACUUM ANALYZE")
        print("setup: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in setup.items()))
        print(
            "sizes: "
            + psql(
                container,
                "SELECT string_agg(name || ' ' || pg_size_pretty(size), ', ') FROM ("
                " SELECT 'llm_consumption' AS name, hypertable_size('llm_consumption') AS size"
                " UNION ALL SELECT view_name, hypertable_size(format('%I.%I',"
                " materialization_hypertable_schema, materialization_hypertable_name)::regclass)"
                " FROM timescaledb_information.continuous_aggregates) AS s",
            )
            + "; aggregate rows: "
            + ", ".join(
                f"{name} {int(psql(container, f'SELECT count(*) FROM {name}')):,}"
                for name in AGGREGATES
            )
            + "; compressed chunks: "
            + psql(
                container,
                "SELECT count(*) FILTER (WHERE is_compressed) || ' of ' || count(*)"
                " FROM timescaledb_information.chunks WHERE hypertable_name = 'llm_consumption'",
            )
        )

        reader = Postgres(
            f"host={container.host} port={container.port} dbname={DATABASE} "
            f"user=aicost_reader password={READER_PASSWORD}",
            timeout=600,
        )
        try:
            queries = dashboard_queries(reader)
            rows: dict[str, int] = {}

            def step(label: str, sql: str):
                def run() -> None:
                    rows[label] = len(reader.run(sql).rows)

                return run

            steps = []
            for label, sql in queries:
                raw = on_raw_rows(sql)
                if raw == sql:
                    steps.append((f"{label}\traw only", step(f"{label}\traw only", sql)))
                else:
                    steps.append((f"{label}\taggregate", step(f"{label}\taggregate", sql)))
                    steps.append((f"{label}\traw", step(f"{label}\traw", raw)))
            interleaved(steps, 1)  # warm-up, discarded
            samples = interleaved(steps, options.repeat)
        finally:
            reader.close()

    print(f"\nmedian of {options.repeat} interleaved rounds, milliseconds")
    print(f"{'query':<78}{'rows':>6}{'aggregate':>11}{'raw':>10}{'raw/agg':>9}")
    ratios = []
    for label, _query in queries:
        median = {
            kind: statistics.median(samples[f"{label}\t{kind}"]) * 1000
            for kind in ("aggregate", "raw", "raw only")
            if f"{label}\t{kind}" in samples
        }
        count = rows.get(f"{label}\taggregate", rows.get(f"{label}\traw only"))
        if "raw only" in median:
            print(f"{label[:77]:<78}{count:>6}{'-':>11}{median['raw only']:>10.1f}{'-':>9}")
            continue
        ratio = median["raw"] / median["aggregate"]
        ratios.append(ratio)
        print(
            f"{label[:77]:<78}{count:>6}{median['aggregate']:>11.1f}{median['raw']:>10.1f}"
            f"{ratio:>8.0f}x"
        )
    if ratios:
        print(
            f"raw/aggregate over {len(ratios)} queries: median {statistics.median(ratios):.0f}x, "
            f"min {min(ratios):.0f}x, max {max(ratios):.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
