"""The durable path from an accepted batch to the database.

One writer thread owns the database connection and the spool. Request handlers submit a
batch and wait on a future; the writer coalesces whatever is queued into one COPY and
resolves every future once the rows are committed, or, while the database is unreachable,
once they are fsynced to the spool. A future resolves with an error when nothing was stored
(spool full or not writable, writer restarting: the API answers 503) or the database refused
the rows: an acknowledged record is on disk somewhere.

While the spool holds anything, new batches go to the spool too, so rows reach the table in
the order they were acknowledged. The spool is drained oldest first, idempotently.

A write of several requests is split in two lanes, each a COPY and COMMIT on its own
connection, run side by side (the second on a helper thread): while one connection waits for
its commit, or for the GIL the request handlers hold, the database works on the other. Each
request is stored, spooled or refused whole, in one lane; concurrent requests were never
ordered among themselves.

Counters follow the database: a record is counted once it is committed, and a resent event
the database already holds is not counted again. A failure of the writer itself is answered
(every batch it held gets "not stored"), logged, and the writer is run again after a pause.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg2.extensions import connection as Connection

from cost_monitor import storage
from cost_monitor.budgets import SpendTracker
from cost_monitor.metrics import Metrics
from cost_monitor.records import UsageRecord
from cost_monitor.spool import Spool

log = logging.getLogger(__name__)
RESET_AFTER_SECONDS = 300.0  # a writer that ran this long without failing starts fresh
LANE_RETRY_SECONDS = 60.0  # after the second connection was refused


class Outcome(Enum):
    STORED = "database"
    SPOOLED = "spool"


class NotStored(Exception):
    """Nothing of the batch was stored; the client should send it again later (503)."""

    reason = "nothing was stored, retry later"


class SpoolFull(NotStored):
    reason = "database unavailable and spool full; nothing was stored, retry later"


class SpoolUnavailable(NotStored):
    reason = "database unavailable and the spool cannot be written; nothing was stored, retry later"


class WriterRestarting(NotStored):
    reason = "the writer is restarting after a failure; nothing was stored, retry later"


class Refused(Exception):
    """The database rejected the rows themselves (not a connection problem)."""


@dataclass(frozen=True)
class Acknowledged:
    outcome: Outcome
    # The records really added to the database by this batch (a resend of an event already
    # stored is not); for a spooled batch, every record: its replay is counted by the writer.
    stored: list[UsageRecord]


@dataclass
class _Submission:
    records: list[UsageRecord]
    payload: bytes
    future: Future[Acknowledged] = field(default_factory=Future)


class WriterState(Enum):
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


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
        # Waits before the writer's first, second, ... restart (the last one repeats); the
        # count starts over after a run of RESET_AFTER_SECONDS without a failure.
        self.restart_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._conn: Connection | None = None
        # The second lane's connection, used only by the helper thread while a write runs.
        self._lane_conn: Connection | None = None
        self._lane_copier: ThreadPoolExecutor | None = None
        self._lane_retry_at = 0.0
        self._retry_at = 0.0
        self._retry_delay = 0.5
        self._thread = threading.Thread(target=self._supervise, name="sink-writer", daemon=True)
        self._stopping = threading.Event()
        self._in_flight: list[_Submission] = []
        self.database_up = False
        self.writer_state = WriterState.STOPPED
        self.writer_restarts = 0
        self.last_error: str | None = None
        self.spool_write_errors = 0
        self._spool_refused = False  # set when a batch did not fit; cleared as the spool drains
        self._publish_spool_state()

    # -- called from request handlers -------------------------------------------------------

    def submit(self, records: list[UsageRecord]) -> Future[Acknowledged]:
        """Queue records for the writer; the future resolves once they are durable."""
        submission = _Submission(records, storage.encode_rows(records))
        if self.writer_state is not WriterState.RUNNING:
            submission.future.set_exception(WriterRestarting())
        else:
            self._queue.put(submission)
        return submission.future

    def refusing(self) -> str | None:
        """Why a batch would be refused now (the writer away, or the database down and the
        spool (nearly) full), or None while batches are taken."""
        if self.writer_state is not WriterState.RUNNING:
            return WriterRestarting.reason
        if self.database_up or (self.spool.has_room(1) and not self._spool_refused):
            return None
        return SpoolFull.reason

    def accepting(self) -> bool:
        return self.refusing() is None

    def health(self) -> tuple[bool, dict[str, object]]:
        """(alive, state): the writer runs (a failed one is restarted after a pause)."""
        state = {
            "status": "ok" if self.writer_state is WriterState.RUNNING else "writer not running",
            "writer": self.writer_state.value,
            "writer_restarts": self.writer_restarts,
            "last_error": self.last_error,
        }
        return self.writer_state is WriterState.RUNNING, state

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """(ready, state): ready while a batch would be acknowledged."""
        state = {
            "database": "up" if self.database_up else "down",
            "writer": self.writer_state.value,
            "spool_bytes": self.spool.bytes,
            "spool_batches": len(self.spool),
        }
        return self.accepting(), state

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.writer_state = WriterState.RUNNING
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def running(self) -> bool:
        return self._thread.is_alive() and self.writer_state is WriterState.RUNNING

    # -- the writer thread ------------------------------------------------------------------

    def _supervise(self) -> None:
        """Run the writer; after a failure, answer what it held, pause, and run it again."""
        failures = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    self._run(after_failure=failures > 0)
                    return
                except Exception as error:
                    if time.monotonic() - started > RESET_AFTER_SECONDS:
                        failures = 0
                    delay = self.restart_delays[min(failures, len(self.restart_delays) - 1)]
                    failures += 1
                    self.writer_restarts += 1
                    self.last_error = f"{type(error).__name__}: {error}"
                    self.writer_state = WriterState.RESTARTING
                    log.exception("the writer failed; restarting it in %.1f s", delay)
                    self._fail_waiting()
                    self._close_connection()
                    if self._stopping.wait(delay):
                        return
                    self.writer_state = WriterState.RUNNING
        finally:
            self.writer_state = WriterState.STOPPED
            self._fail_waiting()
            self._close_connection()
            if self._lane_copier is not None:
                self._lane_copier.shutdown()

    def _fail_waiting(self) -> None:
        """Answer every submission the failed writer held or that is queued: not stored."""
        waiting = self._in_flight
        self._in_flight = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping.set()
            elif item.future.set_running_or_notify_cancel():
                waiting.append(item)
        for submission in waiting:
            if not submission.future.done():
                submission.future.set_exception(WriterRestarting())

    def _run(self, after_failure: bool = False) -> None:
        if after_failure:
            self.spool.rescan()  # what the failed run knew of the spool may be stale
            self._publish_spool_state()
            log.info("the writer restarted (%d restarts so far)", self.writer_restarts)
        self._ensure_connection()
        while True:
            wait = 0.2 if len(self.spool) or not self.tracker.loaded else 1.0
            batch, stop = self._take(wait)
            if batch:
                self._in_flight = batch
                self._write(batch)
                self._in_flight = []
            if len(self.spool):
                self._drain_spool()
            if not self.tracker.loaded and not len(self.spool):
                self._load_spend()
            if stop or self._stopping.is_set():
                return

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
        if not len(self.spool) and self._ensure_connection():
            assert self._conn is not None
            started = time.perf_counter()
            lanes = self._lanes(batch)
            if len(lanes) == 2 and self._ensure_lane_connection():
                assert self._lane_copier is not None and self._lane_conn is not None
                second = self._lane_copier.submit(self._store, self._lane_conn, lanes[1])
                outcomes = [self._store(self._conn, lanes[0]), second.result()]
            else:
                lanes = [batch]
                outcomes = [self._store(self._conn, batch)]
            if not any(isinstance(outcome, BaseException) for outcome in outcomes):
                self.metrics.write_seconds.observe(time.perf_counter() - started)
            for lane, outcome in zip(lanes, outcomes, strict=True):
                self._settle(lane, outcome)
            return
        self._spool(batch, b"".join(s.payload for s in batch))

    def _lanes(self, batch: list[_Submission]) -> list[list[_Submission]]:
        """The batch in two lanes of about half the rows each, or whole: when it is one
        request, or when a request resends an event id another lane holds (two connections
        inserting the same keys in opposite orders would wait on each other)."""
        total = sum(len(s.records) for s in batch)
        rows = cut = 0
        while cut < len(batch) - 1 and rows < total / 2:
            rows += len(batch[cut].records)
            cut += 1
        if not 0 < rows < total:
            return [batch]
        first, second = batch[:cut], batch[cut:]
        second_ids = {r.event_id for s in second for r in s.records}
        if any(r.event_id in second_ids for s in first for r in s.records):
            return [batch]
        return [first, second]

    def _store(
        self, conn: Connection, lane: list[_Submission]
    ) -> list[list[UsageRecord]] | BaseException:
        """COPY and commit a lane on a connection: per submission, the records really
        inserted, or the error (the caller settles both on the writer thread)."""
        try:
            return self._copy(conn, lane, b"".join(s.payload for s in lane))
        except Exception as error:
            if not isinstance(error, storage.CONNECTION_ERRORS):
                with contextlib.suppress(*storage.CONNECTION_ERRORS):
                    conn.rollback()  # a broken connection shows at its next use
            return error

    def _settle(
        self, lane: list[_Submission], outcome: list[list[UsageRecord]] | BaseException
    ) -> None:
        if isinstance(outcome, storage.CONNECTION_ERRORS):
            if self.database_up:  # once, when both lanes lost their connection
                self._lost_connection(outcome)
            self._spool(lane, b"".join(s.payload for s in lane))
        elif isinstance(outcome, BaseException):  # the database refused the rows themselves
            rows = sum(len(s.records) for s in lane)
            log.error("database refused a batch of %d rows: %s", rows, outcome)
            for submission in lane:
                submission.future.set_exception(Refused())
        else:
            # On this thread, before the futures resolve: spend is loaded and added in
            # one order. (Usage metrics are counted by the request handlers.)
            for records in outcome:
                self.tracker.add(records)
            self.metrics.stored_rows.inc(sum(map(len, outcome)))
            for submission, records in zip(lane, outcome, strict=True):
                submission.future.set_result(Acknowledged(Outcome.STORED, records))

    def _copy(
        self, conn: Connection, batch: list[_Submission], payload: bytes
    ) -> list[list[UsageRecord]]:
        """COPY the batch; per submission, the records really inserted."""
        try:
            storage.copy_rows(conn, payload)
            return [s.records for s in batch]
        except Exception as error:
            if not storage.is_unique_violation(error):
                raise
        # A client resent event ids it had sent before: store, and count, only the new ones.
        conn.rollback()
        inserted = Counter(
            (event_id, moment) for event_id, moment in storage.copy_new_rows(conn, payload)
        )
        stored = []
        for submission in batch:
            kept = []
            for record in submission.records:
                key = (record.event_id, record.time)
                if inserted[key]:
                    inserted[key] -= 1
                    kept.append(record)
            stored.append(kept)
        return stored

    def _spool(self, batch: list[_Submission], payload: bytes) -> None:
        try:
            sequence = self.spool.append(storage.COPY_COLUMNS, payload)
        except OSError as error:
            self.spool_write_errors += 1
            log.error("could not write to the spool %s: %s", self.spool.directory, error)
            for submission in batch:
                submission.future.set_exception(SpoolUnavailable())
            return
        if sequence is None:
            self._spool_refused = True
            for submission in batch:
                submission.future.set_exception(SpoolFull())
            return
        self.metrics.spooled_rows.inc(sum(len(s.records) for s in batch))
        self._publish_spool_state()
        # Budgets see spooled spend at once; counters wait for the replay to store it.
        self.tracker.add_pending(sequence, (r for s in batch for r in s.records))
        for submission in batch:
            submission.future.set_result(Acknowledged(Outcome.SPOOLED, []))

    def _drain_spool(self) -> None:
        while len(self.spool) and self._ensure_connection():
            spooled = self.spool.oldest()
            if spooled is None:
                self._publish_spool_state()
                return
            try:
                rows = storage.copy_new_rows(
                    self._conn,  # type: ignore[arg-type]
                    spooled.payload,
                    spooled.columns,
                    storage.USAGE_COLUMNS,
                )
            except storage.CONNECTION_ERRORS as error:
                self._lost_connection(error)
                return
            except Exception as error:
                self._rollback()
                target = self.spool.quarantine(spooled.sequence, "refused")
                self.tracker.settle(spooled.sequence, [])
                log.error("database refused spooled batch, moved to %s: %s", target, error)
            else:
                self.spool.remove(spooled.sequence)
                self._spool_refused = False
                stored = storage.usage_records(rows)
                self.tracker.settle(spooled.sequence, stored)
                self.metrics.stored_rows.inc(len(stored))
                self.metrics.record_batch(stored)
                log.info(
                    "replayed spooled batch %d: %d rows, %d new",
                    spooled.sequence,
                    spooled.rows,
                    len(stored),
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

    def _ensure_lane_connection(self) -> bool:
        """The second lane's connection (and thread), made on first use; False (the write
        then takes one lane) when it cannot be had now."""
        if self._lane_conn is not None and not self._lane_conn.closed:
            return True
        if time.monotonic() < self._lane_retry_at:
            return False
        try:
            self._lane_conn = self._connect()
        except Exception as error:
            # max_connections reached, say: write on one connection for a while.
            self._lane_retry_at = time.monotonic() + LANE_RETRY_SECONDS
            log.warning(
                "no second database connection, writing on one for %.0f s: %s",
                LANE_RETRY_SECONDS,
                error,
            )
            return False
        if self._lane_copier is None:
            self._lane_copier = ThreadPoolExecutor(1, thread_name_prefix="sink-lane")
        return True

    def _lost_connection(self, error: BaseException) -> None:
        if self.database_up:
            log.warning("database unreachable, spooling to %s: %s", self.spool.directory, error)
        self._close_connection()
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.retry_max_seconds)
        self._set_up(False)

    def _close_connection(self) -> None:
        for conn in (self._conn, self._lane_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._conn = self._lane_conn = None
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


class SinkCollector(Collector):
    """The writer's and the spool's own health, computed at scrape."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def collect(self) -> Iterator[Metric]:
        sink, spool = self.sink, self.sink.spool
        yield GaugeMetricFamily(
            "llm_ingest_writer_up",
            "1 while the writer runs; 0 while it waits to be restarted after a failure",
            value=1 if sink.writer_state is WriterState.RUNNING else 0,
        )
        yield CounterMetricFamily(
            "llm_ingest_writer_restarts",
            "Writer failures, each followed by a restart",
            value=sink.writer_restarts,
        )
        yield CounterMetricFamily(
            "llm_ingest_spool_write_errors",
            "Batches answered 503 because the spool could not be written (disk full, read-only)",
            value=sink.spool_write_errors,
        )
        quarantined = CounterMetricFamily(
            "llm_spool_quarantined_batches",
            "Spool batches moved to quarantine/ (unreadable files, rows the database refused)",
            labels=("reason",),
        )
        for reason in ("unreadable", "refused"):
            quarantined.add_metric([reason], spool.quarantined[reason])
        yield quarantined
        yield CounterMetricFamily(
            "llm_spool_quarantine_dropped_batches",
            "Quarantined batches deleted to keep quarantine/ within its bound",
            value=spool.quarantine_dropped,
        )
        yield GaugeMetricFamily(
            "llm_spool_quarantine_bytes", "Bytes held in quarantine/", value=spool.quarantine_bytes
        )
        yield GaugeMetricFamily(
            "llm_spool_quarantine_batches",
            "Batches held in quarantine/",
            value=spool.quarantine_batches,
        )
