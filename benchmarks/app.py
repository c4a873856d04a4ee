"""Cost monitor benchmarks: each figure beside a baseline measured in the same run.

    python benchmarks/app.py [--rows 250000] [--seconds 4] [--clients 8]

1. database ingest: rows/s through the app's writer (the Sink: requests of 500 records
   encoded on the caller's thread, coalesced into COPYs of up to --batch-rows by the writer
   thread, committed) vs `psql \\copy` of the same rows (the machine's limit); target ratio
   >= 0.9. Beside it, the spool's idempotent replay path.
2. HTTP ingest end to end (a `cost-monitor serve` process, batches of 500, committed to the
   database before the answer, 8 clients posting at once) as a ratio to `psql \\copy` of the
   same rows in the same run; target >= 0.7. Beside it, the same with 4 clients (which leaves
   the server waiting on the database: latency, not capacity) and a bare aiohttp server that
   only parses the same bodies. Every round starts from an empty table, as psql's do.
3. GET /metrics with about 2,000 series vs GET /healthz; target < 20 ms. Resident memory of
   the server under the HTTP load; target < 200 MB.

Needs Docker and the aicost-test/timescaledb:2.29.2-pg17 image (tests/images/build.sh). Prints
figures and never fails on them: targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg2
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO / "app" / "tests"))

from app_helpers import create_schema  # noqa: E402
from cost_monitor import storage  # noqa: E402
from cost_monitor.budgets import SpendTracker  # noqa: E402
from cost_monitor.metrics import Metrics  # noqa: E402
from cost_monitor.pricing import PriceCatalog, price_records  # noqa: E402
from cost_monitor.records import IngestLimits, parse_body  # noqa: E402
from cost_monitor.sink import Sink  # noqa: E402
from cost_monitor.spool import Spool  # noqa: E402
from load import Load  # noqa: E402
from pgcontainer import TIMESCALEDB_IMAGE, postgres_container  # noqa: E402

HTTP_BATCH = 500  # records per request, as the HTTP load sends them
# Each client waits for its answer, sent after the commit: with few clients the server parses
# while the database idles and the other way round, so this figure is latency, not capacity.
FEW_CLIENTS = 4
MODELS = ["gpt-5-mini", "gpt-5", "gpt-4.1-mini", "o4-mini", "gpt-5-nano"]
BARE_SERVER = """
import sys, orjson
from aiohttp import web
async def ingest(request):
    records = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"accepted": len(records)}), status=200,
                        content_type="application/json")
