#!/usr/bin/python
# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_init
short_description: Bring the aicost database to its declared schema, policies and roles
version_added: 0.1.0
description:
  - Creates the database, the C(timescaledb) extension, the usage tables of the aicost
    database contract (C(llm_consumption), C(llm_provider_usage), C(llm_collector_state)),
    hypertables, indexes, the hourly and daily usage aggregates, a retention policy, a
    columnstore policy, a writer role for the app and a read-only role for Grafana.
  - Declarative and idempotent. It reads the database first and runs only the statements
    that close the gap, all in one transaction, so C(changed) is true only when something
    was created or altered.
  - With the C(timescale) license, aggregates are continuous aggregates with refresh
    policies, and retention and columnstore are database policies. With Debian's
    Apache-only TimescaleDB or with plain PostgreSQL it does not fail; aggregates become
    plain materialized views and RV(scheduled_outside) lists what must run on a host timer
    (view refreshes, dropping old rows).
  - Supports TimescaleDB 2.18 and newer (tested on 2.19 with the Apache license and 2.29
    with the timescale license) and plain PostgreSQL; an older extension is refused with a
    message saying how to update it.
  - Schema evolution is additive. A change that would drop or rewrite data (a column type
    change, turning a table that holds rows into a hypertable, recreating an aggregate whose
    definition changed, shortening retention) is refused with a message naming it, unless
    O(allow_destructive=true).
extends_documentation_fragment:
  - aicost.monitoring.timescaledb
options:
  maintenance_database:
    description:
      - Database to connect to for creating O(database) and reading server facts.
    type: str
    default: postgres
  create_database:
    description:
      - Create O(database) when it does not exist. When false, a missing database fails.
    type: bool
    default: true
  timescaledb:
    description:
      - V(auto) uses TimescaleDB when the server can load it, plain PostgreSQL otherwise.
      - V(required) fails when TimescaleDB is not available and preloaded.
      - V(disabled) uses plain PostgreSQL tables even when TimescaleDB is available.
    type: str
    default: auto
    choices: [auto, required, disabled]
  chunk_time_interval:
    description:
      - Chunk interval of the hypertables (a PostgreSQL interval). A change applies to new
        chunks only.
    type: str
    default: 7 days
  retention:
    description:
      - Usage rows (C(llm_consumption)) older than this are dropped, by a TimescaleDB
        retention policy or, without one, by a host timer listed in RV(scheduled_outside).
      - Must be longer than every aggregate's refresh window (35 days).
    type: str
    default: 730 days
  columnstore:
    description:
      - Enable the columnstore (compression) on C(llm_consumption) and add a columnstore
        policy. Only under the C(timescale) license; ignored otherwise.
    type: bool
    default: true
  columnstore_after:
    description:
      - Age after which chunks move to the columnstore.
    type: str
    default: 7 days
  refresh_policies:
    description:
      - Refresh window and schedule of each continuous aggregate (C(timescale) license only;
        without it the host timers refresh whole materialized views).
      - A window (O(refresh_policies.llm_consumption_hourly.start_offset) minus its
        C(end_offset)) must cover at least two buckets, and O(retention) must be longer than
        every C(start_offset).
    type: dict
    suboptions:
      llm_consumption_hourly:
        description: The hourly aggregate's refresh policy.
        type: dict
        suboptions: &refresh_policy
          start_offset:
            description: Oldest bucket each refresh recomputes, as an age (a PostgreSQL interval).
            type: str
          end_offset:
            description: Newest bucket each refresh recomputes, as an age.
            type: str
          schedule_interval:
            description: How often the refresh job runs.
            type: str
        default: {start_offset: 3 days, end_offset: 1 hour, schedule_interval: 30 minutes}
      llm_consumption_daily:
        description: The daily aggregate's refresh policy.
        type: dict
        suboptions: *refresh_policy
        default: {start_offset: 35 days, end_offset: 1 hour, schedule_interval: 1 hour}
  writer_role:
    description:
      - Role of the app. Gets C(SELECT), C(INSERT), C(UPDATE) on the three tables.
      - Must not be O(login_user) or any other superuser; such a role is refused.
    type: str
    default: aicost_writer
  writer_password:
    description:
      - Password of O(writer_role). When omitted, the role's password is left unmanaged.
      - Sent to the server as a SCRAM-SHA-256 verifier computed by the module, never in
        plaintext, so a rejected statement cannot leave the password in the server log.
    type: str
  reader_role:
    description:
      - Read-only role for Grafana. Gets C(SELECT) on the tables and the aggregates.
      - Must not be O(login_user) or any other superuser; such a role is refused.
    type: str
    default: aicost_reader
  reader_password:
    description:
      - Password of O(reader_role). When omitted, the role's password is left unmanaged.
      - Sent as a SCRAM-SHA-256 verifier, like O(writer_password).
    type: str
  allow_destructive:
    description:
      - Run changes that drop or rewrite data instead of refusing them.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Reads the database, then runs the planned statements inside a transaction that is
        rolled back, so the SQL is validated by the server and nothing persists. When the
        database does not exist yet, nothing is executed and the plan is returned as is.
  diff_mode:
    support: full
    description:
      - The diff shows the SQL that was run (or would run), one statement per change.
