"""Copies of backup sets on backup targets: real rsync and sha256sum, with SSH replaced by a
shim that runs the remote command on this machine (molecule's backup step uses real SSH)."""

from __future__ import annotations

import datetime
import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils import backup_copy, backup_set
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    backup_id,
)

UTC = datetime.UTC

SSH_SHIM = """#!/bin/sh
# ssh stand-in: drop the options and the login, run the remote command here.
while [ $# -gt 0 ]; do
  case "$1" in
    -i|-p|-o|-l) shift 2 ;;
    --) shift; break ;;
    *) shift; [ "${1:-}" = "--" ] && shift; break ;;
  esac
done
exec sh -c "$*"
"""


@pytest.fixture
def ssh(tmp_path) -> backup_copy.SshSettings:
    shim = tmp_path / "ssh"
    shim.write_text(SSH_SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return backup_copy.SshSettings("/dev/null", "/dev/null", program=str(shim))


@pytest.fixture
def target(tmp_path) -> backup_copy.BackupTarget:
    # A space and a quote in the path: every argument reaches the remote shell intact.
    return backup_copy.BackupTarget(
        name="vault", address="vault.example", root=str(tmp_path / "copies o'k")
    )


def complete_set(backup_dir: Path, when: datetime.datetime, content: bytes = b"dump") -> str:
    """A set as take_set leaves it: files, SHA256SUMS, then the manifest."""
    identifier = backup_id("aicost", when)
    path = backup_dir / identifier
    (path / "timescaledb").mkdir(parents=True)
    (path / "timescaledb" / "x.dump").write_bytes(content)
    (path / "config.tar.gz").write_bytes(b"config")
    files = backup_set.file_inventory(str(path))
    backup_set.write_checksums(str(path), files)
    manifest = {"format": backup_set.SET_FORMAT, "id": identifier, "files": files}
    (path / backup_set.SET_MANIFEST).write_text(json.dumps(manifest))
    return identifier


def day(n: int) -> datetime.datetime:
    return datetime.datetime(2026, 11, 1, 3, tzinfo=UTC) + datetime.timedelta(days=n)


def test_a_copy_is_listed_on_the_target_only_complete_and_checked(tmp_path, ssh, target):
    identifier = complete_set(tmp_path / "sets", day(0))
    copy = backup_copy.copy_set(ssh, target, "vm1", str(tmp_path / "sets" / identifier), identifier)
    remote = Path(target.root) / "vm1"
    assert copy == {"target": "vault", "path": f"{remote}/{identifier}"}
    assert sorted(os.listdir(remote)) == [identifier]
    for name in ("timescaledb/x.dump", "config.tar.gz", "SHA256SUMS", "manifest.json"):
        assert (remote / identifier / name).read_bytes() == (
            tmp_path / "sets" / identifier / name
        ).read_bytes()
    assert backup_copy.remote_sets(ssh, target, "vm1", "aicost") == [identifier]


def test_a_file_that_does_not_match_its_checksum_is_never_listed_on_the_target(
    tmp_path, ssh, target
):
    identifier = complete_set(tmp_path / "sets", day(0))
    (tmp_path / "sets" / identifier / "config.tar.gz").write_bytes(b"changed after the sums")
    with pytest.raises(
        backup_copy.CopyFailed,
        match="checking the copy of aicost-20261101T030000Z on backup target vault",
    ):
        backup_copy.copy_set(ssh, target, "vm1", str(tmp_path / "sets" / identifier), identifier)
    assert backup_copy.remote_sets(ssh, target, "vm1", "aicost") == []


def test_a_manifest_changed_in_transit_is_refused(tmp_path, ssh, target, monkeypatch):
    identifier = complete_set(tmp_path / "sets", day(0))
    real = backup_copy.sha256_of_file
    monkeypatch.setattr(
        backup_copy,
        "sha256_of_file",
        lambda path: "0" * 64 if path.endswith("manifest.json") else real(path),
    )
    with pytest.raises(backup_copy.CopyFailed):
        backup_copy.copy_set(ssh, target, "vm1", str(tmp_path / "sets" / identifier), identifier)
    assert backup_copy.remote_sets(ssh, target, "vm1", "aicost") == []


def test_retention_on_the_target_follows_the_host_and_drops_stale_partial_copies(
    tmp_path, ssh, target
):
    ids = [complete_set(tmp_path / "sets", day(n)) for n in range(6)]
    for identifier in ids:
        backup_copy.copy_set(ssh, target, "vm1", str(tmp_path / "sets" / identifier), identifier)
    stale = Path(target.root) / "vm1" / (backup_copy.PARTIAL_PREFIX + backup_id("aicost", day(9)))
    stale.mkdir()
    other_origin = complete_set(tmp_path / "other", day(0))
    backup_copy.copy_set(ssh, target, "vm9", str(tmp_path / "other" / other_origin), other_origin)

    pruned = backup_copy.prune_target(ssh, target, "vm1", "aicost", (3, 0, 0))

    assert pruned == ids[:3][::-1]
    assert sorted(os.listdir(Path(target.root) / "vm1")) == ids[3:]
    assert os.listdir(Path(target.root) / "vm9") == [other_origin]


def test_fetch_brings_the_newest_set_back_checked_against_its_manifest(tmp_path, ssh, target):
    for n in range(3):
        identifier = complete_set(tmp_path / "lost", day(n))
        backup_copy.copy_set(
            ssh, target, "old-host", str(tmp_path / "lost" / identifier), identifier
        )
    restored = tmp_path / "new-host"
    restored.mkdir()

    fetched = backup_copy.fetch_set(
        ssh, target, "old-host", "aicost", "latest", str(restored), backup_set.set_problems
    )

    assert fetched == backup_id("aicost", day(2))
    assert os.listdir(restored) == [fetched]
    assert backup_set.set_problems(str(restored / fetched)) == []
    assert stat.S_IMODE((restored / fetched).stat().st_mode) == 0o700


def test_fetch_refuses_a_copy_that_fails_its_manifest_and_keeps_nothing(tmp_path, ssh, target):
    identifier = complete_set(tmp_path / "lost", day(0))
    backup_copy.copy_set(ssh, target, "old-host", str(tmp_path / "lost" / identifier), identifier)
    (Path(target.root) / "old-host" / identifier / "timescaledb" / "x.dump").write_bytes(b"rot!")
    restored = tmp_path / "new-host"
    restored.mkdir()
    with pytest.raises(
        backup_copy.CopyFailed, match=r"timescaledb/x\.dump: sha256 differs from the manifest"
    ):
        backup_copy.fetch_set(
            ssh, target, "old-host", "aicost", identifier, str(restored), backup_set.set_problems
        )
    assert os.listdir(restored) == []


def test_fetch_names_what_is_missing(tmp_path, ssh, target):
    with pytest.raises(
        backup_copy.CopyFailed, match="no backup set of old-host on backup target vault"
    ):
        backup_copy.fetch_set(
            ssh, target, "old-host", "aicost", "latest", str(tmp_path), backup_set.set_problems
        )


def test_an_unreachable_target_fails_the_run_but_keeps_the_set_on_the_host(tmp_path):
    identifier = complete_set(tmp_path / "backups", day(0))
    config = backup_set.BackupConfig(
        backup_dir=str(tmp_path / "backups"),
        stack_dir=str(tmp_path),
        origin="vm1",
        targets=(backup_copy.BackupTarget(name="gone", address="gone.invalid", root="/x"),),
        ssh_key_file="/dev/null",
        known_hosts_file="/dev/null",
    )
    with pytest.raises(
        backup_set.BackupFailed, match=r"kept on this host, but not copied: .* backup target gone"
    ):
        backup_set.copy_to_targets(config, identifier)
    assert os.listdir(tmp_path / "backups") == [identifier]


def test_the_settings_name_each_target_and_need_the_key_to_reach_them(tmp_path):
    settings = {
        "backup_dir": "/b",
        "stack_dir": "/s",
        "origin": "vm1",
        "targets": [{"name": "vault", "address": "10.0.0.9", "root": "/r", "port": 2222}],
        "ssh_key_file": "/etc/aicost/backup_ed25519",
        "known_hosts_file": "/etc/aicost/backup_known_hosts",
    }
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(settings))
    config = backup_set.BackupConfig.load(str(path))
    assert config.targets == (backup_copy.BackupTarget("vault", "10.0.0.9", "/r", port=2222),)
    assert config.ssh.argv(config.targets[0])[:5] == [
        "ssh",
        "-i",
        "/etc/aicost/backup_ed25519",
        "-p",
        "2222",
    ]

    del settings["ssh_key_file"]
    path.write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="need origin, ssh_key_file and known_hosts_file"):
        backup_set.BackupConfig.load(str(path))
