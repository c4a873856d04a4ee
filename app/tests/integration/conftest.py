"""A real PostgreSQL 17 + TimescaleDB (the aicost-test image) with the shared schema."""

from __future__ import annotations

import shutil
import subprocess

import psycopg2
import pytest
from app_helpers import create_schema
from cost_monitor.config import Config, load_config
from pgcontainer import TIMESCALEDB_IMAGE, postgres_container

CONTAINER_PREFIX = "a1"


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "image", "inspect", TIMESCALEDB_IMAGE], capture_output=True, check=False
    )
    return probe.returncode == 0


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _require_docker():
    if not docker_ready():
        pytest.fail(
            f"integration tests need Docker and {TIMESCALEDB_IMAGE} (tests/images/build.sh)"
        )


@pytest.fixture(scope="session")
def database():
    with postgres_container(TIMESCALEDB_IMAGE, prefix=CONTAINER_PREFIX) as container:
        create_schema(container.dsn)
        yield container


@pytest.fixture
def conn(database):
    connection = psycopg2.connect(database.dsn)
    with connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE llm_consumption, llm_provider_usage, llm_collector_state")
    yield connection
    connection.close()


def app_config(database, tmp_path) -> Config:
    config = load_config(None, environ={})
    config.database.dsn = database.dsn
    config.spool.directory = str(tmp_path / "spool")
    config.logging.file = "-"
    config.auth.disabled = True
    return config
