"""Which HTTP stack for the ingest API: the same trivial handler on each candidate.

    pip install aiohttp starlette uvicorn[standard] falcon granian orjson
    python benchmarks/app_stacks.py [--seconds 6]

The handler parses a 500-record JSON batch with orjson and counts it, so the figure is the
transport's ceiling, not the app's. Candidates that are not installed are skipped. Also
compares the standard library's json with orjson on the same body. Prints, never fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import orjson

HANDLER = """
import orjson
def handle(body):
    records = orjson.loads(body)
    return orjson.dumps({"accepted": sum(1 for r in records if isinstance(r, dict))})
"""
SERVERS = {
    "s_aiohttp.py": """
import sys
from aiohttp import web
from work import handle
async def ingest(request):
    return web.Response(body=handle(await request.read()), content_type="application/json")
app = web.Application(client_max_size=1 << 24)
app.router.add_post("/v1/ingest", ingest)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
""",
    "s_starlette.py": """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from work import handle
async def ingest(request):
    return Response(handle(await request.body()), media_type="application/json")
app = Starlette(routes=[Route("/v1/ingest", ingest, methods=["POST"])])
""",
    "s_falcon.py": """
import falcon.asgi
from work import handle
class Ingest:
    async def on_post(self, req, resp):
        resp.data = handle(await req.stream.read())
        resp.content_type = "application/json"
app = falcon.asgi.App()
app.add_route("/v1/ingest", Ingest())
""",
}


def candidates(port: int) -> dict[str, list[str]]:
    py = sys.executable
    uvicorn = [
        py,
        "-m",
        "uvicorn",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    granian = [
        py,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return {
        "aiohttp": ([py, "s_aiohttp.py", str(port)], "aiohttp"),
        "starlette + uvicorn(uvloop, httptools)": ([*uvicorn, "s_starlette:app"], "uvicorn"),
        "falcon + uvicorn(uvloop, httptools)": ([*uvicorn, "s_falcon:app"], "falcon"),
        "starlette + granian": ([*granian, "s_starlette:app"], "granian"),
        "falcon + granian": ([*granian, "s_falcon:app"], "granian"),
    }


def batch_body() -> bytes:
    return orjson.dumps(
        [
            {
                "time": "2026-11-28T10:00:00Z",
                "provider": "openai",
                "model": "gpt-5-mini",
                "project": f"p{i % 7}",
                "customer_id": f"c{i}",
                "input_tokens": 1200 + i,
                "output_tokens": 300,
                "cache_read_tokens": 100,
                "request_id": f"req-{i}",
            }
            for i in range(500)
        ]
    )


def load(port: int, body: bytes, seconds: float, connections: int = 4) -> float:
    request = (
        b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    counts = [0] * connections
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        reader = sock.makefile("rb")
        while time.monotonic() < stop:
            sock.sendall(request)
            reader.readline()
            length = 0
            while (header := reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length"):
                    length = int(header.split(b":")[1])
            reader.read(length)
            counts[index] += 500

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    body = batch_body()
    for name, parse in (("json", json.loads), ("orjson", orjson.loads)):
        rate = 2000 * 500 / timeit.timeit(lambda parse=parse: parse(body), number=2000)
        print(f"{name + ' parse':<42} {rate:>12,.0f} records/s")
    with tempfile.TemporaryDirectory() as workdir:
        Path(workdir, "work.py").write_text(HANDLER)
        for file, source in SERVERS.items():
            Path(workdir, file).write_text(source)
        port = 18731
        for name, (command, module) in candidates(port).items():
            if importlib.util.find_spec(module) is None:
                print(f"{name:<42} skipped ({module} not installed)")
                continue
            server = subprocess.Popen(command, cwd=workdir)
            try:
                time.sleep(2)
                print(f"{name:<42} {load(port, body, args.seconds):>12,.0f} records/s")
            finally:
                server.terminate()
                server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