app = web.Application(client_max_size=64 << 20)
app.router.add_post("/v1/ingest", ingest)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def records(count: int, start: int = 0) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "time": now,
            "provider": "openai",
            "model": MODELS[i % len(MODELS)],
            "operation": "chat",
            "project": f"project-{i % 10}",
            "customer_id": f"customer-{i % 997}",
            "user_id": f"user-{i % 5003}",
            "feature": "search",
            "request_id": f"req-{start + i}",
            "input_tokens": 1200 + i % 500,
            "cache_read_tokens": 256,
            "output_tokens": 300 + i % 100,
            "reasoning_tokens": 64,
            "duration_seconds": 0.8,
        }
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def truncate(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cursor:
        cursor.execute("TRUNCATE llm_consumption")
    conn.close()


def count_rows(dsn: str) -> int:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM llm_consumption")
        count = cursor.fetchone()[0]
    conn.close()
    return count


class DatabaseBench:
    """Rows/s into the database through the app's writer, `psql \\copy` and the idempotent
    replay path; each round() runs each once and keeps the best of each."""

    def __init__(self, dsn: str, rows: int, batch_rows: int, workdir: Path) -> None:
        self.dsn, self.rows, self.batch_rows = dsn, rows, batch_rows
        body = orjson.dumps(records(rows))
        parsed = parse_body(body, "application/json", IngestLimits(max_batch_records=rows))
        price_records(PriceCatalog.load(), parsed.records)
        self.records = parsed.records
        self.best = {"app": 0.0, "psql": 0.0, "replay": 0.0}
        self.sink = Sink(
            functools.partial(storage.connect, dsn=dsn),
            Spool(workdir / "bench-spool", 1 << 30),
            Metrics(),
            SpendTracker(),
            max_rows_per_write=batch_rows,
        )
        self.data = workdir / "rows.copy"
        self.data.write_bytes(storage.encode_rows(self.records))

    def __enter__(self) -> DatabaseBench:
        self.sink.start()
        self.sink.submit([]).result(timeout=30)  # connected, and this month's spend loaded
        self.conn = storage.connect(dsn=self.dsn)
        return self

    def __exit__(self, *exc_info) -> None:
        self.conn.close()
        self.sink.stop()

    def _timed(self, name: str, run: Callable[[], None]) -> None:
        truncate(self.dsn)
        started = time.perf_counter()
        run()
        self.best[name] = max(self.best[name], self.rows / (time.perf_counter() - started))

    def round(self) -> None:
        columns = ", ".join(storage.COPY_COLUMNS)
        self._timed(
            "psql",
            lambda: subprocess.run(
                [
                    "psql",
                    self.dsn,
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    f"\\copy llm_consumption ({columns}) FROM '{self.data}'",
                ],
                check=True,
            ),
        )
        self._timed("app", self._through_writer)
        for record in self.records:
            record.event_id = str(uuid.uuid4())
        self._timed("replay", self._replayed)

    def _through_writer(self) -> None:
        waiting = [
            self.sink.submit(self.records[offset : offset + HTTP_BATCH])
            for offset in range(0, self.rows, HTTP_BATCH)
        ]
        for future in waiting:
            future.result(timeout=120)

    def _replayed(self) -> None:
        for offset in range(0, self.rows, self.batch_rows):
            chunk = self.records[offset : offset + self.batch_rows]
            storage.copy_rows_idempotent(self.conn, storage.encode_rows(chunk))


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class HttpBench:
    """A `cost-monitor serve` process and a bare server, both running; each round() posts to
    the bare server, then to the app with FEW_CLIENTS and with `clients` clients posting at
    once, and keeps the best of each."""

    def __init__(self, dsn: str, seconds: float, clients: int, workdir: Path) -> None:
        self.dsn, self.seconds, self.clients = dsn, seconds, clients
        self.body = orjson.dumps(records(HTTP_BATCH))
        self.figures: dict[str | int, float] = {"bare": 0.0, "failed": 0, "acknowledged": 0}
        self.stored = 0
        self.bare_port, self.port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "listen": {"host": "127.0.0.1", "port": self.port},
            "auth": {"disabled": True},
            "database": {"dsn": dsn},
            "spool": {"directory": str(workdir / "spool")},
            "logging": {"file": str(workdir / "cost-monitor.log")},
            "metrics": {"projects": [f"project-{i}" for i in range(10)]},
        }
        self.config_file = workdir / "config.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.peak_rss = 0.0
        self._done = threading.Event()

    def __enter__(self) -> HttpBench:
        self.bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(self.bare_port)])
        self.server = subprocess.Popen(
            [sys.executable, "-m", "cost_monitor", "--config", str(self.config_file), "serve"]
        )
        wait_ready(self.url + "/readyz")
        time.sleep(1)
        self.figures["rss_idle_mb"] = rss_mb(self.server.pid)
        self._sampler = threading.Thread(target=self._sample_rss)
        self._sampler.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._sampler.join()
        for process in (self.server, self.bare):
            process.terminate()
            process.wait()

    def _sample_rss(self) -> None:
        while not self._done.is_set():
            self.peak_rss = max(self.peak_rss, rss_mb(self.server.pid))
            time.sleep(0.2)

    def round(self) -> None:
        figures = self.figures
        bare = Load(self.bare_port, self.body, HTTP_BATCH, self.clients).run(self.seconds)
        figures["bare"] = max(figures["bare"], bare)
        for clients in sorted({FEW_CLIENTS, self.clients}):
            truncate(self.dsn)  # each round starts from an empty table, as psql's does
            load = Load(self.port, self.body, HTTP_BATCH, clients)
            figures[clients] = max(figures.get(clients, 0.0), load.run(self.seconds))
            figures["failed"] += load.failed
            figures["acknowledged"] += load.accepted
            self.stored += count_rows(self.dsn)

    def finish(self) -> dict[str | int, float]:
        """The best rounds, peak memory, rows stored, and the /metrics timing."""
        self.figures["rss_load_mb"] = self.peak_rss
        self.figures["stored"] = self.stored
        self.figures.update(bench_metrics(self.url))
        return self.figures


