"""timescaledb_backup / timescaledb_restore against real servers, run through Ansible."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import TABLES, connection_args, insert_usage_rows, query, table_contents


@pytest.fixture
def populated(server, database_name, run_module):
    """A database brought up by timescaledb_init and filled with varied rows in every table."""
    args = connection_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    insert_usage_rows(server, database_name, 3000, days_back=40)
    query(server, database_name, """
        INSERT INTO llm_provider_usage (bucket_start, bucket_seconds, provider, source, model,
            input_tokens, output_tokens, requests, cost_amount)
        SELECT date_trunc('day', now()) - make_interval(days => d), 86400, 'openai',
               'openai_costs', 'gpt-4.1', d * 1000, d * 10, d, d * 0.0123456789
        FROM generate_series(1, 60) AS d;
        INSERT INTO llm_collector_state VALUES ('openai_usage', now(), 'cursor-1', now()),
                                               ('anthropic_usage', now(), NULL, now());
    """)  # fmt: skip
    return args


def backup_args(server, args: dict, dest: Path, **extra) -> dict:
    return dict(args, container=server.name, dest=str(dest), **extra)


def test_backup_drop_restore_gives_identical_tables(server, populated, tmp_path, run_module):
    database = populated["database"]
    before = table_contents(server, database)
    assert before["llm_consumption"][0] == 3000

    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    assert backup.changed and not backup.failed, backup.result
    manifest = backup.result["manifest"]
    assert {table: manifest["tables"][table]["rows"] for table in TABLES} == {
        "llm_consumption": 3000, "llm_provider_usage": 60, "llm_collector_state": 2,
    }  # fmt: skip
    assert os.stat(backup.result["dump_path"]).st_mode & 0o777 == 0o600
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]

    query(server, "postgres", f'DROP DATABASE "{database}" WITH (FORCE)')
    restore = run_module(
        "timescaledb_restore",
        dict(populated, container=server.name, manifest=backup.result["manifest_path"]),
    )
    assert restore.changed and not restore.failed, restore.result
    assert restore.result["verified"]["llm_consumption"] == 3000

    assert table_contents(server, database) == before
    assert not run_module("timescaledb_init", populated).changed
    # timescaledb_post_restore() ran on the renamed database: its scheduler may run again.
    restoring = query(server, database, "SELECT current_setting('timescaledb.restoring', true)")
    assert restoring[0][0] in (None, "off")
    assert not staging_databases(server)


def test_corrupted_backup_is_refused_before_anything_is_touched(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    dump = Path(backup.result["dump_path"])
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    before = table_contents(server, populated["database"])

    refused = run_module(
        "timescaledb_restore",
        dict(populated, container=server.name, manifest=backup.result["manifest_path"],
             replace=True),
    )  # fmt: skip
    assert refused.failed and not refused.changed
    assert "corrupted or was changed; nothing was touched" in refused.result["msg"]
    assert table_contents(server, populated["database"]) == before


def test_non_empty_target_needs_replace(server, populated, tmp_path, run_module):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    query(server, populated["database"], "DELETE FROM llm_collector_state")
    restore_args = dict(populated, container=server.name, manifest=backup.result["manifest_path"])

    refused = run_module("timescaledb_restore", restore_args)
    assert refused.failed and "set replace=true" in refused.result["msg"]
    assert query(server, populated["database"], "SELECT count(*) FROM llm_collector_state") == [
        (0,)
    ]

    planned = run_module("timescaledb_restore", dict(restore_args, replace=True), check=True)
    assert planned.changed
    assert f'DROP DATABASE "{populated["database"]}" WITH (FORCE)' in planned.result["queries"]
    assert query(server, populated["database"], "SELECT count(*) FROM llm_collector_state") == [
        (0,)
    ]

    replaced = run_module("timescaledb_restore", dict(restore_args, replace=True))
    assert replaced.changed and not replaced.failed, replaced.result
    assert replaced.result["verified"]["llm_collector_state"] == 2


def test_restore_fails_when_content_differs_from_the_manifest(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    manifest_path = Path(backup.result["manifest_path"])
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["llm_provider_usage"]["content_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))

    restore = run_module(
        "timescaledb_restore",
        dict(populated, container=server.name, manifest=str(manifest_path), replace=True),
    )
    assert restore.failed
    assert (
        "llm_provider_usage: 60 rows expected, 60 found, content differs" in (restore.result["msg"])
    )


def staging_databases(server) -> list[tuple]:
    return query(server, "postgres", "SELECT datname FROM pg_database"
                                     " WHERE datname LIKE '%\\_restoring'")  # fmt: skip


def test_a_restore_that_breaks_midway_leaves_the_target_as_it_was(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    query(server, populated["database"], "DELETE FROM llm_collector_state")
    before = table_contents(server, populated["database"])
    broken = run_module(
        "timescaledb_restore",
        dict(populated, container=server.name, manifest=backup.result["manifest_path"],
             replace=True, docker_path=str(tmp_path / "no-such-docker")),
    )  # fmt: skip
    assert broken.failed
    assert f"{populated['database']} was left as it was" in broken.result["msg"]
    assert table_contents(server, populated["database"]) == before
    assert not staging_databases(server)


TIMESCALE_ONLY = pytest.mark.parametrize("server", ["timescale"], indirect=True)


def edited_manifest(backup, **changes) -> str:
    path = Path(backup.result["manifest_path"])
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))
    return str(path)


@TIMESCALE_ONLY
def test_a_staging_database_with_tables_is_dropped_only_with_replace(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    database = populated["database"]
    staging = database + "_restoring"
    query(server, "postgres", f'CREATE DATABASE "{staging}"')
    query(server, staging, "CREATE TABLE precious AS SELECT 42 AS answer")
    restore_args = dict(populated, container=server.name, manifest=backup.result["manifest_path"])
    query(server, "postgres", f'DROP DATABASE "{database}" WITH (FORCE)')

    refused = run_module("timescaledb_restore", restore_args)
    assert refused.failed and f"{staging} already exists and holds tables" in refused.result["msg"]
    assert query(server, staging, "SELECT answer FROM precious") == [(42,)]
    planned = run_module("timescaledb_restore", restore_args, check=True)
    assert planned.failed and "nothing was touched" in planned.result["msg"]

    replaced = run_module("timescaledb_restore", dict(restore_args, replace=True))
    assert not replaced.failed, replaced.result
    assert replaced.result["queries"][0] == f'DROP DATABASE "{staging}" WITH (FORCE)'
    assert query(server, database, "SELECT to_regclass('precious') IS NULL") == [(True,)]


@TIMESCALE_ONLY
def test_long_database_names_get_staging_databases_of_their_own(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    target = "restored_" + "x" * 41 + "_" + populated["database"][-10:]  # 61 characters
    # What a sibling with the same first 50 characters would have been staged in before.
    sibling = target[:50] + "_restoring"
    query(server, "postgres", f'CREATE DATABASE "{sibling}"')
    try:
        query(server, sibling, "CREATE TABLE precious AS SELECT 42 AS answer")
        restore = run_module("timescaledb_restore", dict(
            populated, database=target, container=server.name,
            manifest=backup.result["manifest_path"]))  # fmt: skip
        assert not restore.failed, restore.result
        assert restore.result["verified"]["llm_consumption"] == 3000
        assert table_contents(server, target) == table_contents(server, populated["database"])
        assert query(server, sibling, "SELECT answer FROM precious") == [(42,)]
    finally:  # other tests look for leftover *_restoring databases
        query(server, "postgres", f'DROP DATABASE IF EXISTS "{sibling}" WITH (FORCE)')


@TIMESCALE_ONLY
def test_a_manifest_cannot_send_the_restore_out_of_its_directory(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    outside = Path("/etc/hostname").read_bytes()
    facts = dict(dump_bytes=len(outside), sha256=hashlib.sha256(outside).hexdigest())
    restore_args = dict(populated, container=server.name, replace=True)
    before = table_contents(server, populated["database"])

    traversal = edited_manifest(backup, dump_file="../../../../../../etc/hostname", **facts)
    refused = run_module("timescaledb_restore", dict(restore_args, manifest=traversal))
    assert refused.failed and "dump_file must be a file name" in refused.result["msg"]

    (tmp_path / "linked.dump").symlink_to("/etc/hostname")
    linked = edited_manifest(backup, dump_file="linked.dump", **facts)
    refused = run_module("timescaledb_restore", dict(restore_args, manifest=linked))
    assert refused.failed and "leads out of" in refused.result["msg"]
    assert table_contents(server, populated["database"]) == before
    assert not staging_databases(server)


@TIMESCALE_ONLY
def test_an_unknown_fingerprint_method_is_refused_before_anything_is_touched(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    manifest = edited_manifest(backup, fingerprint="bogus")
    refused = run_module("timescaledb_restore", dict(populated, container=server.name,
                                                     manifest=manifest, replace=True))  # fmt: skip
    assert refused.failed and "fingerprint must be one of" in refused.result["msg"]
    assert "KeyError" not in refused.stdout
    assert not staging_databases(server)


@TIMESCALE_ONLY
def test_check_mode_reports_the_statements_the_real_run_executes(
    server, populated, tmp_path, run_module
):
    backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    # An empty staging database left behind by an earlier failure is part of the plan.
    query(server, "postgres", f'CREATE DATABASE "{populated["database"]}_restoring"')
    restore_args = dict(populated, container=server.name, manifest=backup.result["manifest_path"],
                        replace=True)  # fmt: skip
    planned = run_module("timescaledb_restore", restore_args, check=True)
    assert not planned.failed, planned.result
    restored = run_module("timescaledb_restore", restore_args)
    assert not restored.failed, restored.result
    assert planned.result["queries"] == restored.result["queries"]
    assert planned.result["command"] == restored.result["command"]


def test_check_mode_backup_writes_nothing(server, populated, tmp_path, run_module):
    dest = tmp_path / "backups"
    planned = run_module("timescaledb_backup", backup_args(server, populated, dest), check=True)
    assert planned.changed and not planned.failed, planned.result
    assert "pg_dump" in planned.result["command"]
    assert not dest.exists()


def test_retention_keeps_daily_and_weekly_backups(timescale_server, database_name, tmp_path,
                                                  run_module):  # fmt: skip
    server = timescale_server
    args = connection_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    # Older backups, newest first: two on one day, then one a day, then weekly-spaced ones.
    stamps = ["20260101T120000Z", "20260101T020000Z", "20251231T020000Z", "20251230T020000Z",
              "20251222T020000Z", "20251215T020000Z", "20251201T020000Z"]  # fmt: skip
    for stamp in stamps:
        for suffix in (".dump", ".manifest.json"):
            (tmp_path / f"aicost-{stamp}{suffix}").write_text("{}")
    (tmp_path / "other-20200101T000000Z.manifest.json").write_text("{}")

    backup = run_module(
        "timescaledb_backup", backup_args(server, args, tmp_path, keep_daily=3, keep_weekly=3)
    )
    assert not backup.failed, backup.result
    # Daily: today's new backup, 2026-01-01 12:00, 2025-12-31. Weekly (ISO weeks): the new
    # one's week, 2026-01-01 12:00 (week 1 of 2026), 2025-12-22 (week 52).
    assert sorted(backup.result["pruned"]) == [
        "aicost-20251201T020000Z", "aicost-20251215T020000Z", "aicost-20251230T020000Z",
        "aicost-20260101T020000Z",
    ]  # fmt: skip
    remaining = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".manifest.json"))
    assert remaining == sorted([
        "aicost-20260101T120000Z.manifest.json", "aicost-20251231T020000Z.manifest.json",
        "aicost-20251222T020000Z.manifest.json", backup.result["backup_id"] + ".manifest.json",
        "other-20200101T000000Z.manifest.json",
    ])  # fmt: skip


@pytest.mark.parametrize("prefix", ["../x", "a/b", "a b"])
def test_a_prefix_retention_cannot_find_is_refused_before_anything_is_written(
    timescale_server, database_name, tmp_path, run_module, prefix
):
    server = timescale_server
    args = connection_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    (tmp_path / ".a").mkdir()  # so a/b's partial dump could be created
    refused = run_module("timescaledb_backup", backup_args(server, args, tmp_path, prefix=prefix))
    assert refused.failed and "prefix must be" in refused.result["msg"], refused.result
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".a"]


def test_files_of_interrupted_backups_are_discarded_by_the_next_one(
    timescale_server, database_name, tmp_path, run_module
):
    server = timescale_server
    args = connection_args(server, database_name)
    assert not run_module("timescaledb_init", args).failed
    complete = "aicost-20260101T000000Z"
    (tmp_path / (complete + ".dump")).write_text("")
    (tmp_path / (complete + ".manifest.json")).write_text("{}")
    # Killed between renaming a dump and writing its manifest; killed writing a manifest.
    (tmp_path / "aicost-20260102T000000Z.dump").write_text("")
    (tmp_path / ".manifest-3kz_9q").write_text("{")
    (tmp_path / ".aicost-20260103T000000Z.dump.partial").write_text("")

    planned = run_module("timescaledb_backup", backup_args(server, args, tmp_path), check=True)
    discarded = [".aicost-20260103T000000Z.dump.partial", ".manifest-3kz_9q",
                 "aicost-20260102T000000Z.dump"]  # fmt: skip
    assert planned.result["discarded"] == discarded
    assert (tmp_path / "aicost-20260102T000000Z.dump").exists()

    backup = run_module("timescaledb_backup", backup_args(server, args, tmp_path))
    assert not backup.failed, backup.result
    assert backup.result["discarded"] == discarded
    new = backup.result["backup_id"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == sorted([
        complete + ".dump", complete + ".manifest.json", new + ".dump", new + ".manifest.json",
    ])  # fmt: skip


def test_manifest_describes_exactly_the_dumped_snapshot_under_concurrent_writes(
    server, populated, tmp_path, run_module
):
    stop = threading.Event()
    written = []

    def keep_writing() -> None:
        while not stop.is_set():
            query(server, populated["database"],
                  "INSERT INTO llm_consumption (time, event_id, provider, model)"
                  " VALUES (now(), gen_random_uuid(), 'openai', 'during-backup')")  # fmt: skip
            written.append(1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
    finally:
        stop.set()
        writer.join()
    assert not backup.failed, backup.result
    in_dump = backup.result["manifest"]["tables"]["llm_consumption"]["rows"]
    assert 3000 < in_dump < 3000 + len(written), "the writes did not overlap the backup"

    restore = run_module(
        "timescaledb_restore",
        dict(populated, container=server.name, manifest=backup.result["manifest_path"],
             replace=True),
    )  # fmt: skip
    assert not restore.failed, restore.result
    assert restore.result["verified"]["llm_consumption"] == in_dump


def test_a_single_changed_value_changes_the_fingerprint(server, populated, tmp_path, run_module):
    def fingerprint() -> dict:
        backup = run_module("timescaledb_backup", backup_args(server, populated, tmp_path))
        assert not backup.failed, backup.result
        return backup.result["manifest"]["tables"]

    before = fingerprint()
    query(server, populated["database"], "UPDATE llm_provider_usage"
          " SET cost_amount = cost_amount + 0.0000000001 WHERE bucket_seconds = 86400"
          " AND input_tokens = 30000")  # fmt: skip
    time.sleep(1.1)  # backup names carry the second
    after = fingerprint()
    assert after["llm_provider_usage"]["rows"] == before["llm_provider_usage"]["rows"]
    assert (
        after["llm_provider_usage"]["content_sha256"]
        != (before["llm_provider_usage"]["content_sha256"])
    )
    assert after["llm_consumption"] == before["llm_consumption"]
