"""cost-monitor serve | collect | prices | report | check-config"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from cost_monitor.config import Config, ConfigError, load_config
from cost_monitor.pricing import PRICED_COLUMNS, PriceCatalog
from cost_monitor.records import DATA_RESIDENCIES, SERVICE_TIERS

log = logging.getLogger("cost_monitor")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run is run_check_config:  # reports every problem itself
        return run_check_config(args)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"cost-monitor: configuration: {problem}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as error:
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

    prices = commands.add_parser(
        "prices",
        help="show prices, quote a cost, or diff the catalog against a newer LiteLLM file",
        usage="%(prog)s [PATTERN] [options] | %(prog)s diff FILE [--format table|json]",
    )
    prices.add_argument(
        "words", nargs="*", metavar="PATTERN | diff FILE", help="substring of catalog keys"
    )
    prices.add_argument(
        "--format", choices=("table", "json"), help="output of prices diff (default: table)"
    )
    prices.add_argument("--file", action="append", default=[], help="extra LiteLLM price file")
    prices.add_argument("--quote", metavar="MODEL", help="compute the cost of token counts")
    prices.add_argument("--provider", default="openai", help="OTel provider name for --quote")
    for column in PRICED_COLUMNS:  # --input-tokens, --cache-read-tokens, ...
        prices.add_argument("--" + column.replace("_", "-"), type=int, default=0)
    prices.add_argument("--batch", action="store_true", help="batch API prices")
    prices.add_argument("--service-tier", choices=sorted(SERVICE_TIERS))
    prices.add_argument("--data-residency", choices=sorted(DATA_RESIDENCIES))
    prices.add_argument("--region", help="cloud location, e.g. us-east5 (Vertex AI)")
    prices.set_defaults(run=run_prices)

    report = commands.add_parser("report", help="spend from the database")
    report.add_argument(
        "--by", default="day", help="comma list of day,provider,model,project,customer"
    )
    report.add_argument("--since", help="UTC date or time (default: 30 days ago)")
    report.add_argument("--until", help="UTC date or time, exclusive (default: now)")
    report.add_argument("--format", choices=("table", "csv"), default="table")
    report.set_defaults(run=run_report)

    check = commands.add_parser(
        "check-config", help="validate the configuration offline (exit 0 valid, 2 not)"
    )
    check.add_argument(
        "--require-files",
        action="store_true",
        help="report files the configuration names (secrets, price files) that are missing",
    )
    check.set_defaults(run=run_check_config)
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
    from cost_monitor.metrics import Metrics
    from cost_monitor.scheduler import run_once

    configure_logging("-", config.logging.level)
    names = args.names or [name for name, c in config.collectors.items() if c.enabled]
    unknown = [name for name in names if name not in config.collectors]
    if unknown:
        print(f"cost-monitor: not configured: {', '.join(unknown)}", file=sys.stderr)
        return 2
    metrics = Metrics()
    failed = 0
    for name in names:
        result = run_once(name, config.collectors[name], database_connector(config), metrics)
        if result is None or result.error:
            failed += 1
            print(f"{name}: failed: {result.error if result else 'no database connection'}")
        else:
            print(f"{name}: {result.rows_upserted} rows, watermark {result.watermark}")
    return 1 if failed else 0


def run_check_config(args: argparse.Namespace) -> int:
    from cost_monitor.config_check import check_config

    report = check_config(args.config, require_files=args.require_files)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.problems:
        return 2
    print(report.summary())
    return 0


def run_prices(config: Config, args: argparse.Namespace) -> int:
    if args.words[:1] == ["diff"]:
        return run_prices_diff(config, args)
    if len(args.words) > 1 or args.format:
        print("usage: cost-monitor prices [PATTERN] | prices diff FILE", file=sys.stderr)
        return 2
    pattern = args.words[0] if args.words else ""
    catalog = load_catalog(config, args.file)
    if args.quote:
        tokens = {column: getattr(args, column) for column in PRICED_COLUMNS}
        cost = catalog.price(
            args.quote,
            args.provider,
            batch=args.batch,
            service_tier=args.service_tier,
            data_residency=args.data_residency,
            region=args.region,
            **tokens,
        )
        found = catalog.lookup(args.quote, args.provider)
        if cost is None or found is None:
            print(f"{args.quote} ({args.provider}): no price in the catalog", file=sys.stderr)
            if resembles := catalog.refused.get((args.provider, args.quote)):
                print(
                    f"it is a variant of {resembles}, whose variants (dates, regions) are"
                    " priced differently: add the exact model to prices.files or overrides",
                    file=sys.stderr,
                )
            return 1
        print(f"{cost:.10f} USD  ({found.key})")
        return 0
    per_million = 1_000_000
    print(f"{'model':<60} {'input':>9} {'cached':>9} {'output':>9}  USD per 1M tokens")
    for key in sorted(catalog.model_keys()):
        if pattern not in key:
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


def run_prices_diff(config: Config, args: argparse.Namespace) -> int:
    from cost_monitor.price_diff import diff_catalog, render_json, render_table
    from cost_monitor.pricing import read_catalog_file

    if len(args.words) != 2:
        print("usage: cost-monitor prices diff FILE [--format table|json]", file=sys.stderr)
        return 2
    path = Path(args.words[1])
    try:
        document = read_catalog_file(path)
    except (OSError, ValueError) as error:  # orjson.JSONDecodeError is a ValueError
        reason = error.strerror if isinstance(error, OSError) else str(error)
        print(f"cost-monitor: prices diff: {path}: {reason}", file=sys.stderr)
        return 2
    diff = diff_catalog(load_catalog(config, args.file), document)
    render = render_json if args.format == "json" else render_table
    sys.stdout.write(render(diff))
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
