"""Backup names, manifests and retention."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    StoredBackup,
    backup_id,
    backup_time,
    expired_backups,
    interrupted_backup_files,
    list_backups,
    prefix_problem,
    read_manifest,
    write_json_atomically,
)

UTC = datetime.UTC


def at(text: str) -> StoredBackup:
    when = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return StoredBackup(backup_id("aicost", when), when)


def test_backup_id_round_trips_in_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    local = datetime.datetime(2026, 3, 1, 1, 30, tzinfo=plus_two)
    identifier = backup_id("aicost", local)
    assert identifier == "aicost-20260228T233000Z"
    assert backup_time(identifier) == local
    assert backup_time("aicost-latest") is None


def test_one_backup_per_day_and_per_week_survives():
    backups = [
        at(t)
        for t in (
            "2026-03-10 03:00",
            "2026-03-10 01:00",
            "2026-03-09 03:00",
            "2026-03-08 03:00",
            "2026-03-01 03:00",
            "2026-02-20 03:00",
        )
    ]
    expired = expired_backups(backups, keep_daily=2, keep_weekly=2)
    # Daily: 03-10 03:00, 03-09. Weekly: ISO week 11 (03-10 03:00), week 10 (03-08).
    assert [b.taken_at.strftime("%m-%d %H") for b in expired] == [
        "03-10 01",
        "03-01 03",
        "02-20 03",
    ]


def test_the_newest_backup_always_survives():
    backups = [at("2026-03-10 03:00"), at("2026-03-09 03:00")]
    assert expired_backups(backups, keep_daily=1, keep_weekly=0) == [backups[1]]


def test_only_complete_backups_of_the_prefix_are_listed(tmp_path):
    (tmp_path / "aicost-20260310T030000Z.manifest.json").write_text("{}")
    (tmp_path / "aicost-20260311T030000Z.dump").write_text("")  # no manifest: incomplete
    (tmp_path / "other-20260310T030000Z.manifest.json").write_text("{}")
    assert [b.id for b in list_backups(str(tmp_path), "aicost")] == ["aicost-20260310T030000Z"]


def test_manifest_is_written_atomically_and_validated(tmp_path):
    path = tmp_path / "m.json"
    document = {
        "format": 1,
        "id": "x",
        "dump_file": "x.dump",
        "dump_bytes": 1,
        "sha256": "0" * 64,
        "tables": {},
    }
    write_json_atomically(str(path), document)
    assert json.loads(path.read_text()) == document
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert read_manifest(str(path)) == document
    path.write_text(json.dumps({"format": 2}))
    with pytest.raises(ValueError, match="unsupported manifest format"):
        read_manifest(str(path))


@pytest.mark.parametrize("prefix", ["aicost", "db-2.prod_x", "A" * 100])
def test_a_prefix_that_names_backups_retention_can_find_is_accepted(prefix):
    assert prefix_problem(prefix) is None
    identifier = backup_id(prefix, datetime.datetime(2026, 3, 1, tzinfo=UTC))
    assert backup_time(identifier) is not None


@pytest.mark.parametrize(
    "prefix", ["../x", "a/b", "a b", "", ".hidden", "-x", "caf\u00e9", "A" * 101]
)
def test_a_prefix_retention_could_not_find_or_that_leaves_the_directory_is_refused(prefix):
    assert "prefix must be" in prefix_problem(prefix)


def test_files_of_interrupted_backups_are_found(tmp_path):
    complete = "aicost-20260310T030000Z"
    (tmp_path / (complete + ".dump")).write_text("")
    (tmp_path / (complete + ".manifest.json")).write_text("{}")
    # Killed between renaming the dump and writing its manifest; then while writing one.
    (tmp_path / "aicost-20260311T030000Z.dump").write_text("")
    (tmp_path / ".manifest-k2j4_x").write_text("{")
    (tmp_path / ".aicost-20260312T030000Z.dump.partial").write_text("")
    (tmp_path / "other-20260311T030000Z.dump").write_text("")  # another prefix's business
    (tmp_path / "notes.dump").write_text("")
    assert interrupted_backup_files(str(tmp_path), "aicost") == [
        ".aicost-20260312T030000Z.dump.partial",
        ".manifest-k2j4_x",
        "aicost-20260311T030000Z.dump",
    ]


def valid_manifest() -> dict:
    return {
        "format": 1,
        "id": "aicost-20260310T030000Z",
        "dump_file": "aicost-20260310T030000Z.dump",
        "dump_bytes": 10,
        "sha256": "ab" * 32,
        "fingerprint": "hash_record_extended",
        "extension": {"name": "timescaledb", "version": "2.29.2", "license": "timescale"},
        "tables": {"llm_consumption": {"rows": 3, "content_sha256": "cd" * 32}},
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"dump_file": "../../../etc/hostname"}, "dump_file must be a file name"),
        ({"dump_file": "/etc/hostname"}, "dump_file must be a file name"),
        ({"dump_file": "sub/x.dump"}, "dump_file must be a file name"),
        ({"dump_file": ".."}, "dump_file must be a file name"),
        ({"fingerprint": "bogus"}, "fingerprint must be one of"),
        ({"dump_bytes": "10"}, "dump_bytes must be"),
        ({"sha256": "xyz"}, "sha256 must be"),
        ({"tables": {"llm_consumption": {"rows": 3}}}, "tables must map"),
        ({"tables": []}, "tables must map"),
        ({"extension": {"name": "timescaledb"}}, "extension must be"),
    ],
)
def test_a_manifest_that_could_mislead_the_restore_is_refused(tmp_path, change, problem):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(dict(valid_manifest(), **change)))
    with pytest.raises(ValueError, match=problem):
        read_manifest(str(path))


def test_a_manifest_without_fingerprint_or_extension_is_read(tmp_path):
    manifest = valid_manifest()
    del manifest["fingerprint"]
    manifest["extension"] = None
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    assert read_manifest(str(path))["extension"] is None
