"""Test helpers: the shared schema in a database, the real service on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import psycopg2
import requests
from aiohttp import web
from cost_monitor import schema
from cost_monitor.config import Config
from cost_monitor.service import Runtime, build_runtime
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class RunningApp:
    runtime: Runtime
    url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(config: Config, run_collectors: bool = False) -> Iterator[RunningApp]:
    runtime = build_runtime(config, run_collectors=run_collectors)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(runtime.app, access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the app did not start"
    try:
        yield RunningApp(runtime, f"http://127.0.0.1:{port}")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)


def ingest(
    app: RunningApp,
    records,
    token: str | None = None,
    content_type: str = "application/json",
    raw: bool = False,
    timeout: float = 30,
) -> requests.Response:
    """POST records (or, with raw, a body as it is) to the app's ingest API."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = records if raw else orjson.dumps(records)
    return requests.post(app.url + "/v1/ingest", data=data, headers=headers, timeout=timeout)


def create_schema(dsn: str) -> None:
    """The tables as timescaledb_init creates them (from the same schema module)."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table in schema.TABLES.values():
            cursor.execute(schema.create_table_sql(table))
            for index in table.indexes:
                cursor.execute(schema.create_index_sql(table, index))
            if table.time_column:
                cursor.execute(
                    "SELECT create_hypertable(%s, by_range(%s), if_not_exists => TRUE)",
                    (table.name, table.time_column),
                )
    conn.close()


def metric_value(url: str, name: str, **labels: str) -> float | None:
    """One sample from the app's /metrics, whatever the label order."""
    text = requests.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def wait_for_metric(
    url: str, name: str, expected: float, timeout: float, interval: float, **labels: str
) -> float | None:
    """Poll metric_value until it reads ``expected`` or ``timeout`` seconds pass; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = metric_value(url, name, **labels)
        if value == expected or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
