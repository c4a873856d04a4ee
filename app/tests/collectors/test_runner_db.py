"""run_collector against a real PostgreSQL 17 + TimescaleDB container: idempotence, resume.

Needs Docker and the aicost-test/timescaledb:2.29.2-pg17 image (tests/images/build.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2
import pytest
from cost_monitor import schema
from cost_monitor.collectors.http import HttpClient
from cost_monitor.collectors.model import Collector, UsageBucket, floor_time
from cost_monitor.collectors.openai import OpenAIUsageCollector
from cost_monitor.collectors.runner import run_collector
from pgcontainer import TIMESCALEDB_IMAGE, postgres_container

from .conftest import PAYLOADS, ProviderStub, RecordingSleep, Reply

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
CONFIG = {"account": "org-main", "initial_lookback_seconds": 5 * 86400}
USAGE_PAGES = (
    "/v1/organization/usage/completions",
    "openai_usage_completions_page1.json",
    "openai_usage_completions_page2.json",
)
KEY_ORDER = ", ".join(schema.conflict_columns("llm_provider_usage"))


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_container(TIMESCALEDB_IMAGE, prefix="a2-collectors") as pg:
        with psycopg2.connect(pg.dsn) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for table in schema.TABLES.values():
                cursor.execute(schema.create_table_sql(table))
            cursor.execute("SELECT create_hypertable('llm_provider_usage', 'bucket_start')")
        conn.close()
        yield pg.dsn


@pytest.fixture
def conn(database: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(database)
    with connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE llm_provider_usage, llm_collector_state")
    try:
        yield connection
    finally:
        connection.close()


def script_openai_usage(provider: ProviderStub, completions_page2: str | None = None) -> None:
    path, page1, page2 = USAGE_PAGES
    provider.reply(
        "GET", path, provider.json_reply(page1), provider.json_reply(completions_page2 or page2)
    )
    provider.reply(
        "GET",
        "/v1/organization/usage/embeddings",
        provider.json_reply("openai_usage_embeddings.json"),
    )


def openai_usage(provider: ProviderStub) -> OpenAIUsageCollector:
    http = HttpClient(provider.base_url + "/v1", {}, sleep=RecordingSleep(), jitter=lambda: 0.0)
    return OpenAIUsageCollector(CONFIG, http=http)


def snapshot(conn) -> list[tuple]:
    """Every stored row with its row version (xmin): any rewrite would change it."""
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text, * FROM llm_provider_usage ORDER BY {KEY_ORDER}")
        rows = cursor.fetchall()
    conn.commit()
    return rows


def stored_watermark(conn, collector: str) -> datetime | None:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT watermark FROM llm_collector_state WHERE collector = %s", (collector,)
        )
        row = cursor.fetchone()
    conn.commit()
    return row[0] if row else None


def test_rerun_changes_nothing_and_restart_resumes_from_watermark(provider, conn, database):
    script_openai_usage(provider)
    first = run_collector("openai_usage", CONFIG, conn, now=NOW, collector=openai_usage(provider))
    assert first.error is None, first.error
    assert (first.rows_upserted, first.watermark) == (5, NOW)
    first_start = datetime.fromtimestamp(int(provider.requests[0].query["start_time"][0]), UTC)
    assert first_start == datetime(2026, 11, 15, tzinfo=UTC)  # now - 5 days, floored to a day
    stored = snapshot(conn)
    assert len(stored) == 5

    # Same provider data an hour later: nothing is written, not even collected_at.
    provider.requests.clear()
    script_openai_usage(provider)
    later = NOW + timedelta(hours=1)
    second = run_collector(
        "openai_usage", CONFIG, conn, now=later, collector=openai_usage(provider)
    )
    assert (second.error, second.rows_upserted, second.watermark) == (None, 0, later)
    assert snapshot(conn) == stored
    second_start = datetime.fromtimestamp(int(provider.requests[0].query["start_time"][0]), UTC)
    assert second_start == datetime(2026, 11, 18, tzinfo=UTC)  # watermark - 2 days overlap

    # A restart: new connection, new collector; the provider revised one bucket meanwhile.
    conn.close()
    restarted = psycopg2.connect(database)
    try:
        provider.requests.clear()
        revised = PAYLOADS / "openai_usage_completions_page2.json"
        text = revised.read_text().replace('"output_tokens": 42000', '"output_tokens": 43000')
        path = USAGE_PAGES[0]
        provider.reply("GET", path, provider.json_reply(USAGE_PAGES[1]), Reply(200, text.encode()))
        provider.reply(
            "GET",
            "/v1/organization/usage/embeddings",
            provider.json_reply("openai_usage_embeddings.json"),
        )
        third_now = later + timedelta(days=1)
        third = run_collector(
            "openai_usage", CONFIG, restarted, now=third_now, collector=openai_usage(provider)
        )
        assert (third.error, third.rows_upserted, third.watermark) == (None, 1, third_now)
        third_start = datetime.fromtimestamp(int(provider.requests[0].query["start_time"][0]), UTC)
        assert third_start == floor_day(later - timedelta(days=2))
        after = snapshot(restarted)
        changed = [row for row in after if row not in stored]
        assert len(after) == 5 and len(changed) == 1
        assert changed[0][1] == datetime(2026, 11, 19, tzinfo=UTC)
        with restarted.cursor() as cursor:
            cursor.execute("SELECT sum(output_tokens) FROM llm_provider_usage")
            assert cursor.fetchone()[0] == 18000 + 90000 + 9000 + 43000
    finally:
        restarted.close()


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def test_failed_run_writes_nothing_and_keeps_the_watermark(provider, conn):
    script_openai_usage(provider)
    assert run_collector("openai_usage", CONFIG, conn, now=NOW, collector=openai_usage(provider)).ok
    stored = snapshot(conn)

    path, page1, _ = USAGE_PAGES
    provider.reply("GET", path, provider.json_reply(page1), Reply(401, b'{"error": "key revoked"}'))
    failed = run_collector(
        "openai_usage", CONFIG, conn, now=NOW + timedelta(days=1), collector=openai_usage(provider)
    )
    assert failed.rows_upserted == 0 and failed.watermark == NOW
    assert "401" in failed.error and "key revoked" in failed.error
    assert snapshot(conn) == stored
    assert stored_watermark(conn, "openai_usage") == NOW


def test_watermark_never_moves_back(provider, conn):
    script_openai_usage(provider)
    assert run_collector("openai_usage", CONFIG, conn, now=NOW, collector=openai_usage(provider)).ok
    script_openai_usage(provider)
    earlier = NOW - timedelta(days=1)
    result = run_collector(
        "openai_usage", CONFIG, conn, now=earlier, collector=openai_usage(provider)
    )
    assert result.ok and result.watermark == NOW
    assert stored_watermark(conn, "openai_usage") == NOW


def test_file_collector_by_name_stores_exact_billed_cost_once(conn, tmp_path):
    (tmp_path / "cur.csv").write_bytes((PAYLOADS / "bedrock_cur_2026-11.csv").read_bytes())
    config = {"path": str(tmp_path), "project_tag": "user_project"}
    config["initial_lookback_seconds"] = 30 * 86400
    first = run_collector("bedrock_cur", config, conn, now=NOW)
    second = run_collector("bedrock_cur", config, conn, now=NOW + timedelta(hours=6))
    assert (first.error, first.rows_upserted) == (None, 6)
    assert (second.error, second.rows_upserted) == (None, 0)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(cost_amount), sum(input_tokens), sum(cache_read_tokens)"
            " FROM llm_provider_usage WHERE source = 'bedrock_cur' AND provider = 'aws.bedrock'"
        )
        assert cursor.fetchone() == (6, Decimal("0.8129100000"), 170000, 400000)
    conn.commit()


def test_state_key_gives_each_account_its_own_watermark(provider, conn):
    for account in ("org-a", "org-b"):
        script_openai_usage(provider)
        config = {**CONFIG, "account": account, "state_key": f"openai_usage:{account}"}
        http = HttpClient(provider.base_url + "/v1", {}, sleep=RecordingSleep())
        collector = OpenAIUsageCollector(config, http=http)
        result = run_collector("openai_usage", config, conn, now=NOW, collector=collector)
        assert (result.collector, result.rows_upserted) == (f"openai_usage:{account}", 5)
    assert stored_watermark(conn, "openai_usage:org-a") == NOW
    assert len(snapshot(conn)) == 10  # the account is part of the natural key


class HourlyLoad(Collector):
    """A source of many distinct hourly buckets, to cross execute_values' page size."""

    name = "hourly_load"
    provider = "openai"
    bucket_seconds = 3600

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        hour = since
        while hour < until:
            for model in ("m1", "m2"):
                yield UsageBucket(hour, 3600, self.provider, self.name, model=model, requests=1)
            hour += timedelta(hours=1)


