"""cost-monitor serve | collect | prices | report"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cost_monitor.config import Config, ConfigError, load_config
from cost_monitor.pricing import PriceCatalog

log = logging.getLogger("cost_monitor")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as error:
        print(f"cost-monitor: configuration: {error}", file=sys.stderr)
        return 2
    return args.run(config, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cost-monitor", description="LLM usage and cost")
    parser.add_argument("--config", "-c", help="YAML file (default: $COST_MONITOR_CONFIG)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the ingest API, metrics and collectors")
    serve.add_argument("--no-collectors", action="store_true", help="do not run collectors")
    serve.set_defaults(run=run_serve)

    collect = commands.add_parser("collect", help="run configured collectors once")
    collect.add_argument("names", nargs="*", help="collector instances (default: all enabled)")
    collect.set_defaults(run=run_collect)

    prices = commands.add_parser("prices", help="show prices or quote a cost")
    prices.add_argument("pattern", nargs="?", default="", help="substring of catalog keys")
    prices.add_argument("--file", action="append", default=[], help="extra LiteLLM price file")
    prices.add_argument("--quote", metavar="MODEL", help="compute the cost of token counts")
    prices.add_argument("--provider", default="openai", help="OTel provider name for --quote")
    for name in ("input", "cache-read", "cache-write", "output", "reasoning"):
        prices.add_argument(f"--{name}-tokens", type=int, default=0)
    prices.add_argument("--batch", action="store_true", help="batch API prices")
    prices.set_defaults(run=run_prices)

    report = commands.add_parser("report", help="spend from the database")
    report.add_argument(
        "--by", default="day", help="comma list of day,provider,model,project,customer"
    )
    report.add_argument("--since", help="UTC date or time (default: 30 days ago)")
    report.add_argument("--until", help="UTC date or time, exclusive (default: now)")
    report.add_argument("--format", choices=("table", "csv"), default="table")
    report.set_defaults(run=run_report)
    return parser


def load_catalog(config: Config, extra_files: Sequence[str] = ()) -> PriceCatalog:
    return PriceCatalog.load(
        [*config.prices.files, *extra_files],
        overrides=config.prices.overrides,
        include_builtin=config.prices.include_builtin,
    )


def database_connector(config: Config):
    from cost_monitor import storage

    return functools.partial(storage.connect, **config.database.connect_kwargs())


def run_serve(config: Config, args: argparse.Namespace) -> int:
    from cost_monitor.logs import configure_logging
    from cost_monitor.service import serve

    configure_logging(config.logging.file, config.logging.level)
    serve(config, run_collectors=not args.no_collectors)
    return 0


def run_collect(config: Config, args: argparse.Namespace) -> int:
    from cost_monitor.logs import configure_logging
    from cost_monitor.metrics import LabelBounds, Metrics
    from cost_monitor.scheduler import run_once

    configure_logging("-", config.logging.level)
    names = args.names or [name for name, c in config.collectors.items() if c.enabled]
    unknown = [name for name in names if name not in config.collectors]
    if unknown:
        print(f"cost-monitor: not configured: {', '.join(unknown)}", file=sys.stderr)
        return 2
    metrics = Metrics(LabelBounds((), (), 0))
    failed = 0
    for name in names:
        result = run_once(name, config.collectors[name], database_connector(config), metrics)
        if result is None or result.error:
            failed += 1
            print(f"{name}: failed: {result.error if result else 'no database connection'}")
        else:
            print(f"{name}: {result.rows_upserted} rows, watermark {result.watermark}")
    return 1 if failed else 0


def run_prices(config: Config, args: argparse.Namespace) -> int:
    catalog = load_catalog(config, args.file)
    if args.quote:
        cost = catalog.price(
            args.quote,
            args.provider,
            args.input_tokens,
            args.cache_read_tokens,
            args.cache_write_tokens,
            args.output_tokens,
            args.reasoning_tokens,
            batch=args.batch,
        )
        found = catalog.lookup(args.quote, args.provider)
        if cost is None or found is None:
            print(f"{args.quote} ({args.provider}): no price in the catalog", file=sys.stderr)
            return 1
        print(f"{cost:.10f} USD  ({found.key})")
        return 0
    per_million = 1_000_000
    print(f"{'model':<60} {'input':>9} {'cached':>9} {'output':>9}  USD per 1M tokens")
    for key in sorted(catalog.model_keys()):
        if args.pattern not in key:
            continue
        entry = catalog.entry(key) or {}
        values = [
            entry.get(name)
            for name in (
                "input_cost_per_token",
                "cache_read_input_token_cost",
                "output_cost_per_token",
            )
        ]
        cells = [
            f"{v * per_million:9.4f}" if isinstance(v, int | float) else f"{'-':>9}" for v in values
        ]
        print(f"{key:<60} {' '.join(cells)}")
    return 0


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def run_report(config: Config, args: argparse.Namespace) -> int:
    from cost_monitor.report import fetch_report, render

    group_by = [name.strip() for name in args.by.split(",") if name.strip()]
    until = _moment(args.until) if args.until else datetime.now(UTC)
    since = _moment(args.since) if args.since else until - timedelta(days=30)
    try:
        conn = database_connector(config)()
    except Exception as error:
        print(f"cost-monitor: database: {error}", file=sys.stderr)
        return 1
    try:
        rows = fetch_report(conn, group_by, since, until)
    except ValueError as error:
        print(f"cost-monitor: {error}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    sys.stdout.write(render(group_by, rows, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
