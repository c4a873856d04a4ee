"""The production path: timescaledb_init, backup and restore on TimescaleDB 2.29.2 with the
timescale license (the test image built from the upstream source), where continuous
aggregates, refresh, retention and columnstore policies and jobs live in the database.

The scheduler's own runs of a job fail on Debian's newer PostgreSQL 17 minor (see
tests/images/timescaledb-tsl), so the tests run each job with CALL run_job(), as an operator
would.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import connection_args, query, table_contents

# The app imports the modules' schema file as cost_monitor.schema: one contract.
from cost_monitor.schema import (
    AGGREGATES,
    aggregate_column_names,
    aggregate_select_sql,
)

WRITER_PASSWORD = "writer-Secret-7f3a"
READER_PASSWORD = "reader-Secret-91bc"
NESTED_BEGIN = "there is already a transaction in progress"

# Rows that every refresh window covers whatever the time of day: complete hourly and daily
# buckets, older than the end_offset (1 hour) and younger than the hourly start_offset (3 days).
ROWS_IN_REFRESH_WINDOWS = """
INSERT INTO llm_consumption (time, event_id, provider, model, project, customer_id,
    input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, cost_usd)
SELECT date_trunc('day', now() - interval '2 hours')
         - (i::double precision / %s) * interval '1 day',
       gen_random_uuid(),
       (ARRAY['openai', 'anthropic', 'aws.bedrock'])[1 + i %% 3],
       (ARRAY['gpt-4.1', 'claude-sonnet-4', 'nova-pro', 'o3'])[1 + i %% 4],
       CASE WHEN i %% 5 = 0 THEN NULL ELSE 'project-' || (i %% 7) END,
       'customer-' || (i %% 11),
       100 + i %% 1000, i %% 50, 20 + i %% 300, i %% 13,
       CASE WHEN i %% 17 = 0 THEN NULL ELSE round((i %% 997) * 0.0000123, 10) END
