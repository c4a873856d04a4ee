# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare the declared schema with what the database holds and list the SQL that closes the gap.

Pure: no connection. The result is a list of steps (executed by timescaledb_init in one
transaction), the changes it refuses because they would drop or rewrite data, and the tasks
that must run outside the database when TimescaleDB cannot schedule them itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import sql
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_inspect import (
    DatabaseState,
    ServerState,
    TableState,
    ViewState,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_schema import (
    AGGREGATES,
    TABLES,
    Aggregate,
    Table,
    aggregate_select_sql,
    column_definition_sql,
    create_index_sql,
    create_table_sql,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_scram import (
    scram_verifier,
)

TIMESCALE = "timescale"
APACHE = "apache"
POSTGRESQL = "postgresql"

# The oldest TimescaleDB release init supports: the columnstore API (enable_columnstore,
# add_columnstore_policy) arrived in 2.18.
MINIMUM_TIMESCALEDB = (2, 18, 0)

RETAINED_TABLE = "llm_consumption"
# Dashboards filter and group by provider and model. The unique key (event_id, time) must be
# among the segmentby/orderby columns, or TimescaleDB warns and checks conflicts on
# compressed chunks the slow way.
COLUMNSTORE_SEGMENT_BY = ("provider", "model")
COLUMNSTORE_ORDER_BY = (("time", "DESC"), ("event_id", "ASC"))


@dataclass(frozen=True)
class RefreshPolicy:
    start_offset: str
    end_offset: str
    schedule_interval: str
    start_offset_seconds: float
    end_offset_seconds: float
    schedule_seconds: float


# Default continuous aggregate refresh windows (the module's refresh_policies option): a
# window must span at least two buckets (the server checks it); the raw data's retention must
# outlast start_offset (validated in validate_desired).
REFRESH_POLICIES = {
    "llm_consumption_hourly": RefreshPolicy("3 days", "1 hour", "30 minutes", 259200, 3600, 1800),
    "llm_consumption_daily": RefreshPolicy("35 days", "1 hour", "1 hour", 3024000, 3600, 3600),
}

# systemd OnCalendar expressions for the host timers that stand in for database jobs.
TIMER_SCHEDULES = {
    "llm_consumption_hourly": "*-*-* *:05:00",
    "llm_consumption_daily": "*-*-* *:25:00",
    "retention": "*-*-* 03:30:00",
}


@dataclass(frozen=True)
class Step:
    summary: str
    query: Any  # a psycopg2.sql.Composable or a constant SQL string
    params: tuple | None = None
    secret: bool = False


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    purpose: str
    on_calendar: str
    query: Any
    params: tuple | None = None


@dataclass
class RoleSpec:
    name: str
    password: str | None
    table_privileges: tuple[str, ...]
    view_privileges: tuple[str, ...]


@dataclass
class Desired:
    mode: str  # TIMESCALE, APACHE or POSTGRESQL
    chunk_interval: str
    chunk_interval_seconds: float
    retention: str
    retention_seconds: float
    columnstore: bool
    columnstore_after: str
    columnstore_after_seconds: float
    roles: list[RoleSpec]
    allow_destructive: bool = False
    refresh_policies: dict[str, RefreshPolicy] = field(
        default_factory=lambda: dict(REFRESH_POLICIES)
    )
    # The role init connects as, and the managed roles that already exist as superusers.
    login_user: str | None = None
    superusers: frozenset[str] = frozenset()


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scheduled: list[ScheduledTask] = field(default_factory=list)
    features: dict[str, str] = field(default_factory=dict)

    def add(self, summary: str, query: Any, params: tuple | None = None, secret: bool = False):
        self.steps.append(Step(summary, query, params, secret))

    def destructive(self, reason: str, desired: Desired, *steps: Step) -> None:
        """Record a change that loses or rewrites data: run it only when explicitly allowed."""
        if desired.allow_destructive:
            self.warnings.append("allow_destructive: " + reason)
            self.steps.extend(steps)
        else:
            self.refusals.append(reason)


def resolve_mode(server: ServerState, timescaledb: str) -> tuple[str, list[str]]:
    """Which path init takes: ``timescale``, ``apache`` or ``postgresql`` (plus warnings).

    ``timescaledb`` is the module option: ``auto``, ``required`` or ``disabled``.
    Raises ValueError when ``required`` cannot be met.
    """
    if timescaledb == "disabled":
        return POSTGRESQL, []
    if server.extension_available and server.preloaded and server.license_setting:
        return (APACHE if server.license_setting == "apache" else TIMESCALE), []
    if server.extension_available and server.preloaded:
        reason = "TimescaleDB is preloaded but its extension cannot be created"
    elif server.extension_available:
        reason = "TimescaleDB is installed but not in shared_preload_libraries"
    else:
        reason = "the TimescaleDB extension is not available on this server"
    if timescaledb == "required":
        raise ValueError(reason)
    return POSTGRESQL, [reason + "; using plain PostgreSQL tables and materialized views"]


def version_tuple(version: str) -> tuple[int, ...]:
    """'2.29.2' -> (2, 29, 2); a suffix such as '-dev' is ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def unsupported_version(version: str | None) -> str | None:
    """Why init refuses this TimescaleDB version, or None when it is supported."""
    if version is None or version_tuple(version) >= MINIMUM_TIMESCALEDB:
        return None
    return (
        "TimescaleDB {0} is older than {1}, the oldest release this module supports (it"
        " uses the columnstore API). Upgrade the image, then run ALTER EXTENSION timescaledb"
        " UPDATE in each database".format(version, ".".join(map(str, MINIMUM_TIMESCALEDB)))
    )


def validate_desired(desired: Desired) -> list[str]:
    errors = []
    for name, policy in desired.refresh_policies.items():
        if desired.retention_seconds <= policy.start_offset_seconds:
            errors.append(
                "retention ({0}) must be longer than the refresh window of {1} ({2})".format(
                    desired.retention, name, policy.start_offset
                )
            )
    if desired.chunk_interval_seconds <= 0 or desired.retention_seconds <= 0:
        errors.append("chunk_time_interval and retention must be positive intervals")
    names = [role.name for role in desired.roles]
    if len(set(names)) != len(names):
        errors.append("writer_role and reader_role must be different roles")
    for role in desired.roles:
        if role.name == desired.login_user or role.name in desired.superusers:
            errors.append(
                "{0} is a superuser: writer_role and reader_role must be roles of their own, or"
                " init would give it the app's password and run the app or Grafana as a"
                " superuser".format(role.name)
            )
    return errors


def features(mode: str, desired: Desired) -> dict[str, str]:
    """Where each feature lives: in the database, on a host timer, or nowhere (and why)."""
    if mode == TIMESCALE:
        return {
            "hypertables": "database",
            "aggregates": "continuous aggregates with refresh policies",
            "retention": "database retention policy",
            "columnstore": "database columnstore policy" if desired.columnstore else "disabled",
        }
    timer = "host timer (see scheduled_outside)"
    return {
        "hypertables": "database" if mode == APACHE else "unavailable: plain PostgreSQL",
        "aggregates": "materialized views refreshed by a " + timer,
        "retention": timer,
        "columnstore": "unavailable under the {0} license".format(mode),
    }


def build_plan(desired: Desired, state: DatabaseState) -> Plan:
    plan = Plan(features=features(desired.mode, desired))
    if desired.mode != POSTGRESQL and not state.server.extension_installed_version:
        plan.add("install the timescaledb extension", "CREATE EXTENSION IF NOT EXISTS timescaledb")
    recreated: set[str] = set()
    views = dict(state.views)
    for aggregate in AGGREGATES.values():
        source = state.tables.get(aggregate.source_table)
        view = views.get(aggregate.name)
        if desired.allow_destructive and view and source and retyped_columns(source):
            # A view pins the types of the columns it reads: drop it, recreate it after.
            plan.steps.append(drop_view_step(aggregate, view))
            del views[aggregate.name]
    for table in TABLES.values():
        current = state.tables.get(table.name)
        if current is None:
            recreated.add(table.name)
        plan_table(plan, table, current, desired)
    for aggregate in AGGREGATES.values():
        current = views.get(aggregate.name)
        if plan_aggregate(plan, aggregate, current, desired, state.server.version_num):
            recreated.add(aggregate.name)
    for role in desired.roles:
        plan_role(plan, role, state, recreated)
    if desired.mode != TIMESCALE:
        plan.scheduled.extend(scheduled_tasks(desired))
    return plan


def canonical_type(sql_type: str) -> str:
    spelled = " ".join(sql_type.lower().split()).replace(", ", ",")
    return {
        "timestamptz": "timestamp with time zone",
        "int": "integer",
        "int4": "integer",
        "int8": "bigint",
        "float8": "double precision",
        "bool": "boolean",
    }.get(spelled, spelled)


def canonical_default(default: str | None) -> str | None:
    """pg_get_expr() adds casts to literals ('chat'::text); the contract spells them bare."""
    if default is None:
        return None
    return re.sub(r"::[a-z ]+$", "", default.strip())


def _ident(name: str):
    return sql.Identifier(name)


def plan_table(plan: Plan, table: Table, current: TableState | None, desired: Desired) -> None:
    hypertable = desired.mode != POSTGRESQL and table.time_column is not None
    if current is None:
        plan.add("create table " + table.name, sql.SQL(create_table_sql(table)))
        if hypertable:
            plan.add(
                "make {0} a hypertable on {1}".format(table.name, table.time_column),
                "SELECT create_hypertable(%s, by_range(%s, %s::interval))",
                (table.name, table.time_column, desired.chunk_interval),
            )
    else:
        plan_columns(plan, table, current, desired)
        plan_constraints(plan, table, current)
        if hypertable and not current.is_hypertable:
            step = Step(
                "make {0} a hypertable on {1}".format(table.name, table.time_column),
                "SELECT create_hypertable(%s, by_range(%s, %s::interval), migrate_data => %s)",
                (table.name, table.time_column, desired.chunk_interval, current.has_rows),
            )
            if current.has_rows:
                plan.destructive(
                    "{0} holds rows: turning it into a hypertable rewrites them into chunks"
                    " (migrate_data) under an exclusive lock".format(table.name),
                    desired,
                    step,
                )
            else:
                plan.steps.append(step)
        elif hypertable and current.chunk_interval_seconds != desired.chunk_interval_seconds:
            plan.add(
                "set the chunk interval of {0} for new chunks".format(table.name),
                "SELECT set_chunk_time_interval(%s, %s::interval)",
                (table.name, desired.chunk_interval),
            )
    for index in table.indexes:
        if current is None or index.name not in current.indexes:
            plan.add("create index " + index.name, sql.SQL(create_index_sql(table, index)))
    if table.name == RETAINED_TABLE:
        if desired.mode == TIMESCALE and desired.columnstore:
            plan_columnstore(plan, table, current, desired)
        elif desired.mode == TIMESCALE and current and current.columnstore_after_seconds:
            # Chunks already in the columnstore stay there; only the policy goes.
            plan.add(
                "stop moving chunks of {0} to the columnstore".format(table.name),
                "CALL remove_columnstore_policy(%s)",
                (table.name,),
            )
        if desired.mode == TIMESCALE:
            plan_retention(plan, table, current, desired)


def retyped_columns(current: TableState) -> list[str]:
    """Columns whose type differs from the contract (changing them rewrites the table)."""
    table = TABLES[current.name]
    return [
        column.name
        for column in table.columns
        if column.name in current.columns
        and canonical_type(current.columns[column.name].sql_type) != canonical_type(column.sql_type)
    ]


def plan_columns(plan: Plan, table: Table, current: TableState, desired: Desired) -> None:
    for column in table.columns:
        existing = current.columns.get(column.name)
        alter = sql.SQL("ALTER TABLE {0} ").format(_ident(table.name))
        if existing is None:
            plan.add(
                "add column {0}.{1}".format(table.name, column.name),
                alter + sql.SQL("ADD COLUMN IF NOT EXISTS " + column_definition_sql(column)),
            )
            continue
        target = _ident(column.name)
        if canonical_type(existing.sql_type) != canonical_type(column.sql_type):
            plan.destructive(
                "column {0}.{1} is {2}, the contract says {3}: changing the type rewrites"
                " every row and may round or reject values".format(
                    table.name, column.name, existing.sql_type, column.sql_type
                ),
                desired,
                Step(
                    "change the type of {0}.{1}".format(table.name, column.name),
                    alter
                    + sql.SQL("ALTER COLUMN {0} TYPE {1} USING {0}::{1}").format(
                        target, sql.SQL(column.sql_type)
                    ),
                ),
            )
        if existing.nullable != column.nullable:
            verb = "SET NOT NULL" if not column.nullable else "DROP NOT NULL"
            plan.add(
                "{0} on {1}.{2}".format(verb.lower(), table.name, column.name),
                alter + sql.SQL("ALTER COLUMN {0} " + verb).format(target),
            )
        if canonical_default(existing.default) != canonical_default(column.default):
            if column.default is None:
                change = sql.SQL("ALTER COLUMN {0} DROP DEFAULT").format(target)
            else:
                change = sql.SQL("ALTER COLUMN {0} SET DEFAULT " + column.default).format(target)
            plan.add("set the default of {0}.{1}".format(table.name, column.name), alter + change)
    declared = {column.name for column in table.columns}
    for extra in sorted(set(current.columns) - declared):
        plan.warnings.append(
            "column {0}.{1} is not in the contract; left in place".format(table.name, extra)
        )


def plan_constraints(plan: Plan, table: Table, current: TableState) -> None:
    keys = []
    if table.primary_key:
        keys.append((table.primary_key_name, "PRIMARY KEY", table.primary_key))
    if table.unique:
        keys.append((table.unique_constraint_name, "UNIQUE", table.unique))
    for constraint_name, kind, columns in keys:
        if constraint_name in current.constraints:
            continue
        plan.add(
            "add {0} {1} to {2}".format(kind.lower(), constraint_name, table.name),
            sql.SQL("ALTER TABLE {0} ADD CONSTRAINT {1} " + kind + " ({2})").format(
                _ident(table.name),
                _ident(constraint_name),
                sql.SQL(", ").join(_ident(column) for column in columns),
            ),
        )


def columnstore_settings_sql() -> tuple[str, str]:
    """The segmentby and orderby settings as TimescaleDB spells them in ALTER TABLE."""
    segment_by = ", ".join(COLUMNSTORE_SEGMENT_BY)
    order_by = ", ".join(name + " " + direction for name, direction in COLUMNSTORE_ORDER_BY)
    return segment_by, order_by


def plan_columnstore(plan: Plan, table: Table, current: TableState | None, desired: Desired):
    segment_by, order_by = columnstore_settings_sql()
    if current is None or not current.columnstore_enabled:
        plan.add(
            "enable the columnstore on " + table.name,
            sql.SQL(
                "ALTER TABLE {0} SET (timescaledb.enable_columnstore = true,"
                " timescaledb.segmentby = {1}, timescaledb.orderby = {2})"
            ).format(_ident(table.name), sql.Literal(segment_by), sql.Literal(order_by)),
        )
    elif (current.columnstore_segment_by, current.columnstore_order_by) != (
        COLUMNSTORE_SEGMENT_BY,
        COLUMNSTORE_ORDER_BY,
    ):
        # Chunks already in the columnstore keep the settings they were compressed with.
        plan.add(
            "set the columnstore segmentby and orderby of {0} for new chunks".format(table.name),
            sql.SQL(
                "ALTER TABLE {0} SET (timescaledb.segmentby = {1}, timescaledb.orderby = {2})"
            ).format(_ident(table.name), sql.Literal(segment_by), sql.Literal(order_by)),
        )
    after = None if current is None else current.columnstore_after_seconds
    if after == desired.columnstore_after_seconds:
        return
    if after is not None:
        plan.add(
            "replace the columnstore policy of " + table.name,
            "CALL remove_columnstore_policy(%s)",
            (table.name,),
        )
    plan.add(
        "move chunks of {0} older than {1} to the columnstore".format(
            table.name, desired.columnstore_after
        ),
        "CALL add_columnstore_policy(%s, after => %s::interval)",
        (table.name, desired.columnstore_after),
    )


def plan_retention(plan: Plan, table: Table, current: TableState | None, desired: Desired):
    existing = None if current is None else current.retention_seconds
    if existing == desired.retention_seconds:
        return
    add = Step(
        "drop chunks of {0} older than {1}".format(table.name, desired.retention),
        "SELECT add_retention_policy(%s, drop_after => %s::interval)",
        (table.name, desired.retention),
    )
    if existing is None:
        plan.steps.append(add)
        return
    remove = Step(
        "replace the retention policy of " + table.name,
        "SELECT remove_retention_policy(%s)",
        (table.name,),
    )
    if desired.retention_seconds < existing:
        plan.destructive(
            "shortening the retention of {0} to {1} drops data the current policy keeps".format(
                table.name, desired.retention
            ),
            desired,
            remove,
            add,
        )
    else:
        plan.steps.extend([remove, add])


def aggregate_kind(mode: str) -> str:
    return "continuous" if mode == TIMESCALE else "materialized"


def aggregate_definition(aggregate: Aggregate, mode: str) -> str:
    return aggregate_select_sql(
        aggregate, "time_bucket" if aggregate_kind(mode) == "continuous" else "date_trunc"
    )


def definition_tag(aggregate: Aggregate, mode: str) -> str:
    """A fingerprint of kind + SELECT, stored as the view's comment to detect drift."""
    kind = aggregate_kind(mode)
    digest = hashlib.sha256((kind + "\n" + aggregate_definition(aggregate, mode)).encode())
    return "aicost.monitoring {0} aggregate, definition sha256:{1}".format(
        kind, digest.hexdigest()[:16]
    )


def plan_aggregate(
    plan: Plan,
    aggregate: Aggregate,
    current: ViewState | None,
    desired: Desired,
    server_version_num: int,
) -> bool:
    """Plan one aggregate; True when it is (re)created, so its grants start empty."""
    tag = definition_tag(aggregate, desired.mode)
    kind = aggregate_kind(desired.mode)
    nulls_not_distinct = server_version_num >= 150000
    create = create_aggregate_steps(aggregate, desired, nulls_not_distinct)
    if current is None:
        plan.steps.extend(create)
        return True
    if current.comment != tag or current.kind != kind:
        drop = drop_view_step(aggregate, current)
        plan.destructive(
            "{0} is a {1} view whose definition differs from the declared {2} aggregate:"
            " recreating it loses aggregated rows whose raw data retention already"
            " dropped".format(aggregate.name, current.kind, kind),
            desired,
            drop,
            *create,
        )
        return desired.allow_destructive
    if kind == "continuous":
        plan_refresh_policy(plan, aggregate, current, desired.refresh_policies[aggregate.name])
    elif unique_index_name(aggregate) not in current.indexes:
        plan.steps.append(unique_index_step(aggregate, nulls_not_distinct))
    return False


def drop_view_step(aggregate: Aggregate, current: ViewState) -> Step:
    return Step(
        "drop {0} to recreate it".format(aggregate.name),
        sql.SQL("DROP {0} {1}").format(
            sql.SQL("VIEW" if current.kind == "view" else "MATERIALIZED VIEW"),
            _ident(aggregate.name),
        ),
    )


def unique_index_name(aggregate: Aggregate) -> str:
    return aggregate.name + "_bucket_key"


def unique_index_step(aggregate: Aggregate, nulls_not_distinct: bool) -> Step:
    # REFRESH ... CONCURRENTLY needs a unique index; NULLS NOT DISTINCT (PostgreSQL 15+)
    # because project and customer_id may be NULL and still name one bucket.
    suffix = " NULLS NOT DISTINCT" if nulls_not_distinct else ""
    return Step(
        "create the unique index REFRESH CONCURRENTLY needs on " + aggregate.name,
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {0} ON {1} ({2})" + suffix).format(
            _ident(unique_index_name(aggregate)),
            _ident(aggregate.name),
            sql.SQL(", ").join(_ident(name) for name in ("bucket", *aggregate.group_by)),
        ),
    )


def create_aggregate_steps(
    aggregate: Aggregate, desired: Desired, nulls_not_distinct: bool
) -> list[Step]:
    name = _ident(aggregate.name)
    definition = sql.SQL(aggregate_definition(aggregate, desired.mode))
    tag = definition_tag(aggregate, desired.mode)
    if aggregate_kind(desired.mode) == "continuous":
        policy = desired.refresh_policies[aggregate.name]
        return [
            Step(
                "create continuous aggregate " + aggregate.name,
                sql.SQL(
                    "CREATE MATERIALIZED VIEW {0} WITH (timescaledb.continuous,"
                    " timescaledb.materialized_only = false) AS\n{1}\nWITH NO DATA"
                ).format(name, definition),
            ),
            Step(
                "label " + aggregate.name, sql.SQL("COMMENT ON VIEW {0} IS %s").format(name), (tag,)
            ),
            refresh_policy_step(aggregate, policy),
        ]
    return [
        Step(
            "create materialized view " + aggregate.name,
            sql.SQL("CREATE MATERIALIZED VIEW {0} AS\n{1}\nWITH DATA").format(name, definition),
        ),
        Step(
            "label " + aggregate.name,
            sql.SQL("COMMENT ON MATERIALIZED VIEW {0} IS %s").format(name),
            (tag,),
        ),
        unique_index_step(aggregate, nulls_not_distinct),
    ]


def refresh_policy_step(aggregate: Aggregate, policy: RefreshPolicy) -> Step:
    return Step(
        "refresh {0} every {1}".format(aggregate.name, policy.schedule_interval),
        "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval,"
        " end_offset => %s::interval, schedule_interval => %s::interval)",
        (aggregate.name, policy.start_offset, policy.end_offset, policy.schedule_interval),
    )


def plan_refresh_policy(
    plan: Plan, aggregate: Aggregate, current: ViewState, policy: RefreshPolicy
) -> None:
    existing = current.refresh_policy
    wanted = (policy.start_offset_seconds, policy.end_offset_seconds, policy.schedule_seconds)
    if existing is not None:
        have = (
            existing.start_offset_seconds,
            existing.end_offset_seconds,
            existing.schedule_seconds,
        )
        if have == wanted:
            return
        plan.add(
            "replace the refresh policy of " + aggregate.name,
            "SELECT remove_continuous_aggregate_policy(%s)",
            (aggregate.name,),
        )
    plan.steps.append(refresh_policy_step(aggregate, policy))


def plan_role(plan: Plan, role: RoleSpec, state: DatabaseState, recreated: set[str]) -> None:
    current = state.roles.get(role.name)
    name = _ident(role.name)
    if current is None:
        if role.password is None:
            plan.add("create role " + role.name, sql.SQL("CREATE ROLE {0} LOGIN").format(name))
        else:
            plan.add(
                "create role " + role.name,
                sql.SQL("CREATE ROLE {0} LOGIN PASSWORD %s").format(name),
                (scram_verifier(role.password),),
                secret=True,
            )
    else:
        if not current.can_login:
            plan.add("let " + role.name + " log in", sql.SQL("ALTER ROLE {0} LOGIN").format(name))
        if role.password is not None and current.password_matches is not True:
            if current.password_matches is None:
                plan.warnings.append(
                    "cannot read the password verifier of {0}; setting its password".format(
                        role.name
                    )
                )
            plan.add(
                "set the password of " + role.name,
                sql.SQL("ALTER ROLE {0} PASSWORD %s").format(name),
                (scram_verifier(role.password),),
                secret=True,
            )
    if current is None or not state.schema_usage.get(role.name, False):
        plan.add(
            "let {0} use schema {1}".format(role.name, state.schema),
            sql.SQL("GRANT USAGE ON SCHEMA {0} TO {1}").format(_ident(state.schema), name),
        )
    objects = [(table, role.table_privileges) for table in TABLES]
    objects += [(view, role.view_privileges) for view in AGGREGATES]
    for obj, wanted in objects:
        granted = set()
        if current is not None and obj not in recreated:
            granted = current.privileges.get(obj, set())
        missing = [privilege for privilege in wanted if privilege not in granted]
        if missing:
            plan.add(
                "grant {0} on {1} to {2}".format(", ".join(missing), obj, role.name),
                sql.SQL("GRANT {0} ON {1} TO {2}").format(
                    sql.SQL(", ".join(missing)), _ident(obj), name
                ),
            )


def scheduled_tasks(desired: Desired) -> list[ScheduledTask]:
    """What TimescaleDB would schedule itself, for host timers to run instead."""
    tasks = [
        ScheduledTask(
            name="refresh-" + aggregate.name.replace("_", "-"),
            purpose="refresh materialized view " + aggregate.name,
            on_calendar=TIMER_SCHEDULES[aggregate.name],
            query=sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {0}").format(
                _ident(aggregate.name)
            ),
        )
        for aggregate in AGGREGATES.values()
    ]
    table = TABLES[RETAINED_TABLE]
    if desired.mode == APACHE:
        query = sql.SQL("SELECT drop_chunks(%s, older_than => %s::interval)")
        params: tuple = (table.name, desired.retention)
    else:
        query = sql.SQL("DELETE FROM {0} WHERE {1} < now() - %s::interval").format(
            _ident(table.name), _ident(table.time_column or "time")
        )
        params = (desired.retention,)
    tasks.append(
        ScheduledTask(
            name="retention-" + table.name.replace("_", "-"),
            purpose="drop {0} rows older than {1}".format(table.name, desired.retention),
            on_calendar=TIMER_SCHEDULES["retention"],
            query=query,
            params=params,
        )
    )
    return tasks
