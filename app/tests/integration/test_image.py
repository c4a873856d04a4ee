"""Build the app image on the local Debian test image and run it against the database."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import requests
from app_helpers import free_port
from conftest import CONTAINER_PREFIX

APP_DIR = Path(__file__).resolve().parents[2]
BASE_IMAGE = "aicost-test/debian:trixie"
IMAGE = f"{CONTAINER_PREFIX}-cost-monitor:test"
# The same wheels script the test images' build uses: it reads app/pyproject.toml.
APP_WHEELS = APP_DIR.parent / "tests" / "images" / "app-wheels.sh"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    # The image's own pip cannot reach PyPI from this sandbox (TLS interception), so the
    # wheels for the image's Python are fetched by the host's pip and built in offline.
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [str(APP_WHEELS), str(wheels)], check=True, env={**os.environ, "PYTHON": sys.executable}
    )
    subprocess.run(
        [
            str(APP_DIR / "build-image.sh"),
            "--tag",
            IMAGE,
            "--base",
            BASE_IMAGE,
            "--wheels",
            str(wheels),
            "--offline",
        ],
        check=True,
        capture_output=True,
    )
    return IMAGE


def test_image_runs_as_non_root_and_ingests_into_the_database(image, database, conn):
    name = f"{CONTAINER_PREFIX}-app-{secrets.token_hex(4)}"
    port = free_port()
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            f"COST_MONITOR_DATABASE_DSN={database.dsn}",
            "-e",
            f"COST_MONITOR_LISTEN_PORT={port}",
            "-e",
            "COST_MONITOR_LISTEN_HOST=127.0.0.1",
            "-e",
            "COST_MONITOR_AUTH_DISABLED=true",
            image,
        ],
        check=True,
        capture_output=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/readyz", timeout=1).json()["database"] == "up":
                    break
            except (requests.ConnectionError, ValueError):
                pass
            time.sleep(0.3)
        records = [{"provider": "openai", "model": "gpt-5", "input_tokens": 10}] * 3
        response = requests.post(
            url + "/v1/ingest",
            data=orjson.dumps(records),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM llm_consumption WHERE cost_usd > 0")
            assert cursor.fetchone()[0] == 3
        uid = subprocess.run(
            ["docker", "exec", name, "id", "-u"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert uid == "10001"
        log = subprocess.run(
            ["docker", "exec", name, "cat", "/var/log/aicost/cost-monitor.log"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert all(json.loads(line)["level"] for line in log.splitlines())
        assert "connected to the database" in log
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
