from __future__ import annotations

import pytest
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
    target = spool.quarantine(spool.oldest().sequence, "refused")
    assert target.read_bytes().endswith(b"bad\n")
    assert len(spool) == 0 and spool.bytes == 0


def test_a_broken_batch_file_is_quarantined_and_counted_not_fatal(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append(COLUMNS, b"a\t1\n")
    (tmp_path / f"{0:016d}.copy").write_bytes(b"")  # e.g. a crash of a filesystem without fsync
    (tmp_path / f"{9:016d}.copy").write_bytes(b"\xff\xfe not a header\n")
    reopened = Spool(tmp_path, max_bytes=10_000)
    assert len(reopened) == 3
    batch = reopened.oldest()
    assert batch.payload == b"a\t1\n"
    reopened.remove(batch.sequence)
    assert reopened.oldest() is None
    assert reopened.quarantined == {"unreadable": 2}
    assert len(list((tmp_path / "quarantine").iterdir())) == 2
    assert (len(reopened), reopened.bytes) == (0, 0)


def test_the_quarantine_is_bounded_oldest_dropped_first(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000, quarantine_max_bytes=110)
    for letter in b"abc":
        spool.append(COLUMNS, bytes([letter]) * 30 + b"\n")
        spool.quarantine(spool.oldest().sequence, "refused")
    kept = sorted((tmp_path / "quarantine").iterdir())
    # Each file is 54 bytes with its header: two fit in 110, the oldest was dropped.
    assert [path.read_bytes()[-2:-1] for path in kept] == [b"b", b"c"]
    assert (spool.quarantine_bytes, spool.quarantine_batches) == (108, 2)
    assert spool.quarantined == {"refused": 3}
    assert spool.quarantine_dropped == 1
    reopened = Spool(tmp_path, max_bytes=10_000, quarantine_max_bytes=110)
    assert (reopened.quarantine_bytes, reopened.quarantine_batches) == (108, 2)


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    spool = Spool(tmp_path, max_bytes=10_000)

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError):
        spool.append(COLUMNS, b"a\t1\n")
    assert list(tmp_path.iterdir()) == []
    assert (len(spool), spool.bytes) == (0, 0)
