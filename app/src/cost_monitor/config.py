"""Configuration: one YAML file, then environment variables, each documented once here.

| variable                              | overrides                | note                       |
|---------------------------------------|--------------------------|----------------------------|
| COST_MONITOR_CONFIG                   | the file itself          | path to the YAML file      |
| COST_MONITOR_DATABASE_DSN             | database.dsn             | libpq DSN without password |
| COST_MONITOR_DATABASE_PASSWORD_FILE   | database.password_file   | file holding the password  |
| COST_MONITOR_AUTH_TOKENS_FILE         | auth.tokens_file         | bearer tokens, one a line  |
| COST_MONITOR_AUTH_DISABLED            | auth.disabled            | "true": no authentication  |
| COST_MONITOR_LISTEN_HOST / _PORT      | listen.host / .port      |                            |
| COST_MONITOR_SPOOL_DIRECTORY          | spool.directory          |                            |
| COST_MONITOR_LOG_FILE                 | logging.file             | "-" logs to standard error |
| COST_MONITOR_LOG_LEVEL                | logging.level            |                            |
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from cost_monitor.records import IngestLimits


class ConfigError(ValueError):
    """One or more problems, each naming its key path (``config.listen.port: ...``)."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Rule:
    """What a converted value must be; ``requirement`` completes "must be ..." in messages."""

    requirement: str
    accepts: Callable[[Any], bool]


RULE = "rule"  # the dataclass field metadata key load_config checks a value's Rule under
POSITIVE_NUMBER = Rule("a positive number", lambda value: math.isfinite(value) and value > 0)
POSITIVE_INTEGER = Rule("a positive whole number", lambda value: value > 0)
PORT = Rule("a port number from 1 to 65535", lambda value: 1 <= value <= 65535)
LOG_LEVEL = Rule(
    "a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL)",
    lambda value: value.upper() in logging.getLevelNamesMapping(),
)
MAX_SERIES = Rule("a whole number of at least 100", lambda value: value >= 100)
TEXT_LIST = Rule("a list of strings", lambda items: all(type(item) is str for item in items))


@dataclass
class AuthConfig:
    tokens_file: str | None = None  # one token a line; blank lines and "# comments" ignored
    tokens: list[str] = field(default_factory=list, metadata={RULE: TEXT_LIST})
    # Running without authentication is asked for, never the result of an empty tokens file.
    disabled: bool = False

    def configured_problems(self) -> list[str]:
        """What is wrong without reading the tokens file (check-config runs without it)."""
        listed = [token for token in self.tokens if token.strip()]
        if self.disabled and (listed or self.tokens_file):
            return [
                "config.auth.disabled: true, but tokens are configured too; remove one or the other"
            ]
        if not self.disabled and not listed and not self.tokens_file:
            return [
                "config.auth: no ingest token configured; set auth.tokens_file or auth.tokens,"
                " or auth.disabled: true to run the ingest API without authentication"
            ]
        return []

    def load_tokens(self) -> frozenset[str]:
        """The bearer tokens; empty only when authentication is disabled.

        Raises ConfigError when authentication is neither configured nor disabled, or the
        tokens file cannot be read or holds no token.
        """
        problems = self.configured_problems()
        tokens = {token.strip() for token in self.tokens if token.strip()}
        if not problems and self.tokens_file:
            try:
                from_file = read_tokens_file(self.tokens_file)
            except OSError as error:
                reason = (error.strerror or str(error)).lower()
                problems.append(f"config.auth.tokens_file: {self.tokens_file}: {reason}")
            else:
                if not from_file:
                    problems.append(
                        f"config.auth.tokens_file: {self.tokens_file} holds no token (blank"
                        " and # comment lines do not count)"
                    )
                tokens |= from_file
        if problems:
            raise ConfigError(problems)
        return frozenset(tokens)


