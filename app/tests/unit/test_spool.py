from __future__ import annotations

from cost_monitor.spool import Spool

COLUMNS = ("time", "event_id")


def test_batches_come_back_oldest_first_and_survive_a_restart(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    assert spool.append(COLUMNS, b"a\t1\n")
    assert spool.append(COLUMNS, b"b\t2\nc\t3\n")
    reopened = Spool(tmp_path, max_bytes=10_000)
    assert len(reopened) == 2
    first = reopened.oldest()
    assert (first.columns, first.payload, first.rows) == (COLUMNS, b"a\t1\n", 1)
    reopened.remove(first.sequence)
    second = reopened.oldest()
    assert second.payload == b"b\t2\nc\t3\n"
    reopened.remove(second.sequence)
    assert reopened.oldest() is None
    assert reopened.bytes == 0
    assert reopened.append(COLUMNS, b"d\t4\n")
    assert reopened.oldest().sequence > second.sequence


def test_a_full_spool_refuses_instead_of_dropping(tmp_path):
    spool = Spool(tmp_path, max_bytes=60)
    assert spool.append(COLUMNS, b"x" * 20 + b"\n")
    assert not spool.append(COLUMNS, b"y" * 20 + b"\n")
    assert len(spool) == 1
    assert spool.oldest().payload.startswith(b"x")


def test_an_unfinished_write_is_discarded_at_start(tmp_path):
    (tmp_path / ".7.tmp").write_bytes(b"partial")
    spool = Spool(tmp_path, max_bytes=1000)
    assert len(spool) == 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_quarantine_moves_a_batch_aside(tmp_path):
    spool = Spool(tmp_path, max_bytes=1000)
    spool.append(COLUMNS, b"bad\n")
    target = spool.quarantine(spool.oldest().sequence)
    assert target.read_bytes().endswith(b"bad\n")
    assert len(spool) == 0 and spool.bytes == 0
