"""Spend per project for the current UTC day and month, against configured limits.

Spend is what the database held for this day and month when the tracker was loaded, plus
every priced record committed since, plus what waits in the spool (pending: replaced by what
its replay really inserts). Loading and adding both happen on the writer thread, in commit
order, so a record is never counted twice and never missed.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cost_monitor.config import Budget
from cost_monitor.records import UsageRecord

ALL_PROJECTS = "_all"
NO_PROJECT = ""


class SpendTracker:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._by_day: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
        self._pending: dict[int, dict[tuple[str, date], Decimal]] = {}
        self._lock = threading.Lock()
        self.loaded = False

    def load(self, rows: Iterable[tuple[str | None, date, Decimal]]) -> None:
        """Replace the state with (project, UTC day, spend) rows read from the database."""
        with self._lock:
            self._by_day = defaultdict(Decimal)
            for project, day, amount in rows:
                self._by_day[(project or NO_PROJECT, day)] += amount
            self.loaded = True

    def add(self, records: Iterable[UsageRecord]) -> None:
        month_start = self._clock().date().replace(day=1)
        with self._lock:
            for record in records:
                if record.cost_usd is None:
                    continue
                day = record.time.date()
                if day >= month_start:
                    self._by_day[(record.project or NO_PROJECT, day)] += record.cost_usd
            self._forget_before(month_start)

    def add_pending(self, key: int, records: Iterable[UsageRecord]) -> None:
        """Spend acknowledged but not in the database yet (a spooled batch), until settled."""
        amounts: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
        for record in records:
            if record.cost_usd is not None:
                amounts[(record.project or NO_PROJECT, record.time.date())] += record.cost_usd
        with self._lock:
            self._pending[key] = amounts

    def settle(self, key: int, stored: Iterable[UsageRecord]) -> None:
        """Replace pending spend ``key`` by the records its replay really stored."""
        with self._lock:
            self._pending.pop(key, None)
        self.add(stored)

    def spend(self, project: str) -> tuple[Decimal, Decimal]:
        """(today, this month) for one project, or for every project with ALL_PROJECTS."""
        today = self._clock().date()
        month_start = today.replace(day=1)
        day_total = month_total = Decimal(0)
        with self._lock:
            amounts = [*self._by_day.items()]
            for pending in self._pending.values():
                amounts.extend(pending.items())
            for (name, day), amount in amounts:
                if project not in (ALL_PROJECTS, name) or day < month_start or day > today:
                    continue
                month_total += amount
                if day == today:
                    day_total += amount
        return day_total, month_total

    def _forget_before(self, month_start: date) -> None:
        stale = [key for key in self._by_day if key[1] < month_start]
        for key in stale:
            del self._by_day[key]


class BudgetGauges(Collector):
    """llm_budget_limit_usd and llm_budget_spend_usd{project, period}, computed at scrape."""

    def __init__(self, tracker: SpendTracker, budgets: Mapping[str, Budget]) -> None:
        self.tracker = tracker
        self.budgets = dict(budgets)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ("project", "period")
        limit = GaugeMetricFamily(
            "llm_budget_limit_usd", "Configured spend limit per UTC day or month", labels=labels
        )
        spend = GaugeMetricFamily(
            "llm_budget_spend_usd", "Spend so far this UTC day or month", labels=labels
        )
        for project, budget in self.budgets.items():
            today, month = self.tracker.spend(project)
            spend.add_metric([project, "day"], float(today))
            spend.add_metric([project, "month"], float(month))
            if budget.daily_usd is not None:
                limit.add_metric([project, "day"], budget.daily_usd)
            if budget.monthly_usd is not None:
                limit.add_metric([project, "month"], budget.monthly_usd)
        yield limit
        yield spend
