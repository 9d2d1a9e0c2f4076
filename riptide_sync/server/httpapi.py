"""The local server's HTTP surfaces that answer whole: the crawl body as axum reads it, health
and metrics, and batch ``POST /crawl``; also the outcome source every crawl surface reads
(NDJSON and SSE in ``httpstreams.py``, WebSocket in ``ws.py``).

The middleware is in ``middleware.py``; ``STATE`` is re-exported here for ``ws.py`` and
``runner.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from typing import Any, AsyncIterator

import orjson
from aiohttp import web

from . import wire
from .cache import cache_key
from .crawler import Outcome, result_for
from .middleware import STATE, json_response, text_response
from .state import ServerState

if sys.version_info >= (3, 10):
    from contextlib import aclosing
else:  # Python 3.9: the same, by hand

    @contextlib.asynccontextmanager
    async def aclosing(thing: Any) -> AsyncIterator[Any]:
        try:
            yield thing
        finally:
            await thing.aclose()

__all__ = ["STATE", "Rejected", "read_crawl_body", "validated_body", "healthz", "metrics",
           "outcomes", "synthetic_outcome", "batch_crawl", "aclosing"]

logger = logging.getLogger("riptide_sync.server")

# --- request body -----------------------------------------------------------------------

class Rejected(Exception):
    """The framework refused the request body before any handler ran; ``response`` says so."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


async def read_crawl_body(request: web.Request) -> wire.CrawlRequest:
    """Extract a CrawlBody the way axum's ``Json`` extractor does (§6.4).

    Raises:
        Rejected: 415, 400, 413 or 422 with axum's plain-text bodies.
    """
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        raise Rejected(text_response(415, "Expected request with `Content-Type: application/json`"))
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(text_response(413, "Failed to buffer the request body: length limit exceeded")) from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(text_response(400, f"Failed to parse the request body as JSON: {exc}")) from None
    try:
        return wire.parse_crawl_body(body)
    except wire.BodyShapeError as exc:
        raise Rejected(text_response(422, f"Failed to deserialize the JSON body into the target type: {exc}")) from None


