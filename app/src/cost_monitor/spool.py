"""A bounded on-disk spool of COPY payloads, kept in arrival order.

One file per batch, named by a sequence number. A batch is written to a temporary name,
fsynced, then renamed and the directory fsynced, so after a crash a batch file is either
complete or absent. The first line of each file names the columns of the rows below it, so a
spool written before a schema change still replays into the right columns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".copy"
QUARANTINE = "quarantine"
_HEADER_PREFIX = b"#columns "


@dataclass(frozen=True)
class SpooledBatch:
    sequence: int
    columns: tuple[str, ...]
    payload: bytes

    @property
    def rows(self) -> int:
        return self.payload.count(b"\n")


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        for leftover in self.directory.glob(".*.tmp"):
            leftover.unlink()  # a write that never completed was never acknowledged
        for path in self.directory.glob("*" + SUFFIX):
            self._sizes[int(path.stem)] = path.stat().st_size
        self._next = max(self._sizes, default=0) + 1
        self._total = sum(self._sizes.values())

    @property
    def bytes(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._sizes)

    def has_room(self, size: int = 0) -> bool:
        return self.bytes + size <= self.max_bytes

    def append(self, columns: Sequence[str], payload: bytes) -> bool:
        """Store a batch durably; False (nothing written) when it would exceed the bound."""
        data = _HEADER_PREFIX + ",".join(columns).encode() + b"\n" + payload
        with self._lock:
            if not self.has_room(len(data)):
                return False
            sequence = self._next
            self._next += 1
            temporary = self.directory / f".{sequence}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._path(sequence))
            _fsync_directory(self.directory)
            self._sizes[sequence] = len(data)
            self._total += len(data)
            return True

    def oldest(self) -> SpooledBatch | None:
        with self._lock:
            if not self._sizes:
                return None
            sequence = min(self._sizes)
        data = self._path(sequence).read_bytes()
        header, _, payload = data.partition(b"\n")
        if not header.startswith(_HEADER_PREFIX):
            raise ValueError(f"spool file {self._path(sequence)} has no column header")
        columns = tuple(header[len(_HEADER_PREFIX) :].decode().split(","))
        return SpooledBatch(sequence, columns, payload)

    def remove(self, sequence: int) -> None:
        with self._lock:
            self._path(sequence).unlink()
            _fsync_directory(self.directory)
            self._total -= self._sizes.pop(sequence)

    def quarantine(self, sequence: int) -> Path:
        """Move a batch the database refuses aside, for a human, without dropping it."""
        target_dir = self.directory / QUARANTINE
        target_dir.mkdir(exist_ok=True)
        target = target_dir / self._path(sequence).name
        with self._lock:
            os.replace(self._path(sequence), target)
            _fsync_directory(self.directory)
            self._total -= self._sizes.pop(sequence)
        return target

    def _path(self, sequence: int) -> Path:
        return self.directory / f"{sequence:016d}{SUFFIX}"


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