def bench_metrics(url: str, wanted_series: int = 2000) -> dict[str, float]:
    """Grow the registry to about 2,000 series, then time /metrics against /healthz."""
    now = datetime.now(UTC).isoformat()
    models = [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4.1"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-4-5"),
        ("gcp.gemini", "gemini-2.5-pro"),
        ("gcp.gemini", "gemini-2.5-flash"),
        ("azure.ai.openai", "gpt-4.1"),
        ("azure.ai.openai", "gpt-5"),
        ("aws.bedrock", "amazon.nova-pro-v1:0"),
        ("aws.bedrock", "amazon.nova-lite-v1:0"),
    ]
    series = 0
    for provider, model in models:
        extra = [
            {
                "time": now,
                "provider": provider,
                "model": model,
                "project": f"project-{p}",
                "operation": operation,
                "input_tokens": 10,
                "cache_read_tokens": 1,
                "cache_write_tokens": 1,
                "output_tokens": 1,
                "reasoning_tokens": 1,
            }
            for p in range(10)
            for operation in ("chat", "embeddings", "responses")
        ]
        requests.post(url + "/v1/ingest", data=orjson.dumps(extra), timeout=30).raise_for_status()
        text = requests.get(url + "/metrics", timeout=10).text
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        if series >= wanted_series:
            break

    def timed(path: str) -> float:
        samples = []
        for _ in range(30):
            started = time.perf_counter()
            requests.get(url + path, timeout=10).raise_for_status()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1000

    return {"series": series, "metrics_ms": timed("/metrics"), "healthz_ms": timed("/healthz")}


def line(name: str, value: float, unit: str, baseline_name: str, baseline: float, target: str):
    ratio = value / baseline if baseline else float("nan")
    print(
        f"{name:<34} {value:>12,.1f} {unit:<10} {baseline_name:<26} {baseline:>12,.1f}"
        f"  ratio {ratio:5.2f}  target {target}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # About as long a COPY (4 s) as an HTTP round, into a table growing as large.
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--batch-rows", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=4, help="per HTTP round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clients", type=int, default=8, help="HTTP clients posting at once (capacity)"
    )
    args = parser.parse_args()
    with (
        postgres_container(TIMESCALEDB_IMAGE, prefix="a1-bench") as database,
        tempfile.TemporaryDirectory() as workdir,
    ):
        create_schema(database.dsn)
        with (
            DatabaseBench(database.dsn, args.rows, args.batch_rows, Path(workdir)) as db_bench,
            HttpBench(database.dsn, args.seconds, args.clients, Path(workdir)) as http_bench,
        ):
            # Baselines and figures side by side in every round: the machine's speed drifts.
            for _ in range(args.rounds):
                db_bench.round()
                http_bench.round()
            http = http_bench.finish()
    best = db_bench.best
    app_rate, psql_rate, replay_rate = best["app"], best["psql"], best["replay"]
    print(
        f"\ncost monitor benchmarks ({os.cpu_count()} CPUs, PostgreSQL 17 + TimescaleDB,"
        f" best of {args.rounds} interleaved rounds)"
    )
    line("db ingest, app writer", app_rate, "rows/s", "psql \\copy", psql_rate, "ratio >= 0.9")
    line("db ingest, spool replay path", replay_rate, "rows/s", "psql \\copy", psql_rate, "info")
    capacity = http[args.clients]
    line(
        f"http ingest, {args.clients} clients",
        capacity,
        "records/s",
        "bare aiohttp+orjson",
        http["bare"],
        "info (transport ceiling)",
    )
    line(
        f"http ingest, {FEW_CLIENTS} clients",
        http[FEW_CLIENTS],
        "records/s",
        "psql \\copy (database limit)",
        psql_rate,
        "info (latency-bound)",
    )
    line(
        f"http ingest, {args.clients} clients",
        capacity,
        "records/s",
        "psql \\copy (database limit)",
        psql_rate,
        "ratio >= 0.7",
    )
    line(
        "GET /metrics",
        http["metrics_ms"],
        "ms",
        "GET /healthz",
        http["healthz_ms"],
        f"< 20 ms ({http['series']:.0f} series)",
    )
    line(
        "resident memory under load",
        http["rss_load_mb"],
        "MB",
        "idle after start",
        http["rss_idle_mb"],
        "< 200 MB",
    )
    print(
        f"http: {http['acknowledged']:.0f} records acknowledged, {http['stored']:.0f} stored, "
        f"{http['failed']:.0f} refused"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
