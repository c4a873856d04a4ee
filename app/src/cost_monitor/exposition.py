"""The Prometheus text format (0.0.4), and the usage series that are kept outside
prometheus_client so that a scrape of thousands of them stays cheap.

prometheus_client builds a Sample tuple per series on every collect() and its writer
re-validates every label name (about 20 us a series: 40 ms at 2,000). The usage series here
keep their label text rendered once, at the first increment, and a scrape only joins lines.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SPECIAL_VALUES = {math.inf: "+Inf", -math.inf: "-Inf"}

LabelValues = tuple[str, ...]


def label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def number(value: float) -> str:
    if value != value:
        return "NaN"
    return _SPECIAL_VALUES.get(value) or repr(float(value))


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _header(name: str, documentation: str, kind: str) -> list[str]:
    text = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


class UsageCounter:
    """A counter family keyed by label values; ``name`` includes the ``_total`` suffix."""

    series_per_label_set = 1

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._values: dict[LabelValues, float] = {}
        self._prefixes: dict[LabelValues, str] = {}
        self._lock = threading.Lock()

    def __contains__(self, values: LabelValues) -> bool:
        return values in self._values

    def add(self, values: LabelValues, amount: float) -> None:
        with self._lock:
            if values not in self._values:
                self._prefixes[values] = self.name + _label_text(self.labels, values) + " "
                self._values[values] = 0.0
            self._values[values] += amount

    def value(self, values: LabelValues) -> float | None:
        return self._values.get(values)

    def render(self, lines: list[str]) -> None:
        lines.extend(_header(self.name, self.documentation, "counter"))
        with self._lock:
            lines.extend(p + number(self._values[k]) for k, p in self._prefixes.items())


class UsageHistogram:
    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.bounds = tuple(sorted(buckets))
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}
        self._label_parts: dict[LabelValues, str] = {}
        self._lock = threading.Lock()
        # One line per bucket (+Inf included), then _sum and _count.
        self.series_per_label_set = len(self.bounds) + 3

    def __contains__(self, values: LabelValues) -> bool:
        return values in self._counts

    def add(self, values: LabelValues, observations: Sequence[float]) -> None:
        self.observe_many(values, observations)

    def observe_many(self, values: LabelValues, observations: Sequence[float]) -> None:
        with self._lock:
            counts = self._counts.get(values)
            if counts is None:
                counts = self._counts[values] = [0] * (len(self.bounds) + 1)
                self._sums[values] = 0.0
                self._label_parts[values] = ",".join(
                    f'{n}="{label_value(v)}"' for n, v in zip(self.labels, values, strict=True)
                )
            for observation in observations:
                counts[bisect.bisect_left(self.bounds, observation)] += 1
            self._sums[values] += sum(observations)

    def render(self, lines: list[str]) -> None:
        lines.extend(_header(self.name, self.documentation, "histogram"))
        with self._lock:
            for values, counts in self._counts.items():
                labels = self._label_parts[values]
                cumulative = 0
                for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
                    cumulative += count
                    le = number(bound)
                    lines.append(f'{self.name}_bucket{{{labels},le="{le}"}} {cumulative}')
                lines.append(f"{self.name}_sum{{{labels}}} {number(self._sums[values])}")
                lines.append(f"{self.name}_count{{{labels}}} {cumulative}")


def render_registry(registry: CollectorRegistry, lines: list[str]) -> None:
    """Everything a prometheus_client registry collects, without the _created series."""
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        kind = family.type if family.type in ("counter", "gauge", "histogram") else "untyped"
        lines.extend(_header(name, family.documentation, kind))
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = _label_text(list(sample.labels), list(sample.labels.values()))
            lines.append(f"{sample.name}{labels} {number(sample.value)}")
