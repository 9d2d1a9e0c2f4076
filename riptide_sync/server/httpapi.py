"""HTTP surfaces: middleware (rate limit, auth, request checks), health, batch, NDJSON, SSE.

Middleware order follows docs/protocol.md §0.2: rate limit, then auth, then request validation,
then the handler (so 429 comes before 401, and 401 before 405/415/400).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import sys
import threading
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.web import ContentCoding

from . import wire
from .cache import cache_key
from .crawler import Outcome, result_for
from .state import Backpressure, FaultRunner, ServerState, StreamStopped, drain_then_abort, wait_until_gone

if sys.version_info >= (3, 10):
    from contextlib import aclosing
else:  # Python 3.9: the same, by hand

    @contextlib.asynccontextmanager
    async def aclosing(thing: Any) -> AsyncIterator[Any]:
        try:
            yield thing
        finally:
            await thing.aclose()
from .synthetic import SyntheticMessages

logger = logging.getLogger("riptide_sync.server")

STATE = web.AppKey("state", ServerState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CRAWL_PATHS = frozenset({"/crawl", "/api/v1/crawl", "/crawl/stream", "/api/v1/crawl/stream", "/crawl/sse",
                         "/crawl/ws"})
_PUBLIC_PREFIXES = ("/health", "/metrics", "/api/v1/health", "/api/v1/metrics", "/api/health/detailed",
                    "/demo")
_SUSPICIOUS_QUERY = ("union", "select", "drop", "--", "<script", "../", "..\\")
_FLUSH_BYTES = 64 * 1024


_MIN_COMPRESSED = 32
"""tower-http's default predicate leaves bodies under 32 bytes alone."""


