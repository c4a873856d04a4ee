"""The durable path from an accepted batch to the database.

The writer (two threads taking turns, below) owns the database connections and the spool.
Request handlers submit a batch and wait on a future; the writer coalesces whatever is queued
into one write and resolves every future once the rows are committed, or, while the database
is unreachable, once they are fsynced to the spool. A future resolves with an error when
nothing was stored (spool full or not writable, writer restarting: the API answers 503) or the
database refused the rows: an acknowledged record is on disk somewhere.

While the spool holds anything, new batches go to the spool too, so rows reach the table in
the order they were acknowledged. The spool is drained oldest first, idempotently.

Two lanes, each a connection, carry the writes: two threads take batches from the queue in
turn and write each on whichever lane is free, split in two when both are (the second part on
a helper thread). A lane takes the next batch as soon as its write is committed and settled,
so the database works on one lane while the other waits for its commit, for the GIL the
request handlers hold, or for work. Each request is stored, spooled or refused whole, in one
lane, and settled when that lane finishes; concurrent requests were never ordered among
themselves. A request resending an event id a busy lane holds waits for that lane (two
connections inserting the same keys in opposite orders would wait on each other). The spool's
replay and the month's spend load take both lanes, once their writes are done.

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
        self._take_lock = threading.Lock()  # one thread coalesces at a time
        self._conn: Connection | None = None
        # The second lane's connection, used only by the helper thread while a write runs.
        self._lane_conn: Connection | None = None
        self._lane_copier: ThreadPoolExecutor | None = None
        self._lane_retry_at = 0.0
        # Per lane (0: self._conn, 1: self._lane_conn), the event ids of the write it
        # carries, or None while it is free; both lanes are taken by the spool's replay and
        # the spend load (_reserved) once their writes are done.
        self._lane_holds: list[frozenset[str] | None] = [None, None]
        self._reserved = False
        self._lanes_changed = threading.Condition()
        self._second_writer_error: Exception | None = None
        self._retry_at = 0.0
        self._retry_delay = 0.5
        self._thread = threading.Thread(target=self._supervise, name="sink-writer", daemon=True)
        self._stopping = threading.Event()
        self._in_flight: dict[str, list[_Submission]] = {}  # per taking thread
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
        waiting = [submission for batch in self._in_flight.values() for submission in batch]
        self._in_flight = {}
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
        with self._lanes_changed:  # a failed run may have left a lane claimed
            self._lane_holds = [None, None]
            self._reserved = False
        self._ensure_connection()
        self._second_writer_error = None
        run_over = threading.Event()
        second_writer = threading.Thread(
            target=self._write_alongside, args=(run_over,), name="sink-writer-2", daemon=True
        )
        second_writer.start()
        try:
            while True:
                if self._second_writer_error is not None:
                    raise self._second_writer_error
                wait = 0.2 if len(self.spool) or not self.tracker.loaded else 1.0
                batch, stop = self._take(wait)
                if batch:
                    self._write_taken(batch)
                if len(self.spool):
                    self._drain_spool()
                if not self.tracker.loaded and not len(self.spool):
                    self._load_spend()
                if stop or self._stopping.is_set():
                    return
        finally:
            run_over.set()
            second_writer.join()

    def _write_alongside(self, run_over: threading.Event) -> None:
        """The second taking thread: while one write waits on a lane, the next is taken and
        written on the other. Its failure is raised by the writer thread."""
        try:
            while not (run_over.is_set() or self._stopping.is_set()):
                batch, stop = self._take(0.2)
                if batch:
                    self._write_taken(batch)
                if stop:
                    self._queue.put(None)  # the writer thread stops too
                    return
        except Exception as error:
            self._second_writer_error = error

    def _write_taken(self, batch: list[_Submission]) -> None:
        taker = threading.current_thread().name
        self._in_flight[taker] = batch  # answered by _fail_waiting should the write fail
        self._write(batch)
        del self._in_flight[taker]

    def _take(self, wait: float) -> tuple[list[_Submission], bool]:
        """Everything queued now (up to the row cap), waiting up to ``wait`` for the first."""
        batch: list[_Submission] = []
        if not self._take_lock.acquire(timeout=wait):
            return batch, False
        try:
            return self._take_locked(batch, wait)
        finally:
            self._take_lock.release()

    def _take_locked(self, batch: list[_Submission], wait: float) -> tuple[list[_Submission], bool]:
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
        """Store the batch on the lanes free now (in two parts when both are, each settled
        as its lane finishes), or spool it; returns once every request of it is answered."""
        event_ids = frozenset(r.event_id for s in batch for r in s.records)
        lanes = self._claim_lanes(event_ids, 2 if len(batch) > 1 else 1)
        if not lanes:
            self._spool(batch, b"".join(s.payload for s in batch))
            return
        started = time.perf_counter()
        parts = self._lanes(batch) if len(lanes) == 2 else [batch]
        if len(parts) < len(lanes):
            self._release_lane(lanes.pop())
        second = None
        stored: list[bool] = []
        try:
            if len(lanes) == 2:
                assert self._lane_copier is not None
                second = self._lane_copier.submit(self._write_on_lane, lanes[1], parts[1])
            stored.append(self._write_on_lane(lanes[0], parts[0]))
        finally:
            if second is not None:
                stored.append(second.result())
        if all(stored):
            self.metrics.write_seconds.observe(time.perf_counter() - started)

    def _write_on_lane(self, lane: int, part: list[_Submission]) -> bool:
        """COPY and commit a part on a claimed lane, settle it, free the lane; True when
        stored."""
        try:
            outcome = self._store(self._lane_connection(lane), part)
            self._settle(part, outcome)
        finally:
            self._release_lane(lane)
        return not isinstance(outcome, BaseException)

    def _lane_connection(self, lane: int) -> Connection:
        conn = self._conn if lane == 0 else self._lane_conn
        assert conn is not None
        return conn

    def _claim_lanes(self, event_ids: frozenset[str], wanted: int) -> list[int]:
        """Up to ``wanted`` lanes, connected, to write a batch with these event ids on:
        waits while none is free or a busy one holds any of these ids. [] when the batch
        is to be spooled: the spool holds older batches, or the database is unreachable."""
        while True:
            with self._lanes_changed:
                while True:
                    if len(self.spool):
                        return []
                    free = self._free_lanes(event_ids)
                    if free:
                        break
                    self._lanes_changed.wait(0.5)
                lanes = free[:wanted]
                for lane in lanes:
                    self._lane_holds[lane] = event_ids
            if 0 in lanes and not self._ensure_connection():
                for lane in lanes:
                    self._release_lane(lane)
                return []
            if 1 in lanes and not self._ensure_lane_connection():
                self._release_lane(1)
                lanes.remove(1)
            if lanes:
                return lanes

    def _free_lanes(self, event_ids: frozenset[str]) -> list[int]:
        """The lanes a batch with these event ids may take now (under _lanes_changed)."""
        if self._reserved or any(
            held is not None and not held.isdisjoint(event_ids) for held in self._lane_holds
        ):
            return []
        free = [lane for lane, held in enumerate(self._lane_holds) if held is None]
        # The second connection is not asked for while it was refused lately, nor alone
        # while the database is down (the first one's reconnection tells when it is back).
        if time.monotonic() < self._lane_retry_at or (not self.database_up and 0 not in free):
            free = [lane for lane in free if lane == 0]
        return free

    def _release_lane(self, lane: int) -> None:
        with self._lanes_changed:
            if not self.database_up:
                self._close_lane_connection(lane)  # lost while this lane was writing
            self._lane_holds[lane] = None
            self._lanes_changed.notify_all()

    @contextlib.contextmanager
    def _all_lanes(self) -> Iterator[None]:
        """Both lanes, once the writes they carry are done (for the spool's replay and the
        spend load, on the writer's connection)."""
        with self._lanes_changed:
            self._reserved = True
            while any(held is not None for held in self._lane_holds):
                self._lanes_changed.wait(0.5)
        try:
            yield
        finally:
            with self._lanes_changed:
                self._reserved = False
                self._lanes_changed.notify_all()

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
        inserted, or the error."""
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
            # Before the futures resolve, and before the lane is freed (the spend load waits
            # for both lanes). (Usage metrics are counted by the request handlers.)
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
        with self._all_lanes():
            self._drain_spool_on_both_lanes()

    def _drain_spool_on_both_lanes(self) -> None:
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
        with self._all_lanes():
            self._load_spend_on_both_lanes()

    def _load_spend_on_both_lanes(self) -> None:
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
        """The database is unreachable: close the connections of the lanes carrying no
        write (the replay's and the spend load's included); a lane carrying one closes its
        connection when it is released."""
        if self.database_up:
            log.warning("database unreachable, spooling to %s: %s", self.spool.directory, error)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.retry_max_seconds)
        with self._lanes_changed:
            self._set_up(False)
            for lane, held in enumerate(self._lane_holds):
                if held is None:
                    self._close_lane_connection(lane)

    def _close_connection(self) -> None:
        """Close both connections (no lane may be writing)."""
        for lane in (0, 1):
            self._close_lane_connection(lane)
        self._set_up(False)

    def _close_lane_connection(self, lane: int) -> None:
        conn = self._conn if lane == 0 else self._lane_conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if lane == 0:
            self._conn = None
        else:
            self._lane_conn = None

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
