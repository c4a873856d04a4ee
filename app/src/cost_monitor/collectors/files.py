"""Export files (billing exports, CUR) from a local directory or HTTP URLs, gzip or plain.

Config: ``path`` (a directory searched with ``pattern``, or one file) and/or ``urls`` (file
URLs, e.g. pre-signed object-store links). Gzip is recognised by its magic bytes, so
``.csv.gz``, ``.gz`` and mislabelled files all work.
"""

from __future__ import annotations

import gzip
import io
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from cost_monitor.collectors.http import client_from_config

GZIP_MAGIC = b"\x1f\x8b"


def _as_text(binary: IO[bytes], head: bytes) -> IO[str]:
    """Text from ``binary``, whose first bytes ``head`` were peeked without consuming them."""
    stream: IO[bytes] = gzip.GzipFile(fileobj=binary) if head[:2] == GZIP_MAGIC else binary
    # utf-8-sig: exports written by spreadsheet tools start with a byte order mark.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def local_files(path: Path, pattern: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"export path {path} does not exist")
    return sorted(candidate for candidate in path.glob(pattern) if candidate.is_file())


def open_exports(config: Mapping[str, Any], pattern: str) -> Iterator[tuple[str, IO[str]]]:
    """(name, text stream) for every configured export file, in a stable order."""
    if not config.get("path") and not config.get("urls"):
        raise ValueError("configure path (a directory or file) or urls")
    if config.get("path"):
        for file in local_files(Path(config["path"]), str(config.get("pattern", pattern))):
            with file.open("rb") as binary, _as_text(binary, binary.peek(2)) as text:
                yield str(file), text
    for url in config.get("urls", []):
        parts = urllib.parse.urlsplit(url)
        client = client_from_config(
            {**config, "base_url": f"{parts.scheme}://{parts.netloc}"}, "", {}
        )
        body = client.request("GET", url)
        with _as_text(io.BytesIO(body), body[:2]) as text:
            yield parts.path, text
