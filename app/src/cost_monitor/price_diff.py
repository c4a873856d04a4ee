"""The price catalog in use against a newer LiteLLM price file: new, removed, changed models.

New models are the file's per-token-priced entries of the providers (``litellm_provider``)
the catalog already covers, in the modes the catalog is built from; removed models are
catalog entries the file lacks; changed models differ in any per-token rate field. Prices
are shown per 1M tokens for input, output, cache read and cache write. It reports; it does
not judge, so differences are not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from cost_monitor.pricing import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT,
    OUTPUT,
    PRICED_MODES,
    ModelPrice,
    PriceCatalog,
    model_entries,
    token_rates,
)
from cost_monitor.report import format_table

SHOWN_RATES = {
    "input": INPUT,
    "output": OUTPUT,
    "cache_read": CACHE_READ,
    "cache_write": CACHE_WRITE,
}
PER_MILLION = Decimal(1_000_000)
CENTS = Decimal("0.01")

PricesPerMillion = dict[str, Decimal | None]


@dataclass(frozen=True)
class ModelDifference:
    model: str
    provider: str | None  # the entry's litellm_provider
    mode: str | None
    old: PricesPerMillion | None  # None: not in the catalog
    new: PricesPerMillion | None  # None: not in the file
    changed_fields: tuple[str, ...] = ()  # every per-token field that differs

    def as_dict(self) -> dict[str, Any]:
        def prices(shown: PricesPerMillion | None) -> dict[str, float | None] | None:
            if shown is None:
                return None
            return {name: None if value is None else float(value) for name, value in shown.items()}

        return {
            "model": self.model,
            "provider": self.provider,
            "mode": self.mode,
            "old": prices(self.old),
            "new": prices(self.new),
            "changed_fields": list(self.changed_fields),
        }


@dataclass(frozen=True)
class PriceDiff:
    catalog_entries: int
    file_entries: int
    new: list[ModelDifference]
    removed: list[ModelDifference]
    changed: list[ModelDifference]

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": "USD per 1M tokens",
            "catalog_entries": self.catalog_entries,
            "file_entries": self.file_entries,
            "new": [difference.as_dict() for difference in self.new],
            "removed": [difference.as_dict() for difference in self.removed],
            "changed": [difference.as_dict() for difference in self.changed],
        }


def per_million(entry: Mapping[str, Any]) -> PricesPerMillion:
    rates = token_rates(entry)
    return {
        shown: rates[name] * PER_MILLION if name in rates else None
        for shown, name in SHOWN_RATES.items()
    }


def _text(entry: Mapping[str, Any], name: str) -> str | None:
    value = entry.get(name)
    return value if isinstance(value, str) else None


def diff_catalog(catalog: PriceCatalog, document: Mapping[str, Any]) -> PriceDiff:
    """What changes if ``document`` (a LiteLLM price file) replaced the catalog's prices."""
    newer = model_entries(document)
    current = {key: catalog.entry(key) or {} for key in catalog.model_keys()}
    providers = {_text(entry, "litellm_provider") for entry in current.values()} - {None}
    new, removed, changed = [], [], []
    for key in sorted(newer.keys() - current.keys()):
        entry = newer[key]
        in_scope = (
            _text(entry, "litellm_provider") in providers
            and entry.get("mode") in PRICED_MODES
            and ModelPrice.from_entry(key, entry) is not None
        )
        if in_scope:
            new.append(_difference(key, None, entry))
    for key in sorted(current.keys() - newer.keys()):
        removed.append(_difference(key, current[key], None))
    for key in sorted(current.keys() & newer.keys()):
        old_rates, new_rates = token_rates(current[key]), token_rates(newer[key])
        fields = sorted(
            name
            for name in old_rates.keys() | new_rates.keys()
            if old_rates.get(name) != new_rates.get(name)
        )
        if fields:
            changed.append(_difference(key, current[key], newer[key], tuple(fields)))
    return PriceDiff(len(current), len(newer), new, removed, changed)


def _difference(
    key: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    changed_fields: tuple[str, ...] = (),
) -> ModelDifference:
    described = new if new is not None else old or {}
    return ModelDifference(
        model=key,
        provider=_text(described, "litellm_provider"),
        mode=_text(described, "mode"),
        old=None if old is None else per_million(old),
        new=None if new is None else per_million(new),
        changed_fields=changed_fields,
    )


def render_json(diff: PriceDiff) -> str:
    return orjson.dumps(diff.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def _price(value: Decimal | None) -> str:
    if value is None:
        return "-"
    shown = value.normalize()
    if shown.as_tuple().exponent > -2:  # type: ignore[operator]
        shown = shown.quantize(CENTS)
    return f"{shown:f}"


def _prices_header() -> list[str]:
    return [name.replace("_", " ") for name in SHOWN_RATES]


def render_table(diff: PriceDiff) -> str:
    parts = [
        f"{len(diff.new)} new, {len(diff.removed)} removed, {len(diff.changed)} changed"
        f" (catalog in use: {diff.catalog_entries} entries, file: {diff.file_entries};"
        " prices in USD per 1M tokens)\n"
    ]
    sections = (("New models", diff.new, "new"), ("Removed models", diff.removed, "old"))
    for title, differences, side in sections:
        if not differences:
            continue
        rows = [
            [d.model, d.provider or "", d.mode or "", *map(_price, getattr(d, side).values())]
            for d in differences
        ]
        header = ["model", "provider", "mode", *_prices_header()]
        parts.append(f"\n{title}\n" + format_table(header, rows, numeric_from=3))
    if diff.changed:
        rows = []
        for d in diff.changed:
            old, new = d.old or {}, d.new or {}
            cells = [
                _price(old[name])
                if old[name] == new[name]
                else f"{_price(old[name])} -> {_price(new[name])}"
                for name in SHOWN_RATES
            ]
            shown = set(SHOWN_RATES.values())
            others = ", ".join(name for name in d.changed_fields if name not in shown)
            rows.append([d.model, d.provider or "", *cells, others])
        header = ["model", "provider", *_prices_header(), "other changed fields"]
        table = format_table(header, rows, numeric_from=2, numeric_until=2 + len(SHOWN_RATES))
        parts.append("\nChanged models\n" + table)
    return "".join(parts)
