from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources

from cost_monitor.pricing import PriceCatalog, price_records
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


ANTHROPIC = {
    "litellm_provider": "anthropic",
    "input_cost_per_token": 3e-06,
    "output_cost_per_token": 1.5e-05,
    "cache_read_input_token_cost": 3e-07,
    "cache_creation_input_token_cost": 3.75e-06,
    "cache_creation_input_token_cost_above_1hr": 6e-06,
    "input_cost_per_token_batches": 1.5e-06,
    "output_cost_per_token_batches": 7.5e-06,
    "input_cost_per_token_above_200k_tokens": 6e-06,
    "output_cost_per_token_above_200k_tokens": 2.25e-05,
    "provider_specific_entry": {"us": 1.1, "fast": 6.0},
}


def test_cache_writes_are_billed_by_lifetime_and_an_unpriced_lifetime_at_the_base_rate():
    priced = catalog(m=ANTHROPIC)
    # 1,000 writes of which 400 for an hour: 600 at 5-minute, 400 at 1-hour rates.
    cost = priced.price("m", "anthropic", cache_write_tokens=1000, cache_write_1h_tokens=400)
    assert cost == 600 * Decimal("3.75e-06") + 400 * Decimal("6e-06")
    # No 12-hour rate in the entry: those writes cost what a base write costs.
    twelve = priced.price("m", "anthropic", cache_write_tokens=10, cache_write_12h_tokens=10)
    assert twelve == 10 * Decimal("3.75e-06")


def test_batch_without_a_batch_rate_is_half_the_standard_rate_long_context_included():
    priced = catalog(m=ANTHROPIC)
    short = priced.price("m", "anthropic", batch=True, input_tokens=1000, cache_read_tokens=1000)
    # The entry's batch rate for input; cache reads have none: their standard rate, as
    # LiteLLM bills them (an entry with batch rates prices every batch rate it has).
    assert short == 1000 * Decimal("1.5e-06") + 1000 * Decimal("3e-07")
    no_batch_rates = {"input_cost_per_token": 1e-06, "cache_read_input_token_cost": 1e-07}
    halved = catalog(n=no_batch_rates).price(
        "n", "openai", batch=True, input_tokens=1000, cache_read_tokens=1000
    )
    assert halved == Decimal("0.0005") + Decimal("0.00005")
    long = priced.price("m", "anthropic", batch=True, input_tokens=200_001, output_tokens=10)
    # Above 200k: the long-context rates at the entry's batch discount (1.5e-6 / 3e-6).
    assert long == 200_001 * Decimal("3e-06") + 10 * Decimal("1.125e-05")


def test_uplifts_multiply_every_token_by_where_the_request_ran():
    openai = {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
        "regional_processing_uplift_multiplier_eu": 1.1,
        "fedramp_uplift_multiplier": 1.2,
    }
    vertex = {**openai, "regional_endpoint_uplift_multiplier": 1.1}
    priced = catalog(o=openai, a=ANTHROPIC, v=vertex)
    plain = priced.price("o", "openai", input_tokens=1000, output_tokens=1000)
    eu = priced.price("o", "openai", data_residency="eu", input_tokens=1000, output_tokens=1000)
    assert eu == plain * Decimal("1.1")
    assert priced.price("o", "openai", data_residency="fedramp", input_tokens=1000) == Decimal(
        "0.0012"
    )
    assert priced.price("o", "openai", data_residency="us", input_tokens=1000) == Decimal("0.001")
    assert priced.price("a", "anthropic", data_residency="us", input_tokens=1000) == Decimal(
        "0.0033"
    )
    assert priced.price("v", "openai", region="us-east5", input_tokens=1000) == Decimal("0.0011")
    assert priced.price("v", "openai", region="global", input_tokens=1000) == Decimal("0.001")


def test_a_dated_snapshot_keeps_its_own_price_and_an_unknown_one_is_not_guessed():
    base = {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}
    may = {"input_cost_per_token": 5e-06, "output_cost_per_token": 1.5e-05}
    priced = catalog(**{"gpt-4o": base, "gpt-4o-2024-05-13": may})
    assert priced.priced_key("gpt-4o-2024-05-13", "openai") == "gpt-4o-2024-05-13"
    # Snapshots of gpt-4o are not all priced alike: an unknown one has no price.
    assert priced.price("gpt-4o-2099-01-01", "openai", input_tokens=1) is None
    alike = catalog(**{"gpt-5": base, "gpt-5-2025-08-07": base})
    assert alike.priced_key("gpt-5-2099-01-01", "openai") == "gpt-5"


def test_region_prefixes_normalise_only_to_alike_priced_ids():
    base = {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05}
    premium = {"input_cost_per_token": 3.3e-06, "output_cost_per_token": 1.65e-05}
    model = "anthropic.claude-x-20250929-v1:0"
    priced = catalog(**{model: base, "global." + model: base, "jp." + model: premium})
    assert priced.priced_key("jp." + model, "aws.bedrock") == "jp." + model
    # au. is not in the catalog, and regional ids of this model differ: no price.
    assert priced.priced_key("au." + model, "aws.bedrock") is None
    plain = catalog(**{model: base, "global." + model: base})
    assert plain.priced_key("us." + model, "aws.bedrock") == model


def test_vertex_default_version_names_the_model():
    priced = catalog(**{"vertex_ai/gemini-9-pro": {"input_cost_per_token": 1e-06}})
    assert priced.priced_key("gemini-9-pro@default", "gcp.vertex_ai") == "vertex_ai/gemini-9-pro"


