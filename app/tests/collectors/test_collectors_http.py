"""API collectors against a local provider stub: requests, auth, pagination, 429 and 500."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cost_monitor.collectors import COLLECTORS
from cost_monitor.collectors.anthropic import AnthropicCostsCollector, AnthropicUsageCollector
from cost_monitor.collectors.azure_cost import AzureCostCollector
from cost_monitor.collectors.http import HttpClient, HttpError
from cost_monitor.collectors.openai import OpenAICostsCollector, OpenAIUsageCollector

from .conftest import ProviderStub, RecordingSleep, Reply

SINCE = datetime(2026, 11, 17, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
AZURE_QUERY = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.CostManagement/query"


def stub_client(base_url: str, sleep: RecordingSleep) -> HttpClient:
    return HttpClient(base_url, {"Authorization": "Bearer t"}, sleep=sleep, jitter=lambda: 1.0)


def test_openai_usage_pages_through_429_and_500(provider: ProviderStub, sleep):
    provider.reply(
        "GET",
        "/v1/organization/usage/completions",
        provider.json_reply("openai_usage_completions_page1.json"),
        Reply(429, b'{"error": {"type": "rate_limit"}}', {"Retry-After": "2"}),
        provider.json_reply("openai_usage_completions_page2.json"),
    )
    provider.reply(
        "GET",
        "/v1/organization/usage/embeddings",
        Reply(500, b"upstream error"),
        provider.json_reply("openai_usage_embeddings.json"),
    )
    collector = OpenAIUsageCollector(
        {"account": "org-main"}, http=stub_client(provider.base_url + "/v1", sleep)
    )
    buckets = list(collector.collect(SINCE, UNTIL))

    assert len(buckets) == 5
    assert {b.operation for b in buckets} == {"chat", "embeddings"}
    assert sleep.waits == [2.0, 1.0]  # Retry-After honoured; 500 backed off
    first, limited, retried, failed, embeddings = provider.requests
    assert first.query == {
        "start_time": [str(int(SINCE.timestamp()))],
        "end_time": [str(int(UNTIL.timestamp()))],
        "bucket_width": ["1d"],
        "group_by": ["project_id", "model", "api_key_id", "batch"],
        "limit": ["31"],
    }
    assert limited.query["page"] == retried.query["page"] == ["page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="]
    assert failed.query == embeddings.query
    assert embeddings.query["group_by"] == ["project_id", "model", "api_key_id"]
    assert provider.pending() == {}


def test_openai_usage_from_config_sends_admin_key_as_bearer(provider, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_ADMIN_KEY", "sk-admin-test")
    provider.reply(
        "GET",
        "/v1/organization/usage/completions",
        provider.json_reply("openai_usage_completions_page2.json"),
    )
    config = {
        "base_url": provider.base_url + "/v1",
        "api_key_env": "TEST_OPENAI_ADMIN_KEY",
        "endpoints": ["completions"],
        "bucket_width": "1h",
    }
    collector = COLLECTORS["openai_usage"](config)
    [bucket] = collector.collect(SINCE, UNTIL)
    assert bucket.bucket_seconds == 3600 and collector.bucket_seconds == 3600
    request = provider.requests[0]
    assert request.headers["authorization"] == "Bearer sk-admin-test"
    assert request.query["bucket_width"] == ["1h"] and request.query["limit"] == ["168"]


def test_openai_costs_collects_billed_amounts(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/organization/costs", provider.json_reply("openai_costs.json"))
    collector = OpenAICostsCollector({}, http=stub_client(provider.base_url + "/v1", sleep))
    buckets = list(collector.collect(SINCE, UNTIL))
    assert sum(b.cost_amount for b in buckets) == Decimal("0.9300")
    assert provider.requests[0].query["group_by"] == ["project_id", "line_item"]


def test_anthropic_usage_sends_version_and_pages(provider: ProviderStub, monkeypatch):
    monkeypatch.setenv("TEST_ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-test")
    provider.reply(
        "GET",
        "/v1/organizations/usage_report/messages",
        provider.json_reply("anthropic_usage_page1.json"),
        provider.json_reply("anthropic_usage_page2.json"),
    )
    collector = AnthropicUsageCollector(
        {"base_url": provider.base_url, "api_key_env": "TEST_ANTHROPIC_ADMIN_KEY"}
    )
    buckets = list(collector.collect(SINCE, UNTIL))
    assert len(buckets) == 3
    first, second = provider.requests
    assert first.headers["x-api-key"] == "sk-ant-admin01-test"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in first.headers
    assert first.query["starting_at"] == ["2026-11-17T00:00:00Z"]
    assert first.query["ending_at"] == ["2026-11-20T12:30:00Z"]
    assert first.query["group_by[]"] == ["model", "workspace_id", "api_key_id", "service_tier"]
    assert "page" not in first.query
    assert second.query["page"] == ["page_MjAyNi0xMS0xOFQwMDowMDowMFo="]


def test_anthropic_costs_retries_overloaded_then_converts_cents(provider, sleep):
    provider.reply(
        "GET",
        "/v1/organizations/cost_report",
        Reply(503, b'{"type": "error", "error": {"type": "overloaded_error"}}'),
        Reply(429, b"", {"retry-after": "5"}),
        provider.json_reply("anthropic_costs.json"),
    )
    collector = AnthropicCostsCollector({}, http=stub_client(provider.base_url, sleep))
    buckets = list(collector.collect(SINCE, UNTIL))
    assert sum(b.cost_amount for b in buckets) == Decimal("11.105542")
    assert sleep.waits == [1.0, 5.0]
    assert provider.requests[0].query["group_by[]"] == ["workspace_id", "description"]


def test_azure_cost_posts_query_and_follows_next_link(provider: ProviderStub, sleep):
    provider.reply(
        "POST",
        AZURE_QUERY,
        provider.json_reply("azure_cost_page1.json"),
        Reply(429, b"", {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "11"}),
        provider.json_reply("azure_cost_page2.json"),
    )
    collector = AzureCostCollector(
        {"scope": f"/subscriptions/{SUBSCRIPTION}/"}, http=stub_client(provider.base_url, sleep)
    )
    buckets = list(collector.collect(SINCE, UNTIL))

    assert len(buckets) == 4 and {b.account for b in buckets} == {SUBSCRIPTION}
    assert sleep.waits == [11.0]
    first, throttled, second = provider.requests
    assert first.query == {"api-version": ["2025-03-01"]}
    assert second.query["$skiptoken"] == ["AQAAAA=="]
    assert first.body == second.body == throttled.body
    assert first.body["timePeriod"] == {
        "from": "2026-11-17T00:00:00Z",
        "to": "2026-11-20T12:30:00Z",
    }
    assert first.body["dataset"]["granularity"] == "Daily"
    assert first.body["dataset"]["filter"]["dimensions"]["values"] == ["Cognitive Services"]


def test_azure_token_comes_from_a_file(provider: ProviderStub, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJ0eXAiOiJKV1Qi.test\n")
    provider.reply("POST", AZURE_QUERY, provider.json_reply("azure_cost_page2.json"))
    collector = AzureCostCollector(
        {
            "scope": f"subscriptions/{SUBSCRIPTION}",
            "base_url": provider.base_url,
            "token_file": str(token_file),
        }
    )
    assert len(list(collector.collect(SINCE, UNTIL))) == 2
    assert provider.requests[0].headers["authorization"] == "Bearer eyJ0eXAiOiJKV1Qi.test"


def test_unauthorised_collector_fails_without_retrying(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/organization/costs", Reply(401, b'{"error": "bad key"}'))
    collector = OpenAICostsCollector({}, http=stub_client(provider.base_url + "/v1", sleep))
    with pytest.raises(HttpError) as error:
        list(collector.collect(SINCE, UNTIL))
    assert error.value.status == 401 and len(provider.requests) == 1
