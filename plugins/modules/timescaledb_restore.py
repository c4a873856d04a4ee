#!/usr/bin/python
# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_restore
short_description: Restore a timescaledb_backup dump and prove the data came back intact
version_added: 0.1.0
description:
  - Verifies the dump's size and sha256 against its manifest before touching anything; a
    corrupted or altered file is refused.
  - Refuses a target database that already holds tables unless O(replace=true).
  - Restores into a staging database C(<database>_restoring) first. With TimescaleDB in the
    manifest it creates the extension at the dumped version and calls
    C(timescaledb_pre_restore()); C(pg_restore) runs in a single transaction, reading the
    dump on its standard input; then every table's row count and content fingerprint is
    compared with the manifest.
  - Only a verified restore replaces the target (dropped with its connections terminated,
    the staging database renamed into its place, then C(timescaledb_post_restore())). A
    failed or differing restore leaves the target as it was. The server needs room for both
    copies during the swap.
extends_documentation_fragment:
  - aicost.monitoring.timescaledb
  - aicost.monitoring.timescaledb.tool
options:
  manifest:
    description:
      - Path of the backup's manifest (C(<id>.manifest.json)); the dump is the file it
        names in the same directory.
    type: path
    required: true
  replace:
    description:
      - Drop and recreate a target database that already holds tables.
    type: bool
    default: false
  maintenance_database:
    description:
      - Database to connect to for dropping and creating O(database).
    type: str
    default: postgres
attributes:
  check_mode:
    support: full
    description:
      - Verifies the checksum and the target, and reports the statements and the command it
        would run. Changes nothing.
  diff_mode:
    support: none
    description:
      - A restore replaces the database as a whole; there is no finer before and after.
seealso:
  - module: aicost.monitoring.timescaledb_backup
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: Restore a backup over the current database
  aicost.monitoring.timescaledb_restore:
    container: aicost-timescaledb-1
    login_password: "{{ timescaledb_superuser_password }}"
    manifest: /var/backups/aicost/aicost-20261128T031500Z.manifest.json
    replace: true
"""

RETURN = r"""
backup_id:
  description: The restored backup.
  returned: always
  type: str
  sample: aicost-20261128T031500Z
queries:
  description: Statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
command:
  description: The restore command (it never carries the password).
  returned: always
  type: list
  elements: str
verified:
  description: Per table, the row count found equal to the manifest (content included).
  returned: success and not check mode
  type: dict
  sample: {"llm_consumption": 1000000, "llm_provider_usage": 0}
timings:
  description: >-
    Seconds spent on the checksum, in pg_restore, and verifying the content (while ANALYZE
    runs).
  returned: success and not check mode
  type: dict
  sample: {"checksum_seconds": 0.2, "pg_restore_seconds": 14.1, "verify_seconds": 2.3}
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    SqlLog,
    connect,
    connection_argument_spec,
    database_exists,
    fetch_value,
    psycopg2,
    quoted,
    require_psycopg2,
    sql,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_dump import (
    Tool,
    ToolError,
    restore_from_file,
    tool_argument_spec,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    read_manifest,
    sha256_of_file,
    stabilise_session,
    table_fingerprints,
)

USER_RELATIONS = r"""
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'v')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname NOT LIKE '\_timescaledb%'
  AND n.nspname NOT LIKE 'timescaledb\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
"""


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(tool_argument_spec())
    spec.update(
        manifest=dict(type="path", required=True),
        replace=dict(type="bool", default=False),
        maintenance_database=dict(type="str", default="postgres"),
    )
    return spec


def verified_manifest(module: AnsibleModule) -> tuple[dict, str]:
    """The manifest and its dump path, after checking size and sha256; fails otherwise."""
    try:
        manifest = read_manifest(module.params["manifest"])
    except (OSError, ValueError) as error:
        module.fail_json(msg="Unreadable manifest: {0}".format(error))
    dump = os.path.join(os.path.dirname(module.params["manifest"]), manifest["dump_file"])
    if not os.path.isfile(dump):
        module.fail_json(msg="Dump file {0} is missing; nothing was touched".format(dump))
    size = os.path.getsize(dump)
    digest = sha256_of_file(dump)
    if size != manifest["dump_bytes"] or digest != manifest["sha256"]:
        module.fail_json(
            msg="Dump {0} does not match its manifest (size {1} vs {2}, sha256 {3} vs {4}):"
            " the file is corrupted or was changed; nothing was touched".format(
                dump, size, manifest["dump_bytes"], digest, manifest["sha256"]
            )
        )
    return manifest, dump