def test_fast_mode_and_azure_data_zones_are_priced_as_their_providers_bill_them():
    opus = {**ANTHROPIC, "provider_specific_entry": {"us": 1.1, "fast": 2.0}}
    gpt = {"input_cost_per_token": 1e-06, "input_cost_per_token_priority": 2e-06}
    zoned = {"input_cost_per_token": 1.1e-06}
    priced = catalog(**{"opus": opus, "gpt": gpt, "azure/gpt-9": gpt, "azure/eu/gpt-9": zoned})
    assert priced.price("opus", "anthropic", service_tier="fast", input_tokens=1000) == Decimal(
        "0.006"
    )
    # OpenAI calls priority processing "fast" too: the priority rates, no multiplier.
    assert priced.price("gpt", "openai", service_tier="fast", input_tokens=1000) == Decimal("0.002")
    eu = priced.price("gpt-9", "azure.ai.openai", data_residency="eu", input_tokens=1000)
    assert eu == Decimal("0.0011")
    # A zone without an entry of its own has no price rather than the global one.
    assert priced.price("gpt-9", "azure.ai.openai", data_residency="us", input_tokens=1) is None


def test_a_provider_is_priced_only_by_its_own_entries():
    anthropic_direct = {**ANTHROPIC, "litellm_provider": "anthropic"}
    on_bedrock = {**ANTHROPIC, "litellm_provider": "bedrock", "input_cost_per_token": 4e-06}
    priced = catalog(**{"claude-x": anthropic_direct, "bedrock/claude-x": on_bedrock})
    assert priced.priced_key("claude-x", "aws.bedrock") == "bedrock/claude-x"
    assert priced.priced_key("claude-x", "anthropic") == "claude-x"
    assert catalog(**{"claude-x": anthropic_direct}).priced_key("claude-x", "openai") is None


def decimal_cost(price, counts, batch=False, service_tier=None):
    """The cost summed in Decimals column by column: what cost_of_counts must equal."""
    from cost_monitor.pricing import _LIFETIMES, _PROMPT_POSITIONS, _WRITES, SERVICE_TIER_SUFFIXES

    prompt = sum(counts[i] for i in _PROMPT_POSITIONS)
    tier = next((size for size in price.tiers if prompt > size), 0)
    mode = "_batches" if batch else SERVICE_TIER_SUFFIXES.get(service_tier or "", "")
    rates = price._rate_row(tier, mode)
    billed = list(counts)
    billed[_WRITES] -= sum(counts[_LIFETIMES])
    return sum((count * rate for count, rate in zip(billed, rates, strict=True)), Decimal(0))


def test_every_catalog_price_sums_to_the_exact_decimal_cost():
    from cost_monitor.pricing import ModelPrice

    count_rows = [
        (1200, 256, 0, 300, 64, 0, 0),
        (1, 0, 0, 0, 0, 0, 0),
        (250_000, 9_999, 4_000, 77_777, 12_345, 1_000, 500),
        (100_000_000, 100_000_000, 100_000_000, 100_000_000, 100_000_000, 60_000_000, 40_000_000),
    ]
    catalog = PriceCatalog.load()
    priced = 0
    for key, entry in catalog._entries.items():
        price = ModelPrice.from_entry(key, entry)
        if price is None:
            continue
        priced += 1
        for counts in count_rows:
            for batch, tier in ((False, None), (True, None), (False, "flex"), (False, "priority")):
                assert price.cost_of_counts(counts, batch, tier) == decimal_cost(
                    price, counts, batch, tier
                ), (key, counts, batch, tier)
    assert priced > 1000


def test_a_rate_too_fine_for_integer_sums_is_summed_in_decimals():
    entry = {**ENTRY, "input_cost_per_token": 1 / 3 / 10**6}  # 16 significant digits
    price = catalog(**{"fine-model": entry}).lookup("fine-model", "openai")
    counts = (7, 0, 0, 1, 0, 0, 0)
    rates = price.rates
    expected = 7 * rates["input_cost_per_token"] + rates["output_cost_per_token"]
    assert price.cost_of_counts(counts) == expected
    assert price._scaled_rows[(0, "")][1] is None


def test_a_batch_is_priced_record_by_record_as_each_alone():
    # Records are priced in groups of alike terms: a group mixing both sides of a
    # long-context tier, modes and uplifts must cost what each record costs alone.
    entries = {
        "test-model": ENTRY,
        "eu-model": ENTRY,
        "fine-model": {**ENTRY, "input_cost_per_token": 1 / 3 / 10**6},
    }
    terms = [
        {},
        {"input_tokens": 250_000},  # above the tier, in the same group as the one before
        {"batch": True},
        {"batch": True, "input_tokens": 300_000, "reasoning_tokens": 7},
        {"service_tier": "flex", "output_tokens": 11},
        {"data_residency": "eu", "cache_read_tokens": 5},
        {"region": "us-east-1", "model": "eu-model"},
        {"model": "fine-model", "output_tokens": 3},
        {"cache_write_tokens": 900, "cache_write_1h_tokens": 300, "cache_write_12h_tokens": 100},
        {"model": "mystery"},
        {"cost_usd": Decimal("9.99"), "cost_source": "billed"},
    ]
    batch = [record(**fields) for fields in terms * 3]
    alone = [record(**fields) for fields in terms * 3]
    price_records(catalog(**entries), batch)
    for single in alone:
        price_records(catalog(**entries), [single])
    assert [(r.cost_usd, r.cost_source) for r in batch] == [
        (r.cost_usd, r.cost_source) for r in alone
    ]
    assert batch[1].cost_usd != batch[0].cost_usd * 250  # the tier applied within the group
    assert sum(r.cost_usd is None for r in batch) == 3
