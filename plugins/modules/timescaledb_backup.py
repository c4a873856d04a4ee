#!/usr/bin/python
# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible convention: DOCUMENTATION, EXAMPLES and RETURN come before the imports.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_backup
short_description: Take a verified, consistent dump of the aicost database with a manifest
version_added: 0.1.0
description:
  - Runs the server's own C(pg_dump) (custom format, compressed), by default inside the
    database container with C(docker exec) so the dump tool always matches the server, and
    streams the dump to a file on the managed host.
  - Consistent. The module exports a snapshot, counts and fingerprints every table of the
    aicost database contract in that snapshot, and has C(pg_dump --snapshot) dump exactly
    that state, so the manifest describes precisely what the dump holds, even under writes.
  - Atomic. The dump is written to a hidden partial file, fsynced, renamed; the manifest
    (time, sizes, sha256, server, pg_dump and extension versions, per-table row counts and
    content fingerprints) is written last, so a backup exists only once it is complete.
    What an interrupted run left (a partial dump, a manifest being written, a dump of
    O(prefix) without its manifest) is removed by the next run and listed in RV(discarded).
  - Retention keeps the newest backup of each of the last O(keep_daily) days, of each of
    the last O(keep_weekly) ISO weeks and of each of the last O(keep_monthly) calendar months
    (UTC), and removes the other backups of the same O(prefix).
extends_documentation_fragment:
  - aicost.monitoring.timescaledb
  - aicost.monitoring.timescaledb.tool
options:
  dest:
    description:
      - Directory for the dumps and manifests; created with mode 0700 when missing.
    type: path
    required: true
  prefix:
    description:
      - Backup names are C(<prefix>-<UTC timestamp>); retention only touches this prefix.
      - 1 to 100 ASCII letters, digits, C(_), C(.) or C(-), starting with a letter or digit;
        anything else is refused before anything is written.
    type: str
    default: aicost
  compress_level:
    description:
      - C(pg_dump --compress) level for the custom format (0 to 9).
    type: int
    default: 6
  keep_daily:
    description:
      - Daily backups to keep (at least 1, so the new backup always survives).
    type: int
    default: 7
  keep_weekly:
    description:
      - Weekly backups to keep, beyond the daily ones.
    type: int
    default: 4
  keep_monthly:
    description:
      - Monthly backups to keep (the newest of each of the last calendar months that have
        backups), beyond the daily and weekly ones.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description:
      - Connects read-only, and reports the backup it would write, the command it would run
        and the backups retention would remove. Writes nothing.
  diff_mode:
    support: none
    description:
      - A dump has no before and after state to show.
seealso:
  - module: aicost.monitoring.timescaledb_restore
author:
  - aicost.monitoring maintainers (@aicost)
"""

EXAMPLES = r"""
- name: Back up the aicost database from inside its container
  aicost.monitoring.timescaledb_backup:
    container: aicost-timescaledb-1
    login_password: "{{ timescaledb_superuser_password }}"
    dest: /var/backups/aicost
    keep_daily: 7
    keep_weekly: 4
  register: backup

- name: Back up with a local pg_dump instead
  aicost.monitoring.timescaledb_backup:
    login_host: db.example.internal
    login_password: "{{ timescaledb_superuser_password }}"
    bin_dir: /usr/lib/postgresql/17/bin
    dest: /var/backups/aicost
"""

RETURN = r"""
backup_id:
  description: Name of the backup.
  returned: always
  type: str
  sample: aicost-20261128T031500Z
dump_path:
  description: The dump file.
  returned: always
  type: str
  sample: /var/backups/aicost/aicost-20261128T031500Z.dump
manifest_path:
  description: The manifest, written after the dump; pass it to timescaledb_restore.
  returned: always
  type: str
