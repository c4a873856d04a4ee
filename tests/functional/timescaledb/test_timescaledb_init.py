"""timescaledb_init against Apache-only TimescaleDB and plain PostgreSQL, run through Ansible."""

from __future__ import annotations

import contextlib
import subprocess

import psycopg2
import pytest
from conftest import (
    connect,
    connection_args,
    insert_usage_rows,
    query,
)

WRITER_PASSWORD = "writer-Secret-7f3a"
READER_PASSWORD = "reader-Secret-91bc"


def init_args(server, database: str, **extra) -> dict:
    args = connection_args(server, database)
    args.update(writer_password=WRITER_PASSWORD, reader_password=READER_PASSWORD, **extra)
    return args


def expected_license(server) -> str:
    """What the server runs: the timescale or apache license, or no extension at all."""
    rows = query(
        server, "postgres", "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if not rows:
        return "postgresql"
    with contextlib.closing(connect(server, "postgres")) as connection, connection.cursor() as cur:
        cur.execute("BEGIN; CREATE EXTENSION IF NOT EXISTS timescaledb; SHOW timescaledb.license")
        license_setting = cur.fetchone()[0]
        cur.execute("ROLLBACK")
    return license_setting


def database_exists(server, database: str) -> bool:
    return bool(query(server, "postgres", "SELECT 1 FROM pg_database WHERE datname = %s",
                      (database,)))  # fmt: skip


def test_check_apply_check_apply_converges_and_keeps_data(server, database_name, run_module):
    args = init_args(server, database_name)

    planned = run_module("timescaledb_init", args, check=True)
    assert planned.changed and not planned.failed, planned.result
    assert planned.result["queries"][0] == f'CREATE DATABASE "{database_name}"'
    assert not database_exists(server, database_name), "check mode created the database"

    applied = run_module("timescaledb_init", args)
    assert applied.changed and not applied.failed, applied.result
    assert applied.result["queries"] == planned.result["queries"]
    assert applied.result["license"] == expected_license(server)
    insert_usage_rows(server, database_name, 500)

    rechecked = run_module("timescaledb_init", args, check=True)
    assert not rechecked.changed and rechecked.result["queries"] == [], rechecked.result
    reapplied = run_module("timescaledb_init", args)
    assert not reapplied.changed and reapplied.result["queries"] == [], reapplied.result

    assert query(server, database_name, "SELECT count(*) FROM llm_consumption") == [(500,)]


def test_roles_write_and_read_what_the_contract_says(server, database_name, run_module):
    assert not run_module("timescaledb_init", init_args(server, database_name)).failed
    writer = connect(server, database_name, "aicost_writer", WRITER_PASSWORD)
    with writer.cursor() as cursor:
        cursor.execute(
            "INSERT INTO llm_collector_state (collector, watermark) VALUES ('openai_usage', now())"
        )
        cursor.execute("UPDATE llm_collector_state SET cursor = 'page-2'")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("DELETE FROM llm_collector_state")
    writer.close()
    reader = connect(server, database_name, "aicost_reader", READER_PASSWORD)
    with reader.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM llm_consumption_daily")
        cursor.execute("SELECT cursor FROM llm_collector_state")
        assert cursor.fetchall() == [("page-2",)]
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("INSERT INTO llm_collector_state VALUES ('x', now())")
    reader.close()


def test_check_mode_reports_a_drifted_index_without_fixing_it(server, database_name, run_module):
    args = init_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    query(server, database_name, "DROP INDEX llm_consumption_project_time_idx")

    planned = run_module("timescaledb_init", args, check=True, diff=True)
    assert planned.changed
    assert planned.result["queries"] == [
        'CREATE INDEX IF NOT EXISTS "llm_consumption_project_time_idx" ON "llm_consumption"'
        ' ("project" ASC, "time" DESC)'
    ]
    assert "llm_consumption_project_time_idx" in planned.result["diff"]["after"]
    index = "SELECT 1 FROM pg_indexes WHERE indexname = 'llm_consumption_project_time_idx'"
    assert query(server, database_name, index) == []

    assert run_module("timescaledb_init", args).changed
    assert query(server, database_name, index) == [(1,)]


def test_a_database_of_the_first_release_gains_the_lifetime_columns_in_place(
    timescale_server, database_name, run_module
):
    server, args = timescale_server, init_args(timescale_server, database_name)
    assert not run_module("timescaledb_init", args).failed
    insert_usage_rows(server, database_name, 200)
    # The tables as the first release made them: no cache-write lifetime columns.
    for table in ("llm_consumption", "llm_provider_usage"):
        query(server, database_name, f"ALTER TABLE {table} DROP COLUMN cache_write_1h_tokens,"
              " DROP COLUMN cache_write_12h_tokens")  # fmt: skip
    daily = "SELECT sum(requests), sum(cache_write_tokens) FROM llm_consumption_daily"
    before = query(server, database_name, daily)

    upgraded = run_module("timescaledb_init", args)
    assert upgraded.changed and not upgraded.failed, upgraded.result
    # Only additions: no view is dropped, so no rollup is lost (no allow_destructive needed).
    assert all("ADD COLUMN" in statement for statement in upgraded.result["queries"])
    assert len(upgraded.result["queries"]) == 4
    assert query(server, database_name, daily) == before
    assert query(server, database_name, "SELECT count(*), sum(cache_write_1h_tokens)"
                 " FROM llm_consumption") == [(200, 0)]  # fmt: skip
    assert not run_module("timescaledb_init", args).changed


def test_type_change_is_refused_unless_allowed(server, database_name, run_module):
    args = init_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    insert_usage_rows(server, database_name, 50)
    query(server, database_name, "ALTER TABLE llm_consumption ALTER COLUMN duration_seconds"
                                 " TYPE real")  # fmt: skip
    before = query(server, database_name, "SELECT md5(string_agg(event_id::text, ','"
                                          " ORDER BY event_id)) FROM llm_consumption")  # fmt: skip

    refused = run_module("timescaledb_init", args)
    assert refused.failed and not refused.changed
    assert "llm_consumption.duration_seconds" in refused.result["msg"]
    assert "allow_destructive=true" in refused.result["msg"]
    column_type = (
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'llm_consumption'::regclass AND attname = 'duration_seconds'"
    )
    assert query(server, database_name, column_type) == [("real",)]

    allowed = run_module("timescaledb_init", dict(args, allow_destructive=True))
    assert allowed.changed and not allowed.failed, allowed.result
    assert query(server, database_name, column_type) == [("double precision",)]
    after = query(server, database_name, "SELECT md5(string_agg(event_id::text, ','"
                                         " ORDER BY event_id)) FROM llm_consumption")  # fmt: skip
    assert after == before
    assert not run_module("timescaledb_init", args).changed


def test_type_change_of_an_aggregated_column_recreates_the_views(server, database_name, run_module):
    args = init_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    insert_usage_rows(server, database_name, 40)
    query(server, database_name, "DROP MATERIALIZED VIEW llm_consumption_hourly;"
          " DROP MATERIALIZED VIEW llm_consumption_daily;"
          " ALTER TABLE llm_consumption ALTER COLUMN cost_usd TYPE numeric(12,4)")  # fmt: skip
    assert run_module("timescaledb_init", args).failed
    assert run_module("timescaledb_init", args).failed  # refusing is repeatable
    allowed = run_module("timescaledb_init", dict(args, allow_destructive=True))
    assert allowed.changed and not allowed.failed, allowed.result
    assert query(server, database_name, "SELECT sum(requests) FROM llm_consumption_daily") == [
        (40,)
    ]
    assert not run_module("timescaledb_init", args).changed


@pytest.mark.parametrize("server", ["apache", "postgres"], indirect=True)
def test_scheduled_outside_statements_run_and_refresh_the_views(server, database_name, run_module):
    applied = run_module("timescaledb_init", init_args(server, database_name))
    names = {task["name"] for task in applied.result["scheduled_outside"]}
    assert names == {
        "refresh-llm-consumption-hourly",
        "refresh-llm-consumption-daily",
        "retention-llm-consumption",
    }
    insert_usage_rows(server, database_name, 300, days_back=2)
    query(server, database_name, "INSERT INTO llm_consumption (time, event_id, provider, model)"
          " VALUES (now() - interval '800 days', gen_random_uuid(), 'openai', 'old')")  # fmt: skip
    # Retention first, so the 800-day-old row is gone before the views are refreshed.
    for task in sorted(applied.result["scheduled_outside"], key=lambda t: "refresh" in t["name"]):
        query(server, database_name, task["sql"])
    assert query(server, database_name, "SELECT sum(requests)::int, sum(unpriced_requests)::int"
                 " FROM llm_consumption_hourly") == [(300, 300 // 17)]  # fmt: skip
    old_rows = "SELECT count(*) FROM llm_consumption WHERE model = 'old'"
    assert query(server, database_name, old_rows) == [(0,)]


def test_passwords_never_reach_the_output(server, database_name, run_module):
    # Roles are cluster-wide: own names keep this test's password rotation to itself.
    suffix = database_name[-6:]
    args = init_args(
        server, database_name, writer_role="writer_" + suffix, reader_role="reader_" + suffix
    )
    applied = run_module("timescaledb_init", args, diff=True)
    assert f"CREATE ROLE \"writer_{suffix}\" LOGIN PASSWORD '********'" in applied.result["queries"]
    for secret in (WRITER_PASSWORD, READER_PASSWORD, server.password):
        assert secret not in applied.stdout
    rotated = run_module("timescaledb_init", dict(args, reader_password="rotated-2"))
    assert rotated.result["queries"] == [f"ALTER ROLE \"reader_{suffix}\" PASSWORD '********'"]
    assert "rotated-2" not in rotated.stdout
    reader = connect(server, database_name, "reader_" + suffix, "rotated-2")
    reader.close()


def server_log(server) -> str:
    completed = subprocess.run(["docker", "logs", server.name], capture_output=True, text=True,
                               check=True)  # fmt: skip
    return completed.stdout + completed.stderr


def test_a_rejected_role_statement_never_puts_the_password_in_the_server_log(
    postgres_server, database_name, run_module
):
    server = postgres_server
    suffix = database_name[-6:]
    args = init_args(
        server, database_name, writer_role="writer_" + suffix, reader_role="reader_" + suffix
    )
    assert not run_module("timescaledb_init", args).failed
    # Every write in this database now fails, so the role statement is the one the server
    # rejects and logs with its STATEMENT line.
    query(server, "postgres",
          f'ALTER DATABASE "{database_name}" SET default_transaction_read_only = on')  # fmt: skip
    rotated, created = "rotated-" + suffix + "-Xq", "created-" + suffix + "-Zw"
    for role_args, statement in (
        (dict(reader_password=rotated), f'ALTER ROLE "reader_{suffix}" PASSWORD'),
        (dict(writer_role="new_" + suffix, writer_password=created),
         f'CREATE ROLE "new_{suffix}" LOGIN PASSWORD'),
    ):  # fmt: skip
        failed = run_module("timescaledb_init", dict(args, **role_args))
        assert failed.failed and "read-only transaction" in failed.result["msg"], failed.result
        log = server_log(server)
        assert f"STATEMENT:  {statement} 'SCRAM-SHA-256$4096:" in log
    assert rotated not in log and created not in log


def test_unicode_passwords_set_as_verifiers_still_log_in(server, database_name, run_module):
    suffix = database_name[-6:]
    password = "\ufb01x\u00a0\u216b-p\u00e4ss-" + suffix  # SASLprep maps and normalises it
    args = dict(init_args(server, database_name, reader_role="reader_" + suffix,
                          writer_role="writer_" + suffix), reader_password=password)  # fmt: skip
    assert not run_module("timescaledb_init", args).failed
    connect(server, database_name, "reader_" + suffix, password).close()
    assert not run_module("timescaledb_init", args).changed


@pytest.mark.parametrize("role_option", ["writer_role", "reader_role"])
def test_a_superuser_is_refused_as_app_role(postgres_server, database_name, run_module,
                                            role_option):  # fmt: skip
    server = postgres_server
    as_login = run_module("timescaledb_init", init_args(server, database_name,
                                                        **{role_option: server.user}))  # fmt: skip
    assert as_login.failed and f"{server.user} is a superuser" in as_login.result["msg"]
    assert not database_exists(server, database_name)
    connect(server, "postgres").close()  # the login password is still the one it was
    other = "boss_" + database_name[-6:]
    query(server, "postgres", f'CREATE ROLE "{other}" SUPERUSER')
    as_other = run_module("timescaledb_init", init_args(server, database_name,
                                                        **{role_option: other}))  # fmt: skip
    assert as_other.failed and f"{other} is a superuser" in as_other.result["msg"]
    assert query(server, "postgres", "SELECT rolpassword IS NULL FROM pg_authid"
                 " WHERE rolname = %s", (other,)) == [(True,)]  # fmt: skip


def test_apache_timescaledb_gets_hypertables(apache_server, database_name, run_module):
    applied = run_module("timescaledb_init", init_args(apache_server, database_name))
    assert applied.result["license"] == "apache"
    assert applied.result["features"]["hypertables"] == "database"
    assert "unavailable" in applied.result["features"]["columnstore"]
    hypertables = query(
        apache_server,
        database_name,
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1",
    )
    assert hypertables == [("llm_consumption",), ("llm_provider_usage",)]


def test_non_empty_table_is_not_rewritten_into_a_hypertable_by_surprise(
    apache_server, database_name, run_module
):
    server = apache_server
    args = init_args(server, database_name, timescaledb="disabled")
    assert run_module("timescaledb_init", args).result["license"] == "postgresql"
    insert_usage_rows(server, database_name, 25)

    args["timescaledb"] = "auto"
    refused = run_module("timescaledb_init", args)
    assert refused.failed
    assert "llm_consumption holds rows" in refused.result["msg"]
    assert query(server, database_name, "SELECT count(*) FROM llm_consumption") == [(25,)]

    allowed = run_module("timescaledb_init", dict(args, allow_destructive=True))
    assert allowed.changed and not allowed.failed, allowed.result
    assert query(server, database_name, "SELECT count(*) FROM llm_consumption") == [(25,)]
    assert not run_module("timescaledb_init", args).changed


def test_required_timescaledb_fails_on_plain_postgresql(postgres_server, database_name,
                                                        run_module):  # fmt: skip
    failed = run_module(
        "timescaledb_init", init_args(postgres_server, database_name, timescaledb="required")
    )
    assert failed.failed
    assert "not available" in failed.result["msg"]
    assert not database_exists(postgres_server, database_name)