def user_relation_count(module: AnsibleModule) -> int:
    connection = connect(module, autocommit=True)
    try:
        with connection.cursor() as cursor:
            return int(fetch_value(cursor, USER_RELATIONS))
    finally:
        connection.close()


def check_extension_version(module: AnsibleModule, maintenance, manifest: dict) -> None:
    extension = manifest.get("extension")
    if not extension:
        return
    with maintenance.cursor() as cursor:
        available = fetch_value(
            cursor,
            "SELECT 1 FROM pg_catalog.pg_available_extension_versions"
            " WHERE name = 'timescaledb' AND version = %s",
            (extension["version"],),
        )
    if not available:
        module.fail_json(
            msg="The dump needs TimescaleDB {0}, which this server does not offer;"
            " nothing was touched".format(extension["version"])
        )


def restored_fingerprints(connection, manifest: dict) -> dict:
    """Fingerprints of the restored tables, in one snapshot, the way the backup took them."""
    connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with connection.cursor() as cursor:
            stabilise_session(cursor)
            method = manifest.get("fingerprint", "md5_text")
            return table_fingerprints(cursor, list(manifest["tables"]), method)
    finally:
        connection.rollback()


def differences_from(manifest: dict, found: dict) -> list[str]:
    return [
        "{0}: {1} rows expected, {2} found{3}".format(
            table,
            expected["rows"],
            found[table]["rows"],
            "" if found[table]["content_sha256"] == expected["content_sha256"]
            else ", content differs",
        )
        for table, expected in manifest["tables"].items()
        if found[table] != expected
    ]  # fmt: skip


def staging_name(database: str) -> str:
    # PostgreSQL truncates names at 63 bytes; keep the suffix whole.
    return database[:50] + "_restoring"


def restore_into(module: AnsibleModule, tool: Tool, staging: str, dump: str, manifest: dict,
                 log: SqlLog, timings: dict) -> dict:  # fmt: skip
    """pg_restore into the staging database after timescaledb_pre_restore(), then ANALYZE
    while a second connection fingerprints the restored tables."""
    extension = manifest.get("extension")
    command = tool.command("pg_restore", module.params, staging, "--single-transaction",
                           "--exit-on-error")  # fmt: skip
    target = connect(module, staging, autocommit=True)
    verifier = connect(module, staging)
    try:
        with target.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as worker:
            if extension:
                log.execute(cursor, "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION %s",
                            (extension["version"],))  # fmt: skip
                log.execute(cursor, "SELECT timescaledb_pre_restore()")
            restoring = time.monotonic()
            restore_from_file(command, tool.environment(module.params), dump)
            timings["pg_restore_seconds"] = round(time.monotonic() - restoring, 3)
            verifying = time.monotonic()
            fingerprinting = worker.submit(restored_fingerprints, verifier, manifest)
            log.execute(cursor, "ANALYZE")
            found = fingerprinting.result()
            timings["verify_seconds"] = round(time.monotonic() - verifying, 3)
            return found
    finally:
        target.close()
        verifier.close()


def swap_in(cursor, log: SqlLog, staging: str, database: str, exists: bool) -> None:
    """Replace the target with the verified staging database."""
    if exists:
        log.execute(cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(database)))
    for attempt in range(5):
        # TimescaleDB's scheduler may look into the new database; RENAME needs it alone.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (staging,),
        )
        try:
            log.execute(cursor, sql.SQL("ALTER DATABASE {0} RENAME TO {1}").format(
                quoted(staging), quoted(database)))  # fmt: skip
            return
        except psycopg2.errors.ObjectInUse:
            log.executed_queries.pop()
            time.sleep(0.5 * (attempt + 1))
    raise ToolError("{0} stayed in use; it holds the verified restore".format(staging))