FROM generate_series(1, %s) AS i
"""


@pytest.fixture
def server(timescale_server):
    return timescale_server


@pytest.fixture
def args(server, database_name) -> dict:
    return dict(
        connection_args(server, database_name),
        writer_password=WRITER_PASSWORD,
        reader_password=READER_PASSWORD,
    )


def server_log_count(server, text: str) -> int:
    logs = subprocess.run(
        ["docker", "logs", server.name], capture_output=True, text=True, check=False
    )
    return (logs.stdout + logs.stderr).count(text)


def jobs(server, database: str) -> dict[str, tuple]:
    """Each policy job: hypertable (or aggregate) -> (proc, config, schedule)."""
    rows = query(
        server,
        database,
        """
        SELECT hypertable_name || ':' || proc_name, config::text, schedule_interval::text
        FROM timescaledb_information.jobs WHERE proc_schema = '_timescaledb_functions'
          AND hypertable_name IS NOT NULL""",
    )
    return {name: (config, schedule) for name, config, schedule in rows}


def job_ids(server, database: str) -> list[int]:
    rows = query(
        server,
        database,
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE hypertable_name IS NOT NULL ORDER BY job_id",
    )
    return [row[0] for row in rows]


def run_job(server, database: str, proc_name: str, hypertable: str) -> None:
    (job_id,) = query(
        server,
        database,
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = %s",
        (proc_name, hypertable),
    )[0]
    query(server, database, "CALL run_job(%s)", (job_id,))


def refresh_aggregates(server, database: str) -> None:
    for name in AGGREGATES:
        run_job(server, database, "policy_refresh_continuous_aggregate", name)


def materialized(server, database: str, aggregate: str) -> str:
    """The rows the refresh job wrote, read from the materialization hypertable itself
    (the view would add real-time rows and hide a refresh that did nothing)."""
    schema, table = query(
        server,
        database,
        "SELECT materialization_hypertable_schema,"
        " materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = %s",
        (aggregate,),
    )[0]
    columns = ", ".join(f'"{name}"' for name in aggregate_column_names())
    return digest(server, database, f'SELECT {columns} FROM "{schema}"."{table}"')


def digest(server, database: str, select: str) -> str:
    rows = query(
        server,
        database,
        "SET TimeZone = 'UTC'; SELECT count(*) || ':' || md5("
        f"coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ({select}) t",
    )
    return rows[0][0]


def test_check_apply_check_apply_on_the_timescale_license(server, database_name, args, run_module):
    nested_begins = server_log_count(server, NESTED_BEGIN)
    planned = run_module("timescaledb_init", args, check=True)
    applied = run_module("timescaledb_init", args)
    assert applied.changed and not applied.failed, applied.result
    assert applied.result["license"] == "timescale"
    assert applied.result["extension_version"] == "2.29.2"
    assert applied.result["queries"] == planned.result["queries"]
    assert applied.result["scheduled_outside"] == []
    assert not [n for n in applied.result["notices"] if n.startswith("WARNING")], applied.result
    assert "warnings" not in applied.result, applied.result["warnings"]
    query(server, database_name, ROWS_IN_REFRESH_WINDOWS, (400, 400))

    for check in (True, False, True, False):
        again = run_module("timescaledb_init", args, check=check)
        assert not again.failed and not again.changed, again.result
        assert again.result["queries"] == []
    assert query(server, database_name, "SELECT count(*) FROM llm_consumption") == [(400,)]
    assert set(jobs(server, database_name)) == {
        "llm_consumption:policy_retention",
        "llm_consumption:policy_compression",
        "llm_consumption_hourly:policy_refresh_continuous_aggregate",
        "llm_consumption_daily:policy_refresh_continuous_aggregate",
    }
    assert server_log_count(server, NESTED_BEGIN) == nested_begins


def test_the_aggregates_equal_a_group_by_of_the_raw_rows_after_their_jobs_run(
    server, database_name, args, run_module
):
    assert not run_module("timescaledb_init", args).failed
    query(server, database_name, ROWS_IN_REFRESH_WINDOWS, (2000, 2000))
    for name in AGGREGATES:
        assert materialized(server, database_name, name).startswith("0:")
    refresh_aggregates(server, database_name)
    for name, aggregate in AGGREGATES.items():
        direct = digest(server, database_name, aggregate_select_sql(aggregate))
        assert not direct.startswith("0:")
        assert materialized(server, database_name, name) == direct, name


@pytest.mark.parametrize(
    ("change", "statements", "effect"),
    [
        (
            {"retention": "1095 days"},
            [
                "SELECT remove_retention_policy('llm_consumption')",
                "SELECT add_retention_policy('llm_consumption',"
                " drop_after => '1095 days'::interval)",
            ],
            ("llm_consumption:policy_retention", '"drop_after": "1095 days"'),
        ),
        (
            {"columnstore_after": "14 days"},
            [
                "CALL remove_columnstore_policy('llm_consumption')",
                "CALL add_columnstore_policy('llm_consumption', after => '14 days'::interval)",
            ],
            ("llm_consumption:policy_compression", '"compress_after": "14 days"'),
        ),
        (
            {"columnstore": False},
            ["CALL remove_columnstore_policy('llm_consumption')"],
            ("llm_consumption:policy_compression", None),
        ),
        (
            {"chunk_time_interval": "14 days"},
            [
                "SELECT set_chunk_time_interval('llm_consumption', '14 days'::interval)",
                "SELECT set_chunk_time_interval('llm_provider_usage', '14 days'::interval)",
            ],
            None,
        ),
        (
            {"refresh_policies": {"llm_consumption_hourly": {"start_offset": "5 days"}}},
            [
                "SELECT remove_continuous_aggregate_policy('llm_consumption_hourly')",
                "SELECT add_continuous_aggregate_policy('llm_consumption_hourly', start_offset =>"
                " '5 days'::interval, end_offset => '1 hour'::interval, schedule_interval =>"
                " '30 minutes'::interval)",
            ],
            (
                "llm_consumption_hourly:policy_refresh_continuous_aggregate",
                '"start_offset": "5 days"',
            ),
        ),
    ],
    ids=["retention", "columnstore_after", "columnstore_off", "chunk_interval", "refresh_window"],
)
def test_each_parameter_change_applies_exactly_that_change(
    server, database_name, args, run_module, change, statements, effect
):
    assert not run_module("timescaledb_init", args).failed
    before = jobs(server, database_name)
    changed = dict(args, **change)

    applied = run_module("timescaledb_init", changed)
    assert applied.changed and not applied.failed, applied.result
    assert applied.result["queries"] == statements
    assert not run_module("timescaledb_init", changed).changed
    after = jobs(server, database_name)
    if effect is None:
        assert after == before
        interval = query(
            server,
            database_name,
            "SELECT DISTINCT time_interval::text"
            " FROM timescaledb_information.dimensions WHERE hypertable_name"
            " IN ('llm_consumption', 'llm_provider_usage')",
        )
        assert interval == [("14 days",)]
    else:
        job, config = effect
        assert {k: v for k, v in after.items() if k != job} == {
            k: v for k, v in before.items() if k != job
        }
        if config is None:
            assert job not in after
        else:
            assert config in after[job][0], after[job]

    # And back (shortening the retention again has to be allowed), then nothing more to do.
    back = run_module("timescaledb_init", dict(args, allow_destructive=True))
    assert back.changed and not back.failed, back.result
    assert not run_module("timescaledb_init", args).changed


def test_a_columnstore_of_an_earlier_release_gets_the_unique_key_in_its_orderby(
    server, database_name, args, run_module
):
    assert not run_module("timescaledb_init", args).failed
    query(
        server, database_name, "ALTER TABLE llm_consumption SET (timescaledb.orderby = 'time DESC')"
    )
    applied = run_module("timescaledb_init", args)
    assert applied.result["queries"] == [
        "ALTER TABLE \"llm_consumption\" SET (timescaledb.segmentby = 'provider, model',"
        " timescaledb.orderby = 'time DESC, event_id ASC')"
    ]
    assert not [n for n in applied.result["notices"] if "should be used" in n]
    assert not run_module("timescaledb_init", args).changed


def test_backup_drop_restore_with_columnstore_chunks_and_refreshed_aggregates(
    server, database_name, args, run_module, tmp_path
):
    assert not run_module("timescaledb_init", args).failed
    query(server, database_name, ROWS_IN_REFRESH_WINDOWS, (1500, 1500))
    query(
        server,
        database_name,
        """
        INSERT INTO llm_consumption (time, event_id, provider, model, input_tokens, cost_usd)
        SELECT now() - make_interval(days => 10 + d), gen_random_uuid(), 'openai', 'gpt-4.1',
               d, d * 0.001
        FROM generate_series(1, 30) AS d""",
    )
    run_job(server, database_name, "policy_compression", "llm_consumption")
    refresh_aggregates(server, database_name)
    compressed = query(
        server,
        database_name,
        "SELECT count(*) FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'llm_consumption' AND is_compressed",
    )
    assert compressed[0][0] >= 3
    contents = table_contents(server, database_name)
    aggregates = {name: materialized(server, database_name, name) for name in AGGREGATES}
    policies = jobs(server, database_name)

    connection = connection_args(server, database_name)
    backup = run_module(
        "timescaledb_backup", dict(connection, container=server.name, dest=str(tmp_path))
    )
    assert backup.changed and not backup.failed, backup.result
    query(server, "postgres", f'DROP DATABASE "{database_name}" WITH (FORCE)')
    manifest = backup.result["manifest_path"]
    restore = run_module(
        "timescaledb_restore", dict(connection, container=server.name, manifest=manifest)
    )
    assert restore.changed and not restore.failed, restore.result

    assert table_contents(server, database_name) == contents
    assert {name: materialized(server, database_name, name) for name in AGGREGATES} == aggregates
    assert jobs(server, database_name) == policies
    for job_id in job_ids(server, database_name):
        query(server, database_name, "CALL run_job(%s)", (job_id,))
    assert table_contents(server, database_name) == contents
    after_restore = run_module("timescaledb_init", args)
    assert not after_restore.changed and not after_restore.failed, after_restore.result
