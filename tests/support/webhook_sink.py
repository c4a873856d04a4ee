"""A webhook receiver for tests: records every POST body and serves them back.

    python3 webhook_sink.py [PORT]          # POST /anything records; GET /received lists
Standard library only: it runs in the Debian test image on the test network.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received: list[dict] = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        with lock:
            received.append({"path": self.path, "payload": payload})
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        with lock:
            body = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(
        ("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Handler
    ).serve_forever()