def planned_queries(cursor, log: SqlLog, staging: str, database: str, exists: bool,
                    extension: dict | None) -> None:  # fmt: skip
    log.record(cursor, sql.SQL("DROP DATABASE IF EXISTS {0} WITH (FORCE)").format(quoted(staging)))
    log.record(cursor, sql.SQL("CREATE DATABASE {0}").format(quoted(staging)))
    if extension:
        log.record(cursor, "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION %s",
                   (extension["version"],))  # fmt: skip
        log.record(cursor, "SELECT timescaledb_pre_restore()")
    log.record(cursor, "ANALYZE")
    if exists:
        log.record(cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(database)))
    log.record(cursor, sql.SQL("ALTER DATABASE {0} RENAME TO {1}").format(
        quoted(staging), quoted(database)))  # fmt: skip
    if extension:
        log.record(cursor, "SELECT timescaledb_post_restore()")


def failure_message(cursor, log: SqlLog, staging: str, database: str, existed: bool,
                    error: Exception) -> str:  # fmt: skip
    """Say where the data is after a failure; drop the staging copy only if it is not the
    sole copy left."""
    cursor.execute("SELECT datname FROM pg_catalog.pg_database WHERE datname IN (%s, %s)",
                   (staging, database))  # fmt: skip
    present = {row[0] for row in cursor.fetchall()}
    if existed and database not in present and staging in present:
        return ("Restore failed after {0} was dropped: {1}. {2} holds the verified restore;"
                " rename it to {0}.".format(database, error, staging))  # fmt: skip
    if staging in present:
        log.execute(cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(staging)))
    return "Restore failed, {0} was left as it was: {1}".format(database, error)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    database = params["database"]
    staging = staging_name(database)
    started = time.monotonic()
    manifest, dump = verified_manifest(module)
    timings = dict(checksum_seconds=round(time.monotonic() - started, 3))
    tool = Tool.from_params(params)
    log = SqlLog()
    maintenance = connect(module, params["maintenance_database"], autocommit=True)
    exists = database_exists(maintenance, database)
    if exists and user_relation_count(module) and not params["replace"]:
        module.fail_json(
            msg="Database {0} already holds tables; set replace=true to drop it and"
            " restore {1}".format(database, manifest["id"])
        )
    check_extension_version(module, maintenance, manifest)
    extension = manifest.get("extension")
    result = dict(
        changed=True,
        backup_id=manifest["id"],
        command=tool.command("pg_restore", params, staging, "--single-transaction",
                             "--exit-on-error"),
    )  # fmt: skip
    cursor = maintenance.cursor()
    if module.check_mode:
        planned_queries(cursor, log, staging, database, exists, extension)
        module.exit_json(queries=log.executed_queries, **result)
    try:
        # A failed earlier run may have left a staging database behind.
        log.execute(cursor, sql.SQL("DROP DATABASE IF EXISTS {0} WITH (FORCE)").format(
            quoted(staging)))  # fmt: skip
        log.execute(cursor, sql.SQL("CREATE DATABASE {0}").format(quoted(staging)))
        found = restore_into(module, tool, staging, dump, manifest, log, timings)
        differences = differences_from(manifest, found)
        if differences:
            log.execute(cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(staging)))
            module.fail_json(
                msg="Restored data differs from the manifest: {0}. {1} was left as it was.".format(
                    "; ".join(differences), database
                ),
                queries=log.executed_queries,
            )
        swap_in(cursor, log, staging, database, exists)
        if extension:
            restored = connect(module, database, autocommit=True)
            try:
                with restored.cursor() as restored_cursor:
                    log.execute(restored_cursor, "SELECT timescaledb_post_restore()")
            finally:
                restored.close()
    except (ToolError, psycopg2.Error, OSError) as error:
        module.fail_json(msg=failure_message(cursor, log, staging, database, exists, error),
                         queries=log.executed_queries)  # fmt: skip
    result["verified"] = {table: fingerprint["rows"] for table, fingerprint in found.items()}
    result["timings"] = timings
    module.exit_json(queries=log.executed_queries, **result)


if __name__ == "__main__":
    main()
