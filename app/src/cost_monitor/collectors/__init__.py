"""Collectors for provider usage and billing APIs, keyed by the name the CLI and config use.

Each collector turns one source into UsageBucket rows for llm_provider_usage;
``runner.run_collector`` stores them idempotently and tracks the watermark.
"""

from cost_monitor.collectors.anthropic import AnthropicCostsCollector, AnthropicUsageCollector
from cost_monitor.collectors.azure_cost import AzureCostCollector
from cost_monitor.collectors.bedrock_cur import BedrockCurCollector
from cost_monitor.collectors.gcp_billing import GcpBillingCollector
from cost_monitor.collectors.model import Collector, UsageBucket
from cost_monitor.collectors.openai import OpenAICostsCollector, OpenAIUsageCollector

COLLECTORS: dict[str, type[Collector]] = {
    collector.name: collector
    for collector in (
        OpenAIUsageCollector,
        OpenAICostsCollector,
        AnthropicUsageCollector,
        AnthropicCostsCollector,
        BedrockCurCollector,
        GcpBillingCollector,
        AzureCostCollector,
    )
}

__all__ = ["COLLECTORS", "Collector", "UsageBucket"]
