"""Backup sets: retention over faked dates, the set manifest's checks, the parts, metrics."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils import backup_set
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    StoredBackup,
    backup_id,
    expired_backups,
)

UTC = datetime.UTC


def config_for(tmp_path, **overrides) -> backup_set.BackupConfig:
    values = dict(
        backup_dir=str(tmp_path / "backups"),
        stack_dir=str(tmp_path / "stack"),
        textfile_dir=str(tmp_path / "textfile"),
    )
    values.update(overrides)
    return backup_set.BackupConfig(**values)


def fake_set(config: backup_set.BackupConfig, when: datetime.datetime, size: int = 10) -> str:
    """A complete set on disk as take_set leaves it, without a database behind it."""
    identifier = backup_id(config.prefix, when)
    path = os.path.join(config.backup_dir, identifier)
    os.makedirs(path)
    with open(os.path.join(path, "config.tar.gz"), "wb") as stream:
        stream.write(b"x" * size)
    manifest = {
        "format": backup_set.SET_FORMAT,
        "id": identifier,
        "files": backup_set.file_inventory(path),
        "total_bytes": size,
        "parts": {},
    }
    with open(os.path.join(path, backup_set.SET_MANIFEST), "w") as stream:
        json.dump(manifest, stream)
    return identifier


def daily_at_3(start: datetime.date, days: int) -> list[datetime.datetime]:
    return [
        datetime.datetime.combine(start + datetime.timedelta(days=n), datetime.time(3), UTC)
        for n in range(days)
    ]


def test_a_year_of_daily_sets_keeps_exactly_the_promised_days_weeks_and_months(tmp_path):
    config = config_for(tmp_path, keep_daily=7, keep_weekly=4, keep_monthly=6)
    for when in daily_at_3(datetime.date(2026, 1, 1), 365):
        fake_set(config, when)
        backup_set.prune_sets(config.backup_dir, config)
    kept = {stored.taken_at.date() for stored in backup_set.list_sets(config.backup_dir, "aicost")}
    last = datetime.date(2026, 12, 31)
    daily = {last - datetime.timedelta(days=n) for n in range(7)}
    # Newest backup of each of the last 4 ISO weeks: the Sundays before the current week's
    # newest (Thu 12-31, week 53), i.e. 12-31, 12-27, 12-20, 12-13.
    weekly = {
        datetime.date(2026, 12, 31),
        datetime.date(2026, 12, 27),
        datetime.date(2026, 12, 20),
        datetime.date(2026, 12, 13),
    }
    # Newest of each of the last 6 months: the month ends, December's being 12-31.
    monthly = {
        datetime.date(2026, month, 1) - datetime.timedelta(days=1) for month in range(8, 13)
    } | {datetime.date(2026, 12, 31)}
    assert kept == daily | weekly | monthly
    assert len(kept) == 7 + 2 + 5  # 12-31 and 12-27 are daily and weekly, 12-31 monthly too


def test_several_sets_a_day_keep_only_the_newest_of_older_days():
    when = [datetime.datetime(2026, 3, 10, hour, tzinfo=UTC) for hour in (1, 13, 23)] + [
        datetime.datetime(2026, 3, 9, hour, tzinfo=UTC) for hour in (2, 22)
    ]
    backups = [StoredBackup(backup_id("aicost", moment), moment) for moment in when]
    expired = expired_backups(backups, keep_daily=2, keep_weekly=0, keep_monthly=0)
    assert sorted(b.taken_at.hour for b in expired) == [1, 2, 13]


def test_monthly_retention_counts_months_that_have_backups():
    moments = [datetime.datetime(2026, month, 15, tzinfo=UTC) for month in (1, 2, 5, 9)]
    backups = [StoredBackup(backup_id("aicost", moment), moment) for moment in moments]
    expired = expired_backups(backups, keep_daily=1, keep_weekly=0, keep_monthly=3)
    assert [b.taken_at.month for b in expired] == [1]


def test_pruning_touches_only_complete_sets_of_the_prefix(tmp_path):
    config = config_for(tmp_path, keep_daily=1, keep_weekly=0, keep_monthly=0)
    old = fake_set(config, datetime.datetime(2026, 3, 1, 3, tzinfo=UTC))
    new = fake_set(config, datetime.datetime(2026, 3, 2, 3, tzinfo=UTC))
    other = fake_set(
        config_for(tmp_path, prefix="other"), datetime.datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert backup_set.prune_sets(config.backup_dir, config) == [old]
    assert sorted(os.listdir(config.backup_dir)) == sorted([new, other])


def test_partial_sets_are_discarded_and_never_listed(tmp_path):
    config = config_for(tmp_path)
    partial = os.path.join(config.backup_dir, backup_set.PARTIAL_PREFIX + "aicost-20260301T030000Z")
    os.makedirs(partial)
    assert backup_set.list_sets(config.backup_dir, "aicost") == []
    assert backup_set.discard_partial_sets(config.backup_dir) == [os.path.basename(partial)]
    assert not os.path.exists(partial)


def test_latest_resolves_to_the_newest_set_and_unknown_ids_are_refused(tmp_path):
    config = config_for(tmp_path)
    fake_set(config, datetime.datetime(2026, 3, 1, tzinfo=UTC))
    newest = fake_set(config, datetime.datetime(2026, 3, 2, tzinfo=UTC))
    assert backup_set.resolve_set(config.backup_dir, "aicost", "latest") == newest
    with pytest.raises(ValueError, match="no complete backup set"):
        backup_set.resolve_set(config.backup_dir, "aicost", "aicost-20200101T000000Z")


def test_a_corrupted_or_missing_file_is_found(tmp_path):
    config = config_for(tmp_path)
    identifier = fake_set(config, datetime.datetime(2026, 3, 1, tzinfo=UTC))
    path = os.path.join(config.backup_dir, identifier)
    assert backup_set.set_problems(path) == []
    with open(os.path.join(path, "config.tar.gz"), "r+b") as stream:
        stream.write(b"y")
    assert backup_set.set_problems(path) == ["config.tar.gz: sha256 differs from the manifest"]
    os.unlink(os.path.join(path, "config.tar.gz"))
    assert backup_set.set_problems(path) == ["config.tar.gz: missing"]


def test_a_manifest_cannot_point_outside_its_set(tmp_path):
    config = config_for(tmp_path)
    identifier = fake_set(config, datetime.datetime(2026, 3, 1, tzinfo=UTC))
    path = os.path.join(config.backup_dir, identifier)
    manifest_path = os.path.join(path, backup_set.SET_MANIFEST)
    manifest = json.loads(Path(manifest_path).read_text())
    manifest["files"]["../../etc/passwd"] = {"bytes": 1, "sha256": "0" * 64}
    Path(manifest_path).write_text(json.dumps(manifest))
    assert backup_set.set_problems(path) == ["../../etc/passwd: not a path inside the set"]


def test_the_sqlite_copy_is_complete_and_counts_dashboards(tmp_path):
    source = tmp_path / "grafana.db"
    live = sqlite3.connect(source)
    live.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT)")
    live.executemany("INSERT INTO dashboard (title) VALUES (?)", [("a",), ("b",)])
    live.commit()
    # A writer holds an open transaction with uncommitted rows: the copy sees only commits.
    live.execute("INSERT INTO dashboard (title) VALUES ('uncommitted')")
    facts = backup_set.copy_sqlite_database(str(source), str(tmp_path / "copy.db"))
    live.rollback()
    live.close()
    assert facts == {"dashboards": 2}
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert [row[0] for row in copy.execute("SELECT title FROM dashboard ORDER BY id")] == ["a", "b"]


def test_the_config_archive_keeps_modes_and_is_private(tmp_path):
    stack = tmp_path / "stack"
    (stack / "secrets").mkdir(parents=True)
    (stack / "secrets" / "password").write_text("s3cret")
    os.chmod(stack / "secrets" / "password", 0o400)
    (stack / "compose.yml").write_text("name: aicost\n")
    target = tmp_path / "config.tar.gz"
    present = backup_set.archive_paths(
        str(stack), ("compose.yml", "config", "secrets"), str(target)
    )
    assert present == ["compose.yml", "secrets"]
    assert os.stat(target).st_mode & 0o777 == 0o600
    with tarfile.open(target) as tar:
        assert tar.getmember("secrets/password").mode == 0o400


def test_metrics_report_the_newest_set_and_the_last_run(tmp_path):
    config = config_for(tmp_path)
    fake_set(config, datetime.datetime(2026, 3, 1, tzinfo=UTC), size=5)
    fake_set(config, datetime.datetime(2026, 3, 2, tzinfo=UTC), size=42)
    text = backup_set.metrics_text(config, 1772500000.0, False, 1.5)
    values = dict(line.split(" ") for line in text.splitlines() if not line.startswith("#"))
    assert values == {
        "aicost_backup_last_run_timestamp_seconds": "1772500000.0",
        "aicost_backup_last_run_success": "0",
        "aicost_backup_last_run_duration_seconds": "1.5",
        "aicost_backup_sets": "2",
        "aicost_backup_last_success_timestamp_seconds": str(
            datetime.datetime(2026, 3, 2, tzinfo=UTC).timestamp()
        ),
        "aicost_backup_last_size_bytes": "42",
    }


def test_a_failed_run_keeps_nothing_and_exports_the_failure(tmp_path):
    config = config_for(tmp_path, timescaledb_password_file=str(tmp_path / "missing"))
    os.makedirs(config.stack_dir)
    with pytest.raises(OSError):
        backup_set.run(config, datetime.datetime(2026, 3, 2, tzinfo=UTC))
    assert os.listdir(config.backup_dir) == [backup_set.LOCK_FILE]
    metrics = Path(config.textfile_dir, backup_set.METRICS_FILE).read_text()
    assert "aicost_backup_last_run_success 0" in metrics
    assert "aicost_backup_last_success_timestamp_seconds" not in metrics


def test_a_second_run_while_one_holds_the_lock_is_refused(tmp_path):
    import fcntl

    config = config_for(tmp_path)
    os.makedirs(config.backup_dir)
    with open(os.path.join(config.backup_dir, backup_set.LOCK_FILE), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(backup_set.BackupFailed, match="another backup is running"):
            backup_set.run(config)


def test_unknown_settings_are_refused(tmp_path):
    path = tmp_path / "backup.json"
    path.write_text(json.dumps({"backup_dir": "/b", "stack_dir": "/s", "keep_dialy": 3}))
    with pytest.raises(ValueError, match="unknown settings keep_dialy"):
        backup_set.BackupConfig.load(str(path))


@pytest.fixture
def umask_kept():
    """main() sets the program's umask; the test process keeps its own."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask_kept")