def read_tokens_file(path: str | Path) -> frozenset[str]:
    lines = (line.strip() for line in Path(path).read_text().splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


@dataclass
class ListenConfig:
    # Unset: every address, or loopback only while authentication is disabled.
    host: str | None = None
    port: int = field(default=8080, metadata={RULE: PORT})

    def bind_host(self, auth: AuthConfig) -> str:
        if self.host:
            return self.host
        return "127.0.0.1" if auth.disabled else "0.0.0.0"


@dataclass
class DatabaseConfig:
    dsn: str = "host=localhost dbname=aicost user=aicost_writer"
    password_file: str | None = None
    connect_timeout_seconds: int = 5
    # Rows per COPY; concurrent requests are coalesced up to this size.
    max_rows_per_write: int = 20_000

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "dsn": self.dsn,
            "connect_timeout": self.connect_timeout_seconds,
            "application_name": "cost-monitor",
        }
        if self.password_file:
            kwargs["password"] = Path(self.password_file).read_text().strip()
        return kwargs


@dataclass
class SpoolConfig:
    directory: str = "/var/lib/aicost/spool"
    max_bytes: int = 1 << 30
    retry_after_seconds: int = 30
    # Batches that cannot be replayed are kept here for a human; beyond it the oldest go.
    quarantine_max_bytes: int = field(default=256 << 20, metadata={RULE: POSITIVE_INTEGER})


@dataclass
class IngestConfig:
    max_body_bytes: int = 16 << 20
    max_batch_records: int = 10_000
    max_tokens_per_field: int = 100_000_000
    max_future_seconds: float = 300.0
    max_age_days: int = 400
    extra_providers: list[str] = field(default_factory=list)

    def limits(self) -> IngestLimits:
        return IngestLimits(
            max_tokens_per_field=self.max_tokens_per_field,
            max_future_seconds=self.max_future_seconds,
            max_age_days=self.max_age_days,
            max_batch_records=self.max_batch_records,
            extra_providers=frozenset(self.extra_providers),
        )


@dataclass
class PricesConfig:
    files: list[str] = field(default_factory=list)  # e.g. the full upstream LiteLLM file
    include_builtin: bool = True
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class MetricsConfig:
    # Label values besides the built-in sets (models: the price catalog's); anything else is
    # exported as "other". Only listed projects become label values.
    projects: list[str] = field(default_factory=list, metadata={RULE: TEXT_LIST})
    models: list[str] = field(default_factory=list, metadata={RULE: TEXT_LIST})
    operations: list[str] = field(default_factory=list, metadata={RULE: TEXT_LIST})
    sources: list[str] = field(default_factory=list, metadata={RULE: TEXT_LIST})
    # Hard cap on usage series; new label sets past it are counted under all-"other" labels.
    max_series: int = field(default=5000, metadata={RULE: MAX_SERIES})


@dataclass
class Budget:
    daily_usd: float | None = field(default=None, metadata={RULE: POSITIVE_NUMBER})
    monthly_usd: float | None = field(default=None, metadata={RULE: POSITIVE_NUMBER})


@dataclass
class CollectorConfig:
    type: str | None = None  # a name in collectors.COLLECTORS; default: the instance name
    enabled: bool = True
    interval_seconds: int = field(default=3600, metadata={RULE: POSITIVE_INTEGER})
    settings: dict[str, Any] = field(default_factory=dict)  # passed to the collector as is


@dataclass
class ReconciliationConfig:
    # Reported cost (llm_consumption) against billed cost (llm_provider_usage) of the last
    # complete UTC day, per provider, recomputed every interval on its own connection.
    enabled: bool = True
    interval_seconds: int = field(default=900, metadata={RULE: POSITIVE_INTEGER})


@dataclass
class LoggingConfig:
    file: str = "/var/log/aicost/cost-monitor.log"
    level: str = field(default="INFO", metadata={RULE: LOG_LEVEL})


