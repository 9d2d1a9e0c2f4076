"""Where HTTP failures become riptide_sync exceptions: the one translation boundary.

Two kinds of failure:

- **An error status** (the server answered): :func:`api_error` turns status, headers and
  body into an :class:`~riptide_sync.exceptions.APIError` subclass, by the pure rules of
  :mod:`riptide_sync.protocol.errors` (shared with the WebSocket handshake).

- **No usable answer** (requests / urllib3 / socket exceptions): :func:`translate_errors`
  maps them, most specific first, chained with ``from``::

      connect or read timeout             -> StreamTimeoutError
      refused, reset, DNS, TLS, chunked
      encoding / protocol errors, EOF     -> StreamConnectionError
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import socket
import ssl
from typing import Iterator, Mapping

import requests
import urllib3.exceptions

from ..exceptions import (
    TLSVerificationError,
    APIError,
    RipTideError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
)
from ..protocol import errors as protocol_errors
from ..protocol.errors import (
    MAX_ERROR_BODY,
    MAX_RETRY_AFTER,
    parse_retry_after,
    redact_secret,
    refused_message,
    retry_after_from,
)

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


def api_error(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes = b"",
    *,
    reason: str | None = None,
    now: datetime.datetime | None = None,
) -> APIError:
    """:func:`riptide_sync.protocol.errors.api_error` at the current time (or ``now``)."""
    return protocol_errors.api_error(
        status_code, headers, body, reason=reason, now=now or _utcnow()
    )


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


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
    error = api_error(response.status_code, response.headers, body, reason=response.reason)
    request = getattr(response, "request", None)
    secret = request.headers.get("X-API-Key") if request is not None else None
    raise redact_secret(error, secret if isinstance(secret, str) else None)


def _refused(exc: BaseException) -> bool:
    """True when a ConnectionRefusedError is somewhere under ``exc`` (requests wraps it in
    urllib3's MaxRetryError -> NewConnectionError, chained with ``from``)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return True
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


def map_exception(
    exc: BaseException, action: str, url: str | None = None
) -> StreamingError | None:
    """Translate a requests / urllib3 / socket exception; None when it is not one of them.

    Most specific first: timeouts (connect and read) before connection errors, because
    requests' ``ConnectTimeout`` is also a ``ConnectionError`` and the builtin
    ``TimeoutError`` (and, on Python 3.9, ``socket.timeout``) is also an ``OSError``. A
    refused connection to ``url`` says so plainly ("nothing answers at http://host:port
    (connection refused): ...").
    """
    if isinstance(exc, RipTideError):
        return None
    if _certificate_failure(exc):
        return TLSVerificationError(f"{action}: TLS certificate verification failed ({exc})")
    if isinstance(exc, requests.exceptions.InvalidSchema) and "socks" in str(exc).lower():
        return StreamConnectionError(f"{action}: a SOCKS proxy needs PySocks; pip install 'riptide-sync[socks]'")
    if url is not None and isinstance(exc, (requests.exceptions.ConnectionError, OSError)) \
            and _refused(exc):
        return StreamConnectionError(refused_message(url))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return StreamTimeoutError(f"{action}: connect timed out ({exc})")
    # socket.timeout and the builtin TimeoutError are one class from Python 3.10 on; on 3.9
    # they are two (socket.timeout is a bare OSError subclass), so both are named.
    if isinstance(
        exc,
        (
            requests.exceptions.Timeout,
            urllib3.exceptions.TimeoutError,
            socket.timeout,
            TimeoutError,
        ),
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


def _certificate_failure(exc: BaseException) -> bool:
    """Whether a requests/urllib3 error is, underneath, a failed certificate check."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        todo += [e for e in (current.__cause__, current.__context__, getattr(current, "reason", None))
                 if isinstance(e, BaseException)]
        todo += [a for a in current.args if isinstance(a, BaseException)]
    return False


@contextlib.contextmanager
def translate_errors(action: str, url: str | None = None) -> Iterator[None]:
    """Re-raise foreign I/O exceptions inside the block as ours, chained with ``from``.

    Args:
        action: what was being done, for the message (``"POST http://.../crawl"``).
        url: the URL being reached, named when the connection is refused.

    Raises:
        StreamTimeoutError, StreamConnectionError: see :func:`map_exception`. Anything
        else (ours, or a programming error) passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        mapped = map_exception(exc, action, url)
        if mapped is None:
            raise
        raise mapped from exc
