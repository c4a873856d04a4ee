"""Fixtures for the timescaledb modules: real database containers and a real `ansible` run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from pgcontainer import (
    POSTGRES_IMAGE,
    TIMESCALEDB_APACHE_IMAGE,
    TIMESCALEDB_IMAGE,
    PostgresContainer,
    postgres_container,
)
from playbook import collections_path

REPO = Path(__file__).resolve().parents[3]
CONTAINER_PREFIX = "b"
ANSIBLE = REPO / ".venv" / "bin" / "ansible"


@pytest.fixture(scope="session")
def ansible_collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collections_path(tmp_path_factory.mktemp("collections"))


@dataclass
class ModuleRun:
    """One module run through `ansible localhost -m`, with its parsed result."""

    result: dict[str, Any]
    stdout: str

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


@pytest.fixture(scope="session")
def run_module(ansible_collections_path: Path):
    def run(module: str, args: dict[str, Any], check: bool = False, diff: bool = False):
        command = [
            str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
            "-m", f"aicost.monitoring.{module}", "-a", json.dumps(args),
        ]  # fmt: skip
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(ansible_collections_path),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        )
        completed = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, check=False
        )
        try:
            report = json.loads(completed.stdout)
            result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as error:
            raise AssertionError(
                f"no module result: {error}\n{completed.stdout}\n{completed.stderr}"
            ) from error
        return ModuleRun(result=result, stdout=completed.stdout)

    return run


@pytest.fixture(scope="session")
def timescale_server() -> Iterator[PostgresContainer]:
    """TimescaleDB with the timescale license: what users of the upstream image run."""
    with postgres_container(TIMESCALEDB_IMAGE, prefix=CONTAINER_PREFIX) as container:
        yield container


@pytest.fixture(scope="session")
def apache_server() -> Iterator[PostgresContainer]:
    with postgres_container(TIMESCALEDB_APACHE_IMAGE, prefix=CONTAINER_PREFIX) as container:
        yield container


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresContainer]:
    with postgres_container(POSTGRES_IMAGE, prefix=CONTAINER_PREFIX) as container:
        yield container


@pytest.fixture(params=["timescale", "apache", "postgres"])
def server(request: pytest.FixtureRequest) -> PostgresContainer:
    """Each test runs on the production path and on both fallbacks."""
    return request.getfixturevalue(request.param + "_server")


def connection_args(server: PostgresContainer, database: str) -> dict[str, Any]:
    return {
        "login_host": server.host,
        "login_port": server.port,
        "login_user": server.user,
        "login_password": server.password,
        "database": database,
    }


@pytest.fixture
def database_name() -> str:
    """A fresh database per test, so tests share a container but not state."""
    return "aicost_" + uuid.uuid4().hex[:10]


def connect(
    server: PostgresContainer, database: str, user: str | None = None, password: str | None = None
):
    connection = psycopg2.connect(
        host=server.host, port=server.port, dbname=database,
        user=user or server.user, password=password or server.password,
    )  # fmt: skip
    connection.autocommit = True
    return connection


def query(server: PostgresContainer, database: str, statement: str, params=None) -> list[tuple]:
    with contextlib.closing(connect(server, database)) as connection, connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# Each table's full content in a client-independent text form, ordered: an independent check
# of what the modules' own fingerprints claim.
TABLE_CONTENT = (
    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
    " FROM {table} AS t"
)
TABLES = ("llm_consumption", "llm_provider_usage", "llm_collector_state")


def table_contents(server: PostgresContainer, database: str) -> dict[str, tuple]:
    contents = {}
    for table in TABLES:
        rows = query(
            server,
            database,
            "SET TimeZone = 'UTC'; SET extra_float_digits = 1; "
            + TABLE_CONTENT.format(table=table),
        )
        contents[table] = rows[0]
    return contents


def insert_usage_rows(
    server: PostgresContainer, database: str, count: int, days_back: int = 3
) -> None:
    """Write `count` varied llm_consumption rows spread over the last `days_back` days."""
    query(server, database, USAGE_ROWS_SQL, (count, days_back, count))


USAGE_ROWS_SQL = """
INSERT INTO llm_consumption (time, event_id, provider, model, project, customer_id,
    input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source,
    duration_seconds, metadata)
SELECT now() - (i::double precision / %s) * make_interval(days => %s),
       md5(random()::text || i)::uuid,
       (ARRAY['openai', 'anthropic', 'aws.bedrock'])[1 + i %% 3],
       (ARRAY['gpt-4.1', 'claude-sonnet-4', 'nova-pro', 'o3'])[1 + i %% 4],
       CASE WHEN i %% 5 = 0 THEN NULL ELSE 'project-' || (i %% 7) END,
       'customer-' || (i %% 11),
       100 + i %% 1000, i %% 50, 20 + i %% 300, i %% 13,
       CASE WHEN i %% 17 = 0 THEN NULL ELSE round((i %% 997) * 0.0000123, 10) END,
       'computed', (i %% 100) / 10.0,
       jsonb_build_object('i', i)
FROM generate_series(1, %s) AS i
"""
