"""The local server's middleware (rate limit, auth, request checks, payload limit,
compression) and what every HTTP surface shares: the app's state key, JSON and text
responses, and the compression choice.

Middleware order follows docs/protocol.md §0.2: rate limit, then auth, then request validation,
then the handler (so 429 comes before 401, and 401 before 405/415/400); compression is the
outermost layer. ``app.py`` installs them in that order.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.web import ContentCoding

from . import wire
from .state import ServerState

STATE = web.AppKey("state", ServerState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CRAWL_PATHS = frozenset({"/crawl", "/api/v1/crawl", "/crawl/stream", "/api/v1/crawl/stream", "/crawl/sse",
                         "/crawl/ws"})
_PUBLIC_PREFIXES = ("/health", "/metrics", "/api/v1/health", "/api/v1/metrics", "/api/health/detailed",
                    "/demo")
_SUSPICIOUS_QUERY = ("union", "select", "drop", "--", "<script", "../", "..\\")


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
    already prepared (NDJSON) enable it themselves, see :func:`riptide_sync.server.httpstreams._stream_response`."""
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


def text_response(status: int, text: str) -> web.Response:
    """A plain-text response, as axum's rejections are."""
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
