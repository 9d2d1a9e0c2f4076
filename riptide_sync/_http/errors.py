"""Where HTTP failures become riptide_sync exceptions: the one translation boundary.

Two kinds of failure:

- **An error status** (the server answered): :func:`raise_for_response` reads the body and
  raises the :func:`api_error` of the response: the pure rules of
  :func:`riptide_sync.protocol.errors.api_error` at the current time. This :func:`api_error`
  is the one place that reads the clock for them, and the WebSocket handshake's refusal
  (``_ws/errors.py``) uses it too.

- **No usable answer** (requests / urllib3 / http.client / OS exceptions):
  :func:`translate_errors` maps them by one table, most specific first, chained with
  ``from``::

      certificate verification failed     -> TLSVerificationError
      SOCKS proxy without PySocks         -> StreamConnectionError
      refused (when the URL is known)     -> StreamConnectionError "nothing answers at ..."
      connect timeout                     -> StreamTimeoutError "connect timed out"
      read timeout                        -> StreamTimeoutError "read timed out"
      reset, DNS, TLS, chunked encoding,
      protocol errors, EOF, other OSError -> StreamConnectionError "connection failed"

  Anything else (our own exceptions, a ``TypeError`` or ``AttributeError`` from a bug)
  passes through unchanged: bugs stay bugs.
"""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
from typing import ContextManager, Mapping, NamedTuple, Optional

import requests
import urllib3.exceptions

from ..exceptions import (
    TLSVerificationError,
    APIError,
    RipTideError,
    StreamConnectionError,
    StreamTimeoutError,
)
from ..protocol import errors as protocol_errors
from ..protocol.errors import (
    MAX_ERROR_BODY,
    Rule,
    caused_by,
    map_by_table,
    redact_secret,
    refused_message,
    translated,
)

__all__ = [
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
    """:func:`riptide_sync.protocol.errors.api_error` at the current time (or ``now``): the
    one wrapper of it, for HTTP error responses and refused WebSocket handshakes alike.

    ``now`` is the time an HTTP-date ``Retry-After`` is measured from (None: the clock).
    """
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


class _Where(NamedTuple):
    """What :func:`map_exception` knows of the failed operation, for the message."""

    action: str
    """What was being done (``"POST http://.../crawl"``)."""
    url: Optional[str]
    """The URL being reached, named when the connection is refused; None: not known."""


_FOREIGN = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)
"""Everything requests, urllib3, http.client and the OS raise; only these are mapped."""

# socket.timeout and the builtin TimeoutError are one class from Python 3.10 on; on 3.9
# they are two (socket.timeout is a bare OSError subclass), so both are named.
_TIMEOUTS = (
    requests.exceptions.Timeout,
    urllib3.exceptions.TimeoutError,
    socket.timeout,
    TimeoutError,
)

_TABLE: tuple[Rule[_Where], ...] = (
    # A failed certificate check hides anywhere under requests' SSLError / ConnectionError.
    Rule(_FOREIGN, lambda exc, w: TLSVerificationError(
        f"{w.action}: TLS certificate verification failed ({exc})"),
        when=lambda exc, w: caused_by(exc, ssl.SSLCertVerificationError)),
    Rule((requests.exceptions.InvalidSchema,), lambda exc, w: StreamConnectionError(
        f"{w.action}: a SOCKS proxy needs PySocks; pip install 'riptide-sync[socks]'"),
        when=lambda exc, w: "socks" in str(exc).lower()),
    # Refused (under MaxRetryError -> NewConnectionError): say plainly that nothing answers.
    Rule((requests.exceptions.ConnectionError, OSError),
         lambda exc, w: StreamConnectionError(refused_message(w.url or "")),  # `when` saw a URL
         when=lambda exc, w: w.url is not None and caused_by(exc, ConnectionRefusedError)),
    # Timeouts before connection errors: ConnectTimeout is also a ConnectionError, and
    # TimeoutError (and socket.timeout) also an OSError.
    Rule((requests.exceptions.ConnectTimeout,),
         lambda exc, w: StreamTimeoutError(f"{w.action}: connect timed out ({exc})")),
    Rule(_TIMEOUTS, lambda exc, w: StreamTimeoutError(f"{w.action}: read timed out ({exc})")),
    Rule(_FOREIGN, lambda exc, w: StreamConnectionError(f"{w.action}: connection failed ({exc})")),
)
"""requests / urllib3 / http.client / OS exceptions -> ours, most specific first."""


def map_exception(
    exc: BaseException, action: str, url: str | None = None
) -> RipTideError | None:
    """Translate a requests / urllib3 / socket exception by the table above; None when it
    is not one of them (ours, or a programming error: it stays itself).

    Args:
        exc: the exception caught.
        action: what was being done, for the message (``"POST http://.../crawl"``).
        url: the URL being reached, named when the connection is refused (None: the
            refusal reads as any failed connection).
    """
    return map_by_table(_TABLE, exc, _Where(action, url))


def translate_errors(action: str, url: str | None = None) -> ContextManager[None]:
    """Re-raise foreign I/O exceptions inside the block as ours, chained with ``from``.

    Args:
        action: what was being done, for the message (``"POST http://.../crawl"``).
        url: the URL being reached, named when the connection is refused.

    Raises:
        StreamTimeoutError, StreamConnectionError: see :func:`map_exception`. Anything
        else (ours, or a programming error) passes through unchanged.
    """
    return translated(_TABLE, _Where(action, url))
