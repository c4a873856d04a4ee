"""Prometheus metrics with bounded label values and a hard cap on the usage series.

Customer, user and key ids never become labels (they live in the database). Every other label
value comes from a bounded set: providers the ingest API accepts, models of the price catalog
(or configured), known operations, sources and statuses, allow-listed projects; anything else
is exported as ``other``, per label. On top of that the usage series have a hard cap: a new
label set that would pass it is folded into the all-``other`` one, and counted. Counters are
updated once per distinct label set of a batch, not once per record, which keeps the ingest
hot path cheap.
"""

from __future__ import annotations

import collections
import operator
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cost_monitor.config import MetricsConfig
from cost_monitor.exposition import UsageCounter, UsageHistogram, render_registry
from cost_monitor.records import KNOWN_PROVIDERS, STATUSES, UsageRecord, grouped
from cost_monitor.schema import TOKEN_COLUMNS, TOKEN_TYPES

if TYPE_CHECKING:
    from cost_monitor.config import Config
    from cost_monitor.pricing import PriceCatalog

OTHER = "other"
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
COST_SOURCES = frozenset({"computed", "billed", "unpriced"})
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The labels of a usage series besides token_type, status and cost_source.
DIMENSIONS = ("provider", "model", "operation", "project", "source")
FOLDED = (OTHER,) * len(DIMENSIONS)
DEFAULT_MAX_SERIES = MetricsConfig.max_series

ModelResolver = Callable[[str, str], str | None]


class LabelBounds:
    """Maps free-form values onto bounded sets of label values, one set per label."""

    def __init__(
        self,
        *,
        providers: Iterable[str] = KNOWN_PROVIDERS,
        models: Iterable[str] = (),
        operations: Iterable[str] = KNOWN_OPERATIONS,
        sources: Iterable[str] = KNOWN_SOURCES,
        projects: Iterable[str] = (),
        resolve_model: ModelResolver | None = None,
    ) -> None:
        self.providers = frozenset(providers)
        self.models = frozenset(models)
        self.operations = frozenset(operations)
        self.sources = frozenset(sources)
        self.projects = frozenset(projects)
        self._resolve_model = resolve_model

    @classmethod
    def from_config(cls, config: Config, catalog: PriceCatalog) -> LabelBounds:
        """The catalog's models (keys, and keys without their ``provider/`` prefix), plus
        what ``metrics`` and ``ingest.extra_providers`` configure."""
        keys = catalog.model_keys()
        metrics = config.metrics
        return cls(
            providers=KNOWN_PROVIDERS | set(config.ingest.extra_providers),
            models={*keys, *(key.rsplit("/", 1)[-1] for key in keys), *metrics.models},
            operations=KNOWN_OPERATIONS | set(metrics.operations),
            sources=KNOWN_SOURCES | set(metrics.sources),
            projects=metrics.projects,
            resolve_model=catalog.priced_key,
        )

    def project(self, project: str | None) -> str:
        if not project:
            return ""
        return project if project in self.projects else OTHER

    def model(self, model: str, provider: str = "") -> str:
        """The model itself when known, else the catalog entry that prices it, else other."""
        if model in self.models:
            return model
        if self._resolve_model is not None:
            return self._resolve_model(model, provider) or OTHER
        return OTHER

    def provider(self, provider: str) -> str:
        return provider if provider in self.providers else OTHER

    def operation(self, operation: str) -> str:
        return operation if operation in self.operations else OTHER

    def source(self, source: str) -> str:
        return source if source in self.sources else OTHER

    @staticmethod
    def status(status: str) -> str:
        return status if status in STATUSES else OTHER

    def dimensions(
        self, provider: str, model: str, operation: str, project: str | None, source: str
    ) -> tuple[str, ...]:
        return (
            self.provider(provider),
            self.model(model, provider),
            self.operation(operation),
            self.project(project),
            self.source(source),
        )


_TOKEN_COUNT_GETTERS = tuple(operator.attrgetter(column) for column in TOKEN_COLUMNS)
_cost = operator.attrgetter("cost_usd")
_cost_source = operator.attrgetter("cost_source")
_duration = operator.attrgetter("duration_seconds")
# The raw label values a batch is grouped by before they are bounded.
_raw_labels = operator.attrgetter("provider", "model", "operation", "project", "source", "status")
Update = tuple[UsageCounter | UsageHistogram, tuple[str, ...], Any]


def _new_series(updates: list[Update]) -> int:
    """How many series the updates would create."""
    return sum(family.series_per_label_set for family, values, _ in updates if values not in family)


def _column_sums(records: list[UsageRecord]) -> list[int]:
    return [sum(map(count, records)) for count in _TOKEN_COUNT_GETTERS]


