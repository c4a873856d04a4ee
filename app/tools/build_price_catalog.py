"""Rebuild the shipped price catalog from an upstream LiteLLM price file.

    python app/tools/build_price_catalog.py UPSTREAM.json --taken 2026-11-28 \
        --source "litellm 1.110.2 (PyPI wheel), <its path in the wheel>" \
        > app/src/cost_monitor/prices/catalog.json

The upstream file ships inside the `litellm` wheel on PyPI as
`litellm/model_prices_and_context_window_backup.json`. The catalog keeps every entry that
 - belongs to one of the five providers the stack targets (SELECTED_PROVIDERS: LiteLLM's
   ``litellm_provider`` values for OpenAI, Anthropic, AWS Bedrock, Google's Gemini API and
   Vertex AI with its partner models, Azure OpenAI),
 - is priced per token in a mode the app prices (chat, responses, completion, embedding),
 - and is current on the day the prices were taken (no ``deprecation_date``, or one after
   it) or was retired less than RETIRED_KEPT_DAYS before: the app takes records up to 400
   days old (``ingest.max_age_days``), and a late record of a retired snapshot must keep its
   own price, not take its family's.
An ``alias_of`` row is emitted under its own name with its target's fields, as LiteLLM serves
it; an alias whose target is missing or is itself an alias is dropped, as LiteLLM drops it.
Only the fields pricing reads are kept (KEPT_FIELDS).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# LiteLLM provider ids of the five providers. Vertex AI counts Google's own models
# (vertex_ai, vertex_ai-language-models, -embedding-models, -text-models) and every partner
# model served through it (vertex_ai-anthropic_models, -llama_models, -mistral_models, ...):
# they are billed by Google on a Vertex AI project. Bedrock counts the InvokeModel, Converse
# and Mantle (OpenAI-compatible) endpoints. Azure AI Foundry (`azure_ai`) is a different
# service from Azure OpenAI and is left out.
SELECTED_PROVIDERS = (
    "openai",
    "text-completion-openai",
    "anthropic",
    "bedrock",
    "bedrock_converse",
    "bedrock_mantle",
    "azure",
    "azure_text",
    "gemini",
)
SELECTED_PROVIDER_PREFIXES = ("vertex_ai",)
PRICED_MODES = ("chat", "responses", "completion", "embedding")
# Besides every per-token rate (a name with both "cost" and "token", as pricing reads them).
KEPT_FIELDS = re.compile(
    r"^(litellm_provider|mode|max_input_tokens|fedramp_uplift_multiplier"
    r"|regional_processing_uplift_multiplier_(eu|us)|regional_endpoint_uplift_multiplier"
    r"|provider_specific_entry)$"
)
BASE_RATES = ("input_cost_per_token", "output_cost_per_token")
RETIRED_KEPT_DAYS = 400


def is_kept_field(name: str) -> bool:
    return ("cost" in name and "token" in name) or KEPT_FIELDS.match(name) is not None


def is_selected_provider(provider: object) -> bool:
    return isinstance(provider, str) and (
        provider in SELECTED_PROVIDERS or provider.startswith(SELECTED_PROVIDER_PREFIXES)
    )


def resolve_aliases(upstream: Mapping[str, Any]) -> dict[str, dict]:
    """Model entries with every ``alias_of`` row replaced by its target's fields."""
    entries = {key: value for key, value in upstream.items() if isinstance(value, dict)}
    resolved = {}
    for key, entry in entries.items():
        target = entry.get("alias_of")
        if target is None:
            resolved[key] = entry
        elif target in entries and "alias_of" not in entries[target]:
            resolved[key] = entries[target]
    return resolved


def retired_on(entry: Mapping[str, Any]) -> date | None:
    deprecated = entry.get("deprecation_date")
    try:
        return None if deprecated is None else date.fromisoformat(str(deprecated))
    except ValueError:
        return None  # an unreadable date is no evidence of retirement


def is_current(entry: Mapping[str, Any], taken: date) -> bool:
    retired = retired_on(entry)
    return retired is None or retired > taken


def is_in_use(entry: Mapping[str, Any], taken: date) -> bool:
    """Current, or retired recently enough that late records of it may still arrive."""
    retired = retired_on(entry)
    return retired is None or retired + timedelta(days=RETIRED_KEPT_DAYS) > taken


def prices_per_token(entry: Mapping[str, Any]) -> bool:
    return any(type(entry.get(rate)) in (int, float) for rate in BASE_RATES)


def is_selected(entry: Mapping[str, Any], taken: date) -> bool:
    return (
        is_selected_provider(entry.get("litellm_provider"))
        and entry.get("mode") in PRICED_MODES
        and prices_per_token(entry)
        and is_in_use(entry, taken)
    )


def select(upstream: Mapping[str, Any], taken: date) -> dict[str, dict]:
    selected = {}
    for key, entry in sorted(resolve_aliases(upstream).items()):
        if key.startswith("_") or key == "sample_spec" or "*" in key:
            continue
        if is_selected(entry, taken):
            selected[key] = {name: value for name, value in entry.items() if is_kept_field(name)}
    return selected


def counts_by_provider_and_mode(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(f"{entry['litellm_provider']}/{entry['mode']}" for entry in entries.values())
    return dict(sorted(counts.items()))


def build(upstream: Mapping[str, Any], source: str, taken: date) -> dict[str, Any]:
    entries, resolved = select(upstream, taken), resolve_aliases(upstream)
    return {
        "_aicost_catalog": {
            "source": source,
            "prices_taken": taken.isoformat(),
            "selection": (
                "litellm_provider in "
                + ", ".join((*SELECTED_PROVIDERS, *(p + "*" for p in SELECTED_PROVIDER_PREFIXES)))
                + "; mode in "
                + ", ".join(PRICED_MODES)
                + "; input or output cost per token set"
                + f"; current, or retired less than {RETIRED_KEPT_DAYS} days before prices_taken"
                + "; alias_of rows carry their target's prices"
            ),
            "models": len(entries),
            "current_models": sum(is_current(resolved[key], taken) for key in entries),
            "models_by_provider_and_mode": counts_by_provider_and_mode(entries),
            "note": "USD per token, LiteLLM entry format; keys starting with _ are not models",
        },
        **entries,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path)
    parser.add_argument("--source", required=True, help="where the upstream file came from")
    parser.add_argument(
        "--taken",
        required=True,
        type=date.fromisoformat,
        help="date the prices were taken (YYYY-MM-DD)",
    )
    args = parser.parse_args()
    document = build(json.loads(args.upstream.read_text()), args.source, args.taken)
    json.dump(document, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
