# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup sets of a monitoring host, and the program the backup role's timer runs.

A set is one directory ``<backup_dir>/<prefix>-<UTC time>`` holding the TimescaleDB dump
(through the same code as the timescaledb_backup module, with its own manifest), a
consistent copy of Grafana's SQLite database, and an archive of the stack's configuration
and secrets. Its ``manifest.json`` lists every file with its size and sha256 and is written
last, inside a hidden partial directory that is then renamed: a set exists only complete.

The program runs on the monitoring host without Ansible (the role installs these
module_utils beside it): ``aicost-backup run`` takes a set, applies retention and writes the
node-exporter textfile metrics; ``verify`` checks a set's files against its manifest;
``list`` shows the sets.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time

from ansible_collections.aicost.monitoring.plugins.module_utils.backup_copy import (
    CHECKSUMS_FILE,
    PARTIAL_PREFIX,
    SET_MANIFEST,
    BackupTarget,
    CopyFailed,
    SshSettings,
    copy_set,
    fetch_set,
    prune_target,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_backup_run import (
    BackupFailed,
    dump_database,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_dump import (
    Tool,
    fsync_directory,
)
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    BACKUP_ID,
    MANIFEST_SUFFIX,
    StoredBackup,
    backup_id,
    backup_time,
    expired_backups,
    prefix_problem,
    sha256_of_file,
    write_json_atomically,
)

SET_FORMAT = 1
LOCK_FILE = ".lock"
METRICS_FILE = "aicost_backup.prom"
# What Prometheus names a snapshot: <UTC time>-<random hex>.
SNAPSHOT_NAME = re.compile(r"^[0-9A-Za-z-]{1,64}$")
DEFAULT_CONFIG = "/etc/aicost/backup.json"


@dataclasses.dataclass(frozen=True)
class BackupConfig:
    """What the backup role writes to /etc/aicost/backup.json."""

    backup_dir: str
    stack_dir: str
    prefix: str = "aicost"
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    # pg_dump --compress: zstd is several times faster than gzip at a similar size.
    compression: str = "zstd:3"
    timescaledb_service: str = "timescaledb"
    timescaledb_host: str = "127.0.0.1"
    timescaledb_port: int = 5432
    timescaledb_user: str = "postgres"
    timescaledb_database: str = "aicost"
    timescaledb_password_file: str = ""
    grafana_volume: str = "aicost_grafana-data"
    grafana_database_file: str = "grafana.db"
    config_paths: tuple = ("compose.yml", "services", "config", "secrets")
    prometheus_snapshot: bool = False
    prometheus_service: str = "prometheus"
    prometheus_volume: str = "aicost_prometheus-data"
    prometheus_url: str = "http://127.0.0.1:9090"
    textfile_dir: str = ""
    docker: str = "docker"
    # Copies off the host: this host's name on the targets, and how to reach them.
    origin: str = ""
    targets: tuple = ()
    ssh_key_file: str = ""
    known_hosts_file: str = ""

    @classmethod
    def load(cls, path: str) -> BackupConfig:
        with open(path) as stream:
            values = json.load(stream)
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError("{0}: unknown settings {1}".format(path, ", ".join(unknown)))
        if "config_paths" in values:
            values["config_paths"] = tuple(values["config_paths"])
        if "targets" in values:
            values["targets"] = tuple(BackupTarget(**target) for target in values["targets"])
        config = cls(**values)
        problem = prefix_problem(config.prefix)
        if problem:
            raise ValueError(problem)
        if config.keep_daily < 1 or min(config.keep_weekly, config.keep_monthly) < 0:
            raise ValueError(
                "keep_daily must be at least 1, keep_weekly and keep_monthly at least 0"
            )
        if config.targets and not (
            config.origin and config.ssh_key_file and config.known_hosts_file
        ):
            raise ValueError(
                "copies to backup targets need origin, ssh_key_file and known_hosts_file"
            )
        return config

    @property
    def ssh(self) -> SshSettings:
        return SshSettings(self.ssh_key_file, self.known_hosts_file)

    @property
    def keep(self) -> tuple:
        return (self.keep_daily, self.keep_weekly, self.keep_monthly)


# Sets and retention


def list_sets(backup_dir: str, prefix: str) -> list[StoredBackup]:
    """Complete sets of ``prefix``, newest first."""
    sets = []
    for name in os.listdir(backup_dir) if os.path.isdir(backup_dir) else []:
        match = BACKUP_ID.match(name)
        if not match or match.group("prefix") != prefix:
            continue
        if os.path.isfile(os.path.join(backup_dir, name, SET_MANIFEST)):
            sets.append(StoredBackup(name, backup_time(name)))
    return sorted(sets, key=lambda stored: stored.taken_at, reverse=True)


def resolve_set(backup_dir: str, prefix: str, wanted: str) -> str:
    """The id of set ``wanted``, or of the newest set for ``latest``; ValueError if none."""
    sets = list_sets(backup_dir, prefix)
    if wanted == "latest":
        if not sets:
            raise ValueError("no complete backup set of {0} in {1}".format(prefix, backup_dir))
        return sets[0].id
    if wanted not in {stored.id for stored in sets}:
        raise ValueError("no complete backup set {0} in {1}".format(wanted, backup_dir))
    return wanted


def prune_sets(backup_dir: str, config: BackupConfig) -> list[str]:
    expired = expired_backups(
        list_sets(backup_dir, config.prefix),
        config.keep_daily,
        config.keep_weekly,
        config.keep_monthly,
    )
    for stored in expired:
        path = os.path.join(backup_dir, stored.id)
        # The manifest first: a set without one is no longer listed, even if we stop here.
        os.unlink(os.path.join(path, SET_MANIFEST))
        shutil.rmtree(path)
    return [stored.id for stored in expired]


def discard_partial_sets(backup_dir: str) -> list[str]:
    """What interrupted runs left; the caller holds the lock, so no run is active."""
    leftovers = sorted(name for name in os.listdir(backup_dir) if name.startswith(PARTIAL_PREFIX))
    for name in leftovers:
        shutil.rmtree(os.path.join(backup_dir, name))
    return leftovers


# The parts of a set


def copy_sqlite_database(source: str, target: str) -> dict:
    """A consistent copy of a live SQLite database through SQLite's online backup API."""
    origin = sqlite3.connect("file:{0}?mode=ro".format(source), uri=True, timeout=60)
    copy = sqlite3.connect(target)
    try:
        origin.backup(copy)
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupFailed(
                "the copy of {0} fails its integrity check: {1}".format(source, check)
            )
        tables = {
            row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        dashboards = (
            copy.execute("SELECT count(*) FROM dashboard").fetchone()[0]
            if "dashboard" in tables
            else None
        )
    finally:
        copy.close()
        origin.close()
    return {"dashboards": dashboards}


def docker_volume_path(docker: str, volume: str) -> str | None:
    completed = subprocess.run(
        [docker, "volume", "inspect", "--format", "{{ .Mountpoint }}", volume],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def archive_paths(root: str, names: tuple, target: str) -> list[str]:
    """A gzip tar of ``names`` under ``root`` (owners and modes kept), readable by root only."""
    present = [name for name in names if os.path.lexists(os.path.join(root, name))]
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream, tarfile.open(fileobj=stream, mode="w:gz") as tar:
        for name in present:
            tar.add(os.path.join(root, name), arcname=name)
    return present


def compose_container(config: BackupConfig, service: str) -> str:
    completed = subprocess.run(
        [config.docker, "compose", "ps", "--quiet", service],
        cwd=config.stack_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    container = completed.stdout.strip()
    if completed.returncode != 0 or not container:
        raise BackupFailed(
            "no running {0} container in {1}: {2}".format(
                service, config.stack_dir, completed.stderr.strip()
            )
        )
    return container


def dump_timescaledb(config: BackupConfig, dest: str, identifier: str) -> dict:
    with open(config.timescaledb_password_file) as stream:
        password = stream.read().strip()
    os.makedirs(dest, mode=0o700)
    params = dict(
        login_host=config.timescaledb_host,
        login_port=config.timescaledb_port,
        login_user=config.timescaledb_user,
        login_password=password,
        database=config.timescaledb_database,
        ssl_mode="prefer",
        connect_timeout=10,
        dest=dest,
        compress_level=config.compression,
    )
    tool = Tool(compose_container(config, config.timescaledb_service), config.docker, None)
    manifest = dump_database(params, tool, identifier)
    return {
        "manifest": os.path.join(os.path.basename(dest), identifier + MANIFEST_SUFFIX),
        "tables": {name: table["rows"] for name, table in manifest["tables"].items()},
        "extension": manifest["extension"],
        "duration_seconds": manifest["duration_seconds"],
    }


def copy_grafana(config: BackupConfig, dest: str) -> dict:
    volume = docker_volume_path(config.docker, config.grafana_volume)
    source = os.path.join(volume, config.grafana_database_file) if volume else None
    if source is None or not os.path.isfile(source):
        # Grafana not deployed on this host (or left out of the project): nothing to keep.
        return {
            "skipped": "no {0} in volume {1}".format(
                config.grafana_database_file, config.grafana_volume
            )
        }
    os.makedirs(dest, mode=0o700)
    target = os.path.join(dest, config.grafana_database_file)
    facts = copy_sqlite_database(source, target)
    return dict(
        facts,
        file=os.path.join(os.path.basename(dest), config.grafana_database_file),
        volume=config.grafana_volume,
    )


def snapshot_prometheus(config: BackupConfig, target: str) -> dict:
    """Prometheus's TSDB through its admin API's snapshot (hard links of the blocks and the
    head written out), archived into ``target``; the snapshot itself is then removed."""
    if not config.prometheus_snapshot:
        return {"skipped": "prometheus_snapshot is off"}
    container = compose_container(config, config.prometheus_service)
    completed = subprocess.run(
        [config.docker, "exec", container, "wget", "-q", "-O", "-", "--post-data=",
         config.prometheus_url + "/api/v1/admin/tsdb/snapshot"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        name = json.loads(completed.stdout)["data"]["name"]
    except (ValueError, KeyError, TypeError):
        name = None
    if not isinstance(name, str) or not SNAPSHOT_NAME.match(name):
        raise BackupFailed(
            "Prometheus took no snapshot (is its admin API on?): {0}{1}".format(
                completed.stdout.strip()[-300:], completed.stderr.strip()[-300:]
            )
        )
    volume = docker_volume_path(config.docker, config.prometheus_volume)
    if not volume:
        raise BackupFailed("no volume {0}".format(config.prometheus_volume))
    snapshot = os.path.join(volume, "snapshots", name)
    try:
        blocks = sorted(
            entry for entry in os.listdir(snapshot) if os.path.isdir(os.path.join(snapshot, entry))
        )
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # Blocks are compressed already: a plain tar.
        with os.fdopen(descriptor, "wb") as stream, tarfile.open(fileobj=stream, mode="w") as tar:
            tar.add(snapshot, arcname=".")
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return {"file": os.path.basename(target), "snapshot": name, "blocks": len(blocks),
            "volume": config.prometheus_volume}  # fmt: skip


def file_inventory(set_dir: str) -> dict[str, dict]:
    files = {}
    for directory, _subdirectories, names in os.walk(set_dir):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, set_dir)
            if relative in (SET_MANIFEST, CHECKSUMS_FILE):
                continue
            files[relative] = {"bytes": os.path.getsize(path), "sha256": sha256_of_file(path)}
    return dict(sorted(files.items()))


def write_checksums(set_dir: str, files: dict[str, dict]) -> None:
    with open(os.path.join(set_dir, CHECKSUMS_FILE), "w") as stream:
        stream.writelines(
            "{0}  {1}\n".format(entry["sha256"], name) for name, entry in files.items()
        )


def take_set(config: BackupConfig, now: datetime.datetime) -> dict:
    """Write one complete set; return its manifest. The caller holds the lock."""
    started = time.monotonic()
    identifier = backup_id(config.prefix, now)
    final = os.path.join(config.backup_dir, identifier)
    if os.path.exists(final):
        raise BackupFailed("backup set {0} exists already".format(identifier))
    partial = os.path.join(config.backup_dir, PARTIAL_PREFIX + identifier)
    os.makedirs(partial, mode=0o700)
    try:
        parts = {
            "timescaledb": dump_timescaledb(
                config, os.path.join(partial, "timescaledb"), identifier
            ),
            "grafana": copy_grafana(config, os.path.join(partial, "grafana")),
            "prometheus": snapshot_prometheus(config, os.path.join(partial, "prometheus.tar")),
            "config": {
                "file": "config.tar.gz",
                "paths": archive_paths(
                    config.stack_dir, config.config_paths, os.path.join(partial, "config.tar.gz")
                ),
                "root": config.stack_dir,
            },
        }
        files = file_inventory(partial)
        write_checksums(partial, files)
        manifest = {
            "format": SET_FORMAT,
            "id": identifier,
            "created_at": now.astimezone(datetime.timezone.utc).isoformat(),
            "host": socket.gethostname(),
            "parts": parts,
            "files": files,
            "total_bytes": sum(entry["bytes"] for entry in files.values()),
            "duration_seconds": round(time.monotonic() - started, 3),
        }
        write_json_atomically(os.path.join(partial, SET_MANIFEST), manifest)
        fsync_directory(partial)
        os.rename(partial, final)
        fsync_directory(config.backup_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def set_problems(set_dir: str) -> list[str]:
    """Why the set in ``set_dir`` cannot be trusted: every file checked against the manifest."""
    try:
        with open(os.path.join(set_dir, SET_MANIFEST)) as stream:
            manifest = json.load(stream)
        files = manifest["files"]
        if manifest.get("format") != SET_FORMAT or not isinstance(files, dict):
            return ["unsupported set manifest in {0}".format(set_dir)]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return ["unreadable set manifest in {0}: {1}".format(set_dir, error)]
    problems = []
    for relative, entry in files.items():
        path = os.path.normpath(os.path.join(set_dir, relative))
        if os.path.isabs(relative) or not path.startswith(os.path.normpath(set_dir) + os.sep):
            problems.append("{0}: not a path inside the set".format(relative))
        elif not os.path.isfile(path):
            problems.append("{0}: missing".format(relative))
        elif os.path.getsize(path) != entry["bytes"]:
            problems.append(
                "{0}: {1} bytes, the manifest says {2}".format(
                    relative, os.path.getsize(path), entry["bytes"]
                )
            )
        elif sha256_of_file(path) != entry["sha256"]:
            problems.append("{0}: sha256 differs from the manifest".format(relative))
    return problems


# Metrics


def metrics_text(config: BackupConfig, run_at: float, succeeded: bool, duration: float) -> str:
    """node-exporter textfile metrics; the last success is the newest complete set on disk."""
    sets = list_sets(config.backup_dir, config.prefix)
    lines = []

    def gauge(name: str, help_text: str, value: float) -> None:
        lines.extend(
            [
                "# HELP {0} {1}".format(name, help_text),
                "# TYPE {0} gauge".format(name),
                "{0} {1}".format(name, value),
            ]
        )

    gauge("aicost_backup_last_run_timestamp_seconds", "When the last backup run ended.", run_at)
    gauge(
        "aicost_backup_last_run_success",
        "1 if the last backup run succeeded, else 0.",
        1 if succeeded else 0,
    )
    gauge(
        "aicost_backup_last_run_duration_seconds",
        "Wall time of the last backup run.",
        round(duration, 3),
    )
    gauge("aicost_backup_sets", "Complete backup sets kept on this host.", len(sets))
    if sets:
        newest = os.path.join(config.backup_dir, sets[0].id, SET_MANIFEST)
        with open(newest) as stream:
            total = json.load(stream)["total_bytes"]
        gauge(
            "aicost_backup_last_success_timestamp_seconds",
            "When the newest complete backup set was taken.",
            sets[0].taken_at.timestamp(),
        )
        gauge("aicost_backup_last_size_bytes", "Size of the newest complete backup set.", total)
    return "\n".join(lines) + "\n"


def write_metrics(config: BackupConfig, text: str) -> None:
    if not config.textfile_dir:
        return
    os.makedirs(config.textfile_dir, exist_ok=True)
    target = os.path.join(config.textfile_dir, METRICS_FILE)
    temporary = target + ".tmp"  # node-exporter reads *.prom only
    with open(temporary, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)


# The program


@contextlib.contextmanager
def holding_lock(backup_dir: str):
    """The lock every run and fetch takes in ``backup_dir``: never two at once."""
    with open(os.path.join(backup_dir, LOCK_FILE), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BackupFailed("another backup is running in {0}".format(backup_dir)) from None
        yield


def run(config: BackupConfig, now: datetime.datetime | None = None) -> dict:
    """Take a set, apply retention, export metrics. Raises on failure after the metrics."""
    started = time.monotonic()
    os.makedirs(config.backup_dir, mode=0o700, exist_ok=True)
    with holding_lock(config.backup_dir):
        succeeded = False
        try:
            discarded = discard_partial_sets(config.backup_dir)
            manifest = take_set(config, now or datetime.datetime.now(datetime.timezone.utc))
            pruned = prune_sets(config.backup_dir, config)
            copies = copy_to_targets(config, manifest["id"])
            succeeded = True
        finally:
            write_metrics(
                config, metrics_text(config, time.time(), succeeded, time.monotonic() - started)
            )
    return {
        "id": manifest["id"],
        "path": os.path.join(config.backup_dir, manifest["id"]),
        "total_bytes": manifest["total_bytes"],
        "duration_seconds": manifest["duration_seconds"],
        "parts": manifest["parts"],
        "pruned": pruned,
        "discarded": discarded,
        "copies": copies,
    }


def copy_to_targets(config: BackupConfig, identifier: str) -> list[dict]:
    """Copy the new set to every target and apply retention there. Every target is tried;
    any failure fails the run (the set stays on this host)."""
    copies, failures = [], []
    for target in config.targets:
        try:
            copy = copy_set(
                config.ssh, target, config.origin,
                os.path.join(config.backup_dir, identifier), identifier,
            )  # fmt: skip
            copy["pruned"] = prune_target(
                config.ssh, target, config.origin, config.prefix, config.keep
            )
            copies.append(copy)
        except (CopyFailed, OSError) as error:
            failures.append(str(error))
    if failures:
        raise BackupFailed(
            "set {0} is kept on this host, but not copied: {1}".format(
                identifier, "; ".join(failures)
            )
        )
    return copies


def fetch(config: BackupConfig, wanted: str, target_name: str, origin: str) -> dict:
    """Bring a set from a backup target into backup_dir (the disaster-recovery path)."""
    targets = {target.name: target for target in config.targets}
    if target_name not in targets:
        raise ValueError(
            "{0} is not a backup target of this host (targets: {1})".format(
                target_name, ", ".join(sorted(targets)) or "none"
            )
        )
    os.makedirs(config.backup_dir, mode=0o700, exist_ok=True)
    with holding_lock(config.backup_dir):
        identifier = fetch_set(
            config.ssh, targets[target_name], origin or config.origin, config.prefix, wanted,
            config.backup_dir, set_problems,
        )  # fmt: skip
    return {
        "id": identifier,
        "path": os.path.join(config.backup_dir, identifier),
        "from": target_name,
    }


def verify(config: BackupConfig, wanted: str) -> dict:
    identifier = resolve_set(config.backup_dir, config.prefix, wanted)
    path = os.path.join(config.backup_dir, identifier)
    problems = set_problems(path)
    with open(os.path.join(path, SET_MANIFEST)) as stream:
        manifest = json.load(stream)
    return {
        "id": identifier,
        "path": path,
        "ok": not problems,
        "problems": problems,
        "parts": manifest.get("parts", {}),
        "created_at": manifest.get("created_at"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aicost-backup", description=__doc__.split("\n\n", maxsplit=1)[0]
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="take a backup set, apply retention, export metrics")
    verify_parser = commands.add_parser("verify", help="check a set against its manifest")
    verify_parser.add_argument("backup_id", help="a set id, or latest")
    commands.add_parser("list", help="the complete sets, newest first")
    fetch_parser = commands.add_parser("fetch", help="bring a set back from a backup target")
    fetch_parser.add_argument("backup_id", help="a set id, or latest")
    fetch_parser.add_argument("--target", required=True, help="the backup target's inventory name")
    fetch_parser.add_argument(
        "--origin", default="", help="whose sets (default: this host's inventory name)"
    )
    arguments = parser.parse_args(argv)
    os.umask(0o077)
    try:
        config = BackupConfig.load(arguments.config)
        if arguments.command == "run":
            result = run(config)
            sys.stderr.write(
                "backup set {0}: {1} bytes in {2} s, pruned {3}\n".format(
                    result["id"],
                    result["total_bytes"],
                    result["duration_seconds"],
                    ", ".join(result["pruned"]) or "nothing",
                )
            )
        elif arguments.command == "verify":
            result = verify(config, arguments.backup_id)
        elif arguments.command == "fetch":
            result = fetch(config, arguments.backup_id, arguments.target, arguments.origin)
        else:
            result = {"sets": [stored.id for stored in list_sets(config.backup_dir, config.prefix)]}
    except (
        BackupFailed,
        CopyFailed,
        ValueError,
        OSError,
        sqlite3.Error,
        tarfile.TarError,
    ) as error:
        sys.stderr.write("aicost-backup {0} failed: {1}\n".format(arguments.command, error))
        return 1
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0 if result.get("ok", True) else 2
