"""Run the real service (build_runtime) on a loopback port in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from cost_monitor.config import Config
from cost_monitor.service import Runtime, build_runtime


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
