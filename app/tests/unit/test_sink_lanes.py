"""The writer's two lanes: a write of several requests is COPYed on two connections side by
side, and each request is stored, spooled or refused whole with its own lane."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg2
import pytest
from cost_monitor import storage
from cost_monitor.budgets import SpendTracker
from cost_monitor.metrics import Metrics
from cost_monitor.records import UsageRecord
from cost_monitor.sink import Outcome, Refused, Sink, _Submission
from cost_monitor.spool import Spool


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.rollbacks = 0

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        self.closed = True


def records(count: int) -> list[UsageRecord]:
    now = datetime.now(UTC)
    return [
        UsageRecord(time=now, event_id=str(uuid.uuid4()), provider="openai", model="gpt-5-mini")
        for _ in range(count)
    ]


@pytest.fixture
def sink(tmp_path, monkeypatch):
    """A Sink on fake connections; ``copies`` records (connection, rows, thread) per COPY,
    and ``failures`` maps a connection number to the error its COPY raises."""
    connections: list[FakeConnection] = []

    def connect() -> FakeConnection:
        connections.append(FakeConnection(len(connections) + 1))
        return connections[-1]

    sink = Sink(connect, Spool(tmp_path / "spool", 1 << 20), Metrics(), SpendTracker())
    sink.tracker.loaded = True
    sink.copies = []
    sink.failures = {}

    def copy_rows(conn, payload, columns=storage.COPY_COLUMNS):
        sink.copies.append((conn.number, payload.count(b"\n"), threading.current_thread().name))
        if conn.number in sink.failures:
            raise sink.failures[conn.number]

    monkeypatch.setattr(storage, "copy_rows", copy_rows)
    sink.connections = connections
    yield sink
    sink._close_connection()
    if sink._lane_copier is not None:
        sink._lane_copier.shutdown()


def submissions(*sizes: int) -> list[_Submission]:
    return [_Submission(batch, storage.encode_rows(batch)) for batch in map(records, sizes)]


def test_a_write_of_several_requests_is_copied_in_two_lanes_of_about_half(sink):
    batch = submissions(500, 500, 500, 500)
    sink._write(batch)
    assert sorted((number, rows) for number, rows, _ in sink.copies) == [(1, 1000), (2, 1000)]
    threads = {number: thread for number, _, thread in sink.copies}
    assert threads[1] != threads[2]  # side by side, not one after the other
    for submission in batch:
        acknowledged = submission.future.result(timeout=0)
        assert acknowledged.outcome is Outcome.STORED
        assert acknowledged.stored == submission.records
    assert sink.tracker.loaded


def test_one_request_is_copied_whole_on_one_connection(sink):
    sink._write(submissions(500))
    assert [(number, rows) for number, rows, _ in sink.copies] == [(1, 500)]


def test_requests_sharing_an_event_id_are_copied_in_one_lane(sink):
    first, second = submissions(3, 3)
    second.records[1] = first.records[0]  # a resend while the first is in flight
    second.payload = storage.encode_rows(second.records)
    sink._write([first, second])
    assert [(number, rows) for number, rows, _ in sink.copies] == [(1, 6)]


def test_a_lane_that_loses_its_connection_is_spooled_and_the_other_is_stored(sink):
    sink.failures[2] = psycopg2.OperationalError("server closed the connection")
    stored, spooled = submissions(400, 400)
    sink._write([stored, spooled])
    assert stored.future.result(timeout=0).outcome is Outcome.STORED
    assert spooled.future.result(timeout=0).outcome is Outcome.SPOOLED
    assert len(sink.spool) == 1
    assert sink.spool.oldest().payload == spooled.payload
    assert not sink.database_up
    assert all(conn.closed for conn in sink.connections)


def test_a_lane_the_database_refuses_is_answered_refused_and_rolled_back(sink):
    sink.failures[1] = psycopg2.errors.CheckViolation("bad row")
    refused, stored = submissions(400, 400)
    sink._write([refused, stored])
    with pytest.raises(Refused):
        refused.future.result(timeout=0)
    assert stored.future.result(timeout=0).outcome is Outcome.STORED
    assert sink.connections[0].rollbacks == 1
    assert sink.connections[1].rollbacks == 0
    assert not len(sink.spool)


def test_without_a_second_connection_writes_go_on_one_and_it_is_retried_later(
    sink, monkeypatch, caplog
):
    connect = sink._connect
    refusals = []

    def refuse_the_second(*args):
        if sink._conn is not None:
            refusals.append(1)
            raise psycopg2.OperationalError("too many clients already")
        return connect()

    sink._connect = refuse_the_second
    first, second = submissions(10, 10), submissions(10, 10)
    sink._write(first)
    sink._write(second)
    assert [rows for _, rows, _ in sink.copies] == [20, 20]  # one lane each time
    assert all(s.future.result(timeout=0).outcome is Outcome.STORED for s in first + second)
    assert len(refusals) == 1  # not asked again at every write
    assert caplog.text.count("no second database connection") == 1

    monkeypatch.setattr(sink, "_lane_retry_at", 0.0)
    sink._connect = connect
    sink._write(submissions(10, 10))
    assert sorted(rows for _, rows, _ in sink.copies[2:]) == [10, 10]


@pytest.fixture
def gated(sink, monkeypatch):
    """The sink with ``gates``: a COPY on connection N waits until gates[N] is set, and
    ``started`` holds the numbers of the connections whose COPY began."""
    sink.gates = {}
    sink.started = set()
    fake_copy = storage.copy_rows

    def gated_copy(conn, payload, columns=storage.COPY_COLUMNS):
        sink.started.add(conn.number)
        gate = sink.gates.get(conn.number)
        if gate is not None:
            assert gate.wait(10), "the test never opened the gate"
        fake_copy(conn, payload, columns)

    monkeypatch.setattr(storage, "copy_rows", gated_copy)
    yield sink
    for gate in sink.gates.values():
        gate.set()
    sink.stop()


def wait_until(condition) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def split_over_both_lanes_holding_the_second(sink):
    """Two queued requests, one per lane, the second lane's COPY held: the first is stored."""
    sink.gates[2] = threading.Event()
    first = submissions(10, 10)
    for submission in first:
        sink._queue.put(submission)
    sink.start()
    wait_until(lambda: 2 in sink.started)
    # The first lane's requests are answered when that lane is done, not with the other's.
    assert first[0].future.result(timeout=5).outcome is Outcome.STORED
    return first


