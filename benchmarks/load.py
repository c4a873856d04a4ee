"""An HTTP load for the ingest API: keep-alive connections posting one pre-encoded batch."""

from __future__ import annotations

import socket
import threading
import time


class Load:
    """Keep-alive connections posting one pre-encoded batch as fast as answers come back."""

    def __init__(self, port: int, body: bytes, batch: int, connections: int,
                 hosts: tuple[str, ...] = ("127.0.0.1",), token: str = "") -> None:  # fmt: skip
        authorization = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
        self.request = (
            b"POST /v1/ingest HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"%sContent-Length: %d\r\n\r\n" % (authorization, len(body))
        ) + body
        self.port = port
        self.hosts = hosts
        self.batch = batch
        self.connections = connections
        self.accepted = 0
        self.failed = 0
        self._lock = threading.Lock()

    def run(self, seconds: float) -> float:
        stop = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self._worker, args=(stop, self.hosts[index % len(self.hosts)]))
            for index in range(self.connections)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.accepted / (time.perf_counter() - started)

    def _worker(self, stop: float, host: str) -> None:
        sock = socket.create_connection((host, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        while time.monotonic() < stop:
            sock.sendall(self.request)
            status = reader.readline()
            length = 0
            while (header := reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length"):
                    length = int(header.split(b":")[1])
            reader.read(length)
            with self._lock:
                if status.split()[1] in (b"200", b"202"):
                    self.accepted += self.batch
                else:
                    self.failed += self.batch
        sock.close()
