"""Prices in the LiteLLM ``model_prices_and_context_window.json`` entry format.

USD per token: ``input_cost_per_token``, ``output_cost_per_token``,
``cache_read_input_token_cost``, ``cache_creation_input_token_cost``,
``output_cost_per_reasoning_token``; a ``_above_<N>k_tokens`` suffix for long-context tiers,
then ``_batches`` / ``_flex`` / ``_priority`` for the batch API and service tiers. The
shipped catalog is a curated subset of the upstream file; users may load the full upstream
file and override single entries. An unknown model has no price (``None``), never $0.

A price file may say when its prices were taken: ``{"_aicost_catalog": {"prices_taken":
"YYYY-MM-DD"}}`` (the shipped catalog does); a file without it counts from its mtime.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from cost_monitor.records import UsageRecord, grouped
from cost_monitor.schema import CACHE_WRITE_LIFETIME_COLUMNS, TOKEN_COLUMNS, TOKEN_COUNT_COLUMNS

INPUT = "input_cost_per_token"
OUTPUT = "output_cost_per_token"
CACHE_READ = "cache_read_input_token_cost"
CACHE_WRITE = "cache_creation_input_token_cost"
CACHE_WRITE_1H = "cache_creation_input_token_cost_above_1hr"
CACHE_WRITE_12H = "cache_creation_input_token_cost_above_12hr"
REASONING = "output_cost_per_reasoning_token"
# Each token column's rate and, when an entry lacks it, the rate it is billed at instead
# (a cache or reasoning token without its own rate is billed like a plain one).
TOKEN_RATES: dict[str, tuple[str, str | None]] = {
    "input_tokens": (INPUT, None),
    "cache_read_tokens": (CACHE_READ, INPUT),
    "cache_write_tokens": (CACHE_WRITE, INPUT),
    "output_tokens": (OUTPUT, None),
    "reasoning_tokens": (REASONING, OUTPUT),
}
if tuple(TOKEN_RATES) != TOKEN_COLUMNS:
    raise RuntimeError("pricing.TOKEN_RATES must price exactly schema.TOKEN_COLUMNS, in order")
# The longer cache-write lifetimes' rates; a missing one is billed at the base write rate.
LIFETIME_RATES: dict[str, str] = dict(
    zip(CACHE_WRITE_LIFETIME_COLUMNS, (CACHE_WRITE_1H, CACHE_WRITE_12H), strict=True)
)
# Every count pricing reads, in the order ModelPrice.cost_of_counts takes them.
PRICED_COLUMNS = TOKEN_COUNT_COLUMNS
_WRITES = TOKEN_COLUMNS.index("cache_write_tokens")
_LIFETIMES = slice(len(TOKEN_COLUMNS), len(PRICED_COLUMNS))
# The columns that make up the prompt, whose size selects a long-context tier.
PROMPT_TOKEN_COLUMNS = ("input_tokens", "cache_read_tokens", "cache_write_tokens")
_PROMPT_POSITIONS = tuple(TOKEN_COLUMNS.index(column) for column in PROMPT_TOKEN_COLUMNS)
_priced_counts = operator.attrgetter(*PRICED_COLUMNS)
# What picks a record's price, beside its token counts.
_pricing_terms = operator.attrgetter(
    "model", "provider", "data_residency", "batch", "service_tier", "region"
)
_TIER_KEY = re.compile(r"_above_(\d+)(k?)_tokens")
# The batch discount every provider of the stack publishes (50 %), where an entry has no
# batch rate of its own.
BATCH_DISCOUNT = Decimal("0.5")
# A service tier's rate suffix. "fast" is OpenAI's name for priority processing and
# Anthropic's fast mode, billed as a multiple of the standard rates (see uplifts()).
SERVICE_TIER_SUFFIXES = {"flex": "_flex", "priority": "_priority", "fast": "_priority"}
# Azure OpenAI data-zone deployments have entries of their own, ``azure/<zone>/<model>``.
AZURE_DATA_ZONES = frozenset({"eu", "us"})
# Normalisations of a model name, tried when no entry has the exact name. Each strips one
# kind of variant; it is used only when every entry of that kind has the same prices.
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8})$")
_BEDROCK_VERSION = re.compile(r"(-v\d+(:\d+)?)$")
_REGION_PREFIX = re.compile(r"^(us|eu|apac|au|jp|in|ca|sa|global|us-gov)\.")
_VERTEX_DEFAULT = "@default"

# Where each provider's models live in the LiteLLM key space, most specific first.
PROVIDER_KEY_PREFIXES: dict[str, tuple[str, ...]] = {
    "openai": ("", "openai/"),
    "anthropic": ("", "anthropic/"),
    "aws.bedrock": ("", "bedrock/", "bedrock/converse/"),
    "gcp.gemini": ("gemini/", ""),
    "gcp.vertex_ai": ("vertex_ai/", ""),
    "gcp.gen_ai": ("gemini/", "vertex_ai/", ""),
    "azure.ai.openai": ("azure/",),
    "azure.ai.inference": ("azure_ai/",),
    "mistral_ai": ("mistral/",),
    "deepseek": ("deepseek/",),
    "groq": ("groq/",),
    "x_ai": ("xai/",),
    "cohere": ("cohere/", ""),
    "perplexity": ("perplexity/",),
}
# The LiteLLM providers whose entries price each provider's models (a name covers its
# "-" variants: vertex_ai covers vertex_ai-anthropic_models): an entry of another provider
# (Anthropic's own claude-* for a Bedrock model, say) is never used. Entries without a
# litellm_provider (a user's own) serve any provider.
PROVIDER_ENTRY_SOURCES: dict[str, frozenset[str]] = {
    "openai": frozenset({"openai", "text-completion-openai"}),
    "anthropic": frozenset({"anthropic"}),
    "aws.bedrock": frozenset({"bedrock", "bedrock_converse", "bedrock_mantle"}),
    "gcp.gemini": frozenset({"gemini"}),
    "gcp.vertex_ai": frozenset({"vertex_ai"}),
    "gcp.gen_ai": frozenset({"gemini", "vertex_ai"}),
    "azure.ai.openai": frozenset({"azure", "azure_text"}),
}
BUILTIN_CATALOG = "catalog.json"
# The entry of a price file that describes the file itself (never a model).
CATALOG_MARKER = "_aicost_catalog"
# The LiteLLM modes priced per token that the shipped catalog selects from upstream.
PRICED_MODES = ("chat", "responses", "completion", "embedding")
# (provider, model) lookups remembered; past this the memo starts over.
MAX_CACHED_LOOKUPS = 10_000


def is_model_key(key: str) -> bool:
    """Whether a top-level key of a LiteLLM price file names a model (not metadata)."""
    return not key.startswith("_") and key != "sample_spec"


def is_token_rate(name: str) -> bool:
    """Whether an entry field is a USD-per-token rate (base, tier or mode variant)."""
    return "cost" in name and "token" in name


def _multiplier(value: Any) -> Decimal | None:
    return Decimal(str(value)) if type(value) in (int, float) and value > 0 else None


def token_rates(entry: Mapping[str, Any]) -> dict[str, Decimal]:
    """The entry's usable per-token rates as exact Decimals (str() keeps 0.1 as 0.1)."""
    return {
        name: Decimal(str(value))
        for name, value in entry.items()
        if is_token_rate(name) and type(value) in (int, float) and value >= 0
    }


