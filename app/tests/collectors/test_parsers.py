"""Pure parsing of recorded provider payloads into UsageBuckets: token semantics and money."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cost_monitor.collectors import anthropic, azure_cost, bedrock_cur, gcp_billing, openai
from cost_monitor.collectors.model import DAY, HOUR, merge_buckets

from .conftest import payload, payload_text

NOV17 = datetime(2026, 11, 17, tzinfo=UTC)
NOV18 = datetime(2026, 11, 18, tzinfo=UTC)
WHOLE_MONTH = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def by_model(buckets):
    return {(b.bucket_start, b.model): b for b in buckets}


def test_openai_usage_subtracts_cached_and_cache_write_from_input():
    page = payload("openai_usage_completions_page1.json")
    buckets = by_model(openai.usage_buckets_from_page(page, "completions", "org-main", DAY))
    gpt4o = buckets[(NOV17, "gpt-4o-2024-08-06")]
    # input_tokens 120000 includes 30000 cached reads and 5000 cache writes.
    assert (gpt4o.input_tokens, gpt4o.cache_read_tokens, gpt4o.cache_write_tokens) == (
        85000,
        30000,
        5000,
    )
    assert (gpt4o.output_tokens, gpt4o.reasoning_tokens, gpt4o.requests) == (18000, 0, 240)
    assert gpt4o.cost_amount is None  # the usage API has no prices; none are invented
    assert (gpt4o.provider, gpt4o.source, gpt4o.operation) == ("openai", "openai_usage", "chat")
    assert (gpt4o.account, gpt4o.project, gpt4o.api_key_id) == (
        "org-main",
        "proj_search",
        "key_7Hq2",
    )
    assert gpt4o.line_item == ""
    assert buckets[(NOV17, "gpt-4o-mini-2024-07-18")].line_item == "batch"
    assert len(buckets) == 3


def test_openai_embeddings_are_input_only_and_empty_buckets_yield_nothing():
    page = payload("openai_usage_embeddings.json")
    [bucket] = openai.usage_buckets_from_page(page, "embeddings", "", DAY)
    assert (bucket.operation, bucket.model) == ("embeddings", "text-embedding-3-small")
    assert (bucket.input_tokens, bucket.output_tokens, bucket.requests) == (2500000, 0, 5000)


def test_openai_costs_keep_billed_amounts_exact_and_uppercase_currency():
    buckets = list(openai.cost_buckets_from_page(payload("openai_costs.json"), "org-main"))
    assert [b.cost_amount for b in buckets] == [
        Decimal("0.4125"),
        Decimal("0.18"),
        Decimal("0.0375"),
        Decimal("0.1"),
        Decimal("0.2"),
    ]
    assert {b.currency for b in buckets} == {"USD"}
    first, _, _, web_search, _ = buckets
    assert (first.model, first.line_item) == ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06, input")
    assert (web_search.model, web_search.project) == ("", "proj_agents")
    assert all(b.input_tokens == b.output_tokens == 0 for b in buckets)


def test_anthropic_usage_keeps_uncached_input_and_sums_both_cache_write_ttls():
    page = payload("anthropic_usage_page1.json")
    buckets = by_model(anthropic.usage_buckets_from_page(page, "", DAY))
    sonnet = buckets[(NOV17, "claude-sonnet-4-5-20250929")]
    assert (sonnet.input_tokens, sonnet.cache_read_tokens, sonnet.cache_write_tokens) == (
        41000,
        250000,
        15000,
    )
    assert sonnet.cache_write_1h_tokens == 3000  # of the 15,000 writes
    assert (sonnet.output_tokens, sonnet.project, sonnet.line_item) == (
        15500,
        "wrkspc_01Search",
        "",
    )
    haiku = buckets[(NOV17, "claude-haiku-4-5-20251001")]
    assert (haiku.project, haiku.line_item, haiku.provider) == ("", "batch", "anthropic")
    assert haiku.cost_amount is None


def test_anthropic_cost_amounts_are_cents_strings_converted_with_decimal():
    buckets = list(anthropic.cost_buckets_from_page(payload("anthropic_costs.json"), "acme"))
    amounts = [b.cost_amount for b in buckets]
    # "12.3" cents is $0.123; "0.0042" cents must survive exactly (no float on the way).
    assert amounts == [
        Decimal("0.123"),
        Decimal("0.75"),
        Decimal("0.2325"),
        Decimal("10"),
        Decimal("0.000042"),
    ]
    web = buckets[3]
    assert (web.operation, web.model, web.line_item) == ("web_search", "", "Web Search")
    assert buckets[4].bucket_start == NOV18 and buckets[4].project == ""


def test_azure_rows_map_by_column_name_and_usage_date_number():
    buckets = list(azure_cost.buckets_from_page(payload("azure_cost_page1.json"), "sub-1"))
    assert [b.bucket_start for b in buckets] == [NOV17, NOV17]
    first = buckets[0]
    assert first.cost_amount == Decimal("1.2345678")
    assert (first.project, first.provider, first.account) == (
        "rg-chat-prod",
        "azure.ai.openai",
        "sub-1",
    )
    assert first.line_item == "gpt-4o / gpt-4o-0806-Inp-glbl 1M Tokens"
    assert azure_cost.next_link(payload("azure_cost_page2.json")) is None


def test_azure_result_without_cost_column_is_rejected():
    page = {"properties": {"columns": [{"name": "UsageDate", "type": "Number"}], "rows": [[1]]}}
    with pytest.raises(ValueError, match="cost or UsageDate"):
        list(azure_cost.buckets_from_page(page, ""))


@pytest.mark.parametrize(
    ("usage_type", "field", "model"),
    [
        ("USE1-Claude4.5Sonnet-input-tokens", "input_tokens", "Claude4.5Sonnet"),
        ("USE1-Claude4.5Sonnet-output-tokens", "output_tokens", "Claude4.5Sonnet"),
        ("USW2-NovaPro-cache-read-input-token-count", "cache_read_tokens", "NovaPro"),
        ("EU-Claude4.5Haiku-cache-write-input-token-count", "cache_write_tokens", "Claude4.5Haiku"),
        ("USE1-gpt-oss-120b-mantle-input-tokens-standard", "input_tokens", "gpt-oss-120b"),
        ("USE1-ProvisionedThroughput-ModelUnits", None, ""),
    ],
)
def test_bedrock_usage_types_name_token_kind_and_model(usage_type, field, model):
    assert bedrock_cur.token_field(usage_type) == field
    assert bedrock_cur.model_from_usage_type(usage_type) == model


def cur_rows():
    return list(csv.DictReader(io.StringIO(payload_text("bedrock_cur_2026-11.csv"))))


def test_bedrock_cur_keeps_bedrock_usage_rows_and_billed_net_cost():
    buckets = list(
        bedrock_cur.buckets_from_rows(cur_rows(), *WHOLE_MONTH, project_tag="user_project")
    )
    # Tax and the EC2 row are dropped; 7 Bedrock usage rows remain.
    assert len(buckets) == 7
    assert {b.provider for b in buckets} == {"aws.bedrock"}
    write = next(b for b in buckets if b.cache_write_tokens)
    assert write.cost_amount == Decimal("0.075")  # net cost empty: unblended is the bill
    batch = next(b for b in buckets if b.api_key_id.endswith("nightly-batch"))
    assert (batch.cost_amount, batch.project, batch.input_tokens) == (Decimal("0.135"), "", 50000)
    assert all(b.bucket_seconds == HOUR and b.account == "444455556666" for b in buckets)


def test_bedrock_cur_rows_split_by_resource_merge_into_one_bucket():
    buckets = merge_buckets(
        bedrock_cur.buckets_from_rows(cur_rows(), *WHOLE_MONTH, project_tag="user_project")
    )
    search_input = [
        b for b in buckets if b.line_item.endswith("-input-tokens") and b.project == "search"
    ]
    [merged] = search_input
    assert (merged.input_tokens, merged.cost_amount) == (120000, Decimal("0.36"))
    assert merged.model == "Claude4.5Sonnet" and merged.operation == "InvokeModelInference"
    assert len(buckets) == 6


def test_bedrock_cur_window_is_half_open():
    since = datetime(2026, 11, 17, 10, tzinfo=UTC)
    until = datetime(2026, 11, 18, 9, tzinfo=UTC)
    buckets = list(bedrock_cur.buckets_from_rows(cur_rows(), since, until))
    assert {b.bucket_start for b in buckets} == {since}  # the 09:00 row on the 18th is excluded


def gcp_rows():
    return list(gcp_billing.read_rows(io.StringIO(payload_text("gcp_billing_2026-11-17.ndjson"))))


def test_gcp_billing_keeps_ai_services_nets_credits_and_classifies_token_skus():
    buckets = merge_buckets(gcp_billing.buckets_from_rows(gcp_rows(), *WHOLE_MONTH))
    by_sku = {b.line_item: b for b in buckets}
    assert len(buckets) == 4  # Compute Engine dropped; the credited row merged into its SKU
    flash_input = by_sku["Gemini 2.5 Flash Input Text Tokens"]
    assert flash_input.input_tokens == 3000000
    assert flash_input.cost_amount == Decimal("0.6")  # 0.6 + 0.3 - 0.3 credit
    assert by_sku["Gemini 2.5 Flash Cached Input Text Tokens"].cache_read_tokens == 500000
    assert by_sku["Gemini 2.5 Flash Output Text Tokens"].output_tokens == 100000
    pro = by_sku["Gemini 2.5 Pro Output Text Tokens"]
    assert (pro.provider, pro.project) == ("gcp.gemini", "ai-studio-77")
    assert flash_input.provider == "gcp.vertex_ai" and flash_input.account == "01A2B3-C4D5E6-F7A8B9"


def test_gcp_rows_read_from_a_json_array_too():
    text = "[" + ",".join(payload_text("gcp_billing_2026-11-17.ndjson").splitlines()) + "]"
    assert list(gcp_billing.read_rows(io.StringIO(text))) == gcp_rows()


def test_gcp_bad_ndjson_line_reports_its_number():
    with pytest.raises(ValueError, match="line 2"):
        list(gcp_billing.read_rows(io.StringIO('{"a": 1}\n{not json}\n')))
