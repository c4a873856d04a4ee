"""Rebuild the shipped price catalog from an upstream LiteLLM price file.

    python app/tools/build_price_catalog.py UPSTREAM.json --source "litellm 1.110.2" \
        --taken 2026-11-28 > app/src/cost_monitor/prices/catalog.json

The upstream file ships inside the `litellm` wheel on PyPI as
`litellm/model_prices_and_context_window_backup.json`. Only the current models of the five
providers the stack targets are kept, and only the fields pricing reads.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SELECTED = [
    # OpenAI
    r"gpt-5\.6(-sol|-terra|-luna)?",
    r"gpt-5\.5(-pro)?",
    r"gpt-5\.4(-mini|-nano|-pro)?",
    r"gpt-5\.2(-pro)?",
    r"gpt-5\.1(-codex|-codex-mini)?",
    r"gpt-5(-mini|-nano|-pro|-codex)?",
    r"gpt-4\.1(-mini|-nano)?",
    r"gpt-4o(-mini)?",
    r"o3(-pro|-mini)?",
    r"o4-mini",
    r"text-embedding-3-(small|large)",
    # Anthropic
    r"claude-(opus|sonnet|haiku)-4(-\d)?",
    r"claude-(opus|sonnet|haiku)-4(-\d)?-\d{8}",
    # Google (Gemini API and Vertex AI)
    r"(gemini/)?gemini-2\.5-(pro|flash|flash-lite)",
    r"(gemini/)?gemini-3(\.\d)?-(pro|flash|flash-lite)(-preview)?",
    r"(vertex_ai/)?claude-(opus|sonnet|haiku)-4(-\d)?",
    # AWS Bedrock
    r"((us|eu|apac|global)\.)?anthropic\.claude-(opus|sonnet|haiku)-4(-\d)?(-\d{8}-v1:0|-v1)?",
    r"amazon\.nova-(2-)?(pro|lite|micro|premier)-v1:0",
    r"meta\.llama4-(scout|maverick)-17b-instruct-v1:0",
    r"((us|global)\.)?openai\.gpt-5\.[56](-sol|-terra|-luna)?",
    # Azure OpenAI
    r"azure/gpt-5\.6(-sol|-terra|-luna)?",
    r"azure/gpt-5\.[45](-mini|-nano)?",
    r"azure/gpt-5(\.1)?(-mini|-nano)?",
    r"azure/gpt-4\.1(-mini|-nano)?",
    r"azure/gpt-4o(-mini)?",
    r"azure/o4-mini",
    r"azure/text-embedding-3-(small|large)",
]
KEPT_FIELDS = re.compile(r"(cost_per_token|token_cost)|^(litellm_provider|mode|max_input_tokens)$")


def select(upstream: dict[str, dict], patterns: list[str]) -> dict[str, dict]:
    wanted = re.compile("^(" + "|".join(patterns) + ")$")
    selected = {}
    for key in sorted(upstream):
        entry = upstream[key]
        if not isinstance(entry, dict) or not wanted.match(key):
            continue
        if entry.get("mode") not in ("chat", "responses", "embedding", "completion"):
            continue
        selected[key] = {name: value for name, value in entry.items() if KEPT_FIELDS.search(name)}
    return selected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path)
    parser.add_argument("--source", required=True, help="where the upstream file came from")
    parser.add_argument("--taken", required=True, help="date the prices were taken (YYYY-MM-DD)")
    args = parser.parse_args()
    entries = select(json.loads(args.upstream.read_text()), SELECTED)
    document = {
        "_aicost_catalog": {
            "source": args.source,
            "prices_taken": args.taken,
            "note": "USD per token, LiteLLM entry format; keys starting with _ are not models",
        },
        **entries,
    }
    json.dump(document, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
