# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup manifests: what a dump holds (sizes, checksum, versions, per-table fingerprints),
how table contents are fingerprinted, and which old backups retention removes."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_connection import (
    fetch_all,
    sql,
)

MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"
DUMP_SUFFIX = ".dump"
# A prefix names files inside the backup directory, and retention finds its backups by it.
PREFIX_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
BACKUP_ID = re.compile(r"^(?P<prefix>" + PREFIX_PATTERN + r")-(?P<stamp>\d{8}T\d{6}Z)$")
PARTIAL_SUFFIX = DUMP_SUFFIX + ".partial"
MANIFEST_TEMP_PREFIX = ".manifest-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"

# Session settings that make a row's text form depend on its value only, not on the client.
STABLE_TEXT_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
)


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot name backups, or None when it can."""
    if re.fullmatch(PREFIX_PATTERN, prefix, flags=re.ASCII):
        return None
    return (
        "prefix must be 1 to 100 ASCII letters, digits, '_', '.' or '-', starting with a letter"
        " or digit, not {0!r}: backups are files named <prefix>-<UTC time> in dest, and"
        " retention finds them by that name".format(prefix)
    )


def backup_id(prefix: str, when: datetime.datetime) -> str:
    return "{0}-{1}".format(prefix, when.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT))


def backup_time(identifier: str) -> datetime.datetime | None:
    match = BACKUP_ID.match(identifier)
    if match is None:
        return None
    return datetime.datetime.strptime(match.group("stamp"), STAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc
    )


def stabilise_session(cursor) -> None:
    for name, value in STABLE_TEXT_SETTINGS:
        cursor.execute("SELECT set_config(%s, %s, true)", (name, value))


# How a row becomes two 64-bit numbers whose sums over the table fingerprint it.
# hash_record_extended (PostgreSQL 14+) hashes the binary values, about 4x faster than
# hashing each row's text; md5 of the text form is the fallback for older servers.
FINGERPRINTS = {
    "hash_record_extended": (
        "SELECT count(*), coalesce(sum(hash_record_extended(t, 0)::numeric), 0),"
        " coalesce(sum(hash_record_extended(t, 1)::numeric), 0) FROM {0} AS t"
    ),
    "md5_text": (
        "SELECT count(*),"
        " coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
        " FROM (SELECT md5(t::text) AS h FROM {0} AS t) AS hashed"
    ),
}


def fingerprint_method(server_version_num: int) -> str:
    return "hash_record_extended" if server_version_num >= 140000 else "md5_text"


def table_fingerprints(cursor, tables: list[str], method: str) -> dict[str, dict]:
    """Row count and an order-independent content hash per table.

    Every row is hashed and the hashes are summed, so any changed, missing or extra row
    changes a sum; summing instead of aggregating the rows keeps memory flat for millions of
    rows. Call inside one transaction (one snapshot) after stabilise_session().
    """
    fingerprints = {}
    for table in tables:
        rows = fetch_all(cursor, sql.SQL(FINGERPRINTS[method]).format(sql.Identifier(table)))
        count, first, second = rows[0]
        digest = hashlib.sha256("{0}:{1}:{2}".format(count, first, second).encode()).hexdigest()
        fingerprints[table] = {"rows": int(count), "content_sha256": digest}
    return fingerprints


def existing_tables(cursor, candidates: list[str]) -> list[str]:
    rows = fetch_all(
        cursor,
        "SELECT name FROM unnest(%s::text[]) AS name"
        " WHERE to_regclass(quote_ident(name)) IS NOT NULL",
        (candidates,),
    )
    present = {row[0] for row in rows}
    return [name for name in candidates if name in present]


def write_json_atomically(path: str, document: dict) -> None:
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=MANIFEST_TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=2, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_manifest(path: str) -> dict:
    """A manifest, after checking every field the restore acts on (ValueError otherwise)."""
    with open(path) as stream:
        manifest = json.load(stream)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ValueError("unsupported manifest format {0!r}".format(found))
    for key in ("id", "dump_file", "dump_bytes", "sha256", "tables"):
        if key not in manifest:
            raise ValueError("manifest lacks {0!r}".format(key))
    problems = manifest_problems(manifest)
    if problems:
        raise ValueError("; ".join(problems))
    return manifest


SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_problems(manifest: dict) -> list[str]:
    problems = []
    dump_file = manifest["dump_file"]
    # The dump lies beside its manifest: a path would let a manifest point anywhere.
    if (
        not isinstance(dump_file, str)
        or os.path.basename(dump_file) != dump_file
        or dump_file in ("", ".", "..")
    ):
        problems.append("dump_file must be a file name in the manifest's directory")
    if not isinstance(manifest["id"], str):
        problems.append("id must be a string")
    dump_bytes = manifest["dump_bytes"]
    if not isinstance(dump_bytes, int) or isinstance(dump_bytes, bool) or dump_bytes < 0:
        problems.append("dump_bytes must be a byte count")
    if not isinstance(manifest["sha256"], str) or not SHA256.match(manifest["sha256"]):
        problems.append("sha256 must be 64 lower-case hex digits")
    if manifest.get("fingerprint", "md5_text") not in FINGERPRINTS:
        problems.append("fingerprint must be one of {0}".format(", ".join(sorted(FINGERPRINTS))))
    tables = manifest["tables"]
    if not isinstance(tables, dict) or not all(
        isinstance(name, str)
        and isinstance(table, dict)
        and isinstance(table.get("rows"), int)
        and isinstance(table.get("content_sha256"), str)
        for name, table in tables.items()
    ):
        problems.append("tables must map each table name to its rows and content_sha256")
    extension = manifest.get("extension")
    if extension is not None and not (
        isinstance(extension, dict) and isinstance(extension.get("version"), str)
    ):
        problems.append("extension must be null or carry the TimescaleDB version")
    return problems


def sha256_of_file(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredBackup:
    id: str
    taken_at: datetime.datetime


def list_backups(directory: str, prefix: str) -> list[StoredBackup]:
    """Complete backups only: a backup exists once its manifest has been written."""
    backups = []
    for name in os.listdir(directory):
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        identifier = name[: -len(MANIFEST_SUFFIX)]
        match = BACKUP_ID.match(identifier)
        taken_at = backup_time(identifier)
        if match and taken_at and match.group("prefix") == prefix:
            backups.append(StoredBackup(identifier, taken_at))
    return sorted(backups, key=lambda backup: backup.taken_at, reverse=True)


def interrupted_backup_files(directory: str, prefix: str) -> list[str]:
    """What interrupted backups left in ``directory``: partial dumps, manifest temporaries,
    and dumps of ``prefix`` whose manifest was never written (retention, which lists
    manifests, would never remove them). Only meaningful while holding the directory's lock.
    """
    names = set(os.listdir(directory))

    def interrupted(name: str) -> bool:
        if name.startswith(MANIFEST_TEMP_PREFIX):
            return True
        if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
            return True
        if not name.endswith(DUMP_SUFFIX):
            return False
        identifier = name[: -len(DUMP_SUFFIX)]
        match = BACKUP_ID.match(identifier)
        return (
            match is not None
            and match.group("prefix") == prefix
            and identifier + MANIFEST_SUFFIX not in names
        )

    leftovers = [name for name in names if interrupted(name)]
    return sorted(leftovers)


def expired_backups(
    backups: list[StoredBackup], keep_daily: int, keep_weekly: int, keep_monthly: int = 0
) -> list[StoredBackup]:
    """Grandfather-father-son retention: the newest backup of each of the last
    ``keep_daily`` days that have backups, of each of the last ``keep_weekly`` ISO weeks and
    of each of the last ``keep_monthly`` calendar months (all UTC) survive."""
    newest_first = sorted(backups, key=lambda backup: backup.taken_at, reverse=True)
    kept: set[str] = set()
    for period, limit in (
        (lambda when: when.date(), keep_daily),
        (lambda when: when.isocalendar()[:2], keep_weekly),
        (lambda when: (when.year, when.month), keep_monthly),
    ):
        seen: list = []
        for backup in newest_first:
            key = period(backup.taken_at.astimezone(datetime.timezone.utc))
            if key in seen:
                continue
            if len(seen) >= limit:
                break
            seen.append(key)
            kept.add(backup.id)
    return [backup for backup in newest_first if backup.id not in kept]