def test_the_program_exit_status_tells_the_restore_what_it_found(tmp_path, capsys):
    config = config_for(tmp_path)
    settings = tmp_path / "backup.json"
    settings.write_text(
        json.dumps({"backup_dir": config.backup_dir, "stack_dir": config.stack_dir})
    )
    assert backup_set.main(["--config", str(settings), "verify", "latest"]) == 1
    assert "no complete backup set" in capsys.readouterr().err
    identifier = fake_set(config, datetime.datetime(2026, 3, 1, tzinfo=UTC))
    assert backup_set.main(["--config", str(settings), "verify", "latest"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == identifier
    Path(config.backup_dir, identifier, "config.tar.gz").write_bytes(b"y" * 10)
    assert backup_set.main(["--config", str(settings), "verify", identifier]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problems"] == ["config.tar.gz: sha256 differs from the manifest"]


FAKE_DOCKER = """#!/bin/sh
# docker stand-in: `exec ... wget` answers the snapshot API, `volume inspect` the volume path.
case "$1" in
  exec) cat "$(dirname "$0")/answer" ;;
  volume) echo "$(dirname "$0")/volume" ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    monkeypatch.setattr(backup_set, "compose_container", lambda config, service: "prometheus-1")
    return docker


def test_the_prometheus_snapshot_is_archived_then_removed_from_the_volume(tmp_path, fake_docker):
    (tmp_path / "answer").write_text('{"status":"success","data":{"name":"20261129T031500Z-5f1d"}}')
    block = (
        tmp_path / "volume" / "snapshots" / "20261129T031500Z-5f1d" / "01JB0000000000000000000000"
    )
    (block / "chunks").mkdir(parents=True)
    (block / "chunks" / "000001").write_bytes(b"samples")
    (block / "meta.json").write_text("{}")
    config = config_for(tmp_path, prometheus_snapshot=True, docker=str(fake_docker))

    part = backup_set.snapshot_prometheus(config, str(tmp_path / "prometheus.tar"))

    assert part == {
        "file": "prometheus.tar",
        "snapshot": "20261129T031500Z-5f1d",
        "blocks": 1,
        "volume": "aicost_prometheus-data",
    }
    with tarfile.open(tmp_path / "prometheus.tar") as tar:
        assert "./01JB0000000000000000000000/chunks/000001" in tar.getnames()
    assert os.listdir(tmp_path / "volume" / "snapshots") == []
    assert oct(os.stat(tmp_path / "prometheus.tar").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "answer",
    [
        '{"status":"error","error":"admin APIs disabled"}',
        '{"status":"success","data":{"name":"../../etc"}}',
        "not json",
    ],
)
def test_a_refused_or_odd_snapshot_fails_the_part_and_touches_nothing(
    tmp_path, fake_docker, answer
):
    (tmp_path / "answer").write_text(answer)
    (tmp_path / "volume" / "snapshots").mkdir(parents=True)
    config = config_for(tmp_path, prometheus_snapshot=True, docker=str(fake_docker))
    with pytest.raises(backup_set.BackupFailed, match="Prometheus took no snapshot"):
        backup_set.snapshot_prometheus(config, str(tmp_path / "prometheus.tar"))
    assert not (tmp_path / "prometheus.tar").exists()


def test_without_the_option_prometheus_is_not_asked(tmp_path):
    part = backup_set.snapshot_prometheus(config_for(tmp_path), str(tmp_path / "p.tar"))
    assert part == {"skipped": "prometheus_snapshot is off"}
