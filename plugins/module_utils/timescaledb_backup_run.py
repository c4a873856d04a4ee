# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One consistent, checksummed dump with its manifest, and retention of old dumps: shared by
the timescaledb_backup module and the backup program the backup role's timer runs."""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    fetch_all,
    fetch_value,
    open_connection,
    psycopg2,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_dump import (
    Tool,
    ToolError,
    dump_to_file,
    fsync_directory,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    DUMP_SUFFIX,
    MANIFEST_FORMAT,
    MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
    StoredBackup,
    existing_tables,
    expired_backups,
    fingerprint_method,
    interrupted_backup_files,
    list_backups,
    stabilise_session,
    table_fingerprints,
    write_json_atomically,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_schema import TABLES


class BackupFailed(Exception):
    """The dump could not be taken; nothing of it was kept."""


def dump_arguments(compression: int | str) -> list[str]:
    """A level (gzip), or a method with its level such as ``zstd:3`` (PostgreSQL 16 and later)."""
    return ["--format=custom", "--compress={0}".format(compression)]


def snapshot_facts(cursor) -> dict:
    """Versions and per-table fingerprints, read in the snapshot pg_dump will use."""
    extension = fetch_all(
        cursor, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'timescaledb'"
    )
    tables = existing_tables(cursor, list(TABLES))
    method = fingerprint_method(int(fetch_value(cursor, "SHOW server_version_num")))
    return dict(
        server_version=fetch_value(cursor, "SELECT current_setting('server_version')"),
        fingerprint=method,
        extension=None
        if not extension
        else dict(
            name="timescaledb",
            version=extension[0][0],
            license=fetch_value(cursor, "SELECT current_setting('timescaledb.license', true)"),
        ),
        tables=table_fingerprints(cursor, tables, method),
    )


def dump_database(params: dict, tool: Tool, identifier: str) -> dict:
    """Dump ``params["database"]`` into ``params["dest"]`` as ``identifier`` and write its
    manifest last; return the manifest. Raises BackupFailed, having removed what it wrote.
    The caller holds the directory's lock."""
    dest = params["dest"]
    dump_path = os.path.join(dest, identifier + DUMP_SUFFIX)
    partial = os.path.join(dest, "." + identifier + PARTIAL_SUFFIX)
    started = time.monotonic()
    try:
        connection = open_connection(params)
    except psycopg2.Error as error:
        raise BackupFailed("cannot connect to the database: {0}".format(error)) from error
    connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with connection.cursor() as cursor:
            stabilise_session(cursor)
            snapshot = fetch_value(cursor, "SELECT pg_export_snapshot()")
            facts = snapshot_facts(cursor)
            fingerprint_seconds = time.monotonic() - started
            command = tool.command(
                "pg_dump",
                params,
                params["database"],
                *dump_arguments(params["compress_level"]),
                "--snapshot=" + snapshot,
            )
            # The exporting transaction stays open until pg_dump has imported the snapshot.
            stream = dump_to_file(command, tool.environment(params), partial)
        facts["pg_dump_version"] = tool.version("pg_dump")
    except (ToolError, psycopg2.Error, OSError) as error:
        if os.path.exists(partial):
            os.unlink(partial)
        raise BackupFailed(str(error)) from error
    finally:
        connection.rollback()
        connection.close()
    manifest = dict(
        format=MANIFEST_FORMAT,
        id=identifier,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        database=params["database"],
        dump_file=os.path.basename(dump_path),
        dump_format="custom",
        dump_bytes=stream.size,
        sha256=stream.sha256,
        duration_seconds=round(time.monotonic() - started, 3),
        fingerprint_seconds=round(fingerprint_seconds, 3),
        method="container" if tool.container else "local",
        **facts,
    )
    try:
        os.replace(partial, dump_path)
        fsync_directory(dest)
        # The manifest goes last: from then on the backup exists.
        write_json_atomically(os.path.join(dest, identifier + MANIFEST_SUFFIX), manifest)
        fsync_directory(dest)
    except OSError as error:
        for path in (partial, dump_path):
            if os.path.exists(path):
                os.unlink(path)
        raise BackupFailed(str(error)) from error
    return manifest


def prune(directory: str, prefix: str, keep_daily: int, keep_weekly: int, dry_run: bool,
          pending: StoredBackup | None = None, keep_monthly: int = 0) -> list[str]:  # fmt: skip
    backups = list_backups(directory, prefix) if os.path.isdir(directory) else []
    if pending is not None:
        backups.append(pending)
    expired = expired_backups(backups, keep_daily, keep_weekly, keep_monthly)
    if not dry_run:
        for backup in expired:
            # Manifest first: a backup without one is no longer listed, even if we stop here.
            for suffix in (MANIFEST_SUFFIX, DUMP_SUFFIX):
                path = os.path.join(directory, backup.id + suffix)
                if os.path.exists(path):
                    os.unlink(path)
    return [backup.id for backup in expired]


def discard_interrupted(dest: str, prefix: str, dry_run: bool) -> list[str]:
    """Remove what interrupted runs left; the caller holds the lock, so no run is active."""
    leftovers = interrupted_backup_files(dest, prefix) if os.path.isdir(dest) else []
    if not dry_run:
        for name in leftovers:
            os.unlink(os.path.join(dest, name))
    return leftovers
