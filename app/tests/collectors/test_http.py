"""The shared HTTP client against a real local server: retries, rate limits, paging, safety."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cost_monitor.collectors.http import (
    USER_AGENT,
    HttpClient,
    HttpError,
    paginate,
    retry_after_seconds,
)

from .conftest import ProviderStub, RecordingSleep, Reply

SECRET = "sk-admin-not-a-real-key-9f8e7d"


def make_client(base_url: str, sleep: RecordingSleep, **options: float) -> HttpClient:
    return HttpClient(
        base_url,
        {"Authorization": f"Bearer {SECRET}"},
        timeout=5,
        sleep=sleep,
        jitter=lambda: 1.0,  # the full backoff, so the waits are predictable
        **options,
    )


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "Fri, 20 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1.5s", "x-ratelimit-reset-requests": "20ms"}, 1.5),
        ({"anthropic-ratelimit-requests-reset": "2026-11-20T12:00:12Z"}, 12.0),
        ({"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "45"}, 45.0),
        (
            {"Retry-After": "3", "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "9"},
            9.0,
        ),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_standard_and_provider_headers(headers, expected):
    assert retry_after_seconds(headers, now=NOW) == expected


def test_500_then_success_is_retried_with_exponential_backoff(provider: ProviderStub, sleep):
    provider.reply(
        "GET",
        "/v1/thing",
        Reply(500, b"boom"),
        Reply(502, b"bad gateway"),
        Reply(200, b'{"ok": true}'),
    )
    client = make_client(provider.base_url, sleep, backoff_base=0.5)
    assert client.get_json("v1/thing", {"a": 1}) == {"ok": True}
    assert sleep.waits == [0.5, 1.0]
    assert [r.query for r in provider.requests] == [{"a": ["1"]}] * 3


def test_429_waits_as_long_as_retry_after_says(provider: ProviderStub, sleep):
    provider.reply(
        "GET",
        "/v1/thing",
        Reply(429, b'{"error": "rate limited"}', {"Retry-After": "17"}),
        Reply(200, b"[1, 2]"),
    )
    assert make_client(provider.base_url, sleep).get_json("v1/thing") == [1, 2]
    assert sleep.waits == [17.0]


def test_429_asking_for_too_long_a_wait_fails_instead_of_hanging(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/thing", Reply(429, b"", {"Retry-After": "3600"}))
    with pytest.raises(HttpError) as error:
        make_client(provider.base_url, sleep, max_retry_after=300).get_json("v1/thing")
    assert error.value.status == 429
    assert sleep.waits == []


def test_client_errors_are_not_retried(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/thing", Reply(401, b'{"error": "invalid x-api-key"}'))
    with pytest.raises(HttpError) as error:
        make_client(provider.base_url, sleep).get_json("v1/thing")
    assert error.value.status == 401
    assert "invalid x-api-key" in str(error.value)
    assert len(provider.requests) == 1 and sleep.waits == []


def test_retries_give_up_after_max_attempts(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/thing", *[Reply(503, b"down")] * 3)
    with pytest.raises(HttpError, match="gave up after 3 attempts"):
        make_client(provider.base_url, sleep, max_attempts=3, backoff_base=1).get_json("v1/thing")
    assert sleep.waits == [1.0, 2.0]


def test_connection_refused_is_retried_then_reported(sleep):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens here
    client = make_client(f"http://127.0.0.1:{port}", sleep, max_attempts=2, backoff_base=0.25)
    with pytest.raises(HttpError) as error:
        client.get_json("v1/thing")
    assert error.value.status is None
    assert sleep.waits == [0.25]


def test_requests_carry_user_agent_and_json_body(provider: ProviderStub, sleep):
    provider.reply("POST", "/q", Reply(200, b"{}"))
    make_client(provider.base_url, sleep).post_json("q", {"type": "ActualCost"}, {"v": "1"})
    request = provider.requests[0]
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"type": "ActualCost"}


def test_credentials_never_appear_in_errors_or_repr(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/thing", Reply(403, b"forbidden"))
    client = make_client(provider.base_url, sleep)
    with pytest.raises(HttpError) as error:
        client.get_json("v1/thing", {"page": "tok"})
    assert SECRET not in str(error.value) and SECRET not in repr(client)
    assert "page=tok" not in str(error.value)  # query strings stay out of messages


def test_absolute_links_must_stay_on_the_configured_host(sleep):
    client = make_client("https://management.azure.com", sleep)
    with pytest.raises(HttpError, match="leaves the configured base_url"):
        client.url_for("https://attacker.example/steal?token=1")
    assert client.url_for("https://management.azure.com/x?skip=1").endswith("/x?skip=1")


@pytest.fixture
def other_origin() -> Iterator[ProviderStub]:
    """A second server: another port of 127.0.0.1 is another origin."""
    stub = ProviderStub()
    try:
        yield stub
    finally:
        stub.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_carries_no_credentials(
    provider: ProviderStub, other_origin: ProviderStub, sleep, status
):
    provider.reply(
        "GET", "/v1/usage", Reply(status, b"", {"Location": other_origin.base_url + "/x"})
    )
    other_origin.reply("GET", "/x", Reply(200, b'{"data": []}'))
    client = HttpClient(
        provider.base_url,
        {"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET, "anthropic-version": "1"},
        sleep=sleep,
    )
    assert client.get_json("v1/usage") == {"data": []}
    assert provider.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    followed = other_origin.requests[0].headers
    assert not {"authorization", "x-api-key", "anthropic-version"} & set(followed)
    assert SECRET not in str(followed)
    assert followed["user-agent"] == USER_AGENT


def test_a_redirect_within_the_origin_keeps_the_credentials(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/old", Reply(302, b"", {"Location": "/v1/new"}))
    provider.reply("GET", "/v1/new", Reply(200, b"{}"))
    make_client(provider.base_url, sleep).get_json("v1/old")
    assert provider.requests[1].headers["authorization"] == f"Bearer {SECRET}"


def test_invalid_json_is_an_error(provider: ProviderStub, sleep):
    provider.reply("GET", "/v1/thing", Reply(200, b"<html>maintenance</html>"))
    with pytest.raises(HttpError, match="invalid JSON"):
        make_client(provider.base_url, sleep).get_json("v1/thing")


def test_paginate_follows_tokens_and_refuses_loops():
    pages = {None: {"n": 1, "next": "a"}, "a": {"n": 2, "next": "b"}, "b": {"n": 3}}
    got = list(paginate(lambda token: pages[token], lambda page: page.get("next")))
    assert [page["n"] for page in got] == [1, 2, 3]

    looping = {None: {"next": "a"}, "a": {"next": "a"}}
    with pytest.raises(HttpError, match="repeated"):
        list(paginate(lambda token: looping[token], lambda page: page.get("next")))
