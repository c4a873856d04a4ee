from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from cost_monitor.budgets import ALL_PROJECTS, BudgetGauges, SpendTracker
from cost_monitor.config import Budget
from cost_monitor.records import UsageRecord


class Clock:
    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


def record(when, project, cost):
    return UsageRecord(
        time=when,
        event_id=str(uuid.uuid4()),
        provider="openai",
        model="gpt-5",
        project=project,
        cost_usd=None if cost is None else Decimal(cost),
    )


def test_spend_today_and_month_from_database_plus_new_records():
    clock = Clock(datetime(2026, 11, 28, 15, tzinfo=UTC))
    tracker = SpendTracker(clock)
    tracker.load([("search", date(2026, 11, 28), Decimal("2")), ("search", date(2026, 11, 3), 5)])
    tracker.add(
        [
            record(datetime(2026, 11, 28, 14, tzinfo=UTC), "search", "1.5"),
            record(datetime(2026, 11, 27, 9, tzinfo=UTC), "search", "1"),
            record(datetime(2026, 10, 31, 9, tzinfo=UTC), "search", "100"),  # last month
            record(datetime(2026, 11, 28, 9, tzinfo=UTC), "chat", "0.25"),
            record(datetime(2026, 11, 28, 9, tzinfo=UTC), "chat", None),  # unpriced
        ]
    )
    assert tracker.spend("search") == (Decimal("3.5"), Decimal("9.5"))
    assert tracker.spend(ALL_PROJECTS) == (Decimal("3.75"), Decimal("9.75"))


def test_day_and_month_roll_over_with_the_clock():
    clock = Clock(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    tracker = SpendTracker(clock)
    tracker.add([record(datetime(2026, 11, 30, 23, tzinfo=UTC), "p", "4")])
    assert tracker.spend("p") == (Decimal(4), Decimal(4))
    clock.moment = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    assert tracker.spend("p") == (Decimal(0), Decimal(0))


def test_budget_gauges_export_limit_and_spend_per_period():
    clock = Clock(datetime(2026, 11, 28, 15, tzinfo=UTC))
    tracker = SpendTracker(clock)
    tracker.add([record(datetime(2026, 11, 28, 14, tzinfo=UTC), "search", "12")])
    gauges = BudgetGauges(tracker, {"search": Budget(daily_usd=10, monthly_usd=200)})
    samples = {
        (family.name, s.labels["project"], s.labels["period"]): s.value
        for family in gauges.collect()
        for s in family.samples
    }
    assert samples == {
        ("llm_budget_limit_usd", "search", "day"): 10,
        ("llm_budget_limit_usd", "search", "month"): 200,
        ("llm_budget_spend_usd", "search", "day"): 12,
        ("llm_budget_spend_usd", "search", "month"): 12,
    }
