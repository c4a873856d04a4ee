"""Price a Case with LiteLLM's own cost functions, after converting the token convention.

LiteLLM takes OpenAI-style usage: ``prompt_tokens`` include cache reads and cache writes
(``prompt_tokens_details.cached_tokens`` / ``cache_write_tokens``, the writes split by
lifetime in ``cache_creation_token_details``), and ``completion_tokens`` include reasoning
(``completion_tokens_details.reasoning_tokens``). Batch usage is priced the way LiteLLM
prices a retrieved batch (``call_type="retrieve_batch"``: the ``_batches`` rate, or half the
standard rate where the entry has none). OpenAI residency goes in ``data_residency``, the
Vertex AI location in ``vertex_location``, Anthropic's inference geo on the usage.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the map

import litellm
from differential.cases import Case
from litellm.types.utils import (
    CacheCreationTokenDetails,
    CompletionTokensDetailsWrapper,
    PromptTokensDetailsWrapper,
    Usage,
)

# The provider LiteLLM routes each catalog provider through (its custom_llm_provider).
ROUTING_PROVIDERS = {"bedrock_converse": "bedrock"}
# LiteLLM routes Azure's text-completion models as azure_text but keys them under azure/.
MODEL_PREFIXES = {"azure_text": "azure/"}
# The lifetime a provider's plain cache write has: OpenAI's last 30 minutes, others' 5.
BASE_WRITE_LIFETIME = {"openai": "ephemeral_30m_input_tokens"}
BASE_WRITE_LIFETIME["azure.ai.openai"] = BASE_WRITE_LIFETIME["openai"]


def routing_provider(litellm_provider: str) -> str:
    if litellm_provider.startswith("vertex_ai"):
        return "vertex_ai"
    return ROUTING_PROVIDERS.get(litellm_provider, litellm_provider)


def usage_of(case: Case) -> Usage:
    tokens = case.tokens
    base_writes = tokens.cache_write_tokens - tokens.cache_write_1h_tokens
    base_writes -= tokens.cache_write_12h_tokens
    lifetimes = {
        BASE_WRITE_LIFETIME.get(case.provider, "ephemeral_5m_input_tokens"): base_writes,
        "ephemeral_1h_input_tokens": tokens.cache_write_1h_tokens,
        "ephemeral_12h_input_tokens": tokens.cache_write_12h_tokens,
    }
    completion = tokens.output_tokens + tokens.reasoning_tokens
    extra = {}
    if case.provider == "anthropic":  # residency and fast mode are read off Anthropic's usage
        extra = {"inference_geo": case.data_residency, "speed": case.service_tier}
    return Usage(
        prompt_tokens=tokens.prompt_tokens,
        completion_tokens=completion,
        total_tokens=tokens.prompt_tokens + completion,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=tokens.cache_read_tokens,
            cache_write_tokens=tokens.cache_write_tokens,
            cache_creation_token_details=CacheCreationTokenDetails(**lifetimes),
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=tokens.reasoning_tokens
        ),
        **extra,
    )


def call_type_of(case: Case) -> str:
    if case.batch:
        return "retrieve_batch"
    return "embedding" if case.entry["mode"] == "embedding" else "completion"


def litellm_cost(case: Case) -> float:
    """USD LiteLLM charges for the case (prompt plus completion cost), given the model name
    and provider of the request, as the app is, so each resolves the name its own way."""
    anthropic = case.provider == "anthropic"
    residency = None if anthropic else case.data_residency
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=MODEL_PREFIXES.get(case.entry["litellm_provider"], "") + case.model,
        custom_llm_provider=routing_provider(case.entry["litellm_provider"]),
        usage_object=usage_of(case),
        call_type=call_type_of(case),
        service_tier=None if anthropic and case.service_tier == "fast" else case.service_tier,
        data_residency=residency,
        vertex_location=case.region,
    )
    return prompt_cost + completion_cost
