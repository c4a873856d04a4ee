"""The planner: what init runs, refuses and leaves to host timers, for a given database state."""

from __future__ import annotations

import base64
import copy

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils import timescaledb_plan as plan_mod
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_inspect import (
    ColumnState,
    DatabaseState,
    RefreshPolicyState,
    RoleState,
    ServerState,
    TableState,
    ViewState,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_schema import (
    AGGREGATES,
    TABLES,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_scram import (
    saslprep,
    scram_matches,
    scram_verifier,
)

DAY = 86400.0
# PostgreSQL's own verifier for the password "w1" (from pg_authid on PostgreSQL 17).
VERIFIER_W1 = (
    "SCRAM-SHA-256$4096:x8hDFYbqpHy42x4d6Ov+sg==$q6PrbpeBB/sc5deIkr/eT62S6xKLFkBa82Ch69lz1vw="
    ":fZJNLrUOOXdr7Ph6sY25NEUz8lF/Q3FfRCM7+SNwHOI="
)
PG_SPELLING = {
    "TIMESTAMPTZ": "timestamp with time zone",
    "UUID": "uuid",
    "TEXT": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "NUMERIC(20,10)": "numeric(20,10)",
    "DOUBLE PRECISION": "double precision",
    "JSONB": "jsonb",
}


def server(license_setting: str | None = "timescale", installed: str | None = "2.29.2"):
    return ServerState(
        version_num=170006,
        version="17.6",
        extension_available=license_setting is not None,
        extension_default_version="2.29.2",
        extension_installed_version=installed,
        preloaded=license_setting is not None,
        license_setting=license_setting,
    )


def desired(mode: str = plan_mod.TIMESCALE, **overrides) -> plan_mod.Desired:
    values = dict(
        mode=mode,
        chunk_interval="7 days",
        chunk_interval_seconds=7 * DAY,
        retention="730 days",
        retention_seconds=730 * DAY,
        columnstore=True,
        columnstore_after="7 days",
        columnstore_after_seconds=7 * DAY,
        roles=[
            plan_mod.RoleSpec("aicost_writer", "w1", ("SELECT", "INSERT", "UPDATE"), ("SELECT",)),
            plan_mod.RoleSpec("aicost_reader", None, ("SELECT",), ("SELECT",)),
        ],
    )
    values.update(overrides)
    return plan_mod.Desired(**values)


def pg_default(default: str | None) -> str | None:
    """How pg_get_expr() prints the contract's defaults back."""
    if default is not None and default.startswith("'"):
        return default + "::text"
    return default


def converged(mode: str = plan_mod.TIMESCALE) -> DatabaseState:
    """A database exactly as init leaves it."""
    state = DatabaseState(server=server(None if mode == plan_mod.POSTGRESQL else mode),
                          database_exists=True)  # fmt: skip
    hypertables = mode != plan_mod.POSTGRESQL
    for table in TABLES.values():
        constraints = {table.unique_constraint_name} if table.unique else set()
        if table.primary_key:
            constraints.add(table.primary_key_name)
        timed = hypertables and table.time_column is not None
        retained = mode == plan_mod.TIMESCALE and table.name == plan_mod.RETAINED_TABLE
        state.tables[table.name] = TableState(
            name=table.name,
            schema="public",
            columns={
                column.name: ColumnState(
                    column.name,
                    PG_SPELLING[column.sql_type],
                    column.nullable,
                    pg_default(column.default),
                )
                for column in table.columns
            },
            constraints=constraints,
            indexes={index.name for index in table.indexes},
            has_rows=True,
            is_hypertable=timed,
            chunk_interval_seconds=7 * DAY if timed else None,
            columnstore_enabled=retained,
            retention_seconds=730 * DAY if retained else None,
            columnstore_after_seconds=7 * DAY if retained else None,
            columnstore_segment_by=plan_mod.COLUMNSTORE_SEGMENT_BY if retained else (),
            columnstore_order_by=plan_mod.COLUMNSTORE_ORDER_BY if retained else (),
        )
    for aggregate in AGGREGATES.values():
        policy = plan_mod.REFRESH_POLICIES[aggregate.name]
        continuous = mode == plan_mod.TIMESCALE
        state.views[aggregate.name] = ViewState(
            name=aggregate.name,
            kind=plan_mod.aggregate_kind(mode),
            comment=plan_mod.definition_tag(aggregate, mode),
            indexes=set() if continuous else {plan_mod.unique_index_name(aggregate)},
            refresh_policy=RefreshPolicyState(
                policy.start_offset_seconds, policy.end_offset_seconds, policy.schedule_seconds
            ) if continuous else None,
        )  # fmt: skip
    objects = list(TABLES) + list(AGGREGATES)
    state.roles["aicost_writer"] = RoleState(
        "aicost_writer", True, True,
        {name: {"SELECT", "INSERT", "UPDATE"} if name in TABLES else {"SELECT"}
         for name in objects},
    )  # fmt: skip
    state.roles["aicost_reader"] = RoleState(
        "aicost_reader", True, None, {name: {"SELECT"} for name in objects}
    )
    state.schema_usage = {"aicost_writer": True, "aicost_reader": True}
    return state


def summaries(plan: plan_mod.Plan) -> list[str]:
    return [step.summary for step in plan.steps]


@pytest.mark.parametrize("mode", [plan_mod.TIMESCALE, plan_mod.APACHE, plan_mod.POSTGRESQL])
def test_a_converged_database_needs_nothing(mode):
    plan = plan_mod.build_plan(desired(mode), converged(mode))
    assert summaries(plan) == [] and plan.refusals == [] and plan.warnings == []


def test_an_empty_timescale_database_gets_everything_in_dependency_order():
    empty = DatabaseState(server=server(installed=None), database_exists=True)
    steps = summaries(plan_mod.build_plan(desired(), empty))
    assert steps[:3] == [
        "install the timescaledb extension",
        "create table llm_consumption",
        "make llm_consumption a hypertable on time",
    ]
    for expected in (
        "enable the columnstore on llm_consumption",
        "move chunks of llm_consumption older than 7 days to the columnstore",
        "drop chunks of llm_consumption older than 730 days",
        "create continuous aggregate llm_consumption_hourly",
        "refresh llm_consumption_daily every 1 hour",
        "grant SELECT on llm_consumption_daily to aicost_reader",
    ):
        assert expected in steps
    assert (
        steps.index("create table llm_collector_state")
        < steps.index("create continuous aggregate llm_consumption_hourly")
        < steps.index("create role aicost_writer")
    )


def test_without_timescale_license_the_work_moves_to_host_timers():
    empty = DatabaseState(server=server("apache", installed=None), database_exists=True)
    plan = plan_mod.build_plan(desired(plan_mod.APACHE), empty)
    steps = summaries(plan)
    assert "create materialized view llm_consumption_daily" in steps
    assert not [s for s in steps if "columnstore" in s or "retention" in s or "policy" in s]
    assert [task.name for task in plan.scheduled] == [
        "refresh-llm-consumption-hourly",
        "refresh-llm-consumption-daily",
        "retention-llm-consumption",
    ]
    assert plan.features["columnstore"] == "unavailable under the apache license"


def test_a_changed_column_type_is_refused_then_allowed():
    state = converged()
    state.tables["llm_consumption"].columns["cost_usd"].sql_type = "numeric(10,4)"
    refused = plan_mod.build_plan(desired(), state)
    assert refused.steps == []
    assert "llm_consumption.cost_usd is numeric(10,4)" in refused.refusals[0]
    allowed = plan_mod.build_plan(desired(allow_destructive=True), state)
    steps = summaries(allowed)
    # The aggregates read cost_usd: they are dropped first and recreated after the change.
    assert (
        steps.index("drop llm_consumption_hourly to recreate it")
        < steps.index("change the type of llm_consumption.cost_usd")
        < steps.index("create continuous aggregate llm_consumption_hourly")
    )
    assert "grant SELECT on llm_consumption_hourly to aicost_reader" in steps


def test_additive_changes_are_applied_without_asking():
    state = converged()
    columns = state.tables["llm_consumption"].columns
    del columns["feature"]
    columns["legacy"] = ColumnState("legacy", "text", True, None)
    columns["operation"].default = None
    state.tables["llm_consumption"].indexes.discard("llm_consumption_project_time_idx")
    plan = plan_mod.build_plan(desired(), state)
    assert summaries(plan) == [
        "set the default of llm_consumption.operation",
        "add column llm_consumption.feature",
        "create index llm_consumption_project_time_idx",
    ]
    assert plan.warnings == ["column llm_consumption.legacy is not in the contract; left in place"]


def test_shorter_retention_is_refused_longer_retention_replaces_the_policy():
    shorter = plan_mod.build_plan(desired(retention="90 days", retention_seconds=90 * DAY),
                                  converged())  # fmt: skip
    assert shorter.steps == []
    assert "shortening the retention of llm_consumption to 90 days" in shorter.refusals[0]
    longer = plan_mod.build_plan(
        desired(retention="1095 days", retention_seconds=1095 * DAY), converged()
    )
    assert summaries(longer) == [
        "replace the retention policy of llm_consumption",
        "drop chunks of llm_consumption older than 1095 days",
    ]


def test_a_drifted_refresh_policy_is_replaced():
    state = converged()
    state.views["llm_consumption_hourly"].refresh_policy = RefreshPolicyState(DAY, 3600, 1800)
    assert summaries(plan_mod.build_plan(desired(), state)) == [
        "replace the refresh policy of llm_consumption_hourly",
        "refresh llm_consumption_hourly every 30 minutes",
    ]


def test_an_aggregate_of_another_kind_is_not_dropped_by_surprise():
    state = converged(plan_mod.APACHE)
    timescale_now = copy.deepcopy(state)
    timescale_now.server = server("timescale")
    plan = plan_mod.build_plan(desired(columnstore=False), timescale_now)
    assert any("llm_consumption_daily is a materialized view" in r for r in plan.refusals)


def test_role_passwords_are_set_only_when_they_differ_and_never_shown():
    state = converged()
    state.roles["aicost_writer"].password_matches = False
    plan = plan_mod.build_plan(desired(), state)
    assert summaries(plan) == ["set the password of aicost_writer"]
    assert plan.steps[0].secret and plan.steps[0].params != ("w1",)


@pytest.mark.parametrize("exists", [True, False], ids=["alter", "create"])
def test_role_passwords_are_sent_as_scram_verifiers_never_in_plaintext(exists):
    # A failing CREATE/ALTER ROLE is written to the server log with its parameters inlined.
    state = converged()
    if exists:
        state.roles["aicost_writer"].password_matches = False
    else:
        del state.roles["aicost_writer"]
    # A password long enough that base64 text cannot hold it by chance.
    password = "writer-plaintext-password"
    writer = plan_mod.RoleSpec(
        "aicost_writer", password, ("SELECT", "INSERT", "UPDATE"), ("SELECT",)
    )
    plan = plan_mod.build_plan(desired(roles=[writer, desired().roles[1]]), state)
    step = plan.steps[0]
    assert step.summary == ("set the password of " if exists else "create role ") + "aicost_writer"
    (verifier,) = step.params
    assert verifier.startswith("SCRAM-SHA-256$4096:") and password not in verifier
    assert scram_matches(verifier, password) is True


def test_a_dropped_grant_is_restored():
    state = converged()
    state.roles["aicost_reader"].privileges["llm_provider_usage"] = set()
    assert summaries(plan_mod.build_plan(desired(), state)) == [
        "grant SELECT on llm_provider_usage to aicost_reader"
    ]


def test_a_non_empty_plain_table_is_not_turned_into_a_hypertable_by_surprise():
    state = converged(plan_mod.POSTGRESQL)
    state.server = server("apache")
    plan = plan_mod.build_plan(desired(plan_mod.APACHE), state)
    assert any("llm_consumption holds rows" in refusal for refusal in plan.refusals)


@pytest.mark.parametrize(
    ("license_setting", "option", "expected"),
    [
        ("timescale", "auto", plan_mod.TIMESCALE),
        ("apache", "auto", plan_mod.APACHE),
        (None, "auto", plan_mod.POSTGRESQL),
        ("timescale", "disabled", plan_mod.POSTGRESQL),
    ],
)
def test_resolve_mode(license_setting, option, expected):
    assert plan_mod.resolve_mode(server(license_setting), option)[0] == expected


def test_required_timescaledb_on_plain_postgresql_is_an_error():
    with pytest.raises(ValueError, match="not available"):
        plan_mod.resolve_mode(server(None), "required")


def test_retention_must_outlast_every_refresh_window():
    errors = plan_mod.validate_desired(desired(retention="30 days", retention_seconds=30 * DAY))
    assert errors == [
        "retention (30 days) must be longer than the refresh window of"
        " llm_consumption_daily (35 days)"
    ]


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [("TIMESTAMPTZ", "timestamp with time zone"), ("NUMERIC(20, 10)", "numeric(20,10)"),
     ("int8", "bigint"), ("DOUBLE  PRECISION", "double precision")],
)  # fmt: skip
def test_canonical_type(spelled, canonical):
    assert plan_mod.canonical_type(spelled) == canonical


def test_canonical_default_drops_the_cast_pg_get_expr_adds():
    assert plan_mod.canonical_default("'chat'::text") == "'chat'"
    assert plan_mod.canonical_default("now()") == "now()"


def test_scram_verifier_is_what_postgresql_stores():
    salt = base64.b64decode(VERIFIER_W1.split("$")[1].split(":")[1])
    assert scram_verifier("w1", salt=salt) == VERIFIER_W1
    fresh = scram_verifier("w1")
    assert fresh != VERIFIER_W1 and scram_matches(fresh, "w1") is True


@pytest.mark.parametrize(
    ("password", "prepared"),
    [
        ("plain ascii\x07", "plain ascii\x07"),  # ASCII passes unchanged, as in PostgreSQL
        ("\ufb01x\u00a0\u216b", "fix XII"),  # ligature and numeral to NFKC, nbsp to space
        ("soft\u00adhyphen", "softhyphen"),  # mapped to nothing
        ("\u00e9t\u00e9", "\u00e9t\u00e9"),
        ("bad\u0000\u00e9", None),  # a prohibited control character: PostgreSQL hashes raw
        ("\u05d0abc\u05d0", None),  # right-to-left mixed with left-to-right
        ("\u00ad", None),  # nothing left after mapping
    ],
)
def test_saslprep_prepares_passwords_as_postgresql_does(password, prepared):
    assert saslprep(password) == prepared


def test_a_verifier_hashes_the_saslprepped_password():
    salt = b"0123456789abcdef"
    assert scram_verifier("\ufb01x\u00a0\u216b", salt=salt) == scram_verifier("fix XII", salt=salt)
    assert scram_matches(scram_verifier("fix XII"), "\ufb01x\u00a0\u216b") is True


def test_scram_verifier_check():
    assert scram_matches(VERIFIER_W1, "w1") is True
    assert scram_matches(VERIFIER_W1, "w2") is False
    assert scram_matches("md5abcdef", "w1") is None
    assert scram_matches(None, "w1") is None


def test_turning_the_columnstore_off_removes_only_its_policy():
    plan = plan_mod.build_plan(desired(columnstore=False), converged())
    assert summaries(plan) == ["stop moving chunks of llm_consumption to the columnstore"]
    assert plan.features["columnstore"] == "disabled"


def test_writer_and_reader_must_be_different_roles():
    same = desired()
    same.roles[1].name = same.roles[0].name
    assert plan_mod.validate_desired(same) == [
        "writer_role and reader_role must be different roles"
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["writer", "reader"])
def test_the_login_superuser_or_another_superuser_is_refused_as_app_role(which):
    as_login = desired()
    as_login.login_user = "postgres"
    as_login.roles[which].name = "postgres"
    assert plan_mod.validate_desired(as_login) == [
        "postgres is a superuser: writer_role and reader_role must be roles of their own, or"
        " init would give it the app's password and run the app or Grafana as a superuser"
    ]
    other = desired()
    other.login_user = "postgres"
    other.superusers = frozenset({other.roles[which].name})
    assert "is a superuser" in plan_mod.validate_desired(other)[0]
    fine = desired()
    fine.login_user = "postgres"
    assert plan_mod.validate_desired(fine) == []


def test_the_columnstore_segments_and_orders_by_the_unique_key():
    """TimescaleDB warns unless every unique-key column is a segmentby or orderby column."""
    empty = DatabaseState(server=server(installed=None), database_exists=True)
    plan = plan_mod.build_plan(desired(), empty)
    enable = next(s for s in plan.steps if s.summary == "enable the columnstore on llm_consumption")
    ordered = {order[0] for order in plan_mod.COLUMNSTORE_ORDER_BY}
    keyed = set(plan_mod.COLUMNSTORE_SEGMENT_BY) | ordered
    assert set(TABLES["llm_consumption"].unique) <= keyed
    assert "time DESC, event_id ASC" in str(enable.query)


def test_columnstore_settings_of_an_earlier_release_are_updated_for_new_chunks():
    state = converged()
    state.tables["llm_consumption"].columnstore_order_by = (("time", "DESC"),)
    assert summaries(plan_mod.build_plan(desired(), state)) == [
        "set the columnstore segmentby and orderby of llm_consumption for new chunks"
    ]


def test_a_changed_refresh_window_replaces_only_that_policy():
    policies = dict(plan_mod.REFRESH_POLICIES)
    policies["llm_consumption_daily"] = plan_mod.RefreshPolicy(
        "60 days", "1 hour", "1 hour", 60 * DAY, 3600, 3600
    )
    plan = plan_mod.build_plan(desired(refresh_policies=policies), converged())
    assert summaries(plan) == [
        "replace the refresh policy of llm_consumption_daily",
        "refresh llm_consumption_daily every 1 hour",
    ]
    assert plan.steps[1].params == ("llm_consumption_daily", "60 days", "1 hour", "1 hour")


def test_retention_must_outlast_a_configured_refresh_window():
    policies = dict(plan_mod.REFRESH_POLICIES)
    policies["llm_consumption_hourly"] = plan_mod.RefreshPolicy(
        "800 days", "1 hour", "1 hour", 800 * DAY, 3600, 3600
    )
    assert plan_mod.validate_desired(desired(refresh_policies=policies)) == [
        "retention (730 days) must be longer than the refresh window of"
        " llm_consumption_hourly (800 days)"
    ]


@pytest.mark.parametrize(
    ("version", "refused"),
    [("2.29.2", False), ("2.18.0", False), ("2.19.3", False), ("2.17.2", True),
     ("2.9.0-dev", True), (None, False)],
)  # fmt: skip
def test_timescaledb_older_than_the_columnstore_api_is_refused(version, refused):
    reason = plan_mod.unsupported_version(version)
    assert bool(reason) is refused
    if refused:
        assert "ALTER EXTENSION timescaledb UPDATE" in reason