def test_batches_larger_than_a_page_are_counted_and_stay_idempotent(conn):
    config = {"initial_lookback_seconds": 50 * 86400}
    first = run_collector("hourly_load", config, conn, now=NOW, collector=HourlyLoad(config))
    assert (first.error, first.rows_upserted) == (
        None,
        2 * (50 * 24 + 1),
    )  # 50 days of hours plus 12:00 today
    again = run_collector(
        "hourly_load",
        {**config, "overlap_seconds": 50 * 86400},
        conn,
        now=NOW,
        collector=HourlyLoad(config),
    )
    assert (again.error, again.rows_upserted) == (None, 0)


def test_unusable_connection_is_reported_not_raised(database, provider):
    closed = psycopg2.connect(database)
    closed.close()
    result = run_collector(
        "openai_usage", CONFIG, closed, now=NOW, collector=openai_usage(provider)
    )
    assert result.error.startswith("InterfaceError")
    assert (result.rows_upserted, result.watermark) == (0, None)
    assert provider.requests == []  # nothing is fetched that could not be stored


class Overreaching(Collector):
    """A source that answers with more than it was asked for: a day before, a day after."""

    name = "overreaching"
    provider = "openai"
    bucket_seconds = 86400

    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        day = timedelta(days=1)
        for start in (since - day, since, floor_time(until, 86400), until + day):
            yield UsageBucket(start, 86400, self.provider, self.name, requests=1)


def test_buckets_outside_the_window_asked_for_are_not_stored(conn):
    config = {"initial_lookback_seconds": 2 * 86400}
    result = run_collector("overreaching", config, conn, now=NOW, collector=Overreaching(config))
    assert (result.error, result.rows_upserted) == (None, 2)
    with conn.cursor() as cursor:
        cursor.execute("SELECT bucket_start FROM llm_provider_usage ORDER BY 1")
        stored = [row[0] for row in cursor.fetchall()]
    conn.commit()
    since = floor_time(NOW - timedelta(days=2), 86400)
    assert stored == [since, floor_time(NOW, 86400)]
