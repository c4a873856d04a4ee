# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options, the psycopg2 connect helper and the SQL log shared by the modules."""

from __future__ import annotations

import traceback
from typing import Any

try:
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib
except ImportError:  # the backup program runs these helpers on hosts without Ansible
    AnsibleModule = None
    missing_required_lib = None

PSYCOPG2_IMPORT_ERROR: str | None
try:
    import psycopg2
    import psycopg2.extensions
    from psycopg2 import sql
except ImportError:
    psycopg2 = None
    sql = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG2_IMPORT_ERROR = None

REDACTED = "********"


def connection_argument_spec() -> dict[str, Any]:
    """Options every timescaledb_* module takes; documented in the timescaledb doc fragment."""
    return dict(
        login_host=dict(type="str", default="localhost"),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        database=dict(type="str", default="aicost", aliases=["db"]),
        ssl_mode=dict(
            type="str",
            default="prefer",
            choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        ),
        connect_timeout=dict(type="int", default=10),
    )


def require_psycopg2(module: AnsibleModule) -> None:
    if PSYCOPG2_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)


def open_connection(params: dict, database: str | None = None, autocommit: bool = False):
    """A psycopg2 connection from connection options; raises psycopg2.Error.

    The error message never carries the password: psycopg2 does not echo it, and the DSN is
    passed as keywords rather than formatted into a string.
    """
    connection = psycopg2.connect(
        host=params["login_host"],
        port=params["login_port"],
        user=params["login_user"],
        password=params["login_password"],
        dbname=database or params["database"],
        sslmode=params["ssl_mode"],
        connect_timeout=params["connect_timeout"],
        application_name="aicost.monitoring",
    )
    connection.autocommit = autocommit
    return connection


def connection_failure(params: dict, database: str | None, error: Exception) -> str:
    return "Unable to connect to database {0} on {1}:{2} as {3}: {4}".format(
        database or params["database"],
        params["login_host"],
        params["login_port"],
        params["login_user"],
        str(error).strip(),
    )


def connect(module: AnsibleModule, database: str | None = None, autocommit: bool = False):
    """Open a psycopg2 connection with the module's options; fail the module on error."""
    require_psycopg2(module)
    try:
        return open_connection(module.params, database, autocommit)
    except psycopg2.Error as error:
        module.fail_json(msg=connection_failure(module.params, database, error))


def database_exists(connection, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None


class SqlLog:
    """Executes statements and records each one, rendered, in ``executed_queries``.

    ``secret`` statements are recorded with every parameter replaced by a placeholder, so a
    password never reaches the module result or a log.
    """

    def __init__(self) -> None:
        self.executed_queries: list[str] = []

    def render(self, cursor, query, params=None, secret: bool = False) -> str:
        if params is not None and secret:
            params = (REDACTED,) * len(params)
        return cursor.mogrify(query, params).decode("utf-8")

    def record(self, cursor, query, params=None, secret: bool = False) -> None:
        self.executed_queries.append(self.render(cursor, query, params, secret))

    def execute(self, cursor, query, params=None, secret: bool = False) -> None:
        rendered = self.render(cursor, query, params, secret)
        cursor.execute(query, params)
        self.executed_queries.append(rendered)


def fetch_all(cursor, query, params=None) -> list[tuple]:
    """Read-only introspection; not recorded because it changes nothing."""
    cursor.execute(query, params)
    return cursor.fetchall()


def fetch_value(cursor, query, params=None) -> Any:
    cursor.execute(query, params)
    row = cursor.fetchone()
    return None if row is None else row[0]


def quoted(name: str):
    """A psycopg2 Identifier for a user-supplied name (role, database, table)."""
    return sql.Identifier(name)
