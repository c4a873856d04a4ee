"""Read a collector's credential from a file or an environment variable, never from config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class MissingSecretError(RuntimeError):
    """The credential is not configured or its file/variable is empty."""


def read_secret(config: Mapping[str, Any], name: str, default_env: str | None = None) -> str:
    """The value of ``<name>_file`` (a path) or ``<name>_env`` (a variable name).

    A literal secret in the config file is refused on purpose: config files get copied,
    templated and logged; a file path or variable name does not leak the credential.
    """
    if name in config:
        raise ValueError(f"put {name} in a file ({name}_file) or a variable ({name}_env)")
    path = config.get(f"{name}_file")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise MissingSecretError(f"{name}_file {path}: {error.strerror}") from None
        if not value:
            raise MissingSecretError(f"{name}_file {path} is empty")
        return value
    variable = config.get(f"{name}_env", default_env)
    if variable:
        value = os.environ.get(variable, "").strip()
        if value:
            return value
        raise MissingSecretError(f"environment variable {variable} ({name}) is not set")
    raise MissingSecretError(f"set {name}_file or {name}_env")
