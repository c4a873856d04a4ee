"""Fixtures for the collector tests: recorded payloads and a scripted provider on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"


def payload_text(name: str) -> str:
    return (PAYLOADS / name).read_text(encoding="utf-8")


def payload(name: str) -> Any:
    return json.loads(payload_text(name))


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


class ProviderStub:
    """An HTTP server answering each (method, path) with its queue of scripted replies.

    Replies are consumed in order, so a test states exactly what the provider does: a page,
    then a 429, then the next page. An unscripted request gets a 599 and fails the test.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queues: dict[tuple[str, str], list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._queues.setdefault((method, path), []).extend(replies)

    def json_reply(self, name: str, status: int = 200, **headers: str) -> Reply:
        text = payload_text(name).replace("{base_url}", self.base_url)
        return Reply(status, text.encode(), {"Content-Type": "application/json", **headers})

    def pending(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {key: len(queue) for key, queue in self._queues.items() if queue}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            queue = self._queues.get((method, path))
            if not queue:
                return Reply(599, json.dumps({"error": f"unscripted {method} {path}"}).encode())
            return queue.pop(0)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                stub.requests.append(
                    RecordedRequest(
                        self.command,
                        parts.path,
                        urllib.parse.parse_qs(parts.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                    )
                )
                reply = stub._next(self.command, parts.path)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def provider() -> Iterator[ProviderStub]:
    stub = ProviderStub()
    try:
        yield stub
    finally:
        stub.close()


@dataclass
class RecordingSleep:
    """Stands in for time.sleep so retry tests assert the waits instead of taking them."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()