# --- health -----------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz`` (§7.1): always healthy; the metrics are this process's own."""
    state = request.app[STATE]
    now = wire.now_rfc3339()
    ok = {"status": "healthy", "message": None, "response_time_ms": None, "last_check": now}
    uptime = int(time.time() - state.started)
    try:
        import resource
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except ImportError:  # pragma: no cover - not on Linux
        memory = 0
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0, 0.0, 0.0]
    total = state.counters.http_requests
    return json_response({
        "status": "healthy", "version": "0.9.0", "timestamp": now, "uptime": uptime,
        "dependencies": {
            "redis": dict(ok), "extractor": dict(ok), "http_client": dict(ok),
            "headless_service": None, "spider_engine": None,
            "worker_service": dict(ok, message="Worker service operational"),
        },
        "metrics": {
            "memory_usage_bytes": memory, "active_connections": state.counters.ws_open + state.counters.streams_open,
            "total_requests": total, "requests_per_second": float(total) / max(uptime, 1),
            "avg_response_time_ms": 0.0, "cpu_usage_percent": 0.0, "disk_usage_bytes": None,
            "file_descriptor_count": None, "thread_count": threading.active_count(),
            "load_average": [float(x) for x in load],
        },
    })


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: a few Prometheus counters."""
    c = request.app[STATE].counters
    text = (f"riptide_http_requests_total {c.http_requests}\nriptide_ws_connections_open {c.ws_open}\n"
            f"riptide_crawls_total {c.crawls}\n")
    return web.Response(text=text, content_type="text/plain")


# --- outcomes (real or synthetic) -----------------------------------------------------

async def outcomes(state: ServerState, req: wire.CrawlRequest, concurrency: int,
                   idle: float | None = None) -> Any:
    """Yield ``(index, outcome)`` in completion order; ``None`` after ``idle`` quiet seconds."""
    job = state.crawler.start_many(req.urls, req.cache_mode, concurrency, req.skip_extraction)
    try:
        for _ in req.urls:
            item = await job.next(idle)
            while item is None:
                yield None
                item = await job.next(idle)
            yield item
    finally:
        await job.cancel()


def synthetic_outcome(url: str, template: dict[str, Any], cache_mode: str) -> Outcome:
    """A synthetic success for batch (streams use pre-serialized templates instead)."""
    document = dict(template["document"], url=url)
    result = dict(template, url=url, document=document, cache_key=cache_key(cache_mode, url))
    return Outcome(url, result, None, 0)


# --- batch ------------------------------------------------------------------------------

async def validated_body(
    request: web.Request, transport: str
) -> tuple[wire.CrawlRequest, int, wire.ValidationFailure | None]:
    """Read the body, number the request, run §6.1 validation and log the request.

    Returns:
        ``(request body, connection id, the validation failure or None)``.

    Raises:
        Rejected: the framework's 415/400/413/422 (§6.4), before validation.
    """
    state = request.app[STATE]
    req = await read_crawl_body(request)
    connection = state.next_connection_id()
    failure = None
    try:
        wire.validate_crawl_request(req.urls, max_urls=state.config.max_urls_per_request,
                                    allow_private=state.config.private_allowed)
    except wire.ValidationFailure as exc:
        failure = exc
    state.log_request(transport, req.urls, req.options, failure is None, connection)
    return req, connection, failure


async def batch_crawl(request: web.Request) -> web.Response:
    """``POST /crawl`` (§4): the enhanced pipeline by default (``ServerConfig.batch_pipeline``),
    else the standard one (origin status, extracted documents); request order, statistics."""
    state = request.app[STATE]
    try:
        req, connection, failure = await validated_body(request, "batch")
    except Rejected as exc:
        return exc.response
    if failure is not None:
        return json_response(wire.api_error(failure.kind, failure.message, 400), status=400)
    started = time.perf_counter()
    enhanced = state.config.batch_pipeline == "enhanced" and state.config.synthetic_doc_size is None
    try:
        if enhanced:
            results = await asyncio.wait_for(_enhanced_results(state, req), state.config.response_timeout)
        else:
            found = await asyncio.wait_for(_batch_outcomes(state, req), state.config.response_timeout)
    except asyncio.TimeoutError:
        return web.Response(status=408)  # §0.2: the 30 s timeout layer answers 408, empty body.
    if enhanced:
        # §4: every entry counts as successful, even a fetch failure (gate "unknown").
        successful, cached = len(results), 0
    else:
        results = [result_for(found[i], "batch") for i in range(len(req.urls))]
        ok = [o for o in found.values() if o.ok]
        successful, cached = len(ok), sum(1 for o in ok if o.from_cache)
    gates = {"raw": 0, "probes_first": 0, "headless": 0, "cached": 0}
    for r in results:
        if r["gate_decision"] in gates:
            gates[r["gate_decision"]] += 1
    times = [r["processing_time_ms"] for r in results if r["error"] is None]
    total = len(req.urls)
    return json_response({
        "total_urls": total, "successful": successful, "failed": total - successful, "from_cache": cached,
        "results": results,
        "statistics": {
            "total_processing_time_ms": int((time.perf_counter() - started) * 1000),
            "avg_processing_time_ms": float(sum(times) / len(times)) if times else 0.0,
            "gate_decisions": gates, "cache_hit_rate": cached / total,
        },
    })


async def _enhanced_results(state: ServerState, req: wire.CrawlRequest) -> list[dict[str, Any]]:
    """The enhanced pipeline's entries in request order, ``options.concurrency`` at once."""
    semaphore = asyncio.Semaphore(max(req.concurrency, 0))

    async def one(url: str) -> dict[str, Any]:
        async with semaphore:
            return await state.crawler.crawl_enhanced(url)

    return list(await asyncio.gather(*(one(u) for u in req.urls)))


async def _batch_outcomes(state: ServerState, req: wire.CrawlRequest) -> dict[int, Outcome]:
    size = state.config.synthetic_doc_size
    if size is not None:
        from .synthetic import synthetic_result
        template = synthetic_result(size, req.cache_mode)
        return {i: synthetic_outcome(u, template, req.cache_mode) for i, u in enumerate(req.urls)}
    found: dict[int, Outcome] = {}
    async with aclosing(outcomes(state, req, req.concurrency)) as source:
        async for item in source:
            index, outcome = item
            found[index] = outcome
    return found
