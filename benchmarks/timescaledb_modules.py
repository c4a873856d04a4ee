#!/usr/bin/env python3
"""Time of the timescaledb modules beside their bare baselines, measured in the same run.

Starts a throwaway database container (by default the timescale-license test image, the
production path), then times, --repeat interleaved rounds each, medians reported:

  init cold       `ansible -m aicost.monitoring.timescaledb_init` on a database that does
                  not exist yet (creates everything)
  init no-op      the same on an initialised database (reads it, changes nothing)
  ansible ping    `ansible localhost -m ping`: what starting Ansible for one task costs

then loads --rows usage rows and times:

  module backup   `ansible -m aicost.monitoring.timescaledb_backup` (snapshot, fingerprints,
                  pg_dump -Fc inside the container, sha256, manifest)
  bare pg_dump    `docker exec <container> pg_dump -Fc --compress=6 > file`
  set backup      what the backup timer's program does for the database part of a set, in
                  this process (no Ansible): backup_set.dump_timescaledb with --compression
                  (default zstd:3, the backup role's default)
  bare zstd dump  `pg_dump -Fc --compress=<the same>`, the like-for-like baseline
  module restore  `ansible -m aicost.monitoring.timescaledb_restore replace=true` (checksum,
                  drop/create, pre_restore, pg_restore, post_restore, ANALYZE, fingerprints)
  bare pg_restore createdb; CREATE EXTENSION; timescaledb_pre_restore(); pg_restore < file;
                  timescaledb_post_restore() (the documented manual procedure, no checks)

It prints the figures and the module/bare ratios. It measures, it does not judge: the exit
status is 0 whatever the timings (noise is no failure), non-zero only when a step breaks.

    .venv/bin/python benchmarks/timescaledb_modules.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".cache" / "collections"))
from ansible_collections.aicost.monitoring.plugins.module_utils import backup_set  # noqa: E402

ANSIBLE = REPO / ".venv" / "bin" / "ansible"
DATABASE = "aicost"

LOAD_ROWS = """
INSERT INTO llm_consumption (time, event_id, provider, model, project, customer_id,
    input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source,
    duration_seconds)
SELECT now() - (i::double precision / {rows}) * interval '90 days',
       md5(i::text)::uuid,
       (ARRAY['openai', 'anthropic', 'aws.bedrock', 'gcp.vertex_ai'])[1 + i % 4],
       (ARRAY['gpt-4.1', 'claude-sonnet-4', 'nova-pro', 'gemini-2.5-pro', 'o3'])[1 + i % 5],
       'project-' || (i % 20), 'customer-' || (i % 500),
       100 + i % 4000, i % 800, 20 + i % 1500, i % 200,
       CASE WHEN i % 50 = 0 THEN NULL ELSE round((i % 9973) * 0.00000731, 10) END,
       'computed', (i % 3000) / 100.0
