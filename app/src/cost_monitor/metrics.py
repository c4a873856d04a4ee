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

from cost_monitor.exposition import UsageCounter, UsageHistogram, render_registry
from cost_monitor.records import UsageRecord

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


class _Totals:
    """What one batch adds for one label set."""

    __slots__ = ("cost", "cost_sources", "durations", "priced", "requests", "tokens", "unpriced")

    def __init__(self) -> None:
        self.requests = 0
        self.priced = False
        self.cost = Decimal(0)
        self.tokens = [0, 0, 0, 0, 0]
        self.unpriced = [0, 0, 0, 0, 0]
        self.cost_sources: dict[str, int] = defaultdict(int)
        self.durations: list[float] = []

    def add(self, r: UsageRecord) -> None:
        self.requests += 1
        counts = (
            r.input_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.reasoning_tokens,
        )
        target = self.tokens
        if r.cost_usd is None:
            self.cost_sources["unpriced"] += 1
            self.unpriced = [a + b for a, b in zip(self.unpriced, counts, strict=True)]
        else:
            self.priced = True
            self.cost += r.cost_usd
            self.cost_sources[r.cost_source or "billed"] += 1
        self.tokens = [a + b for a, b in zip(target, counts, strict=True)]
        if r.duration_seconds is not None:
            self.durations.append(r.duration_seconds)


class Metrics:
    def __init__(self, bounds: LabelBounds, registry: CollectorRegistry | None = None) -> None:
        self.bounds = bounds
        self.registry = registry or CollectorRegistry()
        labels = ("provider", "model", "operation", "project", "source")
        r = self.registry
        # The high-cardinality usage series live outside the registry (see exposition.py).
        self.cost = UsageCounter("llm_cost_usd_total", "Cost of LLM usage in USD", labels)
        self.tokens = UsageCounter(
            "llm_tokens_total", "Tokens of LLM usage", (*labels, "token_type")
        )
        self.requests = UsageCounter(
            "llm_requests_total", "LLM requests recorded", (*labels, "status")
        )
        self.duration = UsageHistogram(
            "llm_request_duration_seconds",
            "Duration of LLM requests as reported by the caller",
            ("provider", "model", "operation"),
            DURATION_BUCKETS,
        )
        self.unpriced_tokens = UsageCounter(
            "llm_unpriced_tokens_total",
            "Tokens stored without a cost because the model has no price",
            ("provider", "model", "token_type"),
        )
        self.cost_by_source = UsageCounter(
            "llm_cost_records_total",
            "Records by where their cost came from (computed, billed, unpriced)",
            ("cost_source",),
        )
        self.usage_series = (
            self.cost,
            self.tokens,
            self.requests,
            self.duration,
            self.unpriced_tokens,
            self.cost_by_source,
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
        self.etl_interval = Gauge(
            "llm_etl_interval_seconds",
            "Configured interval between the collector's runs",
            ("source",),
            registry=r,
        )
        self.price_catalog_timestamp = Gauge(
            "llm_price_catalog_timestamp_seconds",
            "Unix time (UTC midnight) of the day the prices in use were taken",
            registry=r,
        )
        self.billing_reconciliation_errors = Counter(
            "llm_billing_reconciliation_errors",
            "Failed billing reconciliation passes",
            registry=r,
        )

    def record_batch(self, records: Iterable[UsageRecord]) -> None:
        """Count stored records: sum per distinct raw label set, then bound and export."""
        groups: dict[tuple[str, str, str, str | None, str, str], _Totals] = {}
        for r in records:
            key = (r.provider, r.model, r.operation, r.project, r.source, r.status)
            totals = groups.get(key)
            if totals is None:
                totals = groups[key] = _Totals()
            totals.add(r)
        b = self.bounds
        for (provider, model, operation, project, source, status), totals in groups.items():
            model = b.model(model)
            operation = b.operation(operation)
            labels = (provider, model, operation, b.project(project), b.source(source))
            self.requests.inc((*labels, status), totals.requests)
            if totals.priced:
                self.cost.inc(labels, float(totals.cost))
            for token_type, count in zip(TOKEN_TYPES.values(), totals.tokens, strict=True):
                if count:
                    self.tokens.inc((*labels, token_type), count)
            for token_type, count in zip(TOKEN_TYPES.values(), totals.unpriced, strict=True):
                if count:
                    self.unpriced_tokens.inc((provider, model, token_type), count)
            for cost_source, count in totals.cost_sources.items():
                self.cost_by_source.inc((cost_source,), count)
            if totals.durations:
                self.duration.observe_many((provider, model, operation), totals.durations)

    def count_rejections(self, codes: Mapping[str, int]) -> None:
        for code, count in codes.items():
            self.rejected.labels(code).inc(count)

    def render(self) -> bytes:
        """The whole exposition: the usage series, then the registry's metrics."""
        lines: list[str] = []
        for series in self.usage_series:
            series.render(lines)
        render_registry(self.registry, lines)
        lines.append("")
        return "\n".join(lines).encode()
