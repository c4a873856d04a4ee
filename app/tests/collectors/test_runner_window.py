"""The runner keeps only the buckets a collector was asked for (no database needed)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from cost_monitor.collectors.model import UsageBucket
from cost_monitor.collectors.runner import within_window

SINCE = datetime(2026, 11, 18, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def bucket(start: datetime) -> UsageBucket:
    return UsageBucket(start, 3600, "openai", "test", requests=1)


def test_buckets_starting_outside_since_until_are_dropped_and_logged(caplog):
    starts = [
        SINCE - timedelta(hours=1),
        SINCE,
        UNTIL - timedelta(minutes=30),
        UNTIL,
        UNTIL + timedelta(days=30),
    ]
    with caplog.at_level(logging.WARNING, "cost_monitor.collectors.runner"):
        kept = list(within_window(map(bucket, starts), SINCE, UNTIL, "openai_usage"))
    assert [b.bucket_start for b in kept] == [SINCE, UNTIL - timedelta(minutes=30)]
    (warning,) = caplog.records
    assert (warning.collector, warning.buckets) == ("openai_usage", 3)
