"""Configuration: one YAML file, then environment variables, each documented once here.

| variable                              | overrides                | note                       |
|---------------------------------------|--------------------------|----------------------------|
| COST_MONITOR_CONFIG                   | the file itself          | path to the YAML file      |
| COST_MONITOR_DATABASE_DSN             | database.dsn             | libpq DSN without password |
| COST_MONITOR_DATABASE_PASSWORD_FILE   | database.password_file   | file holding the password  |
| COST_MONITOR_AUTH_TOKENS_FILE         | auth.tokens_file         | bearer tokens, one a line  |
| COST_MONITOR_LISTEN_HOST / _PORT      | listen.host / .port      |                            |
| COST_MONITOR_SPOOL_DIRECTORY          | spool.directory          |                            |
| COST_MONITOR_LOG_FILE                 | logging.file             | "-" logs to standard error |
| COST_MONITOR_LOG_LEVEL                | logging.level            |                            |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from cost_monitor.records import IngestLimits


class ConfigError(ValueError):
    pass


@dataclass
class ListenConfig:
    host: str = "0.0.0.0"
    port: int = 8080


@dataclass
class AuthConfig:
    # No tokens configured = no auth (fine for a loopback-only dev run; the role sets tokens).
    tokens_file: str | None = None
    tokens: list[str] = field(default_factory=list)

    def load_tokens(self) -> frozenset[str]:
        tokens = set(self.tokens)
        if self.tokens_file:
            lines = Path(self.tokens_file).read_text().splitlines()
            tokens.update(line.strip() for line in lines if line.strip())
        return frozenset(tokens)


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
    # Only these projects become label values; every other project is exported as "other".
    projects: list[str] = field(default_factory=list)
    max_models: int = 200


@dataclass
class Budget:
    daily_usd: float | None = None
    monthly_usd: float | None = None


@dataclass
class CollectorConfig:
    type: str | None = None  # a name in collectors.COLLECTORS; default: the instance name
    enabled: bool = True
    interval_seconds: int = 3600
    settings: dict[str, Any] = field(default_factory=dict)  # passed to the collector as is


@dataclass
class LoggingConfig:
    file: str = "/var/log/aicost/cost-monitor.log"
    level: str = "INFO"


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
    logging: LoggingConfig = field(default_factory=LoggingConfig)


ENVIRONMENT = {
    "COST_MONITOR_DATABASE_DSN": ("database", "dsn"),
    "COST_MONITOR_DATABASE_PASSWORD_FILE": ("database", "password_file"),
    "COST_MONITOR_AUTH_TOKENS_FILE": ("auth", "tokens_file"),
    "COST_MONITOR_LISTEN_HOST": ("listen", "host"),
    "COST_MONITOR_LISTEN_PORT": ("listen", "port"),
    "COST_MONITOR_SPOOL_DIRECTORY": ("spool", "directory"),
    "COST_MONITOR_LOG_FILE": ("logging", "file"),
    "COST_MONITOR_LOG_LEVEL": ("logging", "level"),
}


def load_config(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    path = path or environ.get("COST_MONITOR_CONFIG")
    document: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping")
        document = loaded
    for variable, (section, key) in ENVIRONMENT.items():
        if variable in environ:
            document.setdefault(section, {})
            document[section][key] = environ[variable]
    return build(Config, document, "config")


def build(cls: type, document: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking names and converting scalar types."""
    if not isinstance(document, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(document) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    values = {
        name: _convert(hints[name], value, f"{where}.{name}") for name, value in document.items()
    }
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    args = getattr(hint, "__args__", ())
    if is_dataclass(hint):
        return build(hint, value or {}, where)
    if origin is dict and len(args) == 2 and is_dataclass(args[1]):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        return {str(k): build(args[1], v or {}, f"{where}.{k}") for k, v in value.items()}
    if type(None) in args:  # Optional[X]
        if value is None:
            return None
        hint = next(arg for arg in args if arg is not type(None))
        origin = getattr(hint, "__origin__", None)
    scalar = origin or hint
    if scalar is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where}: expected true or false")
    if scalar in (int, float, str):
        try:
            return scalar(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {scalar.__name__}") from None
    if scalar is list and not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    if scalar is dict and not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    return value
