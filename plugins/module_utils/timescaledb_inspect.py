# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a database holds today: the server, the extension, tables, views, jobs, roles.

Only SELECTs here; nothing is recorded in the SQL log because nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    fetch_all,
    fetch_value,
    psycopg2,
    quoted,
    sql,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_schema import (
    AGGREGATES,
    TABLES,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_scram import (
    scram_matches,
)


@dataclass
class ServerState:
    version_num: int
    version: str
    extension_available: bool
    extension_default_version: str | None
    extension_installed_version: str | None
    preloaded: bool  # timescaledb is in shared_preload_libraries
    # timescaledb.license ("timescale" or "apache"); None without a usable extension.
    license_setting: str | None


@dataclass
class ColumnState:
    name: str
    sql_type: str  # format_type() spelling, e.g. "timestamp with time zone"
    nullable: bool
    default: str | None  # pg_get_expr() spelling, e.g. "'chat'::text"


@dataclass
class TableState:
    name: str
    schema: str
    columns: dict[str, ColumnState]
    constraints: set[str]
    indexes: set[str]
    has_rows: bool
    is_hypertable: bool = False
    chunk_interval_seconds: float | None = None
    columnstore_enabled: bool = False
    retention_seconds: float | None = None
    columnstore_after_seconds: float | None = None
    columnstore_segment_by: tuple[str, ...] = ()
    columnstore_order_by: tuple[tuple[str, str], ...] = ()  # (column, "ASC" or "DESC")


@dataclass
class RefreshPolicyState:
    start_offset_seconds: float | None
    end_offset_seconds: float | None
    schedule_seconds: float | None


@dataclass
class ViewState:
    name: str
    kind: str  # "continuous", "materialized" or "view"
    comment: str | None
    indexes: set[str]
    refresh_policy: RefreshPolicyState | None = None


@dataclass
class RoleState:
    name: str
    can_login: bool
    # True/False when the stored SCRAM verifier could be checked, None when it could not.
    password_matches: bool | None
    privileges: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class DatabaseState:
    server: ServerState
    database_exists: bool
    schema: str = "public"  # where unqualified names land: current_schema()
    tables: dict[str, TableState] = field(default_factory=dict)
    views: dict[str, ViewState] = field(default_factory=dict)
    roles: dict[str, RoleState] = field(default_factory=dict)
    schema_usage: dict[str, bool] = field(default_factory=dict)


def read_server(cursor) -> ServerState:
    """Server facts; on an autocommit connection (the license probe opens its own transaction)."""
    version_num, version, preloaded = fetch_all(
        cursor,
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'),"
        " 'timescaledb' = ANY(string_to_array("
        "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))",
    )[0]
    available = fetch_all(
        cursor,
        "SELECT default_version, installed_version FROM pg_catalog.pg_available_extensions"
        " WHERE name = 'timescaledb'",
    )
    default_version, installed_version = available[0] if available else (None, None)
    return ServerState(
        version_num=version_num,
        version=version,
        extension_available=bool(available),
        extension_default_version=default_version,
        extension_installed_version=installed_version,
        preloaded=preloaded,
        license_setting=probe_license(cursor) if available and preloaded else None,
    )


def probe_license(cursor) -> str | None:
    """timescaledb.license exists only once the extension is loaded in the session's database:
    create it in a transaction that is always rolled back, read the setting, and leave."""
    cursor.execute("BEGIN")
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return fetch_value(cursor, "SELECT current_setting('timescaledb.license', true)")
    except psycopg2.Error:
        return None
    finally:
        cursor.execute("ROLLBACK")


def interval_seconds(cursor, interval: str) -> float:
    """Let the server parse an interval the user wrote, so '2 years' and '730 days' compare."""
    return float(fetch_value(cursor, "SELECT EXTRACT(EPOCH FROM %s::interval)", (interval,)))


def read_database(cursor, server: ServerState, roles: dict[str, str | None]) -> DatabaseState:
    """Everything init compares against; call it connected to the target database.

    ``roles`` maps each managed role to the password it should have (None: not managed).
    """
    timescaledb_installed = (
        fetch_value(cursor, "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb'")
        is not None
    )
    server.extension_installed_version = fetch_value(
        cursor, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'timescaledb'"
    )
    state = DatabaseState(
        server=server, database_exists=True, schema=fetch_value(cursor, "SELECT current_schema()")
    )
    for name in TABLES:
        table = read_table(cursor, name, timescaledb_installed)
        if table is not None:
            state.tables[name] = table
    for name in AGGREGATES:
        view = read_view(cursor, name, timescaledb_installed)
        if view is not None:
            state.views[name] = view
    read_roles(cursor, state, roles, list(state.tables) + list(state.views))
    return state


def read_roles(cursor, state: DatabaseState, roles: dict[str, str | None], objects) -> None:
    """The managed roles (cluster-wide) and what they may do on ``objects`` and the schema.

    Also used connected to the maintenance database, to plan for a database that does not
    exist yet: its roles may well exist already."""
    for role, password in roles.items():
        role_state = read_role(cursor, role, password, objects)
        if role_state is not None:
            state.roles[role] = role_state
            state.schema_usage[role] = bool(
                fetch_value(
                    cursor,
                    "SELECT has_schema_privilege(%s, current_schema(), 'USAGE')",
                    (role,),
                )
            )


def _relation(cursor, name: str):
    rows = fetch_all(
        cursor,
        "SELECT c.oid, n.nspname, c.relkind, obj_description(c.oid, 'pg_class')"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass(%s)",
        (sql.Identifier(name).as_string(cursor),),
    )
    return rows[0] if rows else None


def _indexes(cursor, oid: int) -> set[str]:
    rows = fetch_all(
        cursor,
        "SELECT c.relname FROM pg_catalog.pg_index i"
        " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s",
        (oid,),
    )
    return {row[0] for row in rows}


def read_table(cursor, name: str, timescaledb_installed: bool) -> TableState | None:
    relation = _relation(cursor, name)
    if relation is None:
        return None
    oid, schema, _relkind, _comment = relation
    columns = {
        row[0]: ColumnState(name=row[0], sql_type=row[1], nullable=row[2], default=row[3])
        for row in fetch_all(
            cursor,
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d"
            " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
    }
    constraints = {
        row[0]
        for row in fetch_all(
            cursor, "SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = %s", (oid,)
        )
    }
    has_rows = bool(
        fetch_value(
            cursor,
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {0}.{1})").format(quoted(schema), quoted(name)),
        )
    )
    table = TableState(
        name=name,
        schema=schema,
        columns=columns,
        constraints=constraints,
        indexes=_indexes(cursor, oid),
        has_rows=has_rows,
    )
    if timescaledb_installed:
        _read_hypertable(cursor, table)
    return table


def _read_hypertable(cursor, table: TableState) -> None:
    rows = fetch_all(
        cursor,
        "SELECT h.compression_enabled, EXTRACT(EPOCH FROM d.time_interval)"
        " FROM timescaledb_information.hypertables h"
        " LEFT JOIN timescaledb_information.dimensions d"
        " ON d.hypertable_schema = h.hypertable_schema AND d.hypertable_name = h.hypertable_name"
        " AND d.dimension_number = 1"
        " WHERE h.hypertable_schema = %s AND h.hypertable_name = %s",
        (table.schema, table.name),
    )
    if not rows:
        return
    table.is_hypertable = True
    table.columnstore_enabled = bool(rows[0][0])
    table.chunk_interval_seconds = None if rows[0][1] is None else float(rows[0][1])
    for proc_name, drop_after, compress_after in fetch_all(
        cursor,
        "SELECT proc_name,"
        " EXTRACT(EPOCH FROM (config->>'drop_after')::interval),"
        " EXTRACT(EPOCH FROM (config->>'compress_after')::interval)"
        " FROM timescaledb_information.jobs"
        " WHERE hypertable_schema = %s AND hypertable_name = %s",
        (table.schema, table.name),
    ):
        if proc_name == "policy_retention":
            table.retention_seconds = float(drop_after)
        elif proc_name in ("policy_compression", "policy_columnstore"):
            table.columnstore_after_seconds = float(compress_after)
    if table.columnstore_enabled:
        _read_columnstore_settings(cursor, table)


def _read_columnstore_settings(cursor, table: TableState) -> None:
    rows = fetch_all(
        cursor,
        "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
        " FROM timescaledb_information.compression_settings"
        " WHERE hypertable_schema = %s AND hypertable_name = %s"
        " ORDER BY segmentby_column_index, orderby_column_index",
        (table.schema, table.name),
    )
    table.columnstore_segment_by = tuple(row[0] for row in rows if row[1] is not None)
    table.columnstore_order_by = tuple(
        (row[0], "ASC" if row[3] else "DESC") for row in rows if row[2] is not None
    )


def read_view(cursor, name: str, timescaledb_installed: bool) -> ViewState | None:
    relation = _relation(cursor, name)
    if relation is None:
        return None
    oid, schema, relkind, comment = relation
    kind = {"m": "materialized", "v": "view"}.get(relkind, relkind)
    view = ViewState(name=name, kind=kind, comment=comment, indexes=_indexes(cursor, oid))
    if timescaledb_installed:
        rows = fetch_all(
            cursor,
            "SELECT materialization_hypertable_schema, materialization_hypertable_name"
            " FROM timescaledb_information.continuous_aggregates"
            " WHERE view_schema = %s AND view_name = %s",
            (schema, name),
        )
        if rows:
            view.kind = "continuous"
            view.refresh_policy = _read_refresh_policy(cursor, (schema, name), rows[0])
    return view


def _read_refresh_policy(cursor, view, materialization) -> RefreshPolicyState | None:
    """The refresh job of a continuous aggregate. timescaledb_information.jobs names it by the
    aggregate's view since TimescaleDB 2.20, by its materialization hypertable before."""
    rows = fetch_all(
        cursor,
        "SELECT EXTRACT(EPOCH FROM (config->>'start_offset')::interval),"
        " EXTRACT(EPOCH FROM (config->>'end_offset')::interval),"
        " EXTRACT(EPOCH FROM schedule_interval)"
        " FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        " AND (hypertable_schema, hypertable_name) IN ((%s, %s), (%s, %s))",
        (*view, *materialization),
    )
    if not rows:
        return None
    start, end, schedule = (None if value is None else float(value) for value in rows[0])
    return RefreshPolicyState(start, end, schedule)


def superusers(cursor, names: list[str]) -> list[str]:
    """Which of ``names`` are existing superuser roles (pg_roles is readable by anyone)."""
    rows = fetch_all(
        cursor,
        "SELECT rolname FROM pg_catalog.pg_roles WHERE rolsuper AND rolname = ANY(%s)",
        (names,),
    )
    return sorted(row[0] for row in rows)


def read_role(cursor, name: str, password: str | None, objects: list[str]) -> RoleState | None:
    cursor.execute("SAVEPOINT aicost_read_role")
    try:
        rows = fetch_all(
            cursor,
            "SELECT rolcanlogin, rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s",
            (name,),
        )
        cursor.execute("RELEASE SAVEPOINT aicost_read_role")
    except psycopg2.Error:  # not a superuser: pg_authid is unreadable, the verifier unknown
        cursor.execute("ROLLBACK TO SAVEPOINT aicost_read_role")
        rows = [
            (row[0], None)
            for row in fetch_all(
                cursor, "SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s", (name,)
            )
        ]
    if not rows:
        return None
    can_login, verifier = rows[0]
    matches = None if password is None else scram_matches(verifier, password)
    role = RoleState(name=name, can_login=can_login, password_matches=matches)
    for obj in objects:
        granted = set()
        for privilege in ("SELECT", "INSERT", "UPDATE"):
            if fetch_value(
                cursor,
                "SELECT has_table_privilege(%s, to_regclass(%s), %s)",
                (name, sql.Identifier(obj).as_string(cursor), privilege),
            ):
                granted.add(privilege)
        role.privileges[obj] = granted
    return role
