"""Token mixes to price every model of the shipped catalog with: one Case per mix and option.

Token counts follow the app's convention (records.UsageRecord): ``input_tokens`` are the
uncached prompt tokens, ``cache_write_tokens`` the cache writes of every lifetime, of which
``cache_write_1h_tokens`` / ``cache_write_12h_tokens`` were 1-hour / 12-hour writes, and
``output_tokens`` exclude ``reasoning_tokens``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from cost_monitor.pricing import PROVIDER_KEY_PREFIXES

# The OTel provider name the app receives for each LiteLLM provider of the catalog.
OTEL_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "bedrock_mantle": "aws.bedrock",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
}
VERTEX_PROVIDER = "gcp.vertex_ai"  # every vertex_ai* provider: Google's and partner models
SERVICE_TIERS = ("flex", "priority")
VERTEX_REGIONS = ("global", "us-east5")
_LONG_CONTEXT = re.compile(r"_above_(\d+)k_tokens")


@dataclass(frozen=True)
class TokenMix:
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_write_12h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Case:
    key: str  # the catalog entry under test
    entry: Mapping[str, Any]
    category: str  # what the case exercises, e.g. "cache_write_1h", "long_context_above"
    tokens: TokenMix
    batch: bool = False
    service_tier: str | None = None
    data_residency: str | None = None
    region: str | None = None

    @property
    def provider(self) -> str:
        return otel_provider(self.entry["litellm_provider"])

    @property
    def model(self) -> str:
        return model_as_sent(self.key, self.provider)

    def describe(self) -> str:
        options = {
            "batch": self.batch,
            "service_tier": self.service_tier,
            "data_residency": self.data_residency,
            "region": self.region,
        }
        tokens = {name: count for name, count in self.tokens.counts().items() if count}
        chosen = {name: value for name, value in options.items() if value}
        return f"{self.category} {tokens} {chosen}".rstrip(" {}")


def otel_provider(litellm_provider: str) -> str:
    if litellm_provider.startswith("vertex_ai"):
        return VERTEX_PROVIDER
    return OTEL_PROVIDERS[litellm_provider]


def model_as_sent(key: str, provider: str) -> str:
    """The model name a user's request carries: the key without the prefix the app adds."""
    prefixes = sorted((p for p in PROVIDER_KEY_PREFIXES[provider] if p), key=len, reverse=True)
    return next((key[len(p) :] for p in prefixes if key.startswith(p)), key)


def long_context_thresholds(entry: Mapping[str, Any]) -> list[int]:
    """Prompt sizes (tokens) above which some rate of the entry changes."""
    return sorted({int(m.group(1)) * 1000 for name in entry if (m := _LONG_CONTEXT.search(name))})


def every_lifetime(entry: Mapping[str, Any], writes: TokenMix) -> TokenMix:
    """The cache writes split over every lifetime the entry prices (a quarter each)."""
    quarter = writes.cache_write_tokens // 4
    one_hour = quarter if "cache_creation_input_token_cost_above_1hr" in entry else 0
    twelve_hours = quarter if "cache_creation_input_token_cost_above_12hr" in entry else 0
    return replace(writes, cache_write_1h_tokens=one_hour, cache_write_12h_tokens=twelve_hours)


def cases_for(key: str, entry: Mapping[str, Any]) -> Iterator[Case]:
    def case(category: str, tokens: TokenMix, **options: Any) -> Case:
        return Case(key, entry, category, tokens, **options)

    has_read = "cache_read_input_token_cost" in entry
    has_write = "cache_creation_input_token_cost" in entry
    if entry["mode"] == "embedding":
        yield case("input", TokenMix(input_tokens=10_000))
        yield case("batch", TokenMix(input_tokens=10_000), batch=True)
        return

    typical = TokenMix(input_tokens=10_000, cache_read_tokens=6_000 if has_read else 0)
    typical = replace(typical, output_tokens=2_000)
    yield case("input", TokenMix(input_tokens=10_000))
    yield case("output", TokenMix(input_tokens=10_000, output_tokens=2_000))
    yield case(
        "reasoning", TokenMix(input_tokens=10_000, output_tokens=2_000, reasoning_tokens=3_000)
    )
    if has_read:
        yield case(
            "cache_read", TokenMix(input_tokens=2_000, cache_read_tokens=8_000, output_tokens=500)
        )
    writes = TokenMix(input_tokens=2_000, cache_write_tokens=8_000, output_tokens=500)
    if has_write:
        yield case("cache_write_base", writes)
        if "cache_creation_input_token_cost_above_1hr" in entry:
            yield case("cache_write_1h", replace(writes, cache_write_1h_tokens=6_000))
        if "cache_creation_input_token_cost_above_12hr" in entry:
            yield case("cache_write_12h", replace(writes, cache_write_12h_tokens=6_000))
    yield case("batch", typical, batch=True)
    if has_write:
        yield case("batch_cache_write", every_lifetime(entry, writes), batch=True)
    for tier in SERVICE_TIERS:
        if f"input_cost_per_token_{tier}" in entry:
            yield case(f"service_tier_{tier}", typical, service_tier=tier)
    for threshold in long_context_thresholds(entry):
        yield case("long_context_at", TokenMix(input_tokens=threshold, output_tokens=1_000))
        above = TokenMix(input_tokens=threshold + 1, output_tokens=1_000)
        yield case("long_context_above", above)
        if has_read:
            cached = replace(above, input_tokens=threshold + 1 - 50_000, cache_read_tokens=50_000)
            yield case("long_context_above_cached", cached)
        yield case("long_context_above_batch", above, batch=True)
        if has_write:
            long_writes = replace(above, input_tokens=threshold + 1 - 40_000)
            long_writes = every_lifetime(entry, replace(long_writes, cache_write_tokens=40_000))
            yield case("long_context_above_cache_write", long_writes)
        for tier in SERVICE_TIERS:
            if f"input_cost_per_token_above_{threshold // 1000}k_tokens_{tier}" in entry:
                yield case(f"long_context_above_{tier}", above, service_tier=tier)
    for residency in ("eu", "us"):
        if f"regional_processing_uplift_multiplier_{residency}" in entry:
            yield case(f"residency_{residency}", typical, data_residency=residency)
    if "fedramp_uplift_multiplier" in entry:
        yield case("residency_fedramp", typical, data_residency="fedramp")
    if "us" in (entry.get("provider_specific_entry") or {}):
        yield case("inference_geo_us", typical, data_residency="us")
    if "fast" in (entry.get("provider_specific_entry") or {}):
        yield case("service_tier_fast", typical, service_tier="fast")
    if "regional_endpoint_uplift_multiplier" in entry:
        for region in VERTEX_REGIONS:
            yield case(f"region_{region}", typical, region=region)
