from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from cost_monitor.exposition import render_registry
from cost_monitor.metrics import OTHER, LabelBounds, Metrics
from cost_monitor.records import UsageRecord
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def record(**fields):
    base = dict(
        time=datetime(2026, 11, 28, tzinfo=UTC),
        event_id=str(uuid.uuid4()),
        provider="openai",
        model="gpt-5",
        project="search",
        input_tokens=100,
        output_tokens=10,
    )
    base.update(fields)
    return UsageRecord(**base)


def value(metrics, name, **labels):
    """A sample from the app's own exposition, read back with prometheus_client's parser."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_projects_outside_the_allow_list_and_models_over_the_cap_become_other():
    bounds = LabelBounds(projects=["search"], known_models=["gpt-5"], max_models=1)
    assert bounds.project("search") == "search"
    assert bounds.project("customer-42-secret") == OTHER
    assert bounds.model("gpt-5") == "gpt-5"
    assert bounds.model("new-model-a") == "new-model-a"
    assert bounds.model("new-model-b") == OTHER
    assert bounds.operation("chat") == "chat" and bounds.operation("weird") == OTHER


def test_batch_counts_cost_tokens_requests_and_unpriced_tokens():
    metrics = Metrics(LabelBounds(["search"], ["gpt-5"], 0))
    metrics.record_batch(
        [
            record(cost_usd=Decimal("0.5"), cost_source="computed", duration_seconds=1.2),
            record(cost_usd=Decimal("0.25"), cost_source="billed", status="error"),
            record(model="mystery", project="other-team"),
        ]
    )
    common = dict(provider="openai", operation="chat", project="search", source="api")
    assert value(metrics, "llm_cost_usd_total", model="gpt-5", **common) == 0.75
    assert value(metrics, "llm_requests_total", model="gpt-5", status="ok", **common) == 1
    assert value(metrics, "llm_requests_total", model="gpt-5", status="error", **common) == 1
    assert value(metrics, "llm_tokens_total", model="gpt-5", token_type="input", **common) == 200
    unpriced = dict(provider="openai", model=OTHER, token_type="input")
    assert value(metrics, "llm_unpriced_tokens_total", **unpriced) == 100
    assert value(metrics, "llm_cost_records_total", cost_source="unpriced") == 1
    assert (
        value(
            metrics,
            "llm_request_duration_seconds_count",
            provider="openai",
            model="gpt-5",
            operation="chat",
        )
        == 1
    )


def parsed_samples(text: str) -> set[tuple[str, frozenset, float]]:
    return {
        (sample.name, frozenset(sample.labels.items()), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_registry_exposition_matches_the_client_library():
    registry = CollectorRegistry()
    metrics = Metrics(LabelBounds(["search"], ["gpt-5"], 10), registry)
    metrics.count_rejections({'we"ird\\reason\n': 2, "wrong_type": 1})
    metrics.spool_bytes.set(float("inf"))
    metrics.write_seconds.observe(0.02)
    lines: list[str] = []
    render_registry(registry, lines)
    ours = "\n".join(lines) + "\n"
    assert parsed_samples(ours) == parsed_samples(generate_latest(registry).decode())


def test_usage_series_render_as_valid_counters_and_histograms():
    metrics = Metrics(LabelBounds(["search"], ["gpt-5"], 10))
    metrics.record_batch(
        [
            record(cost_usd=Decimal("0.5"), cost_source="computed", duration_seconds=0.3),
            record(cost_usd=Decimal("0.5"), cost_source="computed", duration_seconds=0.25),
            record(model='we"ird\\model\nname', status="error", duration_seconds=400),
        ]
    )
    text = metrics.render().decode()
    assert "# TYPE llm_cost_usd_total counter" in text
    assert "# TYPE llm_request_duration_seconds histogram" in text
    gpt5 = dict(provider="openai", model="gpt-5", operation="chat")
    assert value(metrics, "llm_request_duration_seconds_bucket", le="0.25", **gpt5) == 1
    assert value(metrics, "llm_request_duration_seconds_bucket", le="0.5", **gpt5) == 2
    assert value(metrics, "llm_request_duration_seconds_count", **gpt5) == 2
    assert value(metrics, "llm_request_duration_seconds_sum", **gpt5) == 0.55
    weird = dict(provider="openai", model='we"ird\\model\nname', operation="chat")
    assert value(metrics, "llm_request_duration_seconds_bucket", le="+Inf", **weird) == 1
    assert value(metrics, "llm_request_duration_seconds_bucket", le="300.0", **weird) == 0
