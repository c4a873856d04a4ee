# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by timescaledb_init, timescaledb_backup and timescaledb_restore.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the PostgreSQL server.
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description:
      - Role the module connects as. It must be able to create databases, extensions and
        roles (a superuser such as the container's C(POSTGRES_USER)).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Never logged or returned.
    type: str
  database:
    description:
      - Database the module manages.
    type: str
    default: aicost
    aliases: [db]
  ssl_mode:
    description:
      - libpq C(sslmode) for the connection.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
requirements:
  - psycopg2 (or psycopg2-binary) on the host that runs the module.
notes:
  - Statements that change something are returned in C(queries), passwords replaced by
    C(********).
"""

    # Where the PostgreSQL client runs: timescaledb_backup and timescaledb_restore
    # (module_utils.timescaledb_dump.tool_argument_spec).
    TOOL = r"""
options:
  container:
    description:
      - Name of the database container. The PostgreSQL client (C(pg_dump) or C(pg_restore))
        runs inside it through O(docker_path) and connects over the container's local socket
        as O(login_user).
      - When omitted, the client from O(bin_dir) (or C(PATH)) connects over TCP with the
        connection options; C(pg_dump) must be at least the server's major version.
    type: str
  docker_path:
    description:
      - The docker CLI used with O(container).
    type: str
    default: docker
  bin_dir:
    description:
      - Directory holding C(pg_dump) and C(pg_restore) when O(container) is not set.
    type: path
"""