FROM generate_series(1, {rows}) AS i
"""


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[:6]} failed: {completed.stderr.strip()[-2000:]}")
    return completed


def psql(container: str, database: str, statement: str) -> str:
    return run(
        ["docker", "exec", container, "psql", "-U", "postgres", "-d", database, "-Atqc", statement]
    ).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_container(image: str, password: str) -> tuple[str, int]:
    name = "b-bench-" + secrets.token_hex(4)
    port = free_port()
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "-e",
            f"POSTGRES_PASSWORD={password}",
            "-p",
            f"127.0.0.1:{port}:5432",
            image,
        ]
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["docker", "exec", name, "pg_isready", "-h", "127.0.0.1"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return name, port
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not become ready")


class Modules:
    """Runs the collection's modules through `ansible localhost -m`, as a playbook would."""

    def __init__(self, collections: Path, connection: dict) -> None:
        self.connection = connection
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        )

    def __call__(self, module: str, **args) -> dict:
        return self.run(f"aicost.monitoring.{module}", {**self.connection, **args})

    def ping(self) -> dict:
        return self.run("ansible.builtin.ping", {})

    def run(self, module: str, args: dict) -> dict:
        completed = subprocess.run(
            [
                str(ANSIBLE),
                "localhost",
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                "ansible_python_interpreter={{ ansible_playbook_python }}",
                "-m",
                module,
                *(["-a", json.dumps(args)] if args else []),
            ],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        result = json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        if result.get("failed"):
            raise RuntimeError(f"{module} failed: {result.get('msg')}")
        return result


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def interleaved(steps, repeat: int) -> dict[str, list[float]]:
    """Interleaved rounds, so drift (caches, autovacuum) hits every step alike."""
    samples: dict[str, list[float]] = {label: [] for label, _ in steps}
    for _ in range(repeat):
        for label, action in steps:
            samples[label].append(timed(action))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", default="aicost-test/timescaledb:2.29.2-pg17")
    parser.add_argument(
        "--compression", default="zstd:3", help="the backup set's pg_dump --compress"
    )
    options = parser.parse_args()

    password = secrets.token_urlsafe(16)
    workdir = Path(tempfile.mkdtemp(prefix="b-bench-"))
    collections = workdir / "collections"
    (collections / "ansible_collections" / "aicost").mkdir(parents=True)
    (collections / "ansible_collections" / "aicost" / "monitoring").symlink_to(REPO)
    container, port = start_container(options.image, password)
    try:
        modules = Modules(
            collections,
            dict(
                login_host="127.0.0.1", login_port=port, login_password=password, database=DATABASE
            ),
        )
        init = modules("timescaledb_init")
        init_steps = (
            (
                "init cold",
                lambda: modules("timescaledb_init", database="cold_" + secrets.token_hex(4)),
            ),
            ("init no-op", lambda: modules("timescaledb_init")),
            ("ansible ping", modules.ping),
        )
        init_samples = interleaved(init_steps, options.repeat)
        load = timed(lambda: psql(container, DATABASE, LOAD_ROWS.format(rows=options.rows)))
        psql(container, DATABASE, "VACUUM ANALYZE llm_consumption")
        size = psql(
            container, DATABASE, "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
        print(
            f"server: {init['server_version']}, license: {init['license']}, "
            f"TimescaleDB {init['extension_version']}"
        )
        print(f"loaded {options.rows:,} usage rows in {load:.1f} s; database size {size}")

        backups = workdir / "backups"
        bare_dump = workdir / "bare.dump"
        last_backup: dict = {}
        # Where the module's time goes, as the modules report it.
        breakdown: dict[str, list[float]] = {}

        def module_backup() -> None:
            last_backup.update(
                modules(
                    "timescaledb_backup",
                    container=container,
                    dest=str(backups),
                    keep_daily=1,
                    keep_weekly=0,
                )
            )
            manifest = last_backup["manifest"]
            breakdown.setdefault("backup fingerprint_seconds", []).append(
                manifest["fingerprint_seconds"]
            )
            breakdown.setdefault("backup duration_seconds", []).append(manifest["duration_seconds"])

        set_config = backup_set.BackupConfig(
            backup_dir=str(workdir / "sets"),
            stack_dir=str(workdir),
            compression=options.compression,
            timescaledb_port=port,
            timescaledb_password_file=str(workdir / "password"),
        )
        (workdir / "password").write_text(password)
        # The program finds the container through compose; this database has no project.
        backup_set.compose_container = lambda config, service: container
        set_rounds = iter(range(1000))

        def set_backup() -> None:
            part = backup_set.dump_timescaledb(
                set_config, str(workdir / "sets" / str(next(set_rounds))), "aicost-bench"
            )
            breakdown.setdefault("set duration_seconds", []).append(part["duration_seconds"])

        def bare_pg_dump(compression: str = "6", path: Path = bare_dump) -> None:
            with path.open("wb") as target:
                subprocess.run(
                    [
                        "docker",
                        "exec",
                        container,
                        "pg_dump",
                        "-U",
                        "postgres",
                        "-d",
                        DATABASE,
                        "-Fc",
                        "--compress=" + compression,
                    ],
                    stdout=target,
                    stderr=subprocess.DEVNULL,
                    check=True,
                )

        def module_restore() -> None:
            restored = modules(
                "timescaledb_restore",
                container=container,
                replace=True,
                manifest=last_backup["manifest_path"],
            )
            for part, seconds in restored["timings"].items():
                breakdown.setdefault("restore " + part, []).append(seconds)

        def bare_pg_restore() -> None:
            target = "bare_restore"
            psql(container, "postgres", f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
            psql(container, "postgres", f"CREATE DATABASE {target}")
            psql(
                container,
                target,
                "CREATE EXTENSION IF NOT EXISTS timescaledb; SELECT timescaledb_pre_restore()",
            )
            with bare_dump.open("rb") as source:
                subprocess.run(
                    [
                        "docker",
                        "exec",
                        "-i",
                        container,
                        "pg_restore",
                        "-U",
                        "postgres",
                        "-d",
                        target,
                        "--single-transaction",
                    ],
                    stdin=source,
                    check=True,
                    capture_output=True,
                )
            psql(container, target, "SELECT timescaledb_post_restore()")

        steps = (
            ("module backup", module_backup),
            ("bare pg_dump", bare_pg_dump),
            ("set backup", set_backup),
            (
                "bare zstd dump",
                lambda: bare_pg_dump(options.compression, workdir / "bare-zstd.dump"),
            ),
            ("module restore", module_restore),
            ("bare pg_restore", bare_pg_restore),
        )
        samples = interleaved(steps, options.repeat)
        figures = {
            label: (statistics.median(values), values)
            for label, values in {**init_samples, **samples}.items()
        }
        dump_bytes = last_backup["manifest"]["dump_bytes"]
        print(
            f"dump size: module {dump_bytes / 1e6:.1f} MB, bare "
            f"{bare_dump.stat().st_size / 1e6:.1f} MB"
        )
        print(f"{'step':<16}{'median s':>10}  samples")
        for label, (median, samples) in figures.items():
            print(f"{label:<16}{median:>10.2f}  " + ", ".join(f"{s:.2f}" for s in samples))
        print(
            "inside the modules (median s): "
            + ", ".join(
                f"{part} {statistics.median(values):.2f}" for part, values in breakdown.items()
            )
        )
        for measured, bare in (
            ("init cold", "ansible ping"),
            ("init no-op", "ansible ping"),
            ("module backup", "bare pg_dump"),
            ("set backup", "bare zstd dump"),
            ("set backup", "bare pg_dump"),
            ("module restore", "bare pg_restore"),
        ):
            ratio = figures[measured][0] / figures[bare][0]
            print(f"{measured} / {bare}: {ratio:.2f}x")
        return 0
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
