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
  - Refuses a manifest whose fields could mislead it (a C(dump_file) that is not a plain file
    name beside the manifest, or that leads out of its directory; an unknown C(fingerprint)
    method; malformed sizes, checksums or tables) before anything is touched.
  - Restores into a staging database C(<database>_restoring) first (for a name too long for
    that suffix, a digest of the full name keeps staging names apart). A staging database left
    behind is dropped when empty; one that holds tables (a failed restore may have left the
    only verified copy there) is dropped only with O(replace=true). With TimescaleDB in the
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
      - Drop and recreate a target database that already holds tables, and drop a staging
        database C(<database>_restoring) that holds tables.
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
        would run, from the same plan a real run executes. Changes nothing.
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
import traceback
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
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_restore_plan import (
    ANALYZE,
    FINISH,
    LOAD,
    PREPARE,
    SWAP,
    DatabaseFacts,
    RestorePlan,
    RestoreStep,
    build_restore_plan,
    staging_name,
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
        module.fail_json(msg="Unreadable manifest: {0}; nothing was touched".format(error))
    directory = os.path.dirname(os.path.abspath(module.params["manifest"]))
    dump = os.path.join(directory, manifest["dump_file"])
    # Nor may a symbolic link lead the restore out of the backup directory.
    if os.path.dirname(os.path.realpath(dump)) != os.path.realpath(directory):
        module.fail_json(
            msg="Dump file {0} leads out of {1}; nothing was touched".format(dump, directory)
        )
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


def database_facts(module: AnsibleModule, maintenance, database: str) -> DatabaseFacts:
    if not database_exists(maintenance, database):
        return DatabaseFacts(exists=False, holds_tables=False)
    connection = connect(module, database, autocommit=True)
    try:
        with connection.cursor() as cursor:
            return DatabaseFacts(
                exists=True, holds_tables=int(fetch_value(cursor, USER_RELATIONS)) > 0
            )
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


def run_phase(cursor, log: SqlLog, plan: RestorePlan, phase: str) -> None:
    for step in plan.phase(phase):
        if step.exclusive:
            execute_alone(cursor, log, step)
        else:
            log.execute(cursor, step.query, step.params)


def execute_alone(cursor, log: SqlLog, step: RestoreStep) -> None:
    """Run a step that needs ``step.exclusive`` to itself (RENAME does)."""
    for attempt in range(5):
        # TimescaleDB's scheduler may look into the new database.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (step.exclusive,),
        )
        try:
            log.execute(cursor, step.query, step.params)
            return
        except psycopg2.errors.ObjectInUse:
            time.sleep(0.5 * (attempt + 1))
    raise ToolError("{0} stayed in use; it holds the verified restore".format(step.exclusive))


def restore_command(module: AnsibleModule, tool: Tool, staging: str) -> list[str]:
    return tool.command("pg_restore", module.params, staging, "--single-transaction",
                        "--exit-on-error")  # fmt: skip


def restore_into(module: AnsibleModule, tool: Tool, plan: RestorePlan, dump: str,
                 manifest: dict, log: SqlLog, timings: dict) -> dict:  # fmt: skip
    """pg_restore into the staging database after the load phase (timescaledb_pre_restore()),
    then ANALYZE while a second connection fingerprints the restored tables."""
    target = connect(module, plan.staging, autocommit=True)
    verifier = connect(module, plan.staging)
    try:
        with target.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as worker:
            run_phase(cursor, log, plan, LOAD)
            restoring = time.monotonic()
            restore_from_file(restore_command(module, tool, plan.staging),
                              tool.environment(module.params), dump)  # fmt: skip
            timings["pg_restore_seconds"] = round(time.monotonic() - restoring, 3)
            verifying = time.monotonic()
            fingerprinting = worker.submit(restored_fingerprints, verifier, manifest)
            run_phase(cursor, log, plan, ANALYZE)
            found = fingerprinting.result()
            timings["verify_seconds"] = round(time.monotonic() - verifying, 3)
            return found
    finally:
        target.close()
        verifier.close()


def finish(module: AnsibleModule, log: SqlLog, plan: RestorePlan, database: str) -> None:
    if not plan.phase(FINISH):
        return
    restored = connect(module, database, autocommit=True)
    try:
        with restored.cursor() as cursor:
            run_phase(cursor, log, plan, FINISH)
    finally:
        restored.close()


def failure_message(cursor, log: SqlLog, staging: str, database: str, existed: bool,
                    error: Exception) -> str:  # fmt: skip
    """Say where the data is after a failure; drop the staging copy only if it is not the
    sole copy left."""
    cursor.execute("SELECT datname FROM pg_catalog.pg_database WHERE datname IN (%s, %s)",
                   (staging, database))  # fmt: skip
    present = {row[0] for row in cursor.fetchall()}
    # Anything else is a fault of this module: name its type.
    reason = error if isinstance(error, (ToolError, psycopg2.Error, OSError)) else repr(error)
    if existed and database not in present and staging in present:
        return ("Restore failed after {0} was dropped: {1}. {2} holds the verified restore;"
                " rename it to {0}.".format(database, reason, staging))  # fmt: skip
    if staging in present:
        log.execute(cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(staging)))
    return "Restore failed, {0} was left as it was: {1}".format(database, reason)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    database = params["database"]
    started = time.monotonic()
    manifest, dump = verified_manifest(module)
    timings = dict(checksum_seconds=round(time.monotonic() - started, 3))
    tool = Tool.from_params(params)
    log = SqlLog()
    maintenance = connect(module, params["maintenance_database"], autocommit=True)
    target = database_facts(module, maintenance, database)
    extension = manifest.get("extension")
    plan = build_restore_plan(
        database,
        target,
        database_facts(module, maintenance, staging_name(database)),
        params["replace"],
        extension["version"] if extension else None,
    )
    if plan.refusals:
        module.fail_json(
            msg="Not restoring {0}: {1}; nothing was touched".format(
                manifest["id"], "; ".join(plan.refusals)
            ),
            refusals=plan.refusals,
        )
    check_extension_version(module, maintenance, manifest)
    result = dict(
        changed=True,
        backup_id=manifest["id"],
        command=restore_command(module, tool, plan.staging),
    )
    cursor = maintenance.cursor()
    if module.check_mode:
        for step in plan.steps:
            log.record(cursor, step.query, step.params)
        module.exit_json(queries=log.executed_queries, **result)
    try:
        run_phase(cursor, log, plan, PREPARE)
        found = restore_into(module, tool, plan, dump, manifest, log, timings)
        differences = differences_from(manifest, found)
        if differences:
            log.execute(
                cursor, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(quoted(plan.staging))
            )
            module.fail_json(
                msg="Restored data differs from the manifest: {0}. {1} was left as it was.".format(
                    "; ".join(differences), database
                ),
                queries=log.executed_queries,
            )
        run_phase(cursor, log, plan, SWAP)
        finish(module, log, plan, database)
    except Exception as error:  # whatever broke, the staging copy must not linger
        module.fail_json(
            msg=failure_message(cursor, log, plan.staging, database, target.exists, error),
            queries=log.executed_queries,
            exception=traceback.format_exc(),
        )
    result["verified"] = {table: fingerprint["rows"] for table, fingerprint in found.items()}
    result["timings"] = timings
    module.exit_json(queries=log.executed_queries, **result)


if __name__ == "__main__":
    main()
