"""Billing reconciliation: the cost applications reported against what providers billed.

For the last complete UTC day (yesterday), per provider with billed cost rows that day:
reported = sum(cost_usd) of llm_consumption, billed = sum(cost_amount) of the USD rows of
llm_provider_usage whose bucket starts that day, drift = reported - billed. A background
thread recomputes it every interval on its own connection, so ingest and the writer thread
never wait for it; a failed pass is logged and counted, and the last good figures stay.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg2 import sql

from cost_monitor import schema
from cost_monitor.metrics import Metrics
from cost_monitor.records import canonical_provider

log = logging.getLogger(__name__)

BILLED_CURRENCY = "USD"


def _sum_by_provider_sql(table_name: str, amount: str, equal: tuple[str, ...] = ()) -> sql.Composed:
    """SELECT provider, sum(amount) for the table's time column in [%s, %s), and each column
    in ``equal`` = %s; names come from the shared schema and fail at import if one is gone."""
    table = schema.TABLES[table_name]
    time_column = table.time_column or "time"
    for name in ("provider", amount, time_column, *equal):
        table.column(name)
    conditions = [
        sql.SQL("{0} >= %s AND {0} < %s").format(sql.Identifier(time_column)),
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(amount)),
        *(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in equal),
    ]
    return sql.SQL(
        "SELECT {provider}, sum({amount}) FROM {table} WHERE {conditions} GROUP BY 1"
    ).format(
        provider=sql.Identifier("provider"),
        amount=sql.Identifier(amount),
        table=sql.Identifier(table.name),
        conditions=sql.SQL(" AND ").join(conditions),
    )


REPORTED_SQL = _sum_by_provider_sql("llm_consumption", "cost_usd")
BILLED_SQL = _sum_by_provider_sql("llm_provider_usage", "cost_amount", equal=("currency",))


@dataclass(frozen=True)
class Reconciliation:
    day: date
    reported: Mapping[str, Decimal]  # provider -> USD, only providers with billed rows
    billed: Mapping[str, Decimal]

    def drift(self, provider: str) -> Decimal:
        return self.reported[provider] - self.billed[provider]

    def day_timestamp(self) -> float:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC).timestamp()


def _sums(cursor: Any, query: sql.Composed, params: tuple[Any, ...]) -> dict[str, Decimal]:
    cursor.execute(query, params)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for provider, amount in cursor.fetchall():
        # One spelling for both tables: collectors and ingest both use the OTel names.
        totals[canonical_provider(provider)] += amount
    return totals


def reconcile_day(conn: Any, day: date) -> Reconciliation:
    """Reported and billed USD per provider with billed cost rows for one UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    window = (start, start + timedelta(days=1))
    with conn.cursor() as cursor:
        billed = _sums(cursor, BILLED_SQL, (*window, BILLED_CURRENCY))
        reported = _sums(cursor, REPORTED_SQL, window)
    conn.commit()
    return Reconciliation(
        day, {provider: reported.get(provider, Decimal(0)) for provider in billed}, dict(billed)
    )


class Reconciler:
    """Runs reconcile_day for yesterday at start and then every interval, in one thread."""

    def __init__(
        self,
        connect: Callable[[], Any],
        metrics: Metrics,
        interval_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.connect = connect
        self.metrics = metrics
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.latest: Reconciliation | None = None  # replaced whole, read by the gauges
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciliation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def run_once(self) -> Reconciliation | None:
        day = self.clock().astimezone(UTC).date() - timedelta(days=1)
        try:
            conn = self.connect()
            try:
                result = reconcile_day(conn, day)
            finally:
                conn.close()
        except Exception as error:
            self.metrics.billing_reconciliation_errors.inc()
            log.error(
                "billing reconciliation failed: %s",
                f"{type(error).__name__}: {error}".strip(),
                extra={"day": day.isoformat()},
            )
            return None
        self.latest = result
        log.info(
            "billing reconciliation of %s: %d providers",
            day.isoformat(),
            len(result.billed),
            extra={"drift_usd": {p: str(result.drift(p)) for p in result.billed}},
        )
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_seconds)


class BillingGauges(Collector):
    """llm_billing_{reported,billed,drift}_usd{provider} from the reconciler's last result."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    def collect(self) -> Iterator[GaugeMetricFamily]:
        result = self.reconciler.latest
        labels = ("provider",)
        reported = GaugeMetricFamily(
            "llm_billing_reported_usd",
            "Cost applications reported for the reconciled UTC day (llm_consumption)",
            labels=labels,
        )
        billed = GaugeMetricFamily(
            "llm_billing_billed_usd",
            "Cost the provider billed for the reconciled UTC day (llm_provider_usage, USD)",
            labels=labels,
        )
        drift = GaugeMetricFamily(
            "llm_billing_drift_usd",
            "Reported minus billed cost of the reconciled UTC day",
            labels=labels,
        )
        day = GaugeMetricFamily(
            "llm_billing_reconciled_day_timestamp_seconds",
            "Unix time (UTC midnight) of the day the billing gauges compare",
        )
        if result is not None:
            for provider in sorted(result.billed):
                reported.add_metric([provider], float(result.reported[provider]))
                billed.add_metric([provider], float(result.billed[provider]))
                drift.add_metric([provider], float(result.drift(provider)))
            day.add_metric([], result.day_timestamp())
        yield from (reported, billed, drift, day)
