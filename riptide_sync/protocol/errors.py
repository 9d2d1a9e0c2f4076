"""Error responses into exceptions: pure, shared by the HTTP and WebSocket transports.

An error status (an HTTP response, or a rejected WebSocket handshake) becomes an
:class:`~riptide_sync.exceptions.APIError` subclass::

    401, 403   -> AuthenticationError   (never retried)
    404        -> NotFoundError
    429, 503   -> RateLimitError        (.retry_after from retry-after-ms / Retry-After)
    other 5xx  -> ServerError
    other      -> APIError

Every error body shape the server sends is read (docs/protocol.md §6): ``{"error": "..."}``
(with or without ``message``), ``{"error": {"type", "message", ...}}``, plain text (axum's
400/415/422), an SSE or NDJSON error body on a 500 (§2.1, §3), and an empty body (408).
No clock is read here: callers pass ``now`` for the HTTP-date form of ``Retry-After``.

The two error boundaries (``_http/errors.py``, ``_ws/errors.py``) also share the walker of
their mapping tables: :class:`Rule` rows, most specific first, read by :func:`map_by_table`
and :func:`translated`; an exception no row names (ours, or a bug) is left as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import email.utils
import html
import http.client
import json
import math
import re
import urllib.parse
from typing import Any, Callable, Generic, Iterator, Mapping, Optional, Sequence, TypeVar

from ..exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    RipTideError,
    ServerError,
)
from .ndjson import error_fields
from .sse import SSEDecoder

__all__ = [
    "MAX_RETRY_AFTER",
    "MAX_ERROR_BODY",
    "parse_retry_after",
    "retry_after_from",
    "api_error",
    "refused_message",
    "foreign_excerpt",
    "redact_secret",
    "Rule",
    "map_by_table",
    "translated",
    "caused_by",
]

MAX_RETRY_AFTER = 3600.0
"""Sanity cap on a parsed ``Retry-After``, in seconds. The retry policy applies its own,
lower ceiling (``RetryPolicy.max_retry_after``); this one only keeps absurd values finite."""

MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error response body read and kept, at most."""

_FOREIGN_EXCERPT = 120
"""Characters of a body that is not a RipTide error (an HTML 404 page...) kept in the
message; the whole body stays in ``APIError.body``."""


def refused_message(url: str) -> str:
    """The message of a refused connection: plain, naming where nothing answers."""
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url
    return f"nothing answers at {origin} (connection refused): is the server running?"


def foreign_excerpt(text: str) -> str:
    """A short, one-line excerpt of a body that is not a RipTide error: an HTML page's
    title (else its text without tags), whitespace collapsed, at most 120 characters."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title is not None and title.group(1).strip():
        text = title.group(1)
    elif "<" in text:
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(html.unescape(text).split())
    return text if len(text) <= _FOREIGN_EXCERPT else text[: _FOREIGN_EXCERPT - 3] + "..."


def parse_retry_after(value: str | None, *, now: datetime.datetime) -> float | None:
    """Parse a ``Retry-After`` header value into seconds to wait (RFC 9110 §10.2.3).

    Args:
        value: delta-seconds (``"60"``; a decimal is tolerated) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current time, for the HTTP-date form (timezone-aware).

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
    seconds = (when - now).total_seconds()
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
    headers: Mapping[str, str], body: Any = None, *, now: datetime.datetime
) -> float | None:
    """Seconds to wait that a 429/503 response asks for, or None.

    ``retry-after-ms`` wins when valid (the precise form, as openai reads it), then
    ``Retry-After``, then the auth lockout body's ``retry_after_seconds`` (docs/protocol.md §7.2).
    ``headers`` must answer lower-case names (requests' case-insensitive headers do;
    websocket-client lower-cases them).
    """
    seconds = _parse_retry_after_ms(headers.get("retry-after-ms"))
    if seconds is None:
        seconds = parse_retry_after(headers.get("retry-after"), now=now)
    if seconds is None and isinstance(body, dict):
        fallback = body.get("retry_after_seconds")
        if isinstance(fallback, (int, float)) and not isinstance(fallback, bool):
            seconds = parse_retry_after(str(fallback), now=now)
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
        return text, None, foreign_excerpt(text)
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
            return text, None, foreign_excerpt(text)
    if isinstance(obj, dict):
        error_type, message = error_fields(obj)
        return obj, error_type, message
    return obj, None, foreign_excerpt(text)


def api_error(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    reason: str | None = None,
    now: datetime.datetime,
) -> APIError:
    """Build the exception for an error response (status >= 400, or any unexpected status).

    Args:
        status_code: the HTTP status.
        headers: the response headers, answering lower-case names.
        body: the raw body (at most :data:`MAX_ERROR_BODY` bytes are looked at).
        reason: the status line's reason phrase, used when the body has no message.
        now: the current time, for an HTTP-date ``Retry-After``.

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


def _redacted(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {key: _redacted(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secret) for item in value]
    return value


def redact_secret(error: APIError, secret: str | None) -> APIError:
    """``error`` with every occurrence of ``secret`` (the API key) in its message and body
    replaced by ``***``: a server may echo the key it refused. Returns the same object."""
    if secret:
        error.message = error.message.replace(secret, "***")
        error.args = tuple(_redacted(arg, secret) for arg in error.args)
        error.body = _redacted(error.body, secret)
    return error


_Where = TypeVar("_Where")


@dataclasses.dataclass(frozen=True)
class Rule(Generic[_Where]):
    """One row of an exception mapping table.

    An exception that is an instance of one of ``types``, and for which ``when`` holds
    (None: always), becomes ``make(exc, where)``; ``where`` is what the boundary knows of
    the operation (the action, the URL...), named in the message.
    """

    types: tuple[type[BaseException], ...]
    make: Callable[[Any, _Where], RipTideError]
    when: Optional[Callable[[Any, _Where], bool]] = None


def map_by_table(
    table: Sequence[Rule[_Where]], exc: BaseException, where: _Where
) -> RipTideError | None:
    """The exception of the first row of ``table`` that matches ``exc``, or None when no
    row does: then ``exc`` is not a foreign failure (a bug, say) and must stay itself.

    Our own exceptions are never mapped again, even though some of them are also builtin
    ``ConnectionError`` / ``TimeoutError`` (so ``OSError``) and would match a row.
    """
    if isinstance(exc, RipTideError):
        return None
    for rule in table:
        if isinstance(exc, rule.types) and (rule.when is None or rule.when(exc, where)):
            return rule.make(exc, where)
    return None


@contextlib.contextmanager
def translated(table: Sequence[Rule[_Where]], where: _Where) -> Iterator[None]:
    """Run a block, re-raising an exception that a row of ``table`` maps as ours, chained
    with ``from``; any other exception (ours, or a programming error) passes unchanged."""
    try:
        yield
    except Exception as exc:
        mapped = map_by_table(table, exc, where)
        if mapped is None:
            raise
        raise mapped from exc


def caused_by(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc``, or any exception under it, is one of ``kinds``.

    "Under" follows ``__cause__``, ``__context__``, a ``reason`` attribute and exceptions
    among ``args``: requests wraps a refused connection as ``ConnectionError(MaxRetryError(
    reason=NewConnectionError(...)))``, chained with ``from``, and a failed certificate
    check as deep.
    """
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kinds):
            return True
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False
