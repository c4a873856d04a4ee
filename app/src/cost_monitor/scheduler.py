"""Runs the configured provider collectors on their intervals and reports their health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cost_monitor.config import CollectorConfig
from cost_monitor.metrics import Metrics

log = logging.getLogger(__name__)


def collector_settings(instance: str, config: CollectorConfig) -> tuple[str, dict[str, Any]]:
    """(collector type, settings for run_collector) of one configured collector instance.

    Instances of one type (two OpenAI organisations, say) keep apart watermarks by default.
    """
    kind = config.type or instance
    settings = dict(config.settings)
    if kind != instance:
        settings.setdefault("state_key", instance)
    return kind, settings


def run_once(instance: str, config: CollectorConfig, connect: Callable[[], Any], metrics: Metrics):
    """Run one collector instance now and turn its result into collector-health metrics."""
    from cost_monitor.collectors.runner import run_collector  # optional at import time

    kind, settings = collector_settings(instance, config)
    try:
        conn = connect()
    except Exception as error:
        metrics.etl_errors.labels(instance).inc()
        log.error("collector %s: cannot connect to the database: %s", instance, error)
        return None
    try:
        result = run_collector(kind, settings, conn)
    finally:
        conn.close()
    metrics.etl_duration.labels(instance).set(result.duration_seconds)
    if result.error is None:
        metrics.etl_last_success.labels(instance).set(time.time())
        metrics.etl_rows.labels(instance).inc(result.rows_upserted)
        log.info(
            "collector %s stored %d rows",
            instance,
            result.rows_upserted,
            extra={"collector": instance, "watermark": result.watermark},
        )
    else:
        metrics.etl_errors.labels(instance).inc()
        log.error("collector %s failed: %s", instance, result.error, extra={"collector": instance})
    return result


class CollectorScheduler:
    """One thread; each enabled instance runs at start-up and then every interval."""

    def __init__(
        self,
        collectors: Mapping[str, CollectorConfig],
        connect: Callable[[], Any],
        metrics: Metrics,
    ) -> None:
        self.collectors = {name: c for name, c in collectors.items() if c.enabled}
        self.connect = connect
        self.metrics = metrics
        for name, config in self.collectors.items():
            # Same source label as llm_etl_last_success_timestamp_seconds: the instance name.
            metrics.etl_interval.labels(name).set(config.interval_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collectors", daemon=True)

    def start(self) -> None:
        if self.collectors:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        due = dict.fromkeys(self.collectors, time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            for name, config in self.collectors.items():
                if due[name] <= now and not self._stop.is_set():
                    try:
                        run_once(name, config, self.connect, self.metrics)
                    except Exception:
                        self.metrics.etl_errors.labels(name).inc()
                        log.exception("collector %s crashed", name)
                    due[name] = time.monotonic() + config.interval_seconds
            self._stop.wait(max(0.5, min(due.values()) - time.monotonic()))
