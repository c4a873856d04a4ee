"""What every collector produces (UsageBucket) and the shape every collector has (Collector)."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from cost_monitor.schema import TOKEN_COUNT_COLUMNS, conflict_columns

HOUR = 3600
DAY = 86400

# The natural key of llm_provider_usage, in the table's column order, and the token columns.
KEY_FIELDS = conflict_columns("llm_provider_usage")
TOKEN_FIELDS = TOKEN_COUNT_COLUMNS


@dataclasses.dataclass(frozen=True)
class UsageBucket:
    """One row of llm_provider_usage (collected_at is set by the database).

    Token semantics: input_tokens is uncached input only; output_tokens excludes reasoning
    where the provider reports reasoning apart. cost_amount is the billed amount in
    ``currency``, or None when the source reports tokens only (never a guessed price).
    """

    bucket_start: datetime
    bucket_seconds: int
    provider: str
    source: str
    account: str = ""
    project: str = ""
    model: str = ""
    operation: str = ""
    api_key_id: str = ""
    line_item: str = ""
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    cost_amount: Decimal | None = None
    currency: str = "USD"
    cache_write_1h_tokens: int = 0  # of cache_write_tokens
    cache_write_12h_tokens: int = 0  # of cache_write_tokens

    def __post_init__(self) -> None:
        if self.bucket_start.tzinfo is None:
            raise ValueError("bucket_start must be timezone-aware")
        if self.bucket_seconds not in (HOUR, DAY):
            raise ValueError(f"bucket_seconds must be 3600 or 86400, not {self.bucket_seconds}")
        for name in (*TOKEN_FIELDS, "requests"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is negative: {getattr(self, name)}")
        # NULL would break the natural key; the table's dimension columns default to ''.
        for name in KEY_FIELDS[2:]:
            if getattr(self, name) is None:
                object.__setattr__(self, name, "")
        object.__setattr__(self, "bucket_start", self.bucket_start.astimezone(UTC))

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in KEY_FIELDS)

    def merged_with(self, other: UsageBucket) -> UsageBucket:
        """Sum two buckets with the same key (rows a source splits finer than the key)."""
        if other.key != self.key:
            raise ValueError("only buckets with the same natural key can be merged")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch in one bucket: {self.currency}/{other.currency}")
        sums = {name: getattr(self, name) + getattr(other, name) for name in TOKEN_FIELDS}
        sums["requests"] = self.requests + other.requests
        if self.cost_amount is None and other.cost_amount is None:
            cost = None
        else:
            cost = (self.cost_amount or Decimal(0)) + (other.cost_amount or Decimal(0))
        return dataclasses.replace(self, cost_amount=cost, **sums)


def merge_buckets(buckets: Iterable[UsageBucket]) -> list[UsageBucket]:
    """One bucket per natural key: an upsert may not touch the same row twice."""
    merged: dict[tuple[Any, ...], UsageBucket] = {}
    for bucket in buckets:
        previous = merged.get(bucket.key)
        merged[bucket.key] = bucket if previous is None else previous.merged_with(bucket)
    return list(merged.values())


def floor_time(moment: datetime, seconds: int) -> datetime:
    """Start of the UTC bucket of width ``seconds`` holding ``moment``."""
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def parse_timestamp(value: str | int | float) -> datetime:
    """RFC 3339 / ISO 8601 (with Z or offset), BigQuery's '... UTC', or Unix seconds."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def count_field(row: Mapping[str, Any], field: str) -> int:
    """An integer field of a provider's JSON row: missing or null counts as 0."""
    return int(row.get(field) or 0)


def configured_width(config: Mapping[str, Any], widths: Mapping[str, int]) -> str:
    """The config's ``bucket_width`` (default "1d"), refused unless it is one of ``widths``."""
    width = str(config.get("bucket_width", "1d"))
    if width not in widths:
        raise ValueError(f"bucket_width must be one of {sorted(widths)}")
    return width


def bucket_width(start: datetime, end: datetime) -> int:
    """3600 or 86400 from a source row's own start and end (CUR and billing exports)."""
    seconds = int((end - start).total_seconds())
    if seconds <= HOUR:
        return HOUR
    if seconds <= DAY:
        return DAY
    raise ValueError(f"rows spanning {timedelta(seconds=seconds)} are coarser than a day")


class Collector(abc.ABC):
    """A provider usage/billing source.

    Subclasses set ``name`` (the collector's name, also the ``source`` column), ``provider``
    (OTel gen_ai.provider.name) and ``bucket_seconds`` (the width the runner aligns its
    window to, so every re-collected bucket is re-read whole; an instance may narrow it).
    """

    name: ClassVar[str]
    provider: ClassVar[str]
    bucket_seconds: int = DAY
    # How far before the watermark each run re-reads: providers revise recent days.
    default_overlap_seconds: ClassVar[int] = 2 * DAY

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.account = str(config.get("account", ""))

    @abc.abstractmethod
    def collect(self, since: datetime, until: datetime) -> Iterator[UsageBucket]:
        """Buckets that start in [since, until)."""

    def __repr__(self) -> str:
        # Configs hold secret file paths and env var names only, but keep reprs plain anyway.
        return f"<{type(self).__name__} account={self.account!r}>"