manifest:
  description: The manifest's content.
  returned: success and not check mode
  type: dict
  contains:
    sha256:
      description: Checksum of the dump file.
      type: str
    dump_bytes:
      description: Size of the dump file.
      type: int
    tables:
      description: Per table, C(rows) and C(content_sha256) in the dumped snapshot.
      type: dict
    server_version:
      description: PostgreSQL server version.
      type: str
    duration_seconds:
      description: Time from the snapshot to the dump on disk.
      type: float
    fingerprint_seconds:
      description: Part of it spent counting and fingerprinting the tables.
      type: float
    fingerprint:
      description: How rows were fingerprinted (V(hash_record_extended) or V(md5_text)).
      type: str
    pg_dump_version:
      description: C(pg_dump --version) of the tool that wrote the dump.
      type: str
    extension:
      description: C(name), C(version) and C(license) of TimescaleDB, or null.
      type: dict
command:
  description: The dump command (it never carries the password).
  returned: always
  type: list
  elements: str
pruned:
  description: Backups removed (or, in check mode, that would be removed) by retention.
  returned: always
  type: list
  elements: str
discarded:
  description:
    - Files of interrupted runs removed (or, in check mode, that would be removed) from
      O(dest) before the backup.
  returned: always
  type: list
  elements: str
  sample: [aicost-20261127T031500Z.dump]
"""

import datetime
import fcntl
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_backup_run import (
    BackupFailed,
    discard_interrupted,
    dump_arguments,
    dump_database,
    prune,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    connect,
    connection_argument_spec,
    require_psycopg2,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_dump import (
    Tool,
    tool_argument_spec,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    DUMP_SUFFIX,
    MANIFEST_SUFFIX,
    StoredBackup,
    backup_id,
    prefix_problem,
)


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(tool_argument_spec())
    spec.update(
        dest=dict(type="path", required=True),
        prefix=dict(type="str", default="aicost"),
        compress_level=dict(type="int", default=6),
        keep_daily=dict(type="int", default=7),
        keep_weekly=dict(type="int", default=4),
        keep_monthly=dict(type="int", default=0),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_psycopg2(module)
    params = module.params
    problem = prefix_problem(params["prefix"])
    if problem:
        module.fail_json(msg=problem)
    if params["keep_daily"] < 1 or params["keep_weekly"] < 0 or params["keep_monthly"] < 0:
        module.fail_json(
            msg="keep_daily must be at least 1, keep_weekly and keep_monthly at least 0"
        )
    if not 0 <= params["compress_level"] <= 9:
        module.fail_json(msg="compress_level must be between 0 and 9")
    tool = Tool.from_params(params)
    dest = params["dest"]
    now = datetime.datetime.now(datetime.timezone.utc)
    identifier = backup_id(params["prefix"], now)
    display = tool.command(
        "pg_dump",
        params,
        params["database"],
        *dump_arguments(params["compress_level"]),
        "--snapshot=<exported>",
    )
    result = dict(
        changed=True,
        backup_id=identifier,
        dump_path=os.path.join(dest, identifier + DUMP_SUFFIX),
        manifest_path=os.path.join(dest, identifier + MANIFEST_SUFFIX),
        command=display,
    )
    if module.check_mode:
        connect(module).close()  # the database must be reachable for a real run
        pending = StoredBackup(identifier, now)
        result["discarded"] = discard_interrupted(dest, params["prefix"], True)
        result["pruned"] = prune(
            dest, params["prefix"], params["keep_daily"], params["keep_weekly"], True, pending,
            params["keep_monthly"],
        )  # fmt: skip
        module.exit_json(**result)
    os.makedirs(dest, mode=0o700, exist_ok=True)
    with open(os.path.join(dest, ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            module.fail_json(msg="Another backup is running in {0}".format(dest))
        result["discarded"] = discard_interrupted(dest, params["prefix"], False)
        try:
            result["manifest"] = dump_database(params, tool, identifier)
        except BackupFailed as error:
            module.fail_json(msg="Backup failed, nothing was kept: {0}".format(error))
        result["pruned"] = prune(
            dest, params["prefix"], params["keep_daily"], params["keep_weekly"], False, None,
            params["keep_monthly"],
        )  # fmt: skip
    module.exit_json(**result)


if __name__ == "__main__":
    main()
