"""The one place where foreign exceptions of the WebSocket transport become ours.

websocket-client, ``socket``, ``ssl`` and OS exceptions, and the frame parser's
:class:`~riptide_sync._ws.frames.FrameError`, are translated by one table, most specific
first::

    WebSocketBadStatusException               -> APIError subclass by status, as for
                                                 HTTP (riptide_sync._http.errors.api_error)
    MessageTooBig                             -> ProtocolViolationError (close 1009)
    FrameError with code 1007 (not UTF-8)     -> StreamConnectionError (resumable)
    other FrameError                          -> ProtocolViolationError
    timeouts (socket, websocket-client)       -> StreamTimeoutError
    DNS                                       -> StreamConnectionError "cannot resolve"
    refused                                   -> StreamConnectionError "nothing answers at"
    certificate verification failed           -> TLSVerificationError
    other TLS, proxy, closed, reset, EOF      -> StreamConnectionError
    SOCKS proxy without python-socks          -> StreamConnectionError
    other WebSocketException (bad handshake)  -> ProtocolViolationError

Anything else (our own exceptions, a ``TypeError`` or ``AttributeError`` from a bug) is not
mapped: :func:`translate` lets it through unchanged, and :func:`for_consumer` hands it to
the consumer's thread as it is. Bugs stay bugs.

Callers raise the result ``from`` the original (:func:`translate`), or
:func:`for_consumer` sets ``__cause__`` when the exception crosses from the reader thread,
so ``__cause__`` always holds what really happened.
"""

from __future__ import annotations

import socket
import ssl
from typing import ContextManager, NamedTuple

import websocket

from .._http.errors import api_error
from ..exceptions import (
    TLSVerificationError,
    ProtocolViolationError,
    RipTideError,
    StreamConnectionError,
    StreamTimeoutError,
)
from ..protocol.errors import Rule, map_by_table, refused_message, translated
from .codes import CloseCode, explain_close
from .frames import FrameError

__all__ = ["map_exception", "translate", "for_consumer"]

_BODY_EXCERPT = 500
"""Characters of a foreign exception's text kept in a message, at most."""


class _Where(NamedTuple):
    """What :func:`map_exception` knows of the failed operation, for the message."""

    url: str
    """The WebSocket URL."""
    during: str
    """What was going on: ``"connecting to"``, ``"reading from"``, ``"sending to"``."""


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."


def _refused_handshake(exc: websocket.WebSocketBadStatusException, w: _Where) -> RipTideError:
    """A refused handshake (docs/protocol.md §1.1, §6): the same rules as an HTTP error
    response; websocket-client lower-cases the header names."""
    return api_error(
        exc.status_code,
        exc.resp_headers or {},
        exc.resp_body or b"",
        reason=f"the server refused the WebSocket handshake on {w.url}",
    )


def _frame_error(exc: FrameError, w: _Where) -> RipTideError:
    if exc.code == CloseCode.INVALID_DATA:
        # A text message that is not UTF-8 (RFC 6455 §8.1): the connection is closed
        # with 1007, and the request can be resumed on another one.
        error: RipTideError = StreamConnectionError(
            f"{w.url}: {exc}; closed the connection with code {explain_close(exc.code)}"
        )
    else:
        error = ProtocolViolationError(f"{w.url}: {exc}")
    error.close_code = exc.code  # type: ignore[attr-defined]
    return error


_TABLE: tuple[Rule[_Where], ...] = (
    Rule((websocket.WebSocketBadStatusException,), _refused_handshake),
    Rule((FrameError,), _frame_error),
    Rule((websocket.WebSocketTimeoutException, socket.timeout, TimeoutError),
         lambda exc, w: StreamTimeoutError(f"timed out {w.during} {w.url}")),
    Rule((websocket.WebSocketAddressException, socket.gaierror),
         lambda exc, w: StreamConnectionError(f"cannot resolve the host of {w.url}: {_reason(exc)}")),
    Rule((ConnectionRefusedError,), lambda exc, w: StreamConnectionError(refused_message(w.url))),
    Rule((ssl.SSLCertVerificationError,), lambda exc, w: TLSVerificationError(
        f"TLS certificate verification failed {w.during} {w.url}: {_reason(exc)}")),
    Rule((ssl.SSLError, ssl.CertificateError),
         lambda exc, w: StreamConnectionError(f"TLS failed {w.during} {w.url}: {_reason(exc)}")),
    Rule((websocket.WebSocketProxyException,),
         lambda exc, w: StreamConnectionError(f"proxy failed {w.during} {w.url}: {_reason(exc)}")),
    Rule((websocket.WebSocketConnectionClosedException,),
         lambda exc, w: StreamConnectionError(f"connection to {w.url} closed {w.during}")),
    Rule((OSError, EOFError), lambda exc, w: StreamConnectionError(
        f"connection to {w.url} failed {w.during}: {_reason(exc)}")),
    # websocket-client without python-socks: "Python Socks is needed for SOCKS proxying".
    Rule((websocket.WebSocketException,), lambda exc, w: StreamConnectionError(
        f"cannot use a SOCKS proxy for {w.url}: python-socks is not installed; "
        "pip install 'riptide-sync[socks]'"),
        when=lambda exc, w: "socks" in str(exc).lower()),
    # Bad upgrade headers, redirect loops, bad handshake lines: not a WebSocket server.
    Rule((websocket.WebSocketException,), lambda exc, w: ProtocolViolationError(
        f"{w.url} broke the WebSocket handshake: {_reason(exc)}")),
)
"""websocket-client / socket / ssl / OS exceptions and frame errors -> ours, most
specific first."""


def map_exception(exc: BaseException, *, url: str, during: str) -> RipTideError | None:
    """The riptide_sync exception that stands for ``exc`` by the table above; None when
    ``exc`` is not a foreign failure (ours, or a bug). Never raises.

    Args:
        exc: the exception caught.
        url: the WebSocket URL, named in messages.
        during: what was going on, e.g. ``"connecting to"``, ``"reading from"``,
            ``"sending to"``.
    """
    return map_by_table(_TABLE, exc, _Where(url, during))


def translate(*, url: str, during: str) -> ContextManager[None]:
    """Run a block, re-raising a foreign exception as ours, chained with ``from``; any
    other exception passes through unchanged (see :func:`map_exception`)."""
    return translated(_TABLE, _Where(url, during))


def for_consumer(exc: BaseException, *, url: str, during: str) -> BaseException:
    """What the reader thread hands the consumer for ``exc`` (``queue.finish(error)``):
    the mapped exception with ``exc`` as its ``__cause__``, or ``exc`` itself when it is not
    a foreign failure, so that a bug in the reader is raised as itself in the consumer's
    thread."""
    mapped = map_exception(exc, url=url, during=during)
    if mapped is None:
        return exc
    mapped.__cause__ = exc
    return mapped
