"""Where HTTP failures become riptide_sync exceptions: the one translation boundary.

Two kinds of failure:

- **An error status** (the server answered): :func:`api_error` turns status, headers and
  body into an :class:`~riptide_sync.exceptions.APIError` subclass::

      401, 403   -> AuthenticationError   (never retried)
      404        -> NotFoundError
      429, 503   -> RateLimitError        (.retry_after from Retry-After / retry-after-ms)
      other 5xx  -> ServerError
      other      -> APIError

  Every error body shape the server sends is read (PROTOCOL.md §6): ``{"error": "..."}``
  (with or without ``message``), ``{"error": {"type", "message", ...}}``, plain text (axum's
  400/415/422), an SSE or NDJSON error body on a 500 (§2.1, §3), and an empty body (408).

- **No usable answer** (requests / urllib3 / socket exceptions): :func:`translate_errors`
  maps them, most specific first, chained with ``from``::

      connect or read timeout             -> StreamTimeoutError
      refused, reset, DNS, TLS, chunked
      encoding / protocol errors, EOF     -> StreamConnectionError
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import json
import math
import socket
from typing import Any, Iterator, Mapping

import requests
import urllib3.exceptions

from ..exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    RipTideError,
    ServerError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
)
from ..protocol.ndjson import error_fields
from ..protocol.sse import SSEDecoder

__all__ = [
    "MAX_RETRY_AFTER",
    "MAX_ERROR_BODY",
    "parse_retry_after",
    "retry_after_from",
    "api_error",
    "raise_for_response",
    "map_exception",
    "translate_errors",
]

MAX_RETRY_AFTER = 3600.0
"""Sanity cap on a parsed ``Retry-After``, in seconds. The retry policy applies its own,
lower ceiling (``RetryPolicy.max_retry_after``); this one only keeps absurd values finite."""

MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error response body read and kept, at most."""

_MESSAGE_EXCERPT = 500


