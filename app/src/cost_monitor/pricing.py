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

from cost_monitor.records import UsageRecord
from cost_monitor.schema import TOKEN_COLUMNS

INPUT = "input_cost_per_token"
OUTPUT = "output_cost_per_token"
CACHE_READ = "cache_read_input_token_cost"
CACHE_WRITE = "cache_creation_input_token_cost"
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
# The columns that make up the prompt, whose size selects a long-context tier.
PROMPT_TOKEN_COLUMNS = ("input_tokens", "cache_read_tokens", "cache_write_tokens")
_PROMPT_POSITIONS = tuple(TOKEN_COLUMNS.index(column) for column in PROMPT_TOKEN_COLUMNS)
_token_counts = operator.attrgetter(*TOKEN_COLUMNS)
_TIER_KEY = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8})$")
_BEDROCK_REGION_PREFIX = re.compile(r"^(us|eu|apac|au|jp|global|us-gov|ca|sa)\.")

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


@dataclass(frozen=True)
class ModelPrice:
    """One catalog entry with its per-token rates as Decimals (exact, never binary floats)."""

    key: str
    rates: Mapping[str, Decimal]
    tiers: tuple[int, ...]  # prompt sizes in tokens above which a long-context rate applies
    # (tier, mode) -> one rate per token column, worked out once (pricing is on the hot path).
    _rate_rows: dict[tuple[str, str], tuple[Decimal, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_entry(cls, key: str, entry: Mapping[str, Any]) -> ModelPrice | None:
        rates = token_rates(entry)
        if INPUT not in rates and OUTPUT not in rates:
            return None
        tiers = sorted(
            (int(match.group(1)) * 1000 for name in rates if (match := _TIER_KEY.match(name))),
            reverse=True,
        )
        return cls(key=key, rates=rates, tiers=tuple(tiers))

    def rate(self, base: str, tier: str, mode: str) -> Decimal | None:
        """The rate for ``base`` in a tier and mode, falling back to the plainer rate.

        A missing tier+mode rate falls back to the tier rate (never to the cheaper base+mode
        one), so a gap in the catalog can over-state a cost but never under-state it.
        """
        tiered = base + tier if tier and base + tier in self.rates else base
        for name in (tiered + mode, tiered) if mode else (tiered,):
            if name in self.rates:
                return self.rates[name]
        return None

    def cost(
        self,
        tokens: Mapping[str, int],
        batch: bool = False,
        service_tier: str | None = None,
    ) -> Decimal:
        """USD for token counts keyed by token column (``input_tokens``, ...; missing = 0)."""
        counts = tuple(tokens.get(column, 0) for column in TOKEN_COLUMNS)
        return self.cost_of_counts(counts, batch, service_tier)

    def cost_of_counts(
        self, counts: Sequence[int], batch: bool = False, service_tier: str | None = None
    ) -> Decimal:
        """USD for one count per token column, in schema.TOKEN_COLUMNS order."""
        tier = ""
        if self.tiers:
            prompt = sum(counts[i] for i in _PROMPT_POSITIONS)
            tier = next(
                (f"_above_{size // 1000}k_tokens" for size in self.tiers if prompt > size), ""
            )
        mode = "_batches" if batch else (f"_{service_tier}" if service_tier else "")
        rates = self._rate_rows.get((tier, mode))
        if rates is None:
            rates = self._rate_rows[(tier, mode)] = self._rate_row(tier, mode)
        # The same sum, in the same order, as a loop of +=; map() runs it without a Python step.
        return sum(map(operator.mul, counts[1:], rates[1:]), counts[0] * rates[0])

    def _rate_row(self, tier: str, mode: str) -> tuple[Decimal, ...]:
        row = []
        for rate_name, fallback_name in TOKEN_RATES.values():
            rate = self.rate(rate_name, tier, mode)
            if rate is None and fallback_name is not None:
                rate = self.rate(fallback_name, tier, mode)
            row.append(Decimal(0) if rate is None else rate)
        return tuple(row)


class PriceCatalog:
    """Model prices looked up by (provider, model), with later sources overriding earlier."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self.merge(entries)
        self._lookups: dict[tuple[str, str], ModelPrice | None] = {}
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
        self._lookups = {}

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
                self._lookups = {}
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
        **tokens: int,
    ) -> Decimal | None:
        """USD cost of the tokens (keyword per token column, e.g. ``input_tokens=``), or None
        when the model has no price in the catalog."""
        unknown = set(tokens) - set(TOKEN_RATES)
        if unknown:
            raise TypeError(f"not token columns: {sorted(unknown)}")
        found = self.lookup(model, provider)
        return None if found is None else found.cost(tokens, batch, service_tier)

    def _find(self, model: str, provider: str) -> ModelPrice | None:
        for key in candidate_keys(model, provider):
            entry = self._entries.get(key)
            if entry is not None:
                found = ModelPrice.from_entry(key, entry)
                if found is not None:
                    return found
        return None


def candidate_keys(model: str, provider: str) -> list[str]:
    """Catalog keys to try for a model, most specific first."""
    names = [model]
    if provider == "aws.bedrock":
        bare = _BEDROCK_REGION_PREFIX.sub("", model)
        names += [bare, re.sub(r"-v\d+(:\d+)?$", "", bare)]
    undated = _DATE_SUFFIX.sub("", model)
    names.append(undated)
    prefixes = PROVIDER_KEY_PREFIXES.get(provider, ("",))
    keys: list[str] = []
    for name in names:
        for prefix in prefixes:
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
    """Set cost_usd on records without a billed amount (a billed amount always wins)."""
    for record in records:
        if record.cost_usd is not None:
            continue
        found = catalog.lookup(record.model, record.provider)
        if found is not None:
            counts = _token_counts(record)
            record.cost_usd = found.cost_of_counts(counts, record.batch, record.service_tier)
            record.cost_source = "computed"
