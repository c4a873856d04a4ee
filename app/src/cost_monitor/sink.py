"""The durable path from an accepted batch to the database.

One writer thread owns the database connection and the spool. Request handlers submit a
batch and wait on a future; the writer coalesces whatever is queued into one COPY and
resolves every future once the rows are committed, or, while the database is unreachable,
once they are fsynced to the spool. A future resolves with an error only when the spool is
full (the API answers 503) or the database refused the rows: an acknowledged record is on
disk somewhere.

While the spool holds anything, new batches go to the spool too, so rows reach the table in
the order they were acknowledged. The spool is drained oldest first, idempotently.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from psycopg2.extensions import connection as Connection

from cost_monitor import storage
from cost_monitor.budgets import SpendTracker
from cost_monitor.metrics import Metrics
from cost_monitor.records import UsageRecord
from cost_monitor.spool import Spool

log = logging.getLogger(__name__)


class Outcome(Enum):
    STORED = "database"
    SPOOLED = "spool"


class SpoolFull(Exception):
    """The database is unreachable and the spool has no room: nothing was stored."""


class Refused(Exception):
    """The database rejected the rows themselves (not a connection problem)."""


@dataclass
class _Submission:
    records: list[UsageRecord]
    payload: bytes
    future: Future[Outcome] = field(default_factory=Future)


class Sink:
    def __init__(
        self,
        connect: Callable[[], Connection],
        spool: Spool,
        metrics: Metrics,
        tracker: SpendTracker,
        max_rows_per_write: int = 20_000,
        retry_max_seconds: float = 5.0,
    ) -> None:
        self._connect = connect
        self.spool = spool
        self.metrics = metrics
        self.tracker = tracker
        self.max_rows_per_write = max_rows_per_write
        self.retry_max_seconds = retry_max_seconds
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._retry_at = 0.0
        self._retry_delay = 0.5
        self._thread = threading.Thread(target=self._run, name="sink-writer", daemon=True)
        self._stopping = threading.Event()
        self.database_up = False
        self._spool_refused = False  # set when a batch did not fit; cleared as the spool drains
        self._publish_spool_state()

    # -- called from request handlers -------------------------------------------------------

    def submit(self, records: list[UsageRecord], payload: bytes) -> Future[Outcome]:
        submission = _Submission(records, payload)
        if not self._thread.is_alive():
            submission.future.set_exception(RuntimeError("the writer is not running"))
        else:
            self._queue.put(submission)
        return submission.future

    def accepting(self) -> bool:
        """False while batches are refused: database down and the spool (nearly) full."""
        return self.database_up or (self.spool.has_room(1) and not self._spool_refused)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def running(self) -> bool:
        return self._thread.is_alive()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        self._ensure_connection()
        while True:
            wait = 0.2 if len(self.spool) or not self.tracker.loaded else 1.0
            batch, stop = self._take(wait)
            if batch:
                self._write(batch)
            if len(self.spool):
                self._drain_spool()
            if not self.tracker.loaded and not len(self.spool):
                self._load_spend()
            if stop:
                break
        if self._conn is not None:
            self._conn.close()

    def _take(self, wait: float) -> tuple[list[_Submission], bool]:
        """Everything queued now (up to the row cap), waiting up to ``wait`` for the first."""
        batch: list[_Submission] = []
        rows = 0
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return batch, False
        while True:
            if item is None:
                return self._take_rest(batch), True
            # A submission whose waiter was cancelled was never acknowledged: skip it.
            if item.future.set_running_or_notify_cancel():
                batch.append(item)
                rows += len(item.records)
            if rows >= self.max_rows_per_write:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _take_rest(self, batch: list[_Submission]) -> list[_Submission]:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch
            if item is not None and item.future.set_running_or_notify_cancel():
                batch.append(item)

    def _write(self, batch: list[_Submission]) -> None:
        payload = b"".join(s.payload for s in batch)
        records = [r for s in batch for r in s.records]
        if not len(self.spool) and self._ensure_connection():
            try:
                started = time.perf_counter()
                self._copy(payload)
                self.metrics.write_seconds.observe(time.perf_counter() - started)
                self._acknowledge(batch, records, Outcome.STORED)
                self.metrics.stored_rows.inc(len(records))
                return
            except storage.CONNECTION_ERRORS as error:
                self._lost_connection(error)
            except Exception as error:  # the database refused the rows themselves
                log.error("database refused a batch of %d rows: %s", len(records), error)
                self._rollback()
                for submission in batch:
                    submission.future.set_exception(Refused(str(error).strip()))
                return
        if self.spool.append(storage.COPY_COLUMNS, payload):
            self.metrics.spooled_rows.inc(len(records))
            self._publish_spool_state()
            self._acknowledge(batch, records, Outcome.SPOOLED)
            return
        self._spool_refused = True
        for submission in batch:
            submission.future.set_exception(SpoolFull())

    def _copy(self, payload: bytes) -> None:
        assert self._conn is not None
        try:
            storage.copy_rows(self._conn, payload)
        except Exception as error:
            if not storage.is_unique_violation(error):
                raise
            # A client resent event ids it had sent before: store only the new ones.
            self._conn.rollback()
            storage.copy_rows_idempotent(self._conn, payload)

    def _acknowledge(
        self, batch: list[_Submission], records: list[UsageRecord], outcome: Outcome
    ) -> None:
        # On this thread, before the futures resolve: spend is loaded and added in one order.
        # (Usage metrics are counted by the request handlers, off this thread.)
        self.tracker.add(records)
        for submission in batch:
            submission.future.set_result(outcome)

    def _drain_spool(self) -> None:
        while len(self.spool) and self._ensure_connection():
            spooled = self.spool.oldest()
            if spooled is None:
                return
            try:
                inserted = storage.copy_rows_idempotent(
                    self._conn, spooled.payload, spooled.columns
                )  # type: ignore[arg-type]
            except storage.CONNECTION_ERRORS as error:
                self._lost_connection(error)
                return
            except Exception as error:
                self._rollback()
                target = self.spool.quarantine(spooled.sequence)
                log.error("database refused spooled batch, moved to %s: %s", target, error)
            else:
                self.spool.remove(spooled.sequence)
                self._spool_refused = False
                self.metrics.stored_rows.inc(inserted)
                log.info(
                    "replayed spooled batch %d: %d rows, %d new",
                    spooled.sequence,
                    spooled.rows,
                    inserted,
                )
            self._publish_spool_state()
            if not self._queue.empty():
                return  # serve waiting requests (they spool) before the next old batch

    def _load_spend(self) -> None:
        if not self._ensure_connection():
            return
        try:
            rows = storage.spend_this_month(self._conn, datetime.now(UTC).date())  # type: ignore[arg-type]
        except storage.CONNECTION_ERRORS as error:
            self._lost_connection(error)
            return
        except Exception as error:
            self._rollback()
            log.error("could not read this month's spend: %s", error)
            self.tracker.loaded = True  # count from zero rather than retry forever
            return
        self.tracker.load(rows)
        log.info("loaded this month's spend for %d project-days", len(rows))

    def _ensure_connection(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._conn = self._connect()
        except Exception as error:
            self._lost_connection(error)
            return False
        log.info("connected to the database")
        self._retry_delay = 0.5
        self._set_up(True)
        return True

    def _lost_connection(self, error: BaseException) -> None:
        if self.database_up:
            log.warning("database unreachable, spooling to %s: %s", self.spool.directory, error)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.retry_max_seconds)
        self._set_up(False)

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except storage.CONNECTION_ERRORS as error:
                self._lost_connection(error)

    def _set_up(self, up: bool) -> None:
        self.database_up = up
        self.metrics.database_up.set(1 if up else 0)

    def _publish_spool_state(self) -> None:
        self.metrics.spool_bytes.set(self.spool.bytes)
        self.metrics.spool_batches.set(len(self.spool))
