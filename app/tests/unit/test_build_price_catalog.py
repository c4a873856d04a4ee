from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "build_price_catalog.py"
_spec = importlib.util.spec_from_file_location("build_price_catalog", TOOL)
build_price_catalog = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_price_catalog)

TAKEN = date(2026, 11, 28)


def chat(provider: str, **fields) -> dict:
    return {
        "litellm_provider": provider,
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
        **fields,
    }


UPSTREAM = {
    "sample_spec": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 0.0},
    "gpt-x": chat("openai"),
    "gpt-x-2026-01-01": chat("openai", input_cost_per_token=3e-06),
    "gpt-old": chat("openai", deprecation_date="2025-10-24"),
    "gpt-retired": chat("openai", deprecation_date="2025-10-25"),
    "gpt-retiring": chat("openai", deprecation_date="2026-11-29"),
    "gpt-image": {**chat("openai"), "mode": "image_generation"},
    "gpt-instruct": {**chat("text-completion-openai"), "mode": "completion"},
    "text-embedding-x": {
        "litellm_provider": "openai",
        "mode": "embedding",
        "input_cost_per_token": 1e-08,
    },
    "claude-x": chat("anthropic", provider_specific_entry={"us": 1.1, "fast": 2}),
    "eu.anthropic.claude-x": chat("bedrock_converse"),
    "bedrock/us-east-1/1-month-commitment/old": {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "input_cost_per_second": 0.01,
    },
    "bedrock/*/wildcard": chat("bedrock"),
    "bedrock_mantle/openai.gpt-x": {**chat("bedrock_mantle"), "mode": "responses"},
    "azure/gpt-x": chat("azure", supports_vision=True, source="https://example.invalid"),
    "azure_ai/gpt-x": chat("azure_ai"),
    "gemini/gemini-x": chat("gemini"),
    "gemini-x": chat("vertex_ai-language-models"),
    "vertex_ai/claude-x": chat(
        "vertex_ai-anthropic_models", regional_endpoint_uplift_multiplier=1.1
    ),
    "vertex_ai/llama-x": chat("vertex_ai-llama_models"),
    "mistral/mistral-x": chat("mistral"),
    "gpt-latest": {"alias_of": "gpt-x"},
    "gpt-dangling": {"alias_of": "no-such-model"},
    "gpt-chained": {"alias_of": "gpt-latest"},
}


def select() -> dict[str, dict]:
    return build_price_catalog.select(UPSTREAM, TAKEN)


def test_keeps_the_five_providers_including_vertex_partners_and_drops_the_others():
    selected = select()
    assert {"gpt-x", "claude-x", "eu.anthropic.claude-x"} <= set(selected)
    assert "bedrock_mantle/openai.gpt-x" in selected
    assert {"azure/gpt-x", "gemini/gemini-x", "gemini-x", "vertex_ai/claude-x"} <= set(selected)
    assert "vertex_ai/llama-x" in selected
    assert "mistral/mistral-x" not in selected
    assert "azure_ai/gpt-x" not in selected  # Azure AI Foundry is not Azure OpenAI
    assert "sample_spec" not in selected


def test_keeps_dated_snapshots_as_entries_of_their_own():
    assert select()["gpt-x-2026-01-01"]["input_cost_per_token"] == 3e-06


def test_keeps_the_priced_modes_only():
    selected = select()
    assert {"gpt-instruct", "text-embedding-x", "bedrock_mantle/openai.gpt-x"} <= set(selected)
    assert "gpt-image" not in selected


def test_drops_models_not_priced_per_token_and_wildcard_keys():
    selected = select()
    assert "bedrock/us-east-1/1-month-commitment/old" not in selected
    assert "bedrock/*/wildcard" not in selected


def test_a_model_retired_before_the_oldest_record_the_app_takes_is_dropped():
    selected = select()
    # 400 days before 2026-11-28 is 2025-10-24: a record that old may still be ingested.
    assert "gpt-old" not in selected
    assert "gpt-retired" in selected and "gpt-retiring" in selected


def test_an_alias_carries_its_targets_prices_and_a_broken_alias_is_dropped():
    selected = select()
    assert selected["gpt-latest"] == selected["gpt-x"]
    assert "gpt-dangling" not in selected
    assert "gpt-chained" not in selected


def test_keeps_the_fields_pricing_reads_and_nothing_else():
    selected = select()
    assert selected["azure/gpt-x"] == {
        "litellm_provider": "azure",
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
    }
    assert selected["claude-x"]["provider_specific_entry"] == {"us": 1.1, "fast": 2}
    assert selected["vertex_ai/claude-x"]["regional_endpoint_uplift_multiplier"] == 1.1


def test_keeps_every_per_token_rate_variant_and_uplift():
    rates = {
        "cache_creation_input_token_cost_above_1hr": 2e-06,
        "cache_creation_input_token_cost_above_12hr_above_272k_tokens_flex": 3e-06,
        "input_cost_per_token_above_200k_tokens_batches": 4e-06,
        "output_cost_per_reasoning_token": 5e-06,
        "fedramp_uplift_multiplier": 1.1,
        "regional_processing_uplift_multiplier_eu": 1.1,
        "regional_processing_uplift_multiplier_us": 1.1,
        "max_input_tokens": 1_000_000,
    }
    upstream = {"gpt-y": chat("openai", **rates, deprecation_date="2027-01-01")}
    assert build_price_catalog.select(upstream, TAKEN)["gpt-y"] == chat("openai", **rates)


def test_the_command_writes_the_catalog_with_its_provenance(tmp_path):
    upstream = tmp_path / "upstream.json"
    upstream.write_text(json.dumps(UPSTREAM))
    run = subprocess.run(
        [sys.executable, str(TOOL), upstream, "--source", "litellm test", "--taken", "2026-11-28"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(run.stdout)
    marker = document.pop("_aicost_catalog")
    assert marker["source"] == "litellm test"
    assert marker["prices_taken"] == "2026-11-28"
    assert "retired less than 400 days" in marker["selection"]
    assert marker["models"] == len(document) == len(select())
    assert marker["current_models"] == len(document) - 1  # gpt-retired
    assert marker["models_by_provider_and_mode"]["openai/chat"] == 5
    assert marker["models_by_provider_and_mode"]["openai/embedding"] == 1


def test_the_shipped_catalog_records_what_it_holds():
    shipped = json.loads((TOOL.parents[1] / "src/cost_monitor/prices/catalog.json").read_text())
    marker = shipped.pop("_aicost_catalog")
    assert marker["source"].startswith("litellm 1.110.2")
    assert marker["models"] == len(shipped)
    assert marker["models_by_provider_and_mode"] == build_price_catalog.counts_by_provider_and_mode(
        shipped
    )
