"""cost-monitor check-config: everything that can be known about a configuration offline.

Beyond what load_config checks (key names, types and each field's rule), a configuration is
checked against what the process would do with it: the ingest API has a token or is told to
run without authentication, every collector type exists and accepts its settings, price
files parse and overrides are valid entries, the DSN parses. Nothing connects to the
database or the network.

Files the configuration names (tokens, passwords, collector ``*_file`` settings, price
files) are reported missing only with ``require_files``: the configuration is often checked
where its secrets are not mounted. A collector credential from an environment variable is
never required here, for the same reason.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from psycopg2 import ProgrammingError
from psycopg2.extensions import parse_dsn

from cost_monitor.config import Config, parse_config, read_tokens_file
from cost_monitor.pricing import (
    CATALOG_MARKER,
    ModelPrice,
    PriceCatalog,
    entry_problems,
    is_model_key,
    read_catalog_file,
    taken_on,
)


@dataclass(frozen=True)
class CheckReport:
    problems: list[str]
    collectors: int = 0
    budgets: int = 0
    price_entries: int = 0

    def summary(self) -> str:
        return (
            f"configuration OK: {self.collectors} collectors, {self.budgets} budgets,"
            f" {self.price_entries} price entries"
        )


def check_config(
    path: str | Path | None, environ: Mapping[str, str] = os.environ, require_files: bool = False
) -> CheckReport:
    try:
        config, problems = parse_config(path, environ)
    except OSError as error:
        return CheckReport([f"{path}: {error.strerror or error}"])
    except yaml.YAMLError as error:
        return CheckReport([f"{path}: not valid YAML: {error}".replace("\n", " ")])
    files = list(named_files(config))
    unreadable = {file: reason for _, file in files if (reason := _unreadable(file))}
    if require_files:
        problems += [
            f"{where}: {file}: {unreadable[file]}" for where, file in files if file in unreadable
        ]
        problems += secret_file_problems(config)
    problems += config.auth.configured_problems()
    problems += collector_problems(config)
    catalog, price_problems = check_prices(config, skip=set(unreadable))
    problems += price_problems
    problems += dsn_problems(config)
    return CheckReport(problems, len(config.collectors), len(config.budgets), len(catalog))


def named_files(config: Config) -> Iterator[tuple[str, str]]:
    """(key path, file) for every file the configuration names."""
    if config.auth.tokens_file:
        yield "config.auth.tokens_file", config.auth.tokens_file
    if config.database.password_file:
        yield "config.database.password_file", config.database.password_file
    for name, collector in config.collectors.items():
        for key, value in collector.settings.items():
            if key.endswith("_file") and isinstance(value, str) and value:
                yield f"config.collectors.{name}.settings.{key}", value
    for index, file in enumerate(config.prices.files):
        yield f"config.prices.files[{index}]", file


def _unreadable(file: str) -> str | None:
    """Why ``file`` cannot be read, or None when it can."""
    try:
        with open(file, "rb"):
            return None
    except OSError as error:
        return (error.strerror or str(error)).lower()


def secret_file_problems(config: Config) -> list[str]:
    """Secret files that exist but would not work (checked only where secrets are mounted)."""
    problems = []
    tokens_file = config.auth.tokens_file
    if tokens_file and not _unreadable(tokens_file) and not read_tokens_file(tokens_file):
        problems.append(
            f"config.auth.tokens_file: {tokens_file} holds no token (blank and # comment lines"
            " do not count)"
        )
    password_file = config.database.password_file
    empty = (
        password_file
        and not _unreadable(password_file)
        and not Path(password_file).read_text().strip()
    )
    if empty:
        problems.append(f"config.database.password_file: {password_file} is empty")
    return problems


class _Offline:
    """Stands in for a collector's HTTP client: settings are checked, nothing is sent."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("check-config never contacts a provider")


def collector_problems(config: Config) -> list[str]:
    from cost_monitor.collectors import COLLECTORS
    from cost_monitor.collectors.secrets import MissingSecretError
    from cost_monitor.scheduler import collector_settings

    problems = []
    known = ", ".join(sorted(COLLECTORS))
    for instance, collector in config.collectors.items():
        where = f"config.collectors.{instance}"
        kind, settings = collector_settings(instance, collector)
        if kind not in COLLECTORS:
            if collector.type:
                problems.append(f"{where}.type: unknown collector {kind!r} (known: {known})")
            else:
                problems.append(
                    f"{where}: unknown collector {kind!r} (set type, or name the instance"
                    f" after its type; known: {known})"
                )
            continue
        cls = COLLECTORS[kind]
        try:
            try:
                cls(settings)
            except MissingSecretError:
                # Not mounted here, or from a variable set elsewhere: check the rest offline.
                if "http" in inspect.signature(cls).parameters:
                    cls(settings, http=_Offline())
        except MissingSecretError:
            pass
        except Exception as error:  # whatever the collector refuses its settings with
            problems.append(f"{where}.settings: {error}")
    return problems


def check_prices(config: Config, skip: set[str]) -> tuple[PriceCatalog, list[str]]:
    """The catalog the configuration builds (unreadable files left out) and its problems."""
    prices = config.prices
    problems = []
    files = []
    for index, file in enumerate(prices.files):
        if file in skip:
            continue
        where = f"config.prices.files[{index}]"
        try:
            document = read_catalog_file(Path(file))
        except (orjson.JSONDecodeError, ValueError) as error:
            problems.append(f"{where}: {file}: not a LiteLLM price file: {error}")
            continue
        bad = [
            key
            for key, entry in document.items()
            if is_model_key(key) and not isinstance(entry, Mapping)
        ]
        if bad:
            shown = ", ".join(repr(key) for key in bad[:5]) + (", ..." if len(bad) > 5 else "")
            problems.append(f"{where}: {file}: entries that are not objects: {shown}")
        if CATALOG_MARKER in document and taken_on(document) is None:
            problems.append(
                f"{where}: {file}: {CATALOG_MARKER}.prices_taken must be a date (YYYY-MM-DD)"
            )
        files.append(file)
    for key, entry in prices.overrides.items():
        for field, problem in entry_problems(entry):
            problems.append(
                f"config.prices.overrides.{key}{'.' + field if field else ''}: {problem}"
            )
    catalog = PriceCatalog.load(
        files,
        overrides={k: v for k, v in prices.overrides.items() if not entry_problems(v)},
        include_builtin=prices.include_builtin,
    )
    for key, entry in prices.overrides.items():
        merged = catalog.entry(key)
        if not entry_problems(entry) and merged and ModelPrice.from_entry(key, merged) is None:
            problems.append(
                f"config.prices.overrides.{key}: no input_cost_per_token or"
                " output_cost_per_token, in the override or the catalog"
            )
    return catalog, problems


def dsn_problems(config: Config) -> list[str]:
    try:
        parse_dsn(config.database.dsn)
    except ProgrammingError as error:
        return [f"config.database.dsn: not a libpq connection string: {str(error).strip()}"]
    return []
