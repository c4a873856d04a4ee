from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources

from cost_monitor.pricing import PriceCatalog, candidate_keys, price_records
from cost_monitor.records import UsageRecord

ENTRY = {
    "litellm_provider": "openai",
    "input_cost_per_token": 1e-06,
    "output_cost_per_token": 4e-06,
    "cache_read_input_token_cost": 1e-07,
    "cache_creation_input_token_cost": 1.25e-06,
    "input_cost_per_token_batches": 5e-07,
    "output_cost_per_token_batches": 2e-06,
    "input_cost_per_token_above_200k_tokens": 2e-06,
    "output_cost_per_token_above_200k_tokens": 6e-06,
    "output_cost_per_reasoning_token": 8e-06,
}


def catalog(**entries):
    return PriceCatalog(entries or {"test-model": ENTRY})


def test_cost_adds_every_token_kind_at_its_rate():
    cost = catalog().price(
        "test-model",
        "openai",
        input_tokens=1000,
        cache_read_tokens=2000,
        cache_write_tokens=400,
        output_tokens=300,
        reasoning_tokens=100,
    )
    # 1000*1e-6 + 2000*1e-7 + 400*1.25e-6 + 300*4e-6 + 100*8e-6
    assert cost == Decimal("0.001") + Decimal("0.0002") + Decimal("0.0005") + Decimal(
        "0.0012"
    ) + Decimal("0.0008")


def test_batch_rates_apply_when_the_record_says_batch():
    cost = catalog().price(
        "test-model", "openai", input_tokens=1000, output_tokens=1000, batch=True
    )
    assert cost == Decimal("0.0005") + Decimal("0.002")


def test_long_context_tier_applies_above_its_threshold_only():
    below = catalog().price("test-model", "openai", input_tokens=200_000)
    above = catalog().price("test-model", "openai", input_tokens=150_000, cache_read_tokens=60_000)
    assert below == Decimal("0.2")
    # above 200k prompt tokens: the tier's input rate; cache reads have no tier rate here
    assert above == 150_000 * Decimal("2e-06") + 60_000 * Decimal("1e-07")


def test_missing_reasoning_and_cache_rates_fall_back_to_plain_rates():
    plain = {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    cost = catalog(m=plain).price(
        "m", "openai", cache_read_tokens=10, cache_write_tokens=10, reasoning_tokens=10
    )
    assert cost == Decimal("0.00001") + Decimal("0.00001") + Decimal("0.00002")


def test_a_zero_rate_is_a_price_not_a_gap():
    free_cache = {**ENTRY, "cache_read_input_token_cost": 0.0}
    assert catalog(m=free_cache).price("m", "openai", cache_read_tokens=1000) == 0


def test_unknown_model_has_no_price_never_zero():
    assert catalog().price("no-such-model", "openai", input_tokens=10) is None


def test_dated_and_regional_names_find_their_entry():
    assert candidate_keys("gpt-5-mini-2025-08-07", "openai")[-1] == "openai/gpt-5-mini"
    shipped = PriceCatalog.load()
    # A dated snapshot with an entry of its own is priced by it, not by its base model.
    assert shipped.lookup("gpt-5-mini-2025-08-07", "openai").key == "gpt-5-mini-2025-08-07"
    assert shipped.lookup("claude-sonnet-4-5", "anthropic") is not None
    assert shipped.lookup("gemini-2.5-pro", "gcp.gemini").key == "gemini/gemini-2.5-pro"
    assert shipped.lookup("gpt-5.6", "azure.ai.openai").key == "azure/gpt-5.6"
    bedrock = shipped.lookup("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock")
    assert bedrock is not None


def test_shipped_catalog_covers_the_five_providers_and_says_when_prices_were_taken():
    shipped = PriceCatalog.load()
    providers = {shipped.entry(key)["litellm_provider"] for key in shipped.model_keys()}
    assert {"openai", "anthropic", "azure", "gemini", "bedrock_converse"} <= providers
    raw = json.loads(resources.files("cost_monitor.prices").joinpath("catalog.json").read_text())
    assert raw["_aicost_catalog"]["prices_taken"]


def test_files_and_overrides_merge_field_by_field(tmp_path):
    upstream = tmp_path / "upstream.json"
    upstream.write_text(
        json.dumps(
            {
                "sample_spec": {"input_cost_per_token": 0.0},
                "my-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
            }
        )
    )
    loaded = PriceCatalog.load(
        [upstream], overrides={"my-model": {"output_cost_per_token": 3e-06}}, include_builtin=False
    )
    assert loaded.model_keys() == ["my-model"]
    assert loaded.price("my-model", "openai", input_tokens=1, output_tokens=1) == Decimal("4e-06")


def record(**fields):
    base = dict(
        time=datetime(2026, 11, 28, tzinfo=UTC),
        event_id=str(uuid.uuid4()),
        provider="openai",
        model="test-model",
        input_tokens=1000,
    )
    base.update(fields)
    return UsageRecord(**base)


def test_billed_amount_wins_over_computed_and_unknown_stays_unpriced():
    billed = record(cost_usd=Decimal("9.99"), cost_source="billed")
    computed = record()
    unknown = record(model="mystery")
    price_records(catalog(), [billed, computed, unknown])
    assert (billed.cost_usd, billed.cost_source) == (Decimal("9.99"), "billed")
    assert (computed.cost_usd, computed.cost_source) == (Decimal("0.001"), "computed")
    assert (unknown.cost_usd, unknown.cost_source) == (None, None)


def midnight(day):
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def test_the_catalog_is_dated_by_the_shipped_catalog():
    shipped = PriceCatalog.load()
    assert shipped.taken == date(2026, 11, 28)
    assert shipped.taken_timestamp() == midnight(date(2026, 11, 28)) == 1795824000.0


def test_a_newer_price_file_dates_the_catalog_and_an_older_one_does_not(tmp_path):
    newer, older = tmp_path / "newer.json", tmp_path / "older.json"
    newer.write_text(json.dumps({"_aicost_catalog": {"prices_taken": "2027-02-03"}}))
    older.write_text(json.dumps({"_aicost_catalog": {"prices_taken": "2025-01-01"}}))
    assert PriceCatalog.load([older, newer]).taken == date(2027, 2, 3)
    assert PriceCatalog.load([older]).taken == date(2026, 11, 28)
    assert PriceCatalog.load([older], include_builtin=False).taken == date(2025, 1, 1)


def test_a_price_file_without_the_marker_counts_from_its_mtime(tmp_path):
    upstream = tmp_path / "model_prices_and_context_window.json"
    upstream.write_text(json.dumps({"my-model": {"input_cost_per_token": 1e-06}}))
    modified = datetime(2027, 3, 4, 22, 30, tzinfo=UTC).timestamp()
    os.utime(upstream, (modified, modified))
    catalog = PriceCatalog.load([upstream])
    assert catalog.taken == date(2027, 3, 4)
    assert catalog.taken_timestamp() == midnight(date(2027, 3, 4))
    # An mtime older than the shipped catalog's date leaves the shipped date.
    old = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    os.utime(upstream, (old, old))
    assert PriceCatalog.load([upstream]).taken == date(2026, 11, 28)


def test_overrides_do_not_date_the_catalog():
    overridden = PriceCatalog.load(overrides={"gpt-5": {"input_cost_per_token": 2e-06}})
    assert overridden.taken == date(2026, 11, 28)
    assert PriceCatalog.load(include_builtin=False, overrides={"m": {}}).taken_timestamp() is None
