"""The HTTP surface (aiohttp): ingest, health, readiness and metrics.

POST /v1/ingest answers, with a JSON body {"accepted", "rejected": [{index, field, reason}],
"stored"}:
  200  every record stored in the database      207  some records rejected, the rest stored
  202  every record stored in the on-disk spool  422  every record rejected (nothing stored)
  400  the body is not JSON / not a batch        401  missing or wrong bearer token
  413  body or batch too large                   415  not JSON or NDJSON
  500  the database refused the rows (the reason is in the server's log)
  503  nothing stored, resend later (Retry-After): database down and the spool full or not
       writable, or the writer restarting after a failure
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from dataclasses import dataclass

import orjson
from aiohttp import web

from cost_monitor.exposition import TEXT_CONTENT_TYPE
from cost_monitor.metrics import Metrics
from cost_monitor.pricing import PriceCatalog, price_records
from cost_monitor.records import BodyError, IngestLimits, ParsedBatch, parse_body
from cost_monitor.sink import Acknowledged, NotStored, Outcome, Refused, Sink

log = logging.getLogger(__name__)
# application/octet-stream is what aiohttp reports when a client sends no Content-Type.
JSON_TYPES = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/json-seq",
        "application/octet-stream",
        "text/plain",
    }
)


@dataclass
class Services:
    sink: Sink
    catalog: PriceCatalog
    metrics: Metrics
    limits: IngestLimits
    tokens: frozenset[str] | None  # None: authentication disabled (never an empty set)
    max_body_bytes: int
    retry_after_seconds: int


SERVICES = web.AppKey("services", Services)


def build_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=services.max_body_bytes)
    app[SERVICES] = services
    app.router.add_post("/v1/ingest", ingest)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    return app


def _json(status: int, body: dict, services: Services, **headers: str) -> web.Response:
    services.metrics.http_responses.labels(str(status)).inc()
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _authorized(request: web.Request, tokens: frozenset[str] | None) -> bool:
    if tokens is None:
        return True
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    candidate = presented.strip().encode()
    # Compare against every token so timing does not reveal which prefix matched.
    return sum(hmac.compare_digest(candidate, token.encode()) for token in tokens) > 0


async def ingest(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if not _authorized(request, services.tokens):
        services.metrics.http_responses.labels("401").inc()
        return web.Response(
            status=401,
            body=orjson.dumps({"error": "missing or invalid bearer token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="cost-monitor"'},
        )
    content_type = request.content_type.lower()
    if content_type not in JSON_TYPES:
        return _reject_body(
            services, 415, f"unsupported content type {content_type!r}", "wrong_type"
        )
    if request.content_length is not None and request.content_length > services.max_body_bytes:
        return _reject_body(services, 413, "body too large", "body_too_large")
    refusing = services.sink.refusing()
    if refusing:
        return _unavailable(services, refusing)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _reject_body(services, 413, "body too large", "body_too_large")
    try:
        parsed = parse_body(body, content_type, services.limits)
    except BodyError as error:
        status = 413 if error.code == "batch_too_large" else 400
        return _reject_body(services, status, error.reason, error.code)
    if parsed.rejections:
        services.metrics.count_rejections(Counter(r.code for r in parsed.rejections))
    if not parsed.records:
        status = 422 if parsed.rejections else 200
        return _json(status, _summary(parsed, None), services)
    price_records(services.catalog, parsed.records)
    try:
        acknowledged = await asyncio.wrap_future(services.sink.submit(parsed.records))
    except NotStored as error:
        return _unavailable(services, error.reason)
    except Refused:
        return _json(
            500, {"error": "the database refused the batch; the reason is logged"}, services
        )
    services.metrics.record_batch(acknowledged.stored)
    if parsed.rejections:
        log.info(
            "ingest rejected %d of %d records",
            len(parsed.rejections),
            parsed.received,
            extra={"first_rejection": parsed.rejections[0].as_dict()},
        )
        status = 207
    else:
        status = 200 if acknowledged.outcome is Outcome.STORED else 202
    return _json(status, _summary(parsed, acknowledged), services)


def _summary(parsed: ParsedBatch, acknowledged: Acknowledged | None) -> dict:
    return {
        "accepted": len(parsed.records),
        "rejected": [r.as_dict() for r in parsed.rejections],
        "stored": acknowledged.outcome.value if acknowledged else None,
    }


def _reject_body(services: Services, status: int, reason: str, code: str) -> web.Response:
    services.metrics.count_rejections({code: 1})
    body = {"accepted": 0, "rejected": [{"index": None, "field": None, "reason": reason}]}
    return _json(status, body, services)


def _unavailable(services: Services, reason: str) -> web.Response:
    return _json(
        503,
        {"error": reason},
        services,
        **{"Retry-After": str(services.retry_after_seconds)},
    )


async def health(request: web.Request) -> web.Response:
    """Alive while the writer runs (503 while it waits to be restarted after a failure)."""
    alive, state = request.app[SERVICES].sink.health()
    return web.json_response(state, status=200 if alive else 503)


async def ready(request: web.Request) -> web.Response:
    """Ready while a batch would be acknowledged: database up, or room in the spool."""
    ready, state = request.app[SERVICES].sink.readiness()
    return web.json_response(state, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    output = request.app[SERVICES].metrics.render()
    return web.Response(body=output, headers={"Content-Type": TEXT_CONTENT_TYPE})
