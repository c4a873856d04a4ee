"""Wires configuration into a running service: catalog, metrics, spool, writer, API, and the
background threads (collectors, billing reconciliation)."""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass

import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from cost_monitor import storage
from cost_monitor.api import Services, build_app
from cost_monitor.budgets import BudgetGauges, SpendTracker
from cost_monitor.config import Config, ConfigError
from cost_monitor.metrics import LabelBounds, Metrics
from cost_monitor.pricing import PriceCatalog
from cost_monitor.reconciliation import BillingGauges, Reconciler
from cost_monitor.scheduler import CollectorScheduler
from cost_monitor.sink import Sink, SinkCollector
from cost_monitor.spool import Spool

log = logging.getLogger(__name__)
# Seconds a busy thread keeps the GIL while another waits for it (Python's default: 5 ms).
# The writer thread gives the GIL up for every round trip to the database and then waits
# for the event loop, busy parsing the next batches, to hand it back: a shorter interval
# keeps those waits from adding up to more than the COPY itself.
GIL_SWITCH_INTERVAL_SECONDS = 0.001


@dataclass
class Runtime:
    app: web.Application
    sink: Sink
    scheduler: CollectorScheduler | None
    reconciler: Reconciler | None = None


def build_runtime(config: Config, run_collectors: bool = True) -> Runtime:
    """Raises ConfigError when the ingest API would have no token and is not told to run
    without authentication."""
    tokens = config.auth.load_tokens()
    catalog = PriceCatalog.load(
        config.prices.files,
        overrides=config.prices.overrides,
        include_builtin=config.prices.include_builtin,
    )
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    bounds = LabelBounds.from_config(config, catalog)
    metrics = Metrics(bounds, registry, max_series=config.metrics.max_series)
    taken = catalog.taken_timestamp()
    if taken is not None:
        metrics.price_catalog_timestamp.set(taken)
    tracker = SpendTracker()
    registry.register(BudgetGauges(tracker, config.budgets))
    connect = functools.partial(storage.connect, **config.database.connect_kwargs())
    sink = Sink(
        connect,
        Spool(config.spool.directory, config.spool.max_bytes, config.spool.quarantine_max_bytes),
        metrics,
        tracker,
        max_rows_per_write=config.database.max_rows_per_write,
    )
    registry.register(SinkCollector(sink))
    services = Services(
        sink=sink,
        catalog=catalog,
        metrics=metrics,
        limits=config.ingest.limits(),
        tokens=None if config.auth.disabled else tokens,
        max_body_bytes=config.ingest.max_body_bytes,
        retry_after_seconds=config.spool.retry_after_seconds,
    )
    app = build_app(services)
    scheduler = CollectorScheduler(config.collectors, connect, metrics) if run_collectors else None
    reconciler = None
    if config.reconciliation.enabled:
        reconciler = Reconciler(connect, metrics, config.reconciliation.interval_seconds)
        registry.register(BillingGauges(reconciler))

    async def start_background(_: web.Application) -> None:
        sink.start()
        if scheduler:
            scheduler.start()
        if reconciler:
            reconciler.start()

    async def stop_background(_: web.Application) -> None:
        if reconciler:
            reconciler.stop()
        if scheduler:
            scheduler.stop()
        sink.stop()

    app.on_startup.append(start_background)
    app.on_cleanup.append(stop_background)
    if config.auth.disabled:
        log.warning(
            "authentication disabled (auth.disabled): the ingest API accepts unauthenticated"
            " posts on %s",
            config.listen.bind_host(config.auth),
        )
    log.info(
        "price catalog: %d entries taken on %s; spool %s (max %d bytes)",
        len(catalog),
        catalog.taken,
        config.spool.directory,
        config.spool.max_bytes,
    )
    return Runtime(app, sink, scheduler, reconciler)


def serve(config: Config, run_collectors: bool = True) -> None:
    """Run until stopped; exits the process with the problems when the configuration
    cannot run (no ingest token, say)."""
    try:
        runtime = build_runtime(config, run_collectors)
    except ConfigError as error:
        raise SystemExit(
            "\n".join(f"cost-monitor: configuration: {problem}" for problem in error.problems)
        ) from None
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    host = config.listen.bind_host(config.auth)
    log.info("listening on %s:%d", host, config.listen.port)
    web.run_app(
        runtime.app,
        host=host,
        port=config.listen.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        # libuv's loop spends less of the GIL per request than asyncio's own: the event
        # loop thread is what bounds ingest (benchmarks/app.py).
        loop=uvloop.new_event_loop(),
    )