seealso:
  - module: aicost.monitoring.timescaledb_backup
  - module: aicost.monitoring.timescaledb_restore
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: Bring the aicost database to its declared state
  aicost.monitoring.timescaledb_init:
    login_host: 127.0.0.1
    login_password: "{{ timescaledb_superuser_password }}"
    writer_password: "{{ cost_monitor_db_password }}"
    reader_password: "{{ grafana_db_password }}"
  register: timescaledb_schema

- name: Show what has to be scheduled on the host
  ansible.builtin.debug:
    var: timescaledb_schema.scheduled_outside

- name: Accept a column type change that rewrites the table
  aicost.monitoring.timescaledb_init:
    login_password: "{{ timescaledb_superuser_password }}"
    allow_destructive: true
"""

RETURN = r"""
queries:
  description: Statements run (in check mode, run and rolled back, or planned), in order.
  returned: always
  type: list
  elements: str
  sample:
    - CREATE EXTENSION IF NOT EXISTS timescaledb
    - SELECT create_hypertable('llm_consumption', by_range('time', '7 days'::interval))
license:
  description: The path taken, V(timescale), V(apache) (Apache-only TimescaleDB) or V(postgresql).
  returned: always
  type: str
  sample: apache
server_version:
  description: PostgreSQL server version.
  returned: always
  type: str
  sample: "17.6"
extension_version:
  description: Installed TimescaleDB version, or null without TimescaleDB.
  returned: always
  type: str
  sample: 2.19.3
features:
  description: Where each feature lives on this server.
  returned: always
  type: dict
  contains:
    hypertables:
      description: V(database) or why not.
      type: str
    aggregates:
      description: Continuous aggregates, or materialized views refreshed by a host timer.
      type: str
    retention:
      description: A database retention policy, or a host timer.
      type: str
    columnstore:
      description: A database columnstore policy, V(disabled), or why it is unavailable.
      type: str
scheduled_outside:
  description: Work the database cannot schedule itself; run each query on a timer.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Short unit-friendly name.
      type: str
      sample: refresh-llm-consumption-hourly
    purpose:
      description: What it does.
      type: str
    on_calendar:
      description: A systemd OnCalendar expression.
      type: str
      sample: "*-*-* *:05:00"
    sql:
      description: The statement to run in O(database).
      type: str
      sample: REFRESH MATERIALIZED VIEW CONCURRENTLY "llm_consumption_hourly"
notices:
  description:
    - What the server said while the planned statements ran (warnings and notices, e.g. a
      columnstore setting it advises against). Warnings are also shown as Ansible warnings.
  returned: always
  type: list
  elements: str
  sample: []
