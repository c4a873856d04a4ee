"""The restore plan: staging names, refusals, and the statements of each phase."""

from __future__ import annotations

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils import (
    timescaledb_restore_plan as restore,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_restore_plan import (
    DatabaseFacts,
    build_restore_plan,
    staging_name,
)
from psycopg2 import sql

ABSENT = DatabaseFacts(exists=False, holds_tables=False)
EMPTY = DatabaseFacts(exists=True, holds_tables=False)
FULL = DatabaseFacts(exists=True, holds_tables=True)


def text(query) -> str:
    """SQL as the server would get it, without a connection (for plain identifiers)."""
    if isinstance(query, str):
        return query
    if isinstance(query, sql.Composed):
        return "".join(text(part) for part in query.seq)
    if isinstance(query, sql.Identifier):
        return ".".join(f'"{part}"' for part in query.strings)
    return query.string


def rendered(step) -> str:
    query = text(step.query)
    return query if step.params is None else query + " " + repr(step.params)


def test_a_short_name_gets_the_plain_suffix():
    assert staging_name("aicost") == "aicost_restoring"
    assert staging_name("d" * 53) == "d" * 53 + "_restoring"


def test_long_names_never_share_a_staging_database_and_fit_postgresql():
    first, second = "x" * 60 + "_one", "x" * 60 + "_two"
    names = {staging_name(first), staging_name(second)}
    assert len(names) == 2
    for name in names:
        assert len(name.encode()) <= 63 and name.endswith("_restoring")
    assert staging_name(first) == staging_name(first)


def test_a_long_multibyte_name_is_cut_on_a_character_boundary():
    name = staging_name("\u00e9" * 40)
    assert len(name.encode()) <= 63 and name.startswith("\u00e9" * 20)


def test_a_fresh_restore_with_timescaledb_in_phase_order():
    plan = build_restore_plan("aicost", FULL, ABSENT, replace=True, extension_version="2.29.2")
    assert plan.refusals == []
    assert [(step.phase, rendered(step)) for step in plan.steps] == [
        ("prepare", 'CREATE DATABASE "aicost_restoring"'),
        ("load", "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION %s ('2.29.2',)"),
        ("load", "SELECT timescaledb_pre_restore()"),
        ("analyze", "ANALYZE"),
        ("swap", 'DROP DATABASE "aicost" WITH (FORCE)'),
        ("swap", 'ALTER DATABASE "aicost_restoring" RENAME TO "aicost"'),
        ("finish", "SELECT timescaledb_post_restore()"),
    ]
    assert [step.phase for step in plan.steps] == sorted(
        (step.phase for step in plan.steps), key=restore.PHASES.index
    )
    assert plan.steps[5].exclusive == "aicost_restoring"


def test_without_timescaledb_or_a_target_there_is_less_to_do():
    plan = build_restore_plan("aicost", ABSENT, ABSENT, replace=False, extension_version=None)
    assert [rendered(step) for step in plan.steps] == [
        'CREATE DATABASE "aicost_restoring"',
        "ANALYZE",
        'ALTER DATABASE "aicost_restoring" RENAME TO "aicost"',
    ]


def test_an_empty_leftover_staging_database_is_dropped_first():
    plan = build_restore_plan("aicost", EMPTY, EMPTY, replace=False, extension_version=None)
    assert plan.refusals == []
    assert [rendered(step) for step in plan.phase(restore.PREPARE)] == [
        'DROP DATABASE "aicost_restoring" WITH (FORCE)',
        'CREATE DATABASE "aicost_restoring"',
    ]


@pytest.mark.parametrize("replace", [False, True])
def test_a_staging_database_with_tables_is_dropped_only_with_replace(replace):
    plan = build_restore_plan("aicost", ABSENT, FULL, replace=replace, extension_version=None)
    if replace:
        assert plan.refusals == []
    else:
        assert plan.refusals == [
            "Database aicost_restoring already exists and holds tables (a restore that failed"
            " after aicost was dropped leaves its verified copy there): rename or drop it, or"
            " set replace=true to drop it"
        ]


def test_a_target_with_tables_needs_replace():
    plan = build_restore_plan("aicost", FULL, ABSENT, replace=False, extension_version=None)
    assert plan.refusals == ["Database aicost already holds tables; set replace=true to drop it"]