def parse_retry_after(
    value: str | None, *, now: datetime.datetime | None = None
) -> float | None:
    """Parse a ``Retry-After`` header value into seconds to wait (RFC 9110 §10.2.3).

    Args:
        value: delta-seconds (``"60"``; a decimal is tolerated) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current time for the HTTP-date form (tests freeze it); None: the clock.

    Returns:
        Seconds, capped at :data:`MAX_RETRY_AFTER`; a date in the past gives 0.0. None for
        a missing, empty, negative, non-finite or unparseable value.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return min(seconds, MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = now or datetime.datetime.now(datetime.timezone.utc)
    seconds = (when - current).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _parse_retry_after_ms(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        millis = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(millis) or millis < 0:
        return None
    return min(millis / 1000.0, MAX_RETRY_AFTER)


def retry_after_from(
    headers: Mapping[str, str], body: Any = None, *, now: datetime.datetime | None = None
) -> float | None:
    """Seconds to wait that a 429/503 response asks for, or None.

    ``retry-after-ms`` wins when valid (the precise form, as openai reads it), then
    ``Retry-After``, then the auth lockout body's ``retry_after_seconds`` (PROTOCOL.md §7.2).
    ``headers`` must be case-insensitive (requests' headers are).
    """
    seconds = _parse_retry_after_ms(headers.get("retry-after-ms"))
    if seconds is None:
        seconds = parse_retry_after(headers.get("retry-after"), now=now)
    if seconds is None and isinstance(body, dict):
        fallback = body.get("retry_after_seconds")
        if isinstance(fallback, (int, float)) and not isinstance(fallback, bool):
            seconds = parse_retry_after(str(fallback))
    return seconds


def _decode_body(body: bytes, content_type: str) -> tuple[Any, str | None, str | None]:
    """Return ``(decoded body, error_type, message)`` from any error body shape."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None, None, None
    if "event-stream" in content_type or text.startswith(("event:", "data:")):
        # SSE 500 body (§3): event: error / data: {"error": {...}}.
        decoder = SSEDecoder()
        for sse in decoder.feed(body + b"\n\n"):
            try:
                obj = json.loads(sse.data)
            except ValueError:
                continue
            error_type, message = error_fields(obj)
            if error_type is not None or message is not None:
                return obj, error_type, message
        return text, None, text[:_MESSAGE_EXCERPT]
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        # NDJSON 500 body (§2.1) has one line; a longer body may have more.
        first = text.split("\n", 1)[0].strip()
        try:
            obj = json.loads(first) if first != text else None
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            return text, None, text[:_MESSAGE_EXCERPT]
    if isinstance(obj, dict):
        error_type, message = error_fields(obj)
        return obj, error_type, message
    return obj, None, text[:_MESSAGE_EXCERPT]


def api_error(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    reason: str | None = None,
    now: datetime.datetime | None = None,
) -> APIError:
    """Build the exception for an error response (status >= 400, or any unexpected status).

    Args:
        status_code: the HTTP status.
        headers: the response headers, case-insensitive (``requests`` headers).
        body: the raw body (at most :data:`MAX_ERROR_BODY` bytes are looked at).
        reason: the status line's reason phrase, used when the body has no message.
        now: the current time for an HTTP-date ``Retry-After`` (tests freeze it).

    Returns:
        The :class:`~riptide_sync.exceptions.APIError` subclass for the status, carrying
        ``status_code``, the server's ``message`` and ``error_type``, ``request_id`` (the
        ``X-Request-ID`` header) and ``body`` (decoded JSON when it was JSON, else text).
    """
    decoded, error_type, message = _decode_body(
        body[:MAX_ERROR_BODY], headers.get("content-type") or ""
    )
    if not message:
        message = reason or http.client.responses.get(status_code) or f"HTTP {status_code}"
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "error_type": error_type,
        "request_id": headers.get("x-request-id"),
        "body": decoded,
    }
    if status_code in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status_code == 404:
        return NotFoundError(message, **kwargs)
    if status_code in (429, 503):
        return RateLimitError(message, retry_after=retry_after_from(headers, decoded, now=now), **kwargs)
    if status_code >= 500:
        return ServerError(message, **kwargs)
    return APIError(message, **kwargs)


def raise_for_response(response: requests.Response) -> None:
    """Raise the :func:`api_error` of ``response`` (any status); reads at most
    :data:`MAX_ERROR_BODY` bytes of the body and closes the response.

    Raises:
        APIError subclasses: always, for the response's status.
        StreamConnectionError, StreamTimeoutError: the error body could not be read.
    """
    try:
        with translate_errors(f"reading the error body of {response.url}"):
            if response.raw is not None and not getattr(response, "_content_consumed", True):
                body = response.raw.read(MAX_ERROR_BODY, decode_content=True) or b""
            else:
                body = response.content or b""
    finally:
        response.close()
    raise api_error(response.status_code, response.headers, body, reason=response.reason)


def map_exception(exc: BaseException, action: str) -> StreamingError | None:
    """Translate a requests / urllib3 / socket exception; None when it is not one of them.

    Most specific first: timeouts (connect and read) before connection errors, because
    requests' ``ConnectTimeout`` is also a ``ConnectionError`` and the builtin
    ``TimeoutError`` is also an ``OSError``.
    """
    if isinstance(exc, RipTideError):
        return None
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return StreamTimeoutError(f"{action}: connect timed out ({exc})")
    if isinstance(
        exc,
        (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, socket.timeout),
    ):
        return StreamTimeoutError(f"{action}: read timed out ({exc})")
    if isinstance(
        exc,
        (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ),
    ):
        return StreamConnectionError(f"{action}: connection failed ({exc})")
    return None


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise foreign I/O exceptions inside the block as ours, chained with ``from``.

    Args:
        action: what was being done, for the message (``"POST http://.../crawl"``).

    Raises:
        StreamTimeoutError, StreamConnectionError: see :func:`map_exception`. Anything
        else (ours, or a programming error) passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        mapped = map_exception(exc, action)
        if mapped is None:
            raise
        raise mapped from exc
