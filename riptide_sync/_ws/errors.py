"""The one place where foreign exceptions of the WebSocket transport become ours.

websocket-client, ``socket`` and ``ssl`` exceptions, and the frame parser's
:class:`~riptide_sync._ws.frames.FrameError`, are translated here, most specific first::

    WebSocketBadStatusException 401/403       -> AuthenticationError
                                429/503       -> RateLimitError (.retry_after)
                                404           -> NotFoundError
                                other 5xx     -> ServerError
                                anything else -> APIError
    MessageTooBig                             -> ProtocolViolationError (close 1009)
    FrameError, bad handshake headers         -> ProtocolViolationError
    timeouts (socket, websocket-client)       -> StreamTimeoutError
    DNS, refused, reset, TLS, proxy, EOF      -> StreamConnectionError

Callers raise the result ``from`` the original (or set ``__cause__`` when the exception
crosses from the reader thread), so ``__cause__`` always holds what really happened.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import ssl
import time
from typing import Any, Iterator

import websocket

from ..exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitError,
    RipTideError,
    ServerError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
)
from .frames import FrameError

__all__ = ["map_exception", "translate", "parse_retry_after", "status_error"]

_BODY_EXCERPT = 500


def map_exception(exc: BaseException, *, url: str, during: str) -> RipTideError:
    """Return the riptide_sync exception that stands for ``exc``; never raises.

    Args:
        exc: the exception caught.
        url: the WebSocket URL, named in messages.
        during: what was going on, e.g. ``"connecting"``, ``"reading"``, ``"sending"``.
    """
    if isinstance(exc, RipTideError):
        return exc
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return status_error(exc.status_code, exc.resp_headers or {}, exc.resp_body, url)
    if isinstance(exc, FrameError):
        error = ProtocolViolationError(f"{url}: {exc}")
        error.close_code = exc.code  # type: ignore[attr-defined]
        return error
    if isinstance(exc, (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError)):
        return StreamTimeoutError(f"timed out {during} {url}")
    if isinstance(exc, (websocket.WebSocketAddressException, socket.gaierror)):
        return StreamConnectionError(f"cannot resolve the host of {url}: {_reason(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return StreamConnectionError(f"connection refused by {url}")
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return StreamConnectionError(f"TLS failed {during} {url}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketProxyException):
        return StreamConnectionError(f"proxy failed {during} {url}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return StreamConnectionError(f"connection to {url} closed {during}")
    if isinstance(exc, (OSError, EOFError)):
        return StreamConnectionError(f"connection to {url} failed {during}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketException):
        # Bad upgrade headers, redirect loops, bad handshake lines: not a WebSocket server.
        return ProtocolViolationError(f"{url} broke the WebSocket handshake: {_reason(exc)}")
    return StreamingError(f"unexpected {type(exc).__name__} {during} {url}: {exc}")


@contextlib.contextmanager
def translate(*, url: str, during: str) -> Iterator[None]:
    """Run a block, re-raising any foreign exception as ours, chained with ``from``."""
    try:
        yield
    except RipTideError:
        raise
    except Exception as exc:
        raise map_exception(exc, url=url, during=during) from exc


def status_error(status: int, headers: dict[str, Any], body: bytes | None, url: str) -> APIError:
    """The APIError subclass for a rejected handshake (PROTOCOL.md §1.1, §6).

    ``headers`` keys are lower case (websocket-client lower-cases them).
    """
    decoded: Any = None
    message = ""
    error_type = None
    if body:
        text = body.decode("utf-8", "replace")
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = text
            message = text.strip()[:_BODY_EXCERPT]
        if isinstance(decoded, dict):
            err = decoded.get("error", decoded.get("message"))
            if isinstance(err, dict):
                message = str(err.get("message") or err)
                error_type = err.get("type") or err.get("error_type")
            elif err is not None:
                message = str(err)
            else:
                message = text[:_BODY_EXCERPT]
    if not message:
        message = f"the server refused the WebSocket handshake on {url}"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "error_type": error_type if isinstance(error_type, str) else None,
        "request_id": headers.get("x-request-id"),
        "body": decoded,
    }
    if status in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status in (429, 503):
        return RateLimitError(message, retry_after=parse_retry_after(headers), **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return APIError(message, **kwargs)


def parse_retry_after(headers: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or HTTP date).

    Returns None when neither header is present or readable; never negative.
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."
