# Copyright: aicost.monitoring contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copies of backup sets on the hosts of the ``backup_targets`` group, over SSH.

A set goes to ``<root>/<origin>/`` on each target with rsync, into a hidden partial directory
that is renamed only after ``sha256sum --check`` of every file (and of the set manifest,
against the sum computed here) passed on the target: a set listed there arrived intact.
Retention on a target follows the same rule as on the host. ``fetch_set`` brings a set back
(the disaster-recovery path) and checks it against its manifest before it is listed.

The backup role gives the monitoring host its own SSH key, authorised on each target for a
dedicated unprivileged user, and the targets' host keys in a known_hosts file of its own.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess

from ansible_collections.aicost.monitoring.plugins.module_utils.timescaledb_manifest import (
    BACKUP_ID,
    StoredBackup,
    backup_time,
    expired_backups,
    sha256_of_file,
)

# The layout of a set (backup_set writes it): complete sets are listed by their manifest, and
# the same checksums in sha256sum's format let any copy be checked where this code is absent.
PARTIAL_PREFIX = ".partial-"
SET_MANIFEST = "manifest.json"
CHECKSUMS_FILE = "SHA256SUMS"


class CopyFailed(Exception):
    """A copy to or from a backup target did not complete; nothing half-done is listed."""


@dataclasses.dataclass(frozen=True)
class BackupTarget:
    """One host of ``backup_targets``, as the backup role writes it into the settings."""

    name: str
    address: str
    root: str
    user: str = "aicost-backup"
    port: int = 22

    def directory(self, origin: str) -> str:
        return "{0}/{1}".format(self.root.rstrip("/"), origin)

    def login(self) -> str:
        return "{0}@{1}".format(self.user, self.address)


@dataclasses.dataclass(frozen=True)
class SshSettings:
    key_file: str
    known_hosts_file: str
    connect_timeout: int = 30
    program: str = "ssh"

    def argv(self, target: BackupTarget) -> list[str]:
        return [
            self.program,
            "-i",
            self.key_file,
            "-p",
            str(target.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=" + self.known_hosts_file,
            "-o",
            "ConnectTimeout={0}".format(self.connect_timeout),
        ]


def _shell_words(argv: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in argv)


def _run(argv: list[str], what: str) -> str:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise CopyFailed("{0}: {1}".format(what, completed.stderr.strip()[-1000:]))
    return completed.stdout


def remote_shell(
    ssh: SshSettings, target: BackupTarget, doing: str, script: str, *args: str
) -> str:
    """Run ``sh -c script`` on the target with ``args`` as $1...: no argument is re-parsed."""
    command = _shell_words(["sh", "-c", script, "sh", *args])
    return _run(
        [*ssh.argv(target), target.login(), "--", command],
        "{0} on backup target {1}".format(doing, target.name),
    )


def _rsync(ssh: SshSettings, target: BackupTarget, source: str, destination: str,
           what: str) -> None:  # fmt: skip
    # Every file of a set is new to the other side; rsync checks each transfer itself, and
    # the sha256 checks after it are the proof that counts.
    _run(["rsync", "--archive", "--delete", "--rsh", _shell_words(ssh.argv(target)), source,
          destination], what)  # fmt: skip


def remote_sets(ssh: SshSettings, target: BackupTarget, origin: str, prefix: str) -> list[str]:
    """Names of the complete sets of ``origin`` on the target; partial copies are hidden."""
    listing = remote_shell(
        ssh,
        target,
        "listing the sets",
        'test ! -d "$1" || ls -1A -- "$1"',
        target.directory(origin),
    )
    return [name for name in listing.split() if _is_set_of(name, prefix)]


def _is_set_of(name: str, prefix: str) -> bool:
    match = BACKUP_ID.match(name)
    return match is not None and match.group("prefix") == prefix


# The remote half of a copy: the partial directory checked file by file, then renamed.
_VERIFY_AND_LIST = (
    'cd "$1/$2" && sha256sum --check --quiet --strict "$5"'
    ' && printf "%s  %s\\n" "$4" "$6" | sha256sum --check --quiet --strict'
    ' && cd .. && rm -rf -- "$3" && mv -- "$2" "$3"'
)


def copy_set(
    ssh: SshSettings, target: BackupTarget, origin: str, set_dir: str, identifier: str
) -> dict:
    """Copy the complete set in ``set_dir`` to the target; checked there before it is listed."""
    directory = target.directory(origin)
    partial = PARTIAL_PREFIX + identifier
    remote_shell(ssh, target, "creating the directory", 'mkdir -p -m 0700 -- "$1"', directory)
    _rsync(
        ssh,
        target,
        set_dir.rstrip("/") + "/",
        "{0}:{1}/{2}/".format(target.login(), directory, partial),
        "rsync of {0} to backup target {1}".format(identifier, target.name),
    )
    manifest_sum = sha256_of_file(os.path.join(set_dir, SET_MANIFEST))
    remote_shell(
        ssh, target, "checking the copy of " + identifier, _VERIFY_AND_LIST,
        directory, partial, identifier, manifest_sum, CHECKSUMS_FILE, SET_MANIFEST,
    )  # fmt: skip
    return {"target": target.name, "path": "{0}/{1}".format(directory, identifier)}


def prune_target(
    ssh: SshSettings,
    target: BackupTarget,
    origin: str,
    prefix: str,
    keep: tuple[int, int, int],
) -> list[str]:
    """Apply the host's retention to its sets on the target, and drop stale partial copies."""
    directory = target.directory(origin)
    listing = remote_shell(ssh, target, "listing the sets", 'ls -1A -- "$1"', directory).split()
    sets = [StoredBackup(name, backup_time(name)) for name in listing if _is_set_of(name, prefix)]
    expired = [stored.id for stored in expired_backups(sets, *keep)]
    stale = [
        name
        for name in listing
        if name.startswith(PARTIAL_PREFIX) and _is_set_of(name[len(PARTIAL_PREFIX) :], prefix)
    ]
    if expired or stale:
        remote_shell(
            ssh,
            target,
            "pruning",
            'cd "$1" && shift && rm -rf -- "$@"',
            directory,
            *expired,
            *stale,
        )
    return expired


def fetch_set(
    ssh: SshSettings,
    target: BackupTarget,
    origin: str,
    prefix: str,
    wanted: str,
    backup_dir: str,
    set_problems,
) -> str:
    """Bring set ``wanted`` (or ``latest``) of ``origin`` from the target into ``backup_dir``;
    it is listed there only once every file matches its manifest. Returns the set id."""
    available = sorted(remote_sets(ssh, target, origin, prefix), key=backup_time, reverse=True)
    if wanted == "latest":
        if not available:
            raise CopyFailed(
                "no backup set of {0} on backup target {1}".format(origin, target.name)
            )
        wanted = available[0]
    elif wanted not in available:
        raise CopyFailed(
            "no backup set {0} of {1} on backup target {2}".format(wanted, origin, target.name)
        )
    final = os.path.join(backup_dir, wanted)
    if os.path.isdir(final):
        return wanted
    partial = os.path.join(backup_dir, PARTIAL_PREFIX + wanted)
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _rsync(
            ssh,
            target,
            "{0}:{1}/{2}/".format(target.login(), target.directory(origin), wanted),
            partial + "/",
            "rsync of {0} from backup target {1}".format(wanted, target.name),
        )
        os.chmod(partial, 0o700)
        problems = set_problems(partial)
        if problems:
            raise CopyFailed(
                "the copy of {0} from {1} fails its manifest: {2}".format(
                    wanted, target.name, "; ".join(problems)
                )
            )
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return wanted
