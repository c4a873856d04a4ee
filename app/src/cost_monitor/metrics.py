"""Prometheus metrics with bounded label values.

Customer, user and key ids never become labels (they live in the database). Projects are
labels only when allow-listed, models only while the set stays under a cap; the rest are
exported as ``other``. Counters are updated once per distinct label set of a batch, not once
per record, which keeps the ingest hot path cheap.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cost_monitor.records import TOKEN_FIELDS, UsageRecord

OTHER = "other"
TOKEN_TYPES = {
    "input_tokens": "input",
    "cache_read_tokens": "cache_read",
    "cache_write_tokens": "cache_write",
    "output_tokens": "output",
    "reasoning_tokens": "reasoning",
}
KNOWN_OPERATIONS = frozenset(
    {
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
        "responses",
        "execute_tool",
        "invoke_agent",
        "create_agent",
        "image_generation",
        "audio_transcription",
        "audio_speech",
        "moderation",
        "rerank",
        "batch",
    }
)
KNOWN_SOURCES = frozenset({"api", "sdk", "proxy", "gateway", "otel", "import", "batch"})
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class LabelBounds:
    """Maps free-form values onto a bounded set of label values."""

    def __init__(self, projects: Iterable[str], known_models: Iterable[str], max_models: int):
        self.projects = frozenset(projects)
        self._models = set(known_models)
        self._extra_models = 0
        self._max_models = max_models
        self._lock = threading.Lock()

    def project(self, project: str | None) -> str:
        if not project:
            return ""
        return project if project in self.projects else OTHER

    def model(self, model: str) -> str:
        if model in self._models:
            return model
        with self._lock:
            if self._extra_models < self._max_models:
                self._models.add(model)
                self._extra_models += 1
                return model
        return OTHER

    @staticmethod
    def operation(operation: str) -> str:
        return operation if operation in KNOWN_OPERATIONS else OTHER

    @staticmethod
    def source(source: str) -> str:
        return source if source in KNOWN_SOURCES else OTHER


class Metrics:
    def __init__(self, bounds: LabelBounds, registry: CollectorRegistry | None = None) -> None:
        self.bounds = bounds
        self.registry = registry or CollectorRegistry()
        labels = ("provider", "model", "operation", "project", "source")
        r = self.registry
        self.cost = Counter("llm_cost_usd", "Cost of LLM usage in USD", labels, registry=r)
        self.tokens = Counter(
            "llm_tokens", "Tokens of LLM usage", (*labels, "token_type"), registry=r
        )
        self.requests = Counter(
            "llm_requests", "LLM requests recorded", (*labels, "status"), registry=r
        )
        self.duration = Histogram(
            "llm_request_duration_seconds",
            "Duration of LLM requests as reported by the caller",
            ("provider", "model", "operation"),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.unpriced_tokens = Counter(
            "llm_unpriced_tokens",
            "Tokens stored without a cost because the model has no price",
            ("provider", "model", "token_type"),
            registry=r,
        )
        self.cost_by_source = Counter(
            "llm_cost_records",
            "Records by where their cost came from (computed, billed, unpriced)",
            ("cost_source",),
            registry=r,
        )
        self.rejected = Counter(
            "llm_ingest_rejected_records",
            "Records (or whole bodies) the ingest API rejected",
            ("reason",),
            registry=r,
        )
        self.http_responses = Counter(
            "llm_ingest_http_responses",
            "Ingest API responses by status code",
            ("code",),
            registry=r,
        )
        self.stored_rows = Counter(
            "llm_ingest_stored_rows", "Rows committed to the database", registry=r
        )
        self.spooled_rows = Counter(
            "llm_ingest_spooled_rows", "Rows written to the on-disk spool", registry=r
        )
        self.spool_bytes = Gauge("llm_spool_bytes", "Bytes held in the on-disk spool", registry=r)
        self.spool_batches = Gauge(
            "llm_spool_batches", "Batches waiting in the on-disk spool", registry=r
        )
        self.database_up = Gauge(
            "llm_database_up", "1 when the last database write succeeded", registry=r
        )
        self.write_seconds = Histogram(
            "llm_ingest_write_seconds",
            "Time to commit one coalesced write",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.etl_last_success = Gauge(
            "llm_etl_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run",
            ("source",),
            registry=r,
        )
        self.etl_rows = Counter(
            "llm_etl_rows", "Rows upserted by collectors", ("source",), registry=r
        )
        self.etl_errors = Counter(
            "llm_etl_errors", "Failed collector runs", ("source",), registry=r
        )
        self.etl_duration = Gauge(
            "llm_etl_last_duration_seconds",
            "Duration of the collector's last run",
            ("source",),
            registry=r,
        )

    def record_batch(self, records: Iterable[UsageRecord]) -> None:
        """Count stored records, aggregated per label set first."""
        costs: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        tokens: dict[tuple[str, ...], int] = defaultdict(int)
        requests: dict[tuple[str, ...], int] = defaultdict(int)
        unpriced: dict[tuple[str, ...], int] = defaultdict(int)
        cost_sources: dict[str, int] = defaultdict(int)
        durations: list[tuple[tuple[str, str, str], float]] = []
        b = self.bounds
        for record in records:
            model = b.model(record.model)
            operation = b.operation(record.operation)
            key = (record.provider, model, operation, b.project(record.project))
            key += (b.source(record.source),)
            requests[(*key, record.status)] += 1
            for name in TOKEN_FIELDS:
                count = getattr(record, name)
                if count:
                    tokens[(*key, TOKEN_TYPES[name])] += count
                    if record.cost_usd is None:
                        unpriced[(record.provider, model, TOKEN_TYPES[name])] += count
            if record.cost_usd is not None:
                costs[key] += record.cost_usd
            cost_sources[record.cost_source or "unpriced"] += 1
            if record.duration_seconds is not None:
                durations.append(((record.provider, model, operation), record.duration_seconds))
        for labels, amount in costs.items():
            self.cost.labels(*labels).inc(float(amount))
        for labels, count in tokens.items():
            self.tokens.labels(*labels).inc(count)
        for labels, count in requests.items():
            self.requests.labels(*labels).inc(count)
        for labels, count in unpriced.items():
            self.unpriced_tokens.labels(*labels).inc(count)
        for source, count in cost_sources.items():
            self.cost_by_source.labels(source).inc(count)
        for labels3, seconds in durations:
            self.duration.labels(*labels3).observe(seconds)

    def count_rejections(self, codes: Mapping[str, int]) -> None:
        for code, count in codes.items():
            self.rejected.labels(code).inc(count)
