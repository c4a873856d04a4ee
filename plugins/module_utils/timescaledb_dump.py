# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run pg_dump and pg_restore the way the backup and restore modules need: inside the
database container (so the tools match the server) or from a local path, streaming the dump
through this process so it lands on the host, checksummed as it is written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 20


def tool_argument_spec() -> dict[str, Any]:
    return dict(
        container=dict(type="str"),
        docker_path=dict(type="str", default="docker"),
        bin_dir=dict(type="path"),
    )


@dataclass(frozen=True)
class Tool:
    """Where pg_dump/pg_restore run. ``container`` set: ``docker exec`` into it, connecting
    over the container's local socket; otherwise the binaries in ``bin_dir`` (or on PATH)
    connect over TCP with the module's connection options."""

    container: str | None
    docker_path: str
    bin_dir: str | None

    @classmethod
    def from_params(cls, params: dict) -> Tool:
        return cls(params["container"], params["docker_path"], params["bin_dir"])

    def command(self, program: str, params: dict, database: str, *args: str) -> list[str]:
        if self.container:
            return [
                self.docker_path, "exec", "-i", "-e", "PGPASSWORD", self.container,
                program, "--username", params["login_user"], "--dbname", database, *args,
            ]  # fmt: skip
        binary = os.path.join(self.bin_dir, program) if self.bin_dir else program
        return [
            binary, "--host", params["login_host"], "--port", str(params["login_port"]),
            "--username", params["login_user"], "--dbname", database, *args,
        ]  # fmt: skip

    def environment(self, params: dict) -> dict[str, str]:
        # The password travels in the environment (docker exec -e NAME copies it from ours),
        # never in an argument list that ps can show.
        env = dict(os.environ, PGSSLMODE=params["ssl_mode"])
        env.pop("PGPASSWORD", None)
        if params.get("login_password"):
            env["PGPASSWORD"] = params["login_password"]
        return env

    def version(self, program: str) -> str:
        if self.container:
            argv = [self.docker_path, "exec", self.container, program, "--version"]
        else:
            argv = [os.path.join(self.bin_dir, program) if self.bin_dir else program, "--version"]
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise ToolError("{0} --version failed: {1}".format(program, completed.stderr.strip()))
        return completed.stdout.strip()


class ToolError(Exception):
    pass


@dataclass(frozen=True)
class StreamResult:
    size: int
    sha256: str


def dump_to_file(argv: list[str], env: dict[str, str], path: str) -> StreamResult:
    """Run a dump command, write its standard output to ``path`` (created 0600), fsync it."""
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    # stderr goes to a file: a chatty tool must not block on a full pipe while we read stdout.
    with os.fdopen(descriptor, "wb") as target, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors)
        if process.stdout is None:
            raise ToolError("{0} gave no output stream".format(argv[0]))
        for chunk in iter(lambda: process.stdout.read(CHUNK), b""):
            target.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        returncode = process.wait()
        target.flush()
        os.fsync(target.fileno())
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    if returncode != 0:
        raise ToolError("{0} exited with {1}: {2}".format(argv[0], returncode, stderr.strip()))
    return StreamResult(size, digest.hexdigest())


def restore_from_file(argv: list[str], env: dict[str, str], path: str) -> str:
    """Feed a dump file to a restore command's standard input; return its stderr."""
    with open(path, "rb") as source:
        completed = subprocess.run(argv, env=env, stdin=source, capture_output=True, check=False)
    stderr = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        raise ToolError("{0} exited with {1}: {2}".format(argv[0], completed.returncode, stderr))
    return stderr


def fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
