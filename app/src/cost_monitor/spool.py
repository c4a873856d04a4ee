"""A bounded on-disk spool of COPY payloads, kept in arrival order.

One file per batch, named by a sequence number. A batch is written to a temporary name,
fsynced, then renamed and the directory fsynced, so after a crash a batch file is either
complete or absent. The first line of each file names the columns of the rows below it, so a
spool written before a schema change still replays into the right columns.

A batch that cannot be replayed (a file without its header, or rows the database refuses) is
moved to ``quarantine/`` for a human, never dropped silently; the quarantine has its own
bound, beyond which its oldest files are deleted and counted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".copy"
QUARANTINE = "quarantine"
_HEADER_PREFIX = b"#columns "

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpooledBatch:
    sequence: int
    columns: tuple[str, ...]
    payload: bytes

    @property
    def rows(self) -> int:
        return self.payload.count(b"\n")


class Spool:
    def __init__(
        self, directory: str | Path, max_bytes: int, quarantine_max_bytes: int = 256 << 20
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.quarantine_max_bytes = quarantine_max_bytes
        self.quarantine_directory = self.directory / QUARANTINE
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        self._quarantine_sizes: dict[str, int] = {}
        self._total = self._quarantine_total = 0
        self.quarantined: Counter[str] = Counter()  # batches moved aside, by reason
        self.quarantine_dropped = 0  # quarantined batches deleted to keep the bound
        self._next = 1
        self.rescan()

    def rescan(self) -> None:
        """Take the state from the directory (at start, and after the writer failed)."""
        with self._lock:
            for leftover in self.directory.glob(".*.tmp"):
                leftover.unlink()  # a write that never completed was never acknowledged
            self._sizes = {
                int(path.stem): path.stat().st_size
                for path in self.directory.glob("*" + SUFFIX)
                if path.stem.isdigit()
            }
            self._next = max(self._next, max(self._sizes, default=0) + 1)
            self._total = sum(self._sizes.values())
            self._quarantine_sizes = {
                path.name: path.stat().st_size
                for path in self.quarantine_directory.glob("*" + SUFFIX)
            }
            self._quarantine_total = sum(self._quarantine_sizes.values())

    @property
    def bytes(self) -> int:
        return self._total

    @property
    def quarantine_bytes(self) -> int:
        return self._quarantine_total

    @property
    def quarantine_batches(self) -> int:
        return len(self._quarantine_sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    def has_room(self, size: int = 0) -> bool:
        return self.bytes + size <= self.max_bytes

    def append(self, columns: Sequence[str], payload: bytes) -> int | None:
        """Store a batch durably: its sequence number, or None (nothing written) when it
        would exceed the bound.

        Raises OSError (disk full, read-only, ...) with nothing left behind.
        """
        data = _HEADER_PREFIX + ",".join(columns).encode() + b"\n" + payload
        with self._lock:
            if not self.has_room(len(data)):
                return None
            sequence = self._next
            self._next += 1
            temporary = self.directory / f".{sequence}.tmp"
            try:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self._path(sequence))
                _fsync_directory(self.directory)
            except OSError:
                for path in (temporary, self._path(sequence)):
                    with contextlib.suppress(OSError):
                        path.unlink()
                raise
            self._sizes[sequence] = len(data)
            self._total += len(data)
            return sequence

    def oldest(self) -> SpooledBatch | None:
        """The oldest readable batch; files that are not batches are quarantined on the way."""
        while True:
            with self._lock:
                if not self._sizes:
                    return None
                sequence = min(self._sizes)
            data = self._path(sequence).read_bytes()
            header, _, payload = data.partition(b"\n")
            try:
                if not header.startswith(_HEADER_PREFIX):
                    raise ValueError("no column header")
                columns = tuple(header[len(_HEADER_PREFIX) :].decode("ascii").split(","))
            except ValueError as error:
                target = self.quarantine(sequence, "unreadable")
                log.error("spool file is not a batch (%s), moved to %s", error, target)
                continue
            return SpooledBatch(sequence, columns, payload)

    def remove(self, sequence: int) -> None:
        with self._lock:
            self._path(sequence).unlink()
            _fsync_directory(self.directory)
            self._total -= self._sizes.pop(sequence)

    def quarantine(self, sequence: int, reason: str) -> Path:
        """Move a batch that cannot be replayed aside, for a human, within the bound."""
        self.quarantine_directory.mkdir(exist_ok=True)
        # Named by the time it was moved: sorted names are the order of eviction.
        target = self.quarantine_directory / f"{time.time_ns()}-{reason}-{sequence:016d}{SUFFIX}"
        with self._lock:
            os.replace(self._path(sequence), target)
            _fsync_directory(self.directory)
            size = self._sizes.pop(sequence)
            self._total -= size
            self._quarantine_sizes[target.name] = size
            self._quarantine_total += size
            self.quarantined[reason] += 1
            self._bound_quarantine()
        return target

    def _bound_quarantine(self) -> None:
        while self.quarantine_bytes > self.quarantine_max_bytes:
            oldest = min(self._quarantine_sizes)
            with contextlib.suppress(FileNotFoundError):
                (self.quarantine_directory / oldest).unlink()
            self._quarantine_total -= self._quarantine_sizes.pop(oldest)
            self.quarantine_dropped += 1
            log.error(
                "spool quarantine over %d bytes: deleted %s", self.quarantine_max_bytes, oldest
            )

    def _path(self, sequence: int) -> Path:
        return self.directory / f"{sequence:016d}{SUFFIX}"


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
