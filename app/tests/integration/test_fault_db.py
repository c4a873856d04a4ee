"""Stop the database mid-ingest, keep posting, start it again: every acknowledged record is
in the table exactly once (the server runs as a real `cost-monitor serve` process)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import orjson
import psycopg2
import pytest
import requests
import yaml
from app_helpers import free_port
from conftest import CONTAINER_PREFIX, create_schema
from pgcontainer import TIMESCALEDB_IMAGE, postgres_container
from prometheus_client.parser import text_string_to_metric_families

BATCH = 50


@pytest.fixture
def own_database():
    with postgres_container(TIMESCALEDB_IMAGE, prefix=CONTAINER_PREFIX) as container:
        create_schema(container.dsn)
        yield container


@pytest.fixture
def server(own_database, tmp_path):
    port = free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "auth": {"disabled": True},
        "database": {"dsn": own_database.dsn, "connect_timeout_seconds": 2},
        "spool": {"directory": str(tmp_path / "spool")},
        "logging": {"file": str(tmp_path / "cost-monitor.log")},
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "cost_monitor", "--config", str(path), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"server did not start: {process.stderr.read().decode()}")
    yield url, tmp_path / "cost-monitor.log"
    process.terminate()
    assert process.wait(timeout=20) == 0


def metric_sum(url: str, name: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


class Poster(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acknowledged: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            ids = [f"{number}-{i}" for i in range(BATCH)]
            records = [
                {
                    "time": datetime.now(UTC).isoformat(),
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "request_id": request_id,
                    "input_tokens": 100,
                    "output_tokens": 10,
                }
                for request_id in ids
            ]
            try:
                response = requests.post(
                    self.url + "/v1/ingest",
                    data=orjson.dumps(records),
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
            except requests.RequestException:
                continue  # not acknowledged: the client would resend
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code in (200, 202):
                self.acknowledged.update(ids)
            time.sleep(0.01)


def test_no_acknowledged_record_is_lost_or_doubled_across_a_database_outage(own_database, server):
    url, log_file = server
    poster = Poster(url)
    poster.start()
    time.sleep(2)
    own_database.stop()
    time.sleep(4)
    own_database.start()
    time.sleep(2)
    poster.stop.set()
    poster.join(30)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = requests.get(url + "/readyz", timeout=5).json()
        if state["database"] == "up" and state["spool_batches"] == 0:
            break
        time.sleep(0.5)
    assert state == {"database": "up", "writer": "running", "spool_bytes": 0, "spool_batches": 0}

    assert poster.statuses.get(202, 0) > 0, f"the outage never reached the spool: {poster.statuses}"
    assert poster.statuses.get(200, 0) > 0
    conn = psycopg2.connect(own_database.dsn)
    with conn.cursor() as cursor:
        cursor.execute("SELECT request_id, count(*) FROM llm_consumption GROUP BY request_id")
        stored = dict(cursor.fetchall())
    conn.close()
    assert poster.acknowledged <= set(stored), "acknowledged records are missing"
    doubled = {request_id: n for request_id, n in stored.items() if n != 1}
    assert not doubled, f"stored more than once: {list(doubled.items())[:5]}"
    # The counters follow the database: spooled rows are counted when their replay stores them.
    rows = sum(stored.values())
    assert metric_sum(url, "llm_ingest_stored_rows_total") == rows
    assert metric_sum(url, "llm_requests_total") == rows
    log_lines = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    messages = " ".join(line["message"] for line in log_lines)
    assert "database unreachable" in messages
    assert "replayed spooled batch" in messages