refusals:
  description: Destructive changes that were refused (the module fails when there are any).
  returned: failure
  type: list
  elements: str
"""

import dataclasses

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    SqlLog,
    connect,
    connection_argument_spec,
    database_exists,
    fetch_value,
    psycopg2,
    quoted,
    sql,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_inspect import (
    DatabaseState,
    interval_seconds,
    read_database,
    read_roles,
    read_server,
    superusers,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_plan import (
    REFRESH_POLICIES,
    Desired,
    Plan,
    RefreshPolicy,
    RoleSpec,
    build_plan,
    resolve_mode,
    unsupported_version,
    validate_desired,
)

LOCK_TIMEOUT = "10s"


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        maintenance_database=dict(type="str", default="postgres"),
        create_database=dict(type="bool", default=True),
        timescaledb=dict(type="str", default="auto", choices=["auto", "required", "disabled"]),
        chunk_time_interval=dict(type="str", default="7 days"),
        retention=dict(type="str", default="730 days"),
        columnstore=dict(type="bool", default=True),
        columnstore_after=dict(type="str", default="7 days"),
        refresh_policies=dict(
            type="dict",
            apply_defaults=True,
            options={
                name: dict(
                    type="dict",
                    options=dict(
                        start_offset=dict(type="str"),
                        end_offset=dict(type="str"),
                        schedule_interval=dict(type="str"),
                    ),
                    default=dict(
                        start_offset=policy.start_offset,
                        end_offset=policy.end_offset,
                        schedule_interval=policy.schedule_interval,
                    ),
                )
                for name, policy in REFRESH_POLICIES.items()
            },
        ),
        writer_role=dict(type="str", default="aicost_writer"),
        writer_password=dict(type="str", no_log=True),
        reader_role=dict(type="str", default="aicost_reader"),
        reader_password=dict(type="str", no_log=True),
        allow_destructive=dict(type="bool", default=False),
    )
    return spec


def refresh_policies(module: AnsibleModule, cursor) -> dict[str, RefreshPolicy]:
    policies = {}
    for name, given in module.params["refresh_policies"].items():
        # An entry given in part keeps the defaults of the keys it leaves out.
        default = REFRESH_POLICIES[name]
        offsets = {
            key: given.get(key) or getattr(default, key)
            for key in ("start_offset", "end_offset", "schedule_interval")
        }
        policies[name] = RefreshPolicy(
            start_offset_seconds=interval_seconds(cursor, offsets["start_offset"]),
            end_offset_seconds=interval_seconds(cursor, offsets["end_offset"]),
            schedule_seconds=interval_seconds(cursor, offsets["schedule_interval"]),
            **offsets,
        )
    return policies


def desired_state(module: AnsibleModule, cursor, mode: str) -> Desired:
    params = module.params
    try:
        seconds = {
            option: interval_seconds(cursor, params[option])
            for option in ("chunk_time_interval", "retention", "columnstore_after")
        }
        policies = refresh_policies(module, cursor)
    except psycopg2.Error as error:
        module.fail_json(msg="Invalid interval: {0}".format(str(error).strip()))
    return Desired(
        mode=mode,
        chunk_interval=params["chunk_time_interval"],
        chunk_interval_seconds=seconds["chunk_time_interval"],
        retention=params["retention"],
        retention_seconds=seconds["retention"],
        columnstore=params["columnstore"],
        columnstore_after=params["columnstore_after"],
        columnstore_after_seconds=seconds["columnstore_after"],
        roles=[
            RoleSpec(
                params["writer_role"],
                params["writer_password"],
                ("SELECT", "INSERT", "UPDATE"),
                ("SELECT",),
            ),
            RoleSpec(params["reader_role"], params["reader_password"], ("SELECT",), ("SELECT",)),
        ],
        allow_destructive=params["allow_destructive"],
        refresh_policies=policies,
        login_user=params["login_user"],
        superusers=frozenset(superusers(cursor, [params["writer_role"], params["reader_role"]])),
    )


def run_plan(module: AnsibleModule, connection, plan: Plan, log: SqlLog) -> list[str]:
    """Execute every step in one transaction: committed, or rolled back in check mode.

    Returns what the server said meanwhile (its warnings and notices)."""
    del connection.notices[:]
    with connection.cursor() as cursor:
        try:
            for step in plan.steps:
                log.execute(cursor, step.query, step.params, step.secret)
        except psycopg2.Error as error:
            connection.rollback()
            module.fail_json(
                msg="Statement failed, nothing was changed: {0}".format(str(error).strip()),
                queries=log.executed_queries,
                notices=server_notices(connection),
            )
    if module.check_mode:
        connection.rollback()
    else:
        connection.commit()
    return server_notices(connection)


def server_notices(connection) -> list[str]:
    return [" ".join(notice.split()) for notice in connection.notices]


def refuse_unsupported(module: AnsibleModule, version: str | None) -> None:
    reason = unsupported_version(version)
    if reason:
        module.fail_json(msg=reason)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    log = SqlLog()
    maintenance = connect(module, params["maintenance_database"], autocommit=True)
    with maintenance.cursor() as cursor:
        server = read_server(cursor)
        refuse_unsupported(module, server.extension_default_version)
        try:
            mode, warnings = resolve_mode(server, params["timescaledb"])
        except ValueError as error:
            module.fail_json(msg="timescaledb=required: {0}".format(error))
        desired = desired_state(module, cursor, mode)
        errors = validate_desired(desired)
        if errors:
            module.fail_json(msg="; ".join(errors))
        exists = database_exists(maintenance, params["database"])
        if not exists:
            if not params["create_database"]:
                module.fail_json(msg="Database {0} does not exist".format(params["database"]))
            create = sql.SQL("CREATE DATABASE {0}").format(quoted(params["database"]))
            if module.check_mode:
                log.record(cursor, create)
            else:
                log.execute(cursor, create)
    roles = {role.name: role.password for role in desired.roles}
    if exists or not module.check_mode:
        connection = connect(module, params["database"])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (LOCK_TIMEOUT,))
            state = read_database(cursor, server, roles)
        refuse_unsupported(module, server.extension_installed_version)
        plan = build_plan(desired, state)
        if plan.refusals:
            connection.rollback()
            module.fail_json(
                msg="Refusing changes that would drop or rewrite data: {0}. Set"
                " allow_destructive=true to apply them.".format("; ".join(plan.refusals)),
                refusals=plan.refusals,
            )
        notices = run_plan(module, connection, plan, log)
        render_with = connection
    else:
        fresh = DatabaseState(
            server=dataclasses.replace(server, extension_installed_version=None),
            database_exists=False,
        )
        # Roles are cluster-wide: read them in a transaction of the maintenance database.
        with connect(module, params["maintenance_database"]).cursor() as cursor:
            read_roles(cursor, fresh, roles, objects=[])
        plan = build_plan(desired, fresh)
        with maintenance.cursor() as cursor:
            for step in plan.steps:
                log.record(cursor, step.query, step.params, step.secret)
        render_with = maintenance
        notices = []
    server_warnings = [notice for notice in notices if notice.startswith("WARNING")]
    for warning in warnings + plan.warnings + server_warnings:
        module.warn(warning)
    with render_with.cursor() as cursor:
        scheduled = [
            dict(
                name=task.name,
                purpose=task.purpose,
                on_calendar=task.on_calendar,
                sql=cursor.mogrify(task.query, task.params).decode("utf-8"),
            )
            for task in plan.scheduled
        ]
        extension_version = fetch_value(
            cursor, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'timescaledb'"
        )
    result = dict(
        changed=bool(log.executed_queries),
        queries=log.executed_queries,
        license=mode,
        server_version=server.version,
        extension_version=extension_version,
        features=plan.features,
        scheduled_outside=scheduled,
        notices=notices,
    )
    if module._diff:
        result["diff"] = dict(before="", after="".join(q + ";\n" for q in log.executed_queries))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
