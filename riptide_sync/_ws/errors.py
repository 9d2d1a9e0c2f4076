"""The one place where foreign exceptions of the WebSocket transport become ours.

websocket-client, ``socket`` and ``ssl`` exceptions, and the frame parser's
:class:`~riptide_sync._ws.frames.FrameError`, are translated here, most specific first::

    WebSocketBadStatusException               -> APIError subclass by status, as for
                                                 HTTP (riptide_sync.protocol.errors)
    MessageTooBig                             -> ProtocolViolationError (close 1009)
    FrameError with code 1007 (not UTF-8)     -> StreamConnectionError (resumable)
    FrameError, bad handshake headers         -> ProtocolViolationError
    timeouts (socket, websocket-client)       -> StreamTimeoutError
    DNS, refused, reset, TLS, proxy, EOF      -> StreamConnectionError

Callers raise the result ``from`` the original (or set ``__cause__`` when the exception
crosses from the reader thread), so ``__cause__`` always holds what really happened.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
from typing import Any, Iterator

import websocket

from ..exceptions import (
    TLSVerificationError,
    APIError,
    ProtocolViolationError,
    RipTideError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
)
from ..protocol.errors import api_error, refused_message
from .frames import CloseCode, FrameError, explain_close

__all__ = ["map_exception", "translate", "status_error"]

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
        if exc.code == CloseCode.INVALID_DATA:
            # A text message that is not UTF-8 (RFC 6455 §8.1): the connection is closed
            # with 1007, and the request can be resumed on another one.
            lost = StreamConnectionError(
                f"{url}: {exc}; closed the connection with code {explain_close(exc.code)}"
            )
            lost.close_code = exc.code  # type: ignore[attr-defined]
            return lost
        error = ProtocolViolationError(f"{url}: {exc}")
        error.close_code = exc.code  # type: ignore[attr-defined]
        return error
    if isinstance(exc, (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError)):
        return StreamTimeoutError(f"timed out {during} {url}")
    if isinstance(exc, (websocket.WebSocketAddressException, socket.gaierror)):
        return StreamConnectionError(f"cannot resolve the host of {url}: {_reason(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return StreamConnectionError(refused_message(url))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSVerificationError(f"TLS certificate verification failed {during} {url}: {_reason(exc)}")
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return StreamConnectionError(f"TLS failed {during} {url}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketProxyException):
        return StreamConnectionError(f"proxy failed {during} {url}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return StreamConnectionError(f"connection to {url} closed {during}")
    if isinstance(exc, (OSError, EOFError)):
        return StreamConnectionError(f"connection to {url} failed {during}: {_reason(exc)}")
    if isinstance(exc, websocket.WebSocketException) and "socks" in str(exc).lower():
        # websocket-client without python-socks: "Python Socks is needed for SOCKS proxying".
        return StreamConnectionError(f"cannot use a SOCKS proxy for {url}: python-socks is not installed; "
                                     "pip install 'riptide-sync[socks]'")
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


def status_error(
    status: int,
    headers: dict[str, Any],
    body: bytes | None,
    url: str,
    *,
    now: datetime.datetime | None = None,
) -> APIError:
    """The APIError subclass for a rejected handshake (docs/protocol.md §1.1, §6), by the same
    rules as an HTTP error response (:mod:`riptide_sync.protocol.errors`).

    ``headers`` keys are lower case (websocket-client lower-cases them); ``now`` is the
    current time for an HTTP-date ``Retry-After`` (None: the clock).
    """
    return api_error(
        status,
        headers,
        body or b"",
        reason=f"the server refused the WebSocket handshake on {url}",
        now=now or datetime.datetime.now(datetime.timezone.utc),
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."
