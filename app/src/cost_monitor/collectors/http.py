"""The one HTTP client every collector uses: JSON over urllib, retries, rate limits, paging.

Retries: connection errors, timeouts and 5xx back off exponentially with full jitter;
429 (and 503 with a hint) waits as long as the server asks through Retry-After or the
provider's own rate-limit headers, capped by ``max_retry_after``.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

USER_AGENT = "aicost-cost-monitor-collectors/1 (python-urllib)"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Providers' own "wait this long" headers, besides the standard Retry-After.
_SECONDS_HEADERS = (
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
    "x-ms-ratelimit-microsoft.consumption-retry-after",
)
_DURATION_HEADERS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")  # OpenAI: "6m0s"
_INSTANT_HEADERS = ("anthropic-ratelimit-requests-reset",)  # Anthropic: RFC 3339
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class HttpError(RuntimeError):
    """A response the client will not retry (or stopped retrying)."""

    def __init__(self, status: int | None, url: str, reason: str) -> None:
        self.status = status
        self.url = url
        super().__init__(f"{status or 'no response'} from {url}: {reason}")


def _duration_seconds(text: str) -> float | None:
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _seconds_until(instant: datetime, now: datetime) -> float:
    return max(0.0, (instant - now).total_seconds())


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The longest wait any rate-limit header asks for, or None when none does."""
    now = now or datetime.now(UTC)
    lowered = {key.lower(): value for key, value in headers.items()}
    waits: list[float] = []
    retry_after = lowered.get("retry-after")
    if retry_after:
        if retry_after.strip().replace(".", "", 1).isdigit():
            waits.append(float(retry_after))
        else:
            with contextlib.suppress(TypeError, ValueError):
                waits.append(_seconds_until(email.utils.parsedate_to_datetime(retry_after), now))
    for name in _SECONDS_HEADERS:
        if lowered.get(name, "").strip().replace(".", "", 1).isdigit():
            waits.append(float(lowered[name]))
    for name in _DURATION_HEADERS:
        seconds = _duration_seconds(lowered.get(name, ""))
        if seconds is not None:
            waits.append(seconds)
    for name in _INSTANT_HEADERS:
        if name in lowered:
            try:
                instant = datetime.fromisoformat(lowered[name].replace("Z", "+00:00"))
            except ValueError:
                continue
            waits.append(_seconds_until(instant, now))
    return max(waits) if waits else None


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


# The only headers a redirect to another origin keeps; every other one the client was given
# (Authorization, x-api-key, ...) is meant for the configured origin alone.
HEADERS_KEPT_ACROSS_ORIGINS = frozenset({"user-agent", "accept"})


class _CredentialDroppingRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but one to another origin (scheme, host or port) loses credentials.

    urllib's own handler copies every header to wherever a provider (or whoever controls
    its responses) redirects.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        followed = super().redirect_request(req, fp, code, msg, headers, newurl)
        if followed is not None and _origin(followed.full_url) != _origin(req.full_url):
            for name in list(followed.headers):
                if name.lower() not in HEADERS_KEPT_ACROSS_ORIGINS:
                    followed.remove_header(name)
        return followed


_OPENER = urllib.request.build_opener(_CredentialDroppingRedirectHandler)


class HttpClient:
    """JSON requests against one base URL with retry, backoff and rate-limit handling."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self._headers.update(headers or {})
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._jitter = jitter

    def __repr__(self) -> str:
        return f"<HttpClient {self.base_url}>"  # headers carry credentials: never shown

    def url_for(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> str:
        if "://" in path_or_url:
            # Absolute links come from responses (Azure nextLink): stay on the configured host
            # so a forged link cannot send the bearer token elsewhere.
            if _origin(path_or_url) != _origin(self.base_url):
                raise HttpError(None, path_or_url, "link leaves the configured base_url")
            url = path_or_url
        else:
            url = f"{self.base_url}/{path_or_url.lstrip('/')}"
        if params:
            query = urllib.parse.urlencode(
                {k: v for k, v in params.items() if v is not None}, doseq=True
            )
            url += ("&" if "?" in url else "?") + query
        return url

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request_json("GET", path, params=params)

    def post_json(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request_json("POST", path, params=params, body=body)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        raw = self.request(method, path, params=params, body=body)
        try:
            return json.loads(raw)
        except ValueError as error:
            raise HttpError(200, self._loggable(path), f"invalid JSON: {error}") from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> bytes:
        url = self.url_for(path, params)
        where = self._loggable(url)
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(1, self.max_attempts + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with _OPENER.open(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as error:
                status, reason = error.code, self._error_reason(error)
                error.close()
                if status not in RETRYABLE_STATUSES:
                    raise HttpError(status, where, reason) from None
                hint = retry_after_seconds(error.headers or {})
                if hint is not None and hint > self.max_retry_after:
                    raise HttpError(status, where, f"asked to wait {hint:.0f}s") from None
                delay = hint if hint is not None else self._backoff(attempt)
            except (
                urllib.error.URLError,
                TimeoutError,
                http.client.HTTPException,
                ConnectionError,
            ) as error:
                status, reason = None, str(getattr(error, "reason", error))
                delay = self._backoff(attempt)
            if attempt == self.max_attempts:
                raise HttpError(status, where, f"{reason} (gave up after {attempt} attempts)")
            log.warning(
                "collector request retry",
                extra={"url": where, "status": status, "attempt": attempt, "delay": delay},
            )
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return self._jitter() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))

    @staticmethod
    def _error_reason(error: urllib.error.HTTPError) -> str:
        try:
            text = error.read(300).decode("utf-8", "replace")
        except OSError:
            text = ""
        return f"{error.reason} {text}".strip()

    @staticmethod
    def _loggable(url: str) -> str:
        # Query strings may carry paging tokens; paths never carry credentials.
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def paginate(
    fetch_page: Callable[[str | None], Mapping[str, Any]],
    next_token: Callable[[Mapping[str, Any]], str | None],
    max_pages: int = 10_000,
) -> Iterator[Mapping[str, Any]]:
    """Pages from ``fetch_page(token)`` until ``next_token(page)`` is empty."""
    token: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = fetch_page(token)
        yield page
        token = next_token(page)
        if not token:
            return
        if token in seen:
            raise HttpError(None, "pagination", f"page token repeated: {token[:40]}")
        seen.add(token)
    raise HttpError(None, "pagination", f"more than {max_pages} pages")


def has_more_next_page(page: Mapping[str, Any]) -> str | None:
    """OpenAI's and Anthropic's paging: ``has_more`` plus a ``next_page`` cursor."""
    return page.get("next_page") if page.get("has_more") else None


def get_cursor_pages(
    http: HttpClient, path: str, params: Mapping[str, Any]
) -> Iterator[Mapping[str, Any]]:
    """GET ``path`` page by page, sending each ``next_page`` cursor back as ``page``."""
    return paginate(
        lambda token: http.get_json(path, {**params, "page": token}), has_more_next_page
    )


def client_from_config(
    config: Mapping[str, Any], default_base_url: str, headers: Mapping[str, str]
) -> HttpClient:
    """An HttpClient with the collector config's base_url and retry settings."""
    return HttpClient(
        str(config.get("base_url", default_base_url)),
        headers,
        timeout=float(config.get("timeout_seconds", 30)),
        max_attempts=int(config.get("max_attempts", 5)),
        backoff_base=float(config.get("backoff_base_seconds", 1)),
        backoff_cap=float(config.get("backoff_cap_seconds", 60)),
        max_retry_after=float(config.get("max_retry_after_seconds", 300)),
    )