@dataclass
class Config:
    listen: ListenConfig = field(default_factory=ListenConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    prices: PricesConfig = field(default_factory=PricesConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # Project name -> limits; the project "_all" budgets the sum over every project.
    budgets: dict[str, Budget] = field(default_factory=dict)
    collectors: dict[str, CollectorConfig] = field(default_factory=dict)
    reconciliation: ReconciliationConfig = field(default_factory=ReconciliationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


ENVIRONMENT = {
    "COST_MONITOR_DATABASE_DSN": ("database", "dsn"),
    "COST_MONITOR_DATABASE_PASSWORD_FILE": ("database", "password_file"),
    "COST_MONITOR_AUTH_TOKENS_FILE": ("auth", "tokens_file"),
    "COST_MONITOR_AUTH_DISABLED": ("auth", "disabled"),
    "COST_MONITOR_LISTEN_HOST": ("listen", "host"),
    "COST_MONITOR_LISTEN_PORT": ("listen", "port"),
    "COST_MONITOR_SPOOL_DIRECTORY": ("spool", "directory"),
    "COST_MONITOR_LOG_FILE": ("logging", "file"),
    "COST_MONITOR_LOG_LEVEL": ("logging", "level"),
}


def load_config(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    config, problems = parse_config(path, environ)
    if problems:
        raise ConfigError(problems)
    return config


def parse_config(
    path: str | Path | None = None, environ: Mapping[str, str] = os.environ
) -> tuple[Config, list[str]]:
    """The configuration and every problem found in it (a bad value leaves its default).

    Raises OSError or yaml.YAMLError when the file cannot be read or parsed at all.
    """
    path = path or environ.get("COST_MONITOR_CONFIG")
    document: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            return Config(), [f"{path}: the configuration must be a mapping"]
        document = loaded
    for variable, (section, key) in ENVIRONMENT.items():
        if variable in environ:
            if document.get(section) is None:
                document[section] = {}
            if isinstance(document[section], dict):  # else reported as "expected a mapping"
                document[section][key] = environ[variable]
    problems: list[str] = []
    return build(Config, document, "config", problems), problems


def build(cls: type, document: Any, where: str, problems: list[str] | None = None) -> Any:
    """Build dataclass ``cls`` from a mapping, checking names, converting scalar types and
    applying each field's rule.

    Problems are appended to ``problems`` (a bad value keeps the field's default); without a
    list, the first problem raises ConfigError.
    """
    found: list[str] = [] if problems is None else problems
    if not isinstance(document, Mapping):
        found.append(f"{where}: expected a mapping, not {_shown(document)}")
        document = {}
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for name in document:
        if name not in known:
            found.append(f"{where}.{name}: unknown key (known: {', '.join(known)})")
    values = {}
    for name, value in document.items():
        if name not in known:
            continue
        try:
            values[name] = _convert(
                hints[name], value, f"{where}.{name}", known[name].metadata.get(RULE), found
            )
        except ConfigError as error:
            found.extend(error.problems)
    if problems is None and found:
        raise ConfigError(found)
    return cls(**values)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text"}


def _convert(hint: Any, value: Any, where: str, rule: Rule | None, problems: list[str]) -> Any:
    origin = getattr(hint, "__origin__", None)
    args = getattr(hint, "__args__", ())
    if is_dataclass(hint):
        return build(hint, {} if value is None else value, where, problems)
    if origin is dict and len(args) == 2 and is_dataclass(args[1]):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, not {_shown(value)}")
        return {
            str(k): build(args[1], {} if v is None else v, f"{where}.{k}", problems)
            for k, v in value.items()
        }
    if type(None) in args:  # Optional[X]
        if value is None:
            return None
        hint = next(arg for arg in args if arg is not type(None))
        origin = getattr(hint, "__origin__", None)
    converted = _scalar(origin or hint, value, where, rule)
    if rule is not None and not rule.accepts(converted):
        raise ConfigError(f"{where}: must be {rule.requirement}, not {_shown(value)}")
    return converted


def _scalar(scalar: Any, value: Any, where: str, rule: Rule | None) -> Any:
    if scalar is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where}: must be true or false, not {_shown(value)}")
    if scalar in (int, float, str):
        expected = rule.requirement if rule else _TYPE_WORDS[scalar]
        wrong = ConfigError(f"{where}: must be {expected}, not {_shown(value)}")
        if isinstance(value, bool | Mapping | list):
            raise wrong
        if scalar is int and isinstance(value, float) and not value.is_integer():
            raise wrong
        try:
            return scalar(value)
        except (TypeError, ValueError):
            raise wrong from None
    if scalar is list and not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, not {_shown(value)}")
    if scalar is dict and not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, not {_shown(value)}")
    return value