def test_a_lane_takes_the_next_batch_while_the_other_still_writes_the_first(gated):
    first = split_over_both_lanes_holding_the_second(gated)
    assert not first[1].future.done()
    second = gated.submit(records(5))
    assert second.result(timeout=5).outcome is Outcome.STORED
    assert (1, 5) in [(number, rows) for number, rows, _ in gated.copies]
    assert not first[1].future.done()
    gated.gates[2].set()
    assert first[1].future.result(timeout=5).outcome is Outcome.STORED


def test_a_request_resending_an_event_id_waits_for_the_lane_that_holds_it(gated):
    gated.gates[1] = threading.Event()
    gated.start()
    held = records(10)
    first = gated.submit(held)
    wait_until(lambda: 1 in gated.started)
    # The other lane is free: a request of other events is stored on it meanwhile...
    assert gated.submit(records(4)).result(timeout=5).outcome is Outcome.STORED
    assert (2, 4) in [(number, rows) for number, rows, _ in gated.copies]
    # ...but not one resending an event the busy lane holds.
    resent = gated.submit([held[0], *records(2)])
    time.sleep(0.3)
    assert not resent.done()
    gated.gates[1].set()
    assert first.result(timeout=5).outcome is Outcome.STORED
    assert resent.result(timeout=5).outcome is Outcome.STORED
    rows_in_order = [rows for _, rows, _ in gated.copies]
    assert rows_in_order.index(3) > rows_in_order.index(10)


def test_a_lane_losing_its_connection_mid_pipeline_is_spooled_and_later_batches_follow(gated):
    connect = gated._connect

    def connect_while_up():
        if len(gated.connections) >= 2 and gated.failures:
            raise psycopg2.OperationalError("the database is down")
        return connect()

    gated._connect = connect_while_up
    gated.failures[2] = psycopg2.OperationalError("server closed the connection")
    first = split_over_both_lanes_holding_the_second(gated)
    gated.gates[2].set()
    assert first[1].future.result(timeout=5).outcome is Outcome.SPOOLED
    later = gated.submit(records(2))
    assert later.result(timeout=5).outcome is Outcome.SPOOLED  # behind the older batch
    assert len(gated.spool) == 2
    assert gated.spool.oldest().payload == first[1].payload
    assert not gated.database_up
    wait_until(lambda: all(conn.closed for conn in gated.connections))