def compression_for(request: web.Request) -> ContentCoding | None:
    """The coding the real server's compression layer would pick for this client (§0.2):
    gzip, else deflate, when ``Accept-Encoding`` allows it (``q=0`` refuses); else None."""
    if not request.app[STATE].config.compression:
        return None
    accepted: dict[str, float] = {}
    for item in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip().replace(" ", "")
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name:
            accepted[name.strip().lower()] = q
    for coding in (ContentCoding.gzip, ContentCoding.deflate):
        if accepted.get(coding.value, accepted.get("*", 0.0)) > 0:
            return coding
    return None


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost layer (§0.2): compress whole responses (batch, /healthz, errors) for a
    client that accepts it; SSE, images and tiny bodies are exempt. Streams that are
    already prepared (NDJSON) enable it themselves, see :func:`_stream_response`."""
    response = await handler(request)
    if isinstance(response, web.Response) and not response.prepared and response.body is not None:
        content_type = response.content_type or ""
        size = len(response.body) if isinstance(response.body, (bytes, bytearray)) else 0
        if size >= _MIN_COMPRESSED and content_type != "text/event-stream" and not content_type.startswith("image/"):
            coding = compression_for(request)
            if coding is not None:
                response.enable_compression(coding)
    return response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response in struct order."""
    return web.Response(body=wire.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


# --- middleware -------------------------------------------------------------------------

def _client_identity(request: web.Request) -> str:
    """§7.3: X-Client-ID, else X-API-Key, else X-Forwarded-For's first entry, else X-Real-IP."""
    headers = request.headers
    for name in ("X-Client-ID", "X-API-Key"):
        if headers.get(name):
            return f"{name}:{headers[name]}"
    if headers.get("X-Forwarded-For"):
        return "ip:" + headers["X-Forwarded-For"].split(",")[0].strip()
    if headers.get("X-Real-IP"):
        return "ip:" + headers["X-Real-IP"]
    return "global"


PAYLOAD_LIMIT = 50 * 1024 * 1024
"""The outermost payload layer's limit on ``Content-Length`` (§6.4), in bytes."""

VALIDATION_PAYLOAD_LIMIT = 10 * 1024 * 1024
"""The request-validation layer's limit on ``Content-Length`` (§6.4), in bytes."""


@web.middleware
async def payload_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The payload layer (§0.2, outside rate limit and auth): ``Content-Length`` over 50 MiB
    gets 413 with its own flat body (§6.4), before any of the body is read."""
    length = request.content_length
    if length is not None and length > PAYLOAD_LIMIT:
        response = json_response({"error": "PayloadTooLarge",
                                  "message": f"Request payload too large: {length} bytes "
                                             f"(max {PAYLOAD_LIMIT} bytes)",
                                  "max_size_bytes": PAYLOAD_LIMIT, "received_bytes": length}, status=413)
        response.force_close()  # the body is never read: the connection cannot be reused
        return response
    return await handler(request)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The ``reject_first`` fault, then the optional per-client fixed-window limit (§7.3)."""
    state = request.app[STATE]
    state.counters.http_requests += 1
    path = request.path
    if path.startswith("/demo"):
        return await handler(request)
    if path in CRAWL_PATHS and state.reject_crawl():
        retry = state.config.faults.retry_after
        return json_response(wire.api_error("rate_limited", "Rate limit exceeded: Resource limit exceeded: "
                                            "too many requests (fault scenario)", 429),
                             status=429, headers={"Retry-After": str(retry)})
    limit = state.config.rate_limit
    if limit is not None:
        window = state.config.rate_limit_window
        now = time.monotonic()
        key = _client_identity(request)
        start, count = state.rate_buckets.get(key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        state.rate_buckets[key] = (start, count)
        if count > limit:
            retry_after = max(1, int(round(start + window - now)))
            message = f"Rate limit exceeded: Resource limit exceeded: {limit} requests per {window:g}s"
            return json_response(wire.api_error("rate_limited", message, 429), status=429,
                                 headers={"Retry-After": str(retry_after)})
    return await handler(request)


def _unauthorized(message: str) -> web.Response:
    return json_response({"error": "Unauthorized", "message": message}, status=401,
                         headers={"WWW-Authenticate": "Bearer"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API keys (§7.2): ``X-API-Key`` first, then ``Authorization: Bearer``; public paths skip."""
    state = request.app[STATE]
    keys = state.config.api_keys
    if not keys or request.path.startswith(_PUBLIC_PREFIXES):
        return await handler(request)
    lockout = state.config.auth_lockout_attempts
    ip = _lockout_identity(request)
    now = time.monotonic()
    if lockout is not None:
        blocked_until = state.auth_blocked_until.get(ip, 0.0)
        if now < blocked_until:
            # §7.2: checked before the key is looked at, so even a valid key is refused.
            retry_after = max(1, int(blocked_until - now + 0.999))
            return json_response({"error": "Too Many Requests",
                                  "message": "Too many failed authentication attempts. "
                                             "Please try again later.",
                                  "retry_after_seconds": retry_after},
                                 status=429, headers={"Retry-After": str(retry_after)})
    key = request.headers.get("X-API-Key")
    if key is None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            key = auth[len("Bearer "):]
    if key is None:
        _record_auth_failure(state, ip, now)
        return _unauthorized("Missing API key")
    if not any(hmac.compare_digest(key.encode(), k.encode()) for k in keys):
        _record_auth_failure(state, ip, now)
        return _unauthorized("Invalid API key")
    state.auth_failures.pop(ip, None)  # a successful login clears the IP's failures (§7.2)
    return await handler(request)


def _lockout_identity(request: web.Request) -> str:
    """The client IP of the auth lockout (§7.2): the first X-Forwarded-For entry, then
    X-Real-IP; without them every client shares the bucket "unknown"."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return request.headers.get("X-Real-IP") or "unknown"


def _record_auth_failure(state: ServerState, ip: str, now: float) -> None:
    limit = state.config.auth_lockout_attempts
    if limit is None:
        return
    window = state.config.auth_lockout_window
    recent = [t for t in state.auth_failures.get(ip, []) if now - t < window] + [now]
    state.auth_failures[ip] = recent
    if len(recent) >= limit:
        state.auth_blocked_until[ip] = now + 2 ** min(len(recent), 10)


def _allowed_methods(path: str) -> tuple[str, ...] | None:
    """Method rules by path prefix (§6.4); None when no rule applies."""
    if path == "/crawl/ws":
        return ("GET",)
    if path.startswith(("/crawl", "/api/v1/crawl", "/deepsearch")):
        return ("POST",)
    if path.startswith(("/health", "/metrics")):
        return ("GET", "HEAD")
    return None


@web.middleware
async def validation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request checks of §6.4: methods, Content-Type, header values, query patterns, 404."""
    allowed = _allowed_methods(request.path)
    if allowed is not None and request.method not in allowed:
        listed = ", ".join(allowed)
        body = {"error": {"type": "method_not_allowed",
                          "message": f"Validation error: HTTP method not allowed. Allowed methods: {listed}",
                          "retryable": False, "status": 405, "allowed_methods": list(allowed)}}
        return json_response(body, status=405, headers={"Allow": listed})
    length = request.content_length
    if length is not None and length > VALIDATION_PAYLOAD_LIMIT:
        # §6.4: the validation layer's ApiError-shaped 413 (the message text is ours: the
        # protocol notes do not quote it).
        body = {"error": {"type": "payload_too_large",
                          "message": f"Payload too large: {length} bytes exceeds the maximum of "
                                     f"{VALIDATION_PAYLOAD_LIMIT} bytes",
                          "retryable": False, "status": 413,
                          "max_size_bytes": VALIDATION_PAYLOAD_LIMIT, "received_bytes": length}}
        response = json_response(body, status=413)
        response.force_close()  # the body is never read: the connection cannot be reused
        return response
    content_type = request.headers.get("Content-Type")
    if request.method in ("POST", "PUT", "PATCH") and content_type is not None:
        lowered = content_type.lower()
        if not lowered.startswith(("application/json", "multipart/form-data")):
            body = {"error": {"type": "unsupported_media_type",
                              "message": f"Validation error: Unsupported Content-Type: {content_type}. "
                                         "Expected application/json or multipart/form-data",
                              "retryable": False, "status": 415, "received_content_type": content_type,
                              "supported_types": ["application/json", "multipart/form-data"]}}
            return json_response(body, status=415)
    api_key = request.headers.get("X-API-Key")
    if api_key is not None and (not api_key or len(api_key) > 128 or any(c.isspace() for c in api_key)):
        return json_response(wire.api_error("invalid_header_value",
                                            "Invalid header value: X-API-Key has an invalid format", 400), 400)
    if len(request.headers.get("Authorization", "")) > 256:
        return json_response(wire.api_error("invalid_header_value",
                                            "Invalid header value: Authorization header too long", 400), 400)
    query = request.query_string.lower()
    if query and any(p in query for p in _SUSPICIOUS_QUERY):
        return json_response(wire.api_error("invalid_parameter",
                                            "Invalid parameter: query string contains a suspicious pattern", 400),
                             400)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return json_response(wire.api_error("not_found", "Resource not found: endpoint", 404), status=404)
    except web.HTTPMethodNotAllowed as exc:
        listed = ", ".join(sorted(exc.allowed_methods))
        body = {"error": {"type": "method_not_allowed",
                          "message": f"Validation error: HTTP method not allowed. Allowed methods: {listed}",
                          "retryable": False, "status": 405, "allowed_methods": sorted(exc.allowed_methods)}}
        return json_response(body, status=405, headers={"Allow": listed})


# --- request body -----------------------------------------------------------------------

class _Rejected(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


async def read_crawl_body(request: web.Request) -> wire.CrawlRequest:
    """Extract a CrawlBody the way axum's ``Json`` extractor does (§6.4).

    Raises:
        _Rejected: 415, 400, 413 or 422 with axum's plain-text bodies.
    """
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        raise _Rejected(_text(415, "Expected request with `Content-Type: application/json`"))
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Rejected(_text(413, "Failed to buffer the request body: length limit exceeded")) from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Rejected(_text(400, f"Failed to parse the request body as JSON: {exc}")) from None
    try:
        return wire.parse_crawl_body(body)
    except wire.BodyShapeError as exc:
        raise _Rejected(_text(422, f"Failed to deserialize the JSON body into the target type: {exc}")) from None


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

async def _validated_body(
    request: web.Request, transport: str
) -> tuple[wire.CrawlRequest, int, wire.ValidationFailure | None]:
    """Read the body, number the request, run §6.1 validation and log the request.

    Returns:
        ``(request body, connection id, the validation failure or None)``.

    Raises:
        _Rejected: the framework's 415/400/413/422 (§6.4), before validation.
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
        req, connection, failure = await _validated_body(request, "batch")
    except _Rejected as exc:
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


# --- NDJSON -----------------------------------------------------------------------------

class _LineWriter:
    """Buffers NDJSON lines or SSE events into large chunked writes; applies faults."""

    def __init__(self, request: web.Request, response: web.StreamResponse, faults: FaultRunner,
                 backpressure: Backpressure) -> None:
        self.request = request
        self.response = response
        self.faults = faults
        self.bp = backpressure
        self.buffer: list[bytes] = []
        self.size = 0
        self.lines = 0

    async def put(self, data: bytes, *, droppable: bool = True) -> bool:
        """Queue one line/event; False if the backpressure scenario dropped it."""
        if droppable and self.bp.drop_enabled and self.bp.should_drop():
            self.bp.dropped += 1
            return False
        cut = self.faults.cut_at
        if cut is not None and self.lines == cut:
            self.buffer.append(data[: len(data) // 2])
            await self.flush()
            await self.response.write_eof()
            raise StreamStopped("cut")
        if self.faults.delay > 0:
            await self.flush()
            await self.faults.pause()
        self.buffer.append(data)
        self.size += len(data)
        self.lines += 1
        if self.size >= _FLUSH_BYTES or self.faults.delay > 0:
            await self.flush()
        return True

    async def flush(self) -> None:
        """Write what is buffered as one chunk."""
        if not self.buffer:
            return
        data = b"".join(self.buffer)
        self.buffer.clear()
        self.size = 0
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise StreamStopped("client gone")
        started = time.perf_counter()
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError) as exc:
            raise StreamStopped("client gone") from exc
        self.bp.record(time.perf_counter() - started)

    async def after_result(self, malformed: bytes, state: ServerState) -> None:
        """Apply the fault due after a sent result, if any."""
        action = self.faults.after_result()
        if action is None:
            return
        if action == "malformed":
            self.buffer.append(malformed)
            self.lines += 1
            return
        await self.flush()
        if action == "drop":
            await drain_then_abort(self.request.transport)
            raise StreamStopped("drop")
        await wait_until_gone(self.request.transport, state)  # freeze
        raise StreamStopped("freeze")


async def _stream_response(request: web.Request, content_type: str, extra: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={
        "Content-Type": content_type, "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*", **extra})
    response.enable_chunked_encoding()
    coding = compression_for(request) if content_type != "text/event-stream" else None
    if coding is not None:
        # §2.2: NDJSON is compressed for a client that accepts it; the compressor holds
        # lines back until its buffer fills or the body ends (hence Accept-Encoding:
        # identity in streaming clients).
        response.enable_compression(coding)
    await response.prepare(request)
    return response


async def ndjson_crawl(request: web.Request) -> web.StreamResponse:
    """``POST /crawl/stream`` (§2, variant A): count checks only, untagged lines."""
    state = request.app[STATE]
    try:
        req = await read_crawl_body(request)
    except _Rejected as exc:
        return exc.response
    connection = state.next_connection_id()
    limit = max(1000, state.config.max_urls_per_request)
    error = None
    if not req.urls:
        error = "urls list cannot be empty"
    elif len(req.urls) > limit:
        error = f"urls list cannot exceed {limit} items"
    state.log_request("ndjson", req.urls, req.options, error is None, connection)
    if error is not None:
        return json_response({"error": error}, status=400)
    request_id = wire.new_id()
    response = await _stream_response(request, "application/x-ndjson", {"X-Request-ID": request_id})
    state.counters.streams_open += 1
    faults = FaultRunner(state, "ndjson")
    out = _LineWriter(request, response, faults,
                      Backpressure(state.config.faults.backpressure_drop, state.config.faults.slow_send_threshold))
    try:
        await _ndjson_body(state, req, request_id, out)
        await out.flush()
        await response.write_eof()
    except StreamStopped:
        pass
    finally:
        state.counters.streams_open -= 1
    return response


async def _ndjson_body(state: ServerState, req: wire.CrawlRequest, request_id: str, out: _LineWriter) -> None:
    total = len(req.urls)
    started_wall, started = wire.now_rfc3339(), time.perf_counter()
    epoch0 = time.time()
    await out.put(wire.dumps({"total_urls": total, "request_id": request_id, "timestamp": started_wall,
                              "stream_type": "crawl"}) + b"\n", droppable=False)
    size = state.config.synthetic_doc_size
    synthetic = SyntheticMessages(size, req.cache_mode, total) if size is not None else None
    source = _synthetic_items(req) if synthetic else outcomes(state, req, state.config.stream_concurrency)
    async with aclosing(source):
        completed, successful, cached = await _ndjson_results(
            state, req, out, source, synthetic, started, started_wall, epoch0)
    if state.config.faults.drop_summary_first and state.drop_summary():
        return
    await out.put(wire.dumps({
        "total_urls": total, "successful": successful, "failed": completed - successful,
        "from_cache": cached, "total_processing_time_ms": int((time.perf_counter() - started) * 1000),
        "cache_hit_rate": cached / total}) + b"\n", droppable=False)


async def _ndjson_results(state: ServerState, req: wire.CrawlRequest, out: _LineWriter, source: Any,
                          synthetic: SyntheticMessages | None, started: float, started_wall: str,
                          epoch0: float) -> tuple[int, int, int]:
    total = len(req.urls)
    malformed = b'{"index":0,"result":{"url":\n'
    completed = successful = cached = 0
    async for item in source:
        index, outcome = item
        completed += 1
        if synthetic is not None:
            successful += 1
            url = req.urls[index]
            line = synthetic.ndjson.fill(synthetic.values(index, completed, url))
            if completed % 256 == 0:
                await asyncio.sleep(0)
        else:
            url = outcome.url
            successful += outcome.ok
            cached += outcome.from_cache
            line = wire.dumps({"index": index, "result": result_for(outcome, "ndjson"), "progress": {
                "completed": completed, "total": total, "success_rate": successful / completed}}) + b"\n"
        if state.config.faults.drop_results_for and state.drop_result(url):
            continue
        # §2.5: when a result line is dropped, the progress line after it is skipped too.
        if not await out.put(line):
            continue
        if total > 10 and completed % 5 == 0:
            elapsed = time.perf_counter() - started
            # At 100% the real server sends the current time, not null.
            eta = wire.rfc3339_at(epoch0 + elapsed / completed * total) if completed < total \
                else wire.now_rfc3339()
            await out.put(wire.dumps({
                "operation_id": "crawl_stream", "operation_type": "batch_crawl", "started_at": started_wall,
                "current_phase": "processing", "progress_percentage": completed * 100.0 / total,
                "items_completed": completed, "items_total": total, "estimated_completion": eta,
                "current_item": url}) + b"\n", droppable=False)
        if out.faults.active:
            await out.after_result(malformed, state)
        if synthetic is None:
            await out.flush()
    return completed, successful, cached


async def _synthetic_items(req: wire.CrawlRequest) -> Any:
    for index in range(len(req.urls)):
        yield index, None


# --- SSE --------------------------------------------------------------------------------

def sse_event(name: str, data: bytes, *, event_id: int | None = None, retry: int | None = None) -> bytes:
    """Encode one event as axum does: no space after the colon (§3)."""
    out = b"event:" + name.encode() + b"\ndata:" + data + b"\n"
    if event_id is not None:
        out += b"id:" + str(event_id).encode() + b"\n"
    if retry is not None:
        out += b"retry:" + str(retry).encode() + b"\n"
    return out + b"\n"


async def sse_crawl(request: web.Request) -> web.StreamResponse:
    """``POST /crawl/sse`` (§3): named events, shared ids, heartbeats, ``complete``."""
    state = request.app[STATE]
    try:
        req, connection, failure = await _validated_body(request, "sse")
    except _Rejected as exc:
        return exc.response
    if failure is not None:
        # §3 [quirk]: HTTP 500, and the type is always validation_error.
        body = b"event: error\ndata: " + wire.dumps({"error": {"type": "validation_error",
                                                               "message": failure.message,
                                                               "retryable": False}}) + b"\n\n"
        return web.Response(status=500, body=body, headers={"Content-Type": "text/event-stream",
                                                             "Cache-Control": "no-cache"})
    response = await _stream_response(request, "text/event-stream", {})
    state.counters.streams_open += 1
    faults = FaultRunner(state, "sse")
    out = _LineWriter(request, response, faults,
                      Backpressure(state.config.faults.backpressure_drop, state.config.faults.slow_send_threshold))
    try:
        await _sse_body(state, req, out)
        await out.flush()
        await response.write_eof()
    except StreamStopped:
        pass
    finally:
        state.counters.streams_open -= 1
    return response


async def _sse_body(state: ServerState, req: wire.CrawlRequest, out: _LineWriter) -> None:
    total = len(req.urls)
    started = time.perf_counter()
    epoch0 = time.time()
    await out.put(sse_event("metadata", wire.dumps({
        "total_urls": total, "request_id": wire.new_id(), "timestamp": wire.now_rfc3339(),
        "stream_type": "crawl", "retry_interval_ms": 5000}), retry=5000))
    await out.flush()
    size = state.config.synthetic_doc_size
    synthetic = SyntheticMessages(size, req.cache_mode, total) if size is not None else None
    keepalive = state.config.sse_keepalive
    source = _synthetic_items(req) if synthetic else outcomes(state, req, state.config.stream_concurrency, keepalive)
    async with aclosing(source):
        completed, successful, cached = await _sse_results(state, req, out, source, synthetic, started, epoch0)
    if state.config.faults.drop_summary_first and state.drop_summary():
        return
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    await out.put(sse_event("complete", wire.dumps({
        "total_urls": total, "successful": successful, "failed": completed - successful, "from_cache": cached,
        "total_processing_time_ms": elapsed_ms, "cache_hit_rate": cached / total,
        "average_processing_time_ms": float(elapsed_ms) / successful if successful else 0.0}), retry=5000))


async def _sse_results(state: ServerState, req: wire.CrawlRequest, out: _LineWriter, source: Any,
                       synthetic: SyntheticMessages | None, started: float, epoch0: float) -> tuple[int, int, int]:
    total = len(req.urls)
    completed = successful = cached = 0
    async for item in source:
        if item is None:
            # §3: a comment whose text is ":heartbeat" after keep_alive seconds without events.
            await out.put(b"::heartbeat\n\n", droppable=False)
            await out.flush()
            continue
        index, outcome = item
        completed += 1
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        if synthetic is not None:
            successful += 1
            url = req.urls[index]
            values = synthetic.values(index, completed, url)
            values["elapsed"] = str(elapsed_ms).encode()
            result_event = synthetic.sse.fill(values)
            if completed % 256 == 0:
                await asyncio.sleep(0)
        else:
            url = outcome.url
            successful += outcome.ok
            cached += outcome.from_cache
            result_event = sse_event("result", wire.dumps({
                "index": index, "result": result_for(outcome, "sse"), "processing_time_ms": elapsed_ms}),
                event_id=index)
        if state.config.faults.drop_results_for and state.drop_result(url):
            continue
        await out.put(sse_event("progress", wire.dumps({
            "completed": completed, "total": total, "success_rate": successful / completed,
            "cache_hit_rate": cached / successful if successful else 0.0}), event_id=index))
        await out.put(result_event)
        if total > 20 and completed % 10 == 0:
            elapsed = time.perf_counter() - started
            # At 100% the real server sends the current time, not null.
            eta = wire.rfc3339_at(epoch0 + elapsed / completed * total) if completed < total \
                else wire.now_rfc3339()
            await out.put(sse_event("status", wire.dumps({
                "phase": "processing", "items_processed": completed, "items_remaining": total - completed,
                "estimated_completion": eta,
                "throughput_per_minute": completed / max(elapsed, 1e-6) * 60.0})))
        if out.faults.active:
            await out.after_result(b"event:result\ndata:{\"index\":\n\n", state)
        if synthetic is None:
            await out.flush()
    return completed, successful, cached