def model_entries(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The model entries of a price file, without metadata keys."""
    return {
        key: entry
        for key, entry in document.items()
        if is_model_key(key) and isinstance(entry, Mapping)
    }


def entry_problems(entry: Any) -> list[tuple[str | None, str]]:
    """(field or None, problem) for an entry pricing would misread; empty when it is valid."""
    if not isinstance(entry, Mapping):
        return [(None, "must be a mapping of LiteLLM fields")]
    return [
        (name, f"must be a non-negative number (USD per token), not {value!r}")
        for name, value in entry.items()
        if is_token_rate(name) and (type(value) not in (int, float) or not value >= 0)
    ]


def taken_on(document: Mapping[str, Any]) -> date | None:
    """The ``prices_taken`` date a price file records about itself, if any."""
    marker = document.get(CATALOG_MARKER)
    taken = marker.get("prices_taken") if isinstance(marker, Mapping) else None
    try:
        return date.fromisoformat(taken) if isinstance(taken, str) else None
    except ValueError:
        return None


def file_date(path: Path) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()


def uplifts(entry: Mapping[str, Any]) -> dict[str, Decimal]:
    """The entry's price multipliers by where a request ran: data residency or region.

    Keys: ``eu``/``us`` (OpenAI regional processing), ``fedramp`` (OpenAI's FedRAMP
    endpoint), ``us`` (Anthropic's US-only inference) and ``fast`` (Anthropic's fast mode),
    both from ``provider_specific_entry``, and ``regional`` (any Vertex AI location but
    ``global``).
    """
    found: dict[str, Decimal] = {}
    for residency in ("eu", "us"):
        value = _multiplier(entry.get(f"regional_processing_uplift_multiplier_{residency}"))
        if value is not None:
            found[residency] = value
    specific = entry.get("provider_specific_entry")
    # Anthropic's own API bills these; the same fields on Bedrock entries are not multipliers.
    if isinstance(specific, Mapping) and entry.get("litellm_provider") == "anthropic":
        for name in ("us", "fast"):
            if (value := _multiplier(specific.get(name))) is not None:
                found[name] = value
    for name, field_name in (
        ("fedramp", "fedramp_uplift_multiplier"),
        ("regional", "regional_endpoint_uplift_multiplier"),
    ):
        if (value := _multiplier(entry.get(field_name))) is not None:
            found[name] = value
    return found


@dataclass(frozen=True)
class ModelPrice:
    """One catalog entry with its per-token rates as Decimals (exact, never binary floats)."""

    key: str
    rates: Mapping[str, Decimal]
    tiers: tuple[int, ...]  # prompt sizes in tokens above which a long-context rate applies
    multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    # (tier, mode) -> one rate per priced column, worked out once (pricing is on the hot path).
    _rate_rows: dict[tuple[int, str], tuple[Decimal, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # (tier, mode) -> the same rates as integers times one power of ten (see _scaled_rates).
    _scaled_rows: dict[tuple[int, str], tuple[Decimal, tuple[int, ...] | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_entry(cls, key: str, entry: Mapping[str, Any]) -> ModelPrice | None:
        rates = token_rates(entry)
        if INPUT not in rates and OUTPUT not in rates:
            return None
        tiers = {
            int(match.group(1)) * (1000 if match.group(2) else 1)
            for name in rates
            for match in _TIER_KEY.finditer(name)
        }
        return cls(
            key=key,
            rates=rates,
            tiers=tuple(sorted(tiers, reverse=True)),
            multipliers=uplifts(entry),
        )

    def signature(self) -> tuple[Any, ...]:
        """What makes two entries price alike (normalisation accepts only alike entries)."""
        return tuple(sorted(self.rates.items())), tuple(sorted(self.multipliers.items()))

    def standard_rate(self, base: str, crossed: Sequence[int], suffix: str) -> Decimal | None:
        """``base`` for a service tier (``suffix``) at the highest crossed long-context tier
        that prices it, else the flat rate; a missing service-tier rate is the standard one."""
        for size in crossed:
            tiered = f"{base}_above_{_tier_name(size)}_tokens"
            for name in (tiered + suffix, tiered) if suffix else (tiered,):
                if name in self.rates:
                    return self.rates[name]
        for name in (base + suffix, base) if suffix else (base,):
            if name in self.rates:
                return self.rates[name]
        return None

    def batch_rate(self, base: str, crossed: Sequence[int]) -> Decimal | None:
        """``base`` for the batch API: the entry's batch rate for the tier, else the
        standard rate of the tier at the entry's batch discount (50 % without one).

        Cache reads are the exception, as LiteLLM bills them: an entry with batch input rates
        but none for cache reads has its batch cache reads at the standard rate.
        """
        standard = self.standard_rate(base, crossed, "")
        if standard is None:
            return None
        found = self._tier_batch_rate(base, crossed)
        if found is not None:
            return found
        if base == CACHE_READ and INPUT + "_batches" in self.rates:
            return standard
        flat, flat_batch = self.rates.get(base), self.rates.get(base + "_batches")
        if flat and flat_batch is not None:
            return standard * flat_batch / flat
        return standard * BATCH_DISCOUNT

    def _tier_batch_rate(self, base: str, crossed: Sequence[int]) -> Decimal | None:
        """The entry's own batch rate for the crossed tier (the flat one below every tier)."""
        for size in crossed:
            tiered = f"{base}_above_{_tier_name(size)}_tokens"
            if tiered + "_batches" in self.rates:
                return self.rates[tiered + "_batches"]
            if tiered in self.rates:
                return None  # a long-context rate without a batch rate of its own
        return self.rates.get(base + "_batches")

    def rate(self, base: str, crossed: Sequence[int], mode: str) -> Decimal | None:
        if mode == "_batches":
            return self.batch_rate(base, crossed)
        return self.standard_rate(base, crossed, mode)

    def multiplier(
        self, data_residency: str | None, region: str | None, service_tier: str | None = None
    ) -> Decimal:
        factor = Decimal(1)
        if service_tier == "fast" and "fast" in self.multipliers:
            factor *= self.multipliers["fast"]
        if data_residency and data_residency in self.multipliers:
            factor *= self.multipliers[data_residency]
        if region and region != "global" and "regional" in self.multipliers:
            factor *= self.multipliers["regional"]
        return factor

    def cost(
        self,
        tokens: Mapping[str, int],
        batch: bool = False,
        service_tier: str | None = None,
        data_residency: str | None = None,
        region: str | None = None,
    ) -> Decimal:
        """USD for token counts keyed by priced column (``input_tokens``, ...; missing = 0)."""
        counts = tuple(tokens.get(column, 0) for column in PRICED_COLUMNS)
        return self.cost_of_counts(counts, batch, service_tier, data_residency, region)

    def cost_of_counts(
        self,
        counts: Sequence[int],
        batch: bool = False,
        service_tier: str | None = None,
        data_residency: str | None = None,
        region: str | None = None,
    ) -> Decimal:
        """USD for one count per priced column, in PRICED_COLUMNS order.

        cache_write_tokens counts the writes of every lifetime; the 1-hour and 12-hour
        counts say how many of them are billed at their longer lifetime's rate.
        """
        return self.costs_of_counts([counts], batch, service_tier, data_residency, region)[0]

    def costs_of_counts(
        self,
        rows: Sequence[Sequence[int]],
        batch: bool = False,
        service_tier: str | None = None,
        data_residency: str | None = None,
        region: str | None = None,
    ) -> list[Decimal]:
        """cost_of_counts of each row of counts, priced alike otherwise: the rate row and the
        multiplier are found once, and each row then costs an integer sum of products."""
        mode = "_batches" if batch else SERVICE_TIER_SUFFIXES.get(service_tier or "", "")
        factor = None
        if data_residency or region or service_tier == "fast":
            factor = self.multiplier(data_residency, region, service_tier)
        tiers = [self._tier(counts) for counts in rows] if self.tiers else [0]
        distinct = set(tiers)
        if len(distinct) == 1:
            return self._costs(rows, tiers[0], mode, factor)
        costs: list[Decimal] = [Decimal(0)] * len(rows)
        for tier in distinct:
            positions = [i for i, crossed in enumerate(tiers) if crossed == tier]
            priced = self._costs([rows[i] for i in positions], tier, mode, factor)
            for i, cost in zip(positions, priced, strict=True):
                costs[i] = cost
        return costs

    def _tier(self, counts: Sequence[int]) -> int:
        prompt = sum(counts[i] for i in _PROMPT_POSITIONS)
        return next((size for size in self.tiers if prompt > size), 0)

    def _costs(
        self, rows: Sequence[Sequence[int]], tier: int, mode: str, factor: Decimal | None
    ) -> list[Decimal]:
        """Each row's cost at the tier's rates in the mode, times the uplift ``factor``."""
        scaled = self._scaled_rows.get((tier, mode))
        if scaled is None:
            scaled = self._scaled_rows[(tier, mode)] = _scaled_rates(self._rates(tier, mode))
        unit, coefficients = scaled
        if coefficients is not None:
            # Integer sums: the same value as the Decimal sums below, in half the time.
            write = coefficients[_WRITES]
            totals = [
                Decimal(
                    sum(map(operator.mul, counts, coefficients)) - sum(counts[_LIFETIMES]) * write
                )
                * unit
                for counts in rows
            ]
        else:
            rates = self._rates(tier, mode)
            totals = [self._decimal_cost(counts, rates) for counts in rows]
        if factor is not None:
            totals = [total * factor for total in totals]
        return totals

    @staticmethod
    def _decimal_cost(counts: Sequence[int], rates: Sequence[Decimal]) -> Decimal:
        total = counts[0] * rates[0]
        for position in range(1, len(rates)):
            count = counts[position]
            if position == _WRITES:
                count -= sum(counts[_LIFETIMES])
            if count:  # most records have no cache writes, reasoning or longer lifetimes
                total += count * rates[position]
        return total

    def _rates(self, tier: int, mode: str) -> tuple[Decimal, ...]:
        rates = self._rate_rows.get((tier, mode))
        if rates is None:
            rates = self._rate_rows[(tier, mode)] = self._rate_row(tier, mode)
        return rates

    def _rate_row(self, tier: int, mode: str) -> tuple[Decimal, ...]:
        crossed = [size for size in self.tiers if size <= tier] if tier else []
        row = []
        for rate_name, fallback_name in TOKEN_RATES.values():
            rate = self.rate(rate_name, crossed, mode)
            if rate is None and fallback_name is not None:
                rate = self.rate(fallback_name, crossed, mode)
            row.append(Decimal(0) if rate is None else rate)
        base_write = row[_WRITES]
        for rate_name in LIFETIME_RATES.values():
            rate = self.rate(rate_name, crossed, mode)
            row.append(base_write if rate is None else rate)
        return tuple(row)


# Below this, token counts up to 10**12 times the coefficients, summed over the priced columns,
# stay within Decimal's 28 digits: the integer sum is then the Decimal sum's very value.
_MAX_COEFFICIENT = 10**15


def _scaled_rates(rates: Sequence[Decimal]) -> tuple[Decimal, tuple[int, ...] | None]:
    """(unit, coefficients) with each rate == coefficient * unit, unit a power of ten; or
    no coefficients when a rate is too fine for that (a quotient's 28 digits, say)."""
    if not all(rate.is_finite() for rate in rates):
        return Decimal(1), None
    exponent = min(int(rate.as_tuple().exponent) for rate in rates)
    coefficients = tuple(int(rate.scaleb(-exponent)) for rate in rates)
    if any(abs(c) >= _MAX_COEFFICIENT for c in coefficients):
        return Decimal(1), None
    return Decimal(1).scaleb(exponent), coefficients


def _tier_name(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


class PriceCatalog:
    """Model prices looked up by (provider, model), with later sources overriding earlier."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self.merge(entries)
        # The newest date among the sources' prices_taken (or file mtimes); not overrides.
        self.taken: date | None = taken_on(entries)

    @classmethod
    def load(
        cls,
        paths: Iterable[str | Path] = (),
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        include_builtin: bool = True,
    ) -> PriceCatalog:
        catalog = cls(builtin_entries() if include_builtin else {})
        for path in map(Path, paths):
            document = read_catalog_file(path)
            catalog.merge(document)
            taken = taken_on(document) or file_date(path)
            catalog.taken = max(taken, catalog.taken or taken)
        if overrides:
            catalog.merge(overrides)
        return catalog

    def merge(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Add entries; an entry for a known key updates only the fields it names."""
        for key, entry in model_entries(entries).items():
            self._entries.setdefault(key, {}).update(entry)
        self._lookups: dict[tuple[str, str], ModelPrice | None] = {}
        # (provider, model) -> the entry it resembles but was not priced as (see _alike).
        self.refused: dict[tuple[str, str], str] = {}
        self._variants: dict[tuple[str, str], set[tuple[Any, ...]]] | None = None

    def taken_timestamp(self) -> float | None:
        """Unix time of the UTC midnight starting the day the prices were taken."""
        if self.taken is None:
            return None
        return datetime(self.taken.year, self.taken.month, self.taken.day, tzinfo=UTC).timestamp()

    def __len__(self) -> int:
        return len(self._entries)

    def model_keys(self) -> list[str]:
        return list(self._entries)

    def entry(self, key: str) -> Mapping[str, Any] | None:
        return self._entries.get(key)

    def lookup(self, model: str, provider: str) -> ModelPrice | None:
        cache_key = (provider, model)
        if cache_key not in self._lookups:
            if len(self._lookups) >= MAX_CACHED_LOOKUPS:  # junk model names must not grow it
                self._lookups, self.refused = {}, {}
            self._lookups[cache_key] = self._find(model, provider)
        return self._lookups[cache_key]

    def priced_key(self, model: str, provider: str) -> str | None:
        """The catalog key that prices the model, or None when it has no price."""
        found = self.lookup(model, provider)
        return None if found is None else found.key

    def price(
        self,
        model: str,
        provider: str,
        batch: bool = False,
        service_tier: str | None = None,
        data_residency: str | None = None,
        region: str | None = None,
        **tokens: int,
    ) -> Decimal | None:
        """USD cost of the tokens (keyword per priced column, e.g. ``input_tokens=``), or
        None when the model has no price in the catalog."""
        unknown = set(tokens) - set(PRICED_COLUMNS)
        if unknown:
            raise TypeError(f"not token columns: {sorted(unknown)}")
        if sum(tokens.get(name, 0) for name in LIFETIME_RATES) > tokens.get(
            "cache_write_tokens", 0
        ):
            raise ValueError("cache_write_tokens is the total of every cache-write lifetime")
        found = self.lookup_where(model, provider, data_residency)
        if found is None:
            return None
        return found.cost(tokens, batch, service_tier, data_residency, region)

    def lookup_where(
        self, model: str, provider: str, data_residency: str | None
    ) -> ModelPrice | None:
        """The price of a model as served under a data residency: an Azure OpenAI data-zone
        deployment has its own entry (``azure/eu/gpt-5``); elsewhere, the model's."""
        if data_residency in AZURE_DATA_ZONES and provider == "azure.ai.openai":
            zoned = f"azure/{data_residency}/{model.removeprefix('azure/')}"
            return self.lookup(zoned, provider)
        return self.lookup(model, provider)

    def _find(self, model: str, provider: str) -> ModelPrice | None:
        for name, stripped in normalised_names(model):
            for key in provider_keys(name, provider):
                entry = self._entries.get(key)
                if entry is None or not serves(entry, provider):
                    continue
                found = ModelPrice.from_entry(key, entry)
                if found is None:
                    continue
                if all(self._alike(found, kind) for kind in stripped):
                    return found
                # A variant of an entry whose variants are priced unlike: never guess which.
                self.refused[(provider, model)] = key
                return None
        return None

    def _alike(self, found: ModelPrice, kind: str) -> bool:
        """Whether every entry differing from ``found`` only by a ``kind`` variant (a date,
        a region) has the same prices, so a variant the catalog lacks costs the same too."""
        if self._variants is None:
            self._variants = {}
            for other, entry in self._entries.items():
                price = ModelPrice.from_entry(other, entry)
                if price is None:
                    continue
                for variant_kind, strip in VARIANT_KINDS.items():
                    bare = strip(other)
                    if bare != other:
                        signatures = self._variants.setdefault((variant_kind, bare), set())
                        signatures.add(price.signature())
        siblings = self._variants.get((kind, VARIANT_KINDS[kind](found.key)), set())
        return siblings <= {found.signature()}


def serves(entry: Mapping[str, Any], provider: str) -> bool:
    """Whether an entry may price a provider's model (see PROVIDER_ENTRY_SOURCES)."""
    sources = PROVIDER_ENTRY_SOURCES.get(provider)
    source = entry.get("litellm_provider")
    if sources is None or not isinstance(source, str):
        return True
    return source in sources or source.partition("-")[0] in sources


def _strip_snapshot(name: str) -> str:
    return _DATE_SUFFIX.sub("", _BEDROCK_VERSION.sub("", name))


def _strip_region(name: str) -> str:
    prefix, slash, rest = name.rpartition("/")
    return prefix + slash + _REGION_PREFIX.sub("", rest)


# Kinds of name variant that normalisation may strip, with the function that strips each.
VARIANT_KINDS = {"snapshot": _strip_snapshot, "region": _strip_region}


def normalised_names(model: str) -> list[tuple[str, tuple[str, ...]]]:
    """Names to look a model up by, exact first, each with the variant kinds it strips.

    Vertex AI's ``@default`` names the default version and is dropped without a check.
    """
    exact = model.removesuffix(_VERTEX_DEFAULT) if model.endswith(_VERTEX_DEFAULT) else model
    names = [(exact, ())]
    regionless = _strip_region(exact)
    if regionless != exact:
        names.append((regionless, ("region",)))
    for name, stripped in list(names):
        undated = _strip_snapshot(name)
        if undated != name:
            names.append((undated, (*stripped, "snapshot")))
    return names


def provider_keys(name: str, provider: str) -> list[str]:
    """The catalog keys a provider's model name may have, most specific first."""
    keys: list[str] = []
    for prefix in PROVIDER_KEY_PREFIXES.get(provider, ("",)):
        key = name if name.startswith(prefix) else prefix + name
        if key not in keys:
            keys.append(key)
    return keys


def read_catalog_file(path: Path) -> dict[str, Any]:
    document = orjson.loads(path.read_bytes())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a price catalog is a JSON object keyed by model name")
    return document


def builtin_entries() -> dict[str, Any]:
    data = resources.files("cost_monitor.prices").joinpath(BUILTIN_CATALOG).read_bytes()
    return orjson.loads(data)


def price_records(catalog: PriceCatalog, records: Iterable[UsageRecord]) -> None:
    """Set cost_usd on records without a billed amount (a billed amount always wins).

    Records alike in what picks their price are priced together: the catalog is asked once
    for them, and each record costs a sum of products."""
    unpriced = [record for record in records if record.cost_usd is None]
    for terms, group in grouped(unpriced, _pricing_terms).items():
        model, provider, data_residency, batch, service_tier, region = terms
        found = catalog.lookup_where(model, provider, data_residency)
        if found is None:
            continue
        costs = found.costs_of_counts(
            list(map(_priced_counts, group)), batch, service_tier, data_residency, region
        )
        for record, cost in zip(group, costs, strict=True):
            record.cost_usd = cost
            record.cost_source = "computed"
