from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from cost_monitor.config import Config, MetricsConfig
from cost_monitor.exposition import render_registry
from cost_monitor.metrics import OTHER, LabelBounds, Metrics
from cost_monitor.pricing import PriceCatalog, price_records
from cost_monitor.records import KNOWN_PROVIDERS, STATUSES, UsageRecord
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


def bounds(**sets):
    return LabelBounds(**{"projects": ["search"], "models": ["gpt-5"], **sets})


def test_every_label_outside_its_set_becomes_other():
    b = bounds()
    assert b.project("search") == "search"
    assert b.project("customer-42-secret") == OTHER
    assert b.model("gpt-5") == "gpt-5"
    assert b.model("new-model-a") == OTHER
    assert b.operation("chat") == "chat" and b.operation("weird") == OTHER
    assert b.provider("openai") == "openai" and b.provider("acme-llm") == OTHER
    assert b.source("sdk") == "sdk" and b.source("script-7") == OTHER
    assert b.status("error") == "error" and b.status("exploded") == OTHER


def test_batch_counts_cost_tokens_requests_and_unpriced_tokens():
    metrics = Metrics(bounds())
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
    metrics = Metrics(bounds(), registry)
    metrics.count_rejections({'we"ird\\reason\n': 2, "wrong_type": 1})
    metrics.spool_bytes.set(float("inf"))
    metrics.write_seconds.observe(0.02)
    lines: list[str] = []
    render_registry(registry, lines)
    ours = "\n".join(lines) + "\n"
    assert parsed_samples(ours) == parsed_samples(generate_latest(registry).decode())


def test_usage_series_render_as_valid_counters_and_histograms():
    metrics = Metrics(bounds(models=["gpt-5", 'we"ird\\model\nname']))
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


def usage_series_lines(metrics) -> int:
    """Sample lines of the usage families in the exposition (what Prometheus would store)."""
    names = tuple(family.name for family in metrics.usage_series)
    return sum(
        1
        for line in metrics.render().decode().splitlines()
        if line.startswith(names) and not line.startswith("#")
    )


def random_records(count: int, seed: int) -> list[UsageRecord]:
    """Half known label values, half junk, for every label the metrics carry."""
    rng = random.Random(seed)
    catalog = PriceCatalog.load()
    known = {
        "provider": sorted(KNOWN_PROVIDERS),
        "model": catalog.model_keys(),
        "operation": ["chat", "embeddings", "responses", "batch"],
        "project": ["search", "support-bot"],
        "source": ["api", "sdk", "proxy"],
        "status": sorted(STATUSES),
    }

    def pick(label: str) -> str:
        if rng.random() < 0.5:
            return rng.choice(known[label])
        return label + "-" + "".join(rng.choices(string.ascii_lowercase, k=8))

    records = [
        record(
            **{label: pick(label) for label in known},
            cache_read_tokens=rng.randrange(3),
            reasoning_tokens=rng.randrange(3),
            duration_seconds=rng.random() * 10,
        )
        for _ in range(count)
    ]
    price_records(catalog, records)
    return records


def test_fifty_thousand_records_of_random_labels_stay_under_the_series_cap():
    config = Config()
    metrics = Metrics(
        LabelBounds.from_config(config, PriceCatalog.load()),
        max_series=config.metrics.max_series,
    )
    records = random_records(50_000, seed=9)
    for start in range(0, len(records), 500):  # the ingest API's batches
        metrics.record_batch(records[start : start + 500])
    series = usage_series_lines(metrics)
    print(f"usage series after 50,000 random records: {series} (cap {metrics.max_series})")
    assert series <= config.metrics.max_series
    assert series == metrics.series
    assert value(metrics, "llm_metric_usage_series") == series
    folded = value(metrics, "llm_metric_folded_records_total")
    assert folded and folded > 0
    # Nothing is lost by folding: every record is still counted once.
    assert sum(
        sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == "llm_requests_total"
    ) == len(records)


def test_folded_records_keep_their_counts_under_all_other_labels():
    metrics = Metrics(bounds(projects=[f"p{i}" for i in range(200)]), max_series=100)
    metrics.record_batch([record(project=f"p{i}", status="ok") for i in range(200)])
    assert metrics.series <= 100
    folded = value(metrics, "llm_metric_folded_records_total")
    other = dict(provider=OTHER, model=OTHER, operation=OTHER, project=OTHER, source=OTHER)
    assert value(metrics, "llm_requests_total", status="ok", **other) == folded
    assert (
        value(
            metrics,
            "llm_requests_total",
            status="ok",
            **{
                **other,
                "provider": "openai",
                "model": "gpt-5",
                "operation": "chat",
                "project": "p0",
                "source": "api",
            },
        )
        == 1
    )


def test_junk_model_names_do_not_lock_out_a_priced_model():
    catalog = PriceCatalog.load()
    metrics = Metrics(LabelBounds.from_config(Config(), catalog))
    metrics.record_batch([record(model=f"junk-{i}") for i in range(500)])
    dated = record(model="gpt-4.1-2099-01-01")  # not a catalog key: priced as gpt-4.1
    price_records(catalog, [dated])
    metrics.record_batch([record(model="gpt-5-mini"), dated])
    common = dict(provider="openai", operation="chat", project=OTHER, source="api", status="ok")
    assert value(metrics, "llm_requests_total", model="gpt-5-mini", **common) == 1
    assert value(metrics, "llm_requests_total", model="gpt-4.1", **common) == 1
    assert value(metrics, "llm_requests_total", model=OTHER, **common) == 500
    assert value(metrics, "llm_metric_label_other_records_total", label="model") == 500


def test_configured_label_values_are_kept():
    config = Config(
        metrics=MetricsConfig(models=["in-house-7b"], operations=["classify"], sources=["etl"])
    )
    config.ingest.extra_providers = ["acme"]
    b = LabelBounds.from_config(config, PriceCatalog.load())
    assert b.model("in-house-7b") == "in-house-7b"
    assert b.operation("classify") == "classify"
    assert b.source("etl") == "etl"
    assert b.provider("acme") == "acme"
    assert b.model("gemini-2.5-pro", "gcp.gemini") == "gemini-2.5-pro"  # key gemini/...
