"""Start a throwaway PostgreSQL container (a test image from tests/images) for a test."""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

# The production path: TimescaleDB 2.29.2 with the timescale license, as in the upstream image.
TIMESCALEDB_IMAGE = "aicost-test/timescaledb:2.29.2-pg17"
# Debian's Apache-only build and plain PostgreSQL: the fallbacks init must handle too.
TIMESCALEDB_APACHE_IMAGE = "aicost-test/timescaledb-apache:pg17"
POSTGRES_IMAGE = "aicost-test/postgres:17"


def _docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], check=False, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class PostgresContainer:
    name: str
    password: str
    user: str = "postgres"
    dbname: str = "postgres"
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def dsn(self) -> str:
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={self.dbname}"
        )

    def exec(self, *cmd: str, input_text: str | None = None) -> str:
        """Run a command inside the container and return its standard output."""
        result = subprocess.run(
            ["docker", "exec", "-i", self.name, *cmd],
            input=input_text,
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{cmd!r} in {self.name} failed: {result.stderr.strip()}")
        return result.stdout

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # pg_isready over TCP: the entrypoint's own start on a socket does not count.
            probe = subprocess.run(
                [
                    "docker",
                    "exec",
                    self.name,
                    "pg_isready",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    self.user,
                    "-d",
                    self.dbname,
                ],
                check=False,
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.3)
        logs = _docker("logs", "--tail", "30", self.name, check=False)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{logs}")

    def stop(self) -> None:
        _docker("stop", "-t", "10", self.name)

    def start(self) -> None:
        _docker("start", self.name)
        self.wait_ready()


def _free_loopback_port() -> int:
    # A fixed port (not Docker's random one) keeps the DSN valid across stop()/start().
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def postgres_container(
    image: str = TIMESCALEDB_IMAGE, prefix: str = "test", dbname: str = "postgres"
) -> Iterator[PostgresContainer]:
    """Run `image` published on a random loopback port until the block exits."""
    container = PostgresContainer(
        name=f"{prefix}-pg-{secrets.token_hex(4)}",
        password=secrets.token_urlsafe(16),
        dbname=dbname,
        port=_free_loopback_port(),
    )
    _docker(
        "run",
        "-d",
        "--name",
        container.name,
        "-e",
        f"POSTGRES_PASSWORD={container.password}",
        "-e",
        f"POSTGRES_DB={dbname}",
        "-p",
        f"127.0.0.1:{container.port}:5432",
        image,
    )
    try:
        container.wait_ready()
        yield container
    finally:
        _docker("rm", "-f", "-v", container.name, check=False)