class _Totals:
    """What one batch adds for one label set (summed a column at a time: C loops, not a
    Python step per record)."""

    __slots__ = ("cost", "cost_sources", "durations", "priced", "requests", "tokens", "unpriced")

    def __init__(self, records: list[UsageRecord]) -> None:
        self.requests = len(records)
        priced = [r for r in records if r.cost_usd is not None]
        unpriced = [r for r in records if r.cost_usd is None] if len(priced) < len(records) else []
        self.priced = bool(priced)
        self.cost = sum(map(_cost, priced), Decimal(0))
        self.cost_sources: dict[str, int] = collections.Counter(map(_cost_source, priced))
        for unnamed in (None, ""):  # a priced record that does not say is billed
            if unnamed in self.cost_sources:
                self.cost_sources["billed"] += self.cost_sources.pop(unnamed)  # type: ignore[call-overload]
        if unpriced:
            self.cost_sources["unpriced"] += len(unpriced)
        self.tokens = _column_sums(records)
        self.unpriced = _column_sums(unpriced)
        self.durations = [d for d in map(_duration, records) if d is not None]


class Metrics:
    def __init__(
        self,
        bounds: LabelBounds | None = None,
        registry: CollectorRegistry | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.bounds = bounds or LabelBounds()
        self.registry = registry or CollectorRegistry()
        labels = DIMENSIONS
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
        self.label_others = Counter(
            "llm_metric_label_other_records",
            "Records with a label value outside its bounded set, exported as other, by label",
            ("label",),
            registry=r,
        )
        self.folded_records = Counter(
            "llm_metric_folded_records",
            "Records counted under the all-other label set because the usage series hit the cap",
            registry=r,
        )
        Gauge(
            "llm_metric_usage_series",
            "Usage series exported (llm_cost_usd_total, llm_tokens_total, ...)",
            registry=r,
        ).set_function(lambda: self.series)
        self.max_series = max_series
        # Room the all-other label set needs at most, so that folding never passes the cap.
        folded_room = (
            len(STATUSES)
            + 1  # requests by status
            + 1  # cost
            + 2 * len(TOKEN_TYPES)  # tokens, unpriced tokens
            + self.duration.series_per_label_set
            + len(COST_SOURCES)
            + 1  # cost_by_source
        )
        self._admit_until = max(0, max_series - folded_room)
        self.series = 0
        self._batch_lock = threading.Lock()

    def record_batch(self, records: Iterable[UsageRecord]) -> None:
        """Count stored records: sum per distinct raw label set, then bound and export."""
        groups = grouped(records, _raw_labels)
        with self._batch_lock:
            for (provider, model, operation, project, source, status), group in groups.items():
                totals = _Totals(group)
                dimensions = self.bounds.dimensions(provider, model, operation, project, source)
                bounded_status = self.bounds.status(status)
                self._count_others(dimensions, bounded_status, totals.requests)
                self._add(dimensions, bounded_status, totals)

    def _count_others(self, dimensions: tuple[str, ...], status: str, requests: int) -> None:
        for name, label in zip(DIMENSIONS, dimensions, strict=True):
            if label == OTHER:
                self.label_others.labels(name).inc(requests)
        if status == OTHER:
            self.label_others.labels("status").inc(requests)

    def _add(self, dimensions: tuple[str, ...], status: str, totals: _Totals) -> None:
        updates = self._updates(dimensions, status, totals)
        new = _new_series(updates)
        if new and self.series + new > self._admit_until and dimensions != FOLDED:
            self.folded_records.inc(totals.requests)
            updates = self._updates(FOLDED, status, totals)
            new = _new_series(updates)
        self.series += new
        for family, values, amount in updates:
            family.add(values, amount)

    def _updates(self, dimensions: tuple[str, ...], status: str, totals: _Totals) -> list[Update]:
        """Every (family, label values, amount) one label set's totals add."""
        provider, model, operation = dimensions[:3]
        updates: list[Update] = [(self.requests, (*dimensions, status), totals.requests)]
        if totals.priced:
            updates.append((self.cost, dimensions, float(totals.cost)))
        for token_type, count in zip(TOKEN_TYPES.values(), totals.tokens, strict=True):
            if count:
                updates.append((self.tokens, (*dimensions, token_type), count))
        for token_type, count in zip(TOKEN_TYPES.values(), totals.unpriced, strict=True):
            if count:
                updates.append((self.unpriced_tokens, (provider, model, token_type), count))
        for cost_source, count in totals.cost_sources.items():
            bounded = cost_source if cost_source in COST_SOURCES else OTHER
            updates.append((self.cost_by_source, (bounded,), count))
        if totals.durations:
            updates.append((self.duration, (provider, model, operation), totals.durations))
        return updates

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
