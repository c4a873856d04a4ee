# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What timescaledb_restore does, as one plan: the real run executes it, check mode reports it.

Pure: no connection. The module reads the facts (which databases exist, whether they hold
tables), and this module decides what is refused and which statements run, in which database
and in which phase around pg_restore.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import sql

# PostgreSQL cuts identifiers at NAMEDATALEN - 1 bytes.
MAX_NAME_BYTES = 63
STAGING_SUFFIX = "_restoring"

# Phases, in order, and the database their statements run in.
PREPARE = "prepare"  # maintenance database, before the staging database exists
LOAD = "load"  # staging, before pg_restore
ANALYZE = "analyze"  # staging, after pg_restore, while the content is fingerprinted
SWAP = "swap"  # maintenance database
FINISH = "finish"  # the restored target
PHASES = (PREPARE, LOAD, ANALYZE, SWAP, FINISH)


def staging_name(database: str) -> str:
    """``<database>_restoring``; a name too long for that keeps the suffix whole and gets a
    digest of the full name, so two long names never share a staging database."""
    name = database + STAGING_SUFFIX
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:12]
    room = MAX_NAME_BYTES - len(STAGING_SUFFIX) - len(digest) - 1
    head = database.encode("utf-8")[:room].decode("utf-8", "ignore")
    return "{0}_{1}{2}".format(head, digest, STAGING_SUFFIX)


@dataclass(frozen=True)
class DatabaseFacts:
    exists: bool
    holds_tables: bool


@dataclass(frozen=True)
class RestoreStep:
    phase: str
    query: Any  # a psycopg2.sql.Composable or a constant SQL string
    params: tuple | None = None
    # A database no other session may use while the step runs: their sessions are ended and
    # the step retried (TimescaleDB's scheduler may look into a fresh database).
    exclusive: str | None = None


@dataclass
class RestorePlan:
    staging: str
    steps: list[RestoreStep] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def phase(self, name: str) -> list[RestoreStep]:
        return [step for step in self.steps if step.phase == name]


def build_restore_plan(database: str, target: DatabaseFacts, staging: DatabaseFacts,
                       replace: bool, extension_version: str | None) -> RestorePlan:  # fmt: skip
    plan = RestorePlan(staging=staging_name(database))
    target_id, staging_id = sql.Identifier(database), sql.Identifier(plan.staging)
    if target.holds_tables and not replace:
        plan.refusals.append(
            "Database {0} already holds tables; set replace=true to drop it".format(database)
        )
    if staging.holds_tables and not replace:
        plan.refusals.append(
            "Database {0} already exists and holds tables (a restore that failed after {1}"
            " was dropped leaves its verified copy there): rename or drop it, or set"
            " replace=true to drop it".format(plan.staging, database)
        )
    if staging.exists:
        plan.steps.append(
            RestoreStep(PREPARE, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(staging_id))
        )
    plan.steps.append(RestoreStep(PREPARE, sql.SQL("CREATE DATABASE {0}").format(staging_id)))
    if extension_version:
        plan.steps += [
            RestoreStep(LOAD, "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION %s",
                        (extension_version,)),
            RestoreStep(LOAD, "SELECT timescaledb_pre_restore()"),
        ]  # fmt: skip
    plan.steps.append(RestoreStep(ANALYZE, "ANALYZE"))
    if target.exists:
        plan.steps.append(
            RestoreStep(SWAP, sql.SQL("DROP DATABASE {0} WITH (FORCE)").format(target_id))
        )
    plan.steps.append(
        RestoreStep(
            SWAP,
            sql.SQL("ALTER DATABASE {0} RENAME TO {1}").format(staging_id, target_id),
            exclusive=plan.staging,
        )
    )
    if extension_version:
        plan.steps.append(RestoreStep(FINISH, "SELECT timescaledb_post_restore()"))
    return plan
