"""Run one collector: watermark -> collect -> upsert + advance watermark in one transaction.

Each run re-reads from (watermark - overlap), floored to the collector's bucket width, up to
now. Providers revise recent buckets, so the overlap re-collects them; the upsert makes
that idempotent (unchanged buckets are not touched) and a crash before the commit leaves
both the rows and the watermark as they were, so the next run resumes from the same point.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cost_monitor.collectors import COLLECTORS, store
from cost_monitor.collectors.model import (
    DAY,
    Collector,
    UsageBucket,
    floor_time,
    merge_buckets,
)

log = logging.getLogger(__name__)

DEFAULT_INITIAL_LOOKBACK_SECONDS = 30 * DAY


@dataclass(frozen=True)
class CollectResult:
    collector: str
    rows_upserted: int
    watermark: datetime | None
    error: str | None
    duration_seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def collection_window(
    collector: Collector,
    config: Mapping[str, Any],
    watermark: datetime | None,
    now: datetime,
) -> tuple[datetime, datetime]:
    """[since, until) for this run; since starts a bucket so no bucket is read in part."""
    if watermark is None:
        lookback = int(config.get("initial_lookback_seconds", DEFAULT_INITIAL_LOOKBACK_SECONDS))
        start = now - timedelta(seconds=lookback)
    else:
        overlap = int(config.get("overlap_seconds", collector.default_overlap_seconds))
        start = watermark - timedelta(seconds=overlap)
    return floor_time(start, collector.bucket_seconds), now


def within_window(
    buckets: Iterable[UsageBucket], since: datetime, until: datetime, collector: str = ""
) -> Iterator[UsageBucket]:
    """The buckets that start in [since, until): a source answering with more is not trusted
    beyond what was asked (the watermark only vouches for the window)."""
    outside = 0
    for bucket in buckets:
        if since <= bucket.bucket_start < until:
            yield bucket
        else:
            outside += 1
    if outside:
        log.warning(
            "collector buckets outside the window dropped",
            extra={
                "collector": collector,
                "buckets": outside,
                "since": since.isoformat(),
                "until": until.isoformat(),
            },
        )


def run_collector(
    name: str,
    config: Mapping[str, Any],
    conn: Any,
    *,
    now: datetime | None = None,
    collector: Collector | None = None,
) -> CollectResult:
    """Collect ``name`` into llm_provider_usage; errors are returned, not raised.

    ``config`` may set ``state_key`` to run one collector type for several accounts, each
    with its own watermark. ``now`` and ``collector`` exist for tests and backfills.
    """
    started = time.monotonic()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    state_key = str(config.get("state_key", name))
    watermark: datetime | None = None
    autocommit: bool | None = None
    try:
        autocommit, conn.autocommit = conn.autocommit, False
        with conn.cursor() as cursor:
            watermark = store.read_watermark(cursor, state_key)
        conn.commit()  # no transaction stays open during the provider calls
        if collector is None:
            collector = COLLECTORS[name](config)
        since, until = collection_window(collector, config, watermark, now)
        buckets = merge_buckets(
            within_window(collector.collect(since, until), since, until, state_key)
        )
        with conn.cursor() as cursor:
            rows = store.upsert_buckets(cursor, buckets)
            watermark = store.advance_watermark(cursor, state_key, until)
        conn.commit()
    except Exception as error:  # a collector failure must not stop the scheduler
        with contextlib.suppress(Exception):  # the connection itself may be what failed
            conn.rollback()
        duration = time.monotonic() - started
        log.error(
            "collector run failed",
            extra={"collector": state_key, "error": f"{type(error).__name__}: {error}"},
        )
        return CollectResult(state_key, 0, watermark, f"{type(error).__name__}: {error}", duration)
    finally:
        if autocommit is not None:
            with contextlib.suppress(Exception):
                conn.autocommit = autocommit
    duration = time.monotonic() - started
    log.info(
        "collector run finished",
        extra={
            "collector": state_key,
            "buckets": len(buckets),
            "rows_upserted": rows,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "duration_seconds": round(duration, 3),
        },
    )
    return CollectResult(state_key, rows, watermark, None, duration)
