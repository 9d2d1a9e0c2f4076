"""The WebSocket opening handshake: websocket-client's ``connect()`` with TLS and proxy
options from :class:`~riptide_sync._config.ClientConfig`, one overall deadline, and the
101 response read a line at a time instead of a byte at a time.

Deadline: ``connect_timeout`` bounds the whole handshake, not each ``recv()`` of it: a
server that dribbles its 101 response byte by byte is cut off at the deadline (the process's
alarm thread, :mod:`riptide_sync._alarm`, shuts the socket down, which wakes the read).

Reading the response: websocket-client reads the status line and headers with
``recv(1)`` per byte (~200 system calls, 1.6-1.9 ms of the time to first result). On a
plain TCP socket, during a handshake this module runs, each line is read with one
``recv(MSG_PEEK)`` to find its end and one ``recv()`` of exactly that many bytes: the same
bytes as before, and nothing past the blank line, so a welcome frame that arrived in the
same segment stays in the socket for the reader thread. TLS sockets (no ``MSG_PEEK``; their
1-byte reads come from OpenSSL's buffer), gevent/eventlet sockets, and every other use of
websocket-client in the process keep websocket-client's own ``recv_line``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from typing import Any, Callable, Optional
from urllib.parse import unquote, urlsplit

import websocket
import websocket._http as _ws_http
import websocket._socket as _ws_socket

from .. import _alarm
from .._config import ClientConfig
from .._http.session import proxy_for, resolve_verify
from ..exceptions import APIError, ProtocolViolationError, StreamConnectionError, StreamTimeoutError
from ..protocol.errors import redact_secret
from . import errors

__all__ = ["handshake", "sslopt_for", "proxy_options", "ws_proxy_options"]

logger = logging.getLogger("riptide_sync.ws")

_PEEK_SIZE = 4096
"""Bytes one peek looks at for the end of a header line."""


def sslopt_for(verify: bool | str) -> dict[str, Any]:
    """websocket-client ``sslopt`` for ``ClientConfig.verify`` (True / False / CA path)."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    opts: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
    if isinstance(verify, str):
        opts["ca_cert_path" if os.path.isdir(verify) else "ca_certs"] = verify
    return opts


def proxy_options(proxy: str | None) -> dict[str, Any]:
    """websocket-client proxy options for ``ClientConfig.proxy`` (http/socks URL)."""
    if not proxy:
        return {}
    parts = urlsplit(proxy)
    if not parts.hostname:
        return {}
    scheme = parts.scheme or "http"
    opts: dict[str, Any] = {
        "http_proxy_host": parts.hostname,
        "http_proxy_port": parts.port or (443 if scheme == "https" else 1080 if scheme.startswith("socks") else 80),
        "proxy_type": "http" if scheme in ("http", "https") else scheme,
    }
    if parts.username:
        opts["http_proxy_auth"] = (unquote(parts.username), unquote(parts.password or ""))
    return opts


_NO_MATCH = ["\x00"]
"""A ``http_no_proxy`` list that matches no host: websocket-client then neither reads
``NO_PROXY`` itself nor falls back to its own rules; :func:`proxy_for` decided already."""


def ws_proxy_options(config: ClientConfig, url: str) -> dict[str, Any]:
    """websocket-client options for the proxy :func:`proxy_for` picks for ``url`` (the rule
    HTTP calls follow too): that proxy, or ``http_no_proxy=["*"]`` for a direct connection
    (websocket-client would otherwise read ``http_proxy``/``https_proxy`` on its own)."""
    proxy = proxy_for(config, url)
    if proxy is None:
        return {"http_no_proxy": ["*"]}
    return {**proxy_options(proxy), "http_no_proxy": _NO_MATCH}


# --- reading the response a line at a time -------------------------------------------------

_local = threading.local()
_recv_line_bytewise: Callable[[Any], bytes] = getattr(_ws_http, "recv_line")  # noqa: B009


def _recv_line(sock: Any) -> bytes:
    """websocket-client's ``recv_line`` (used for the 101 response and a proxy's CONNECT
    answer), in two system calls per line on a plain socket during our handshake."""
    if not getattr(_local, "buffered", False) or type(sock) is not socket.socket:
        return _recv_line_bytewise(sock)
    parts = []
    while True:
        try:
            # Blocks until the line has more bytes, as recv(1) would; the deadline's
            # shutdown wakes it with b"".
            ahead = sock.recv(_PEEK_SIZE, socket.MSG_PEEK)
        except OSError:
            ahead = b""
        if not ahead:
            # EOF, a timeout or an error: the byte-wise read raises it in websocket-client's
            # own terms (the exceptions errors.translate maps).
            parts.append(_recv_line_bytewise(sock))
            break
        end = ahead.find(b"\n")
        line = _ws_socket.recv(sock, len(ahead) if end < 0 else end + 1)  # in the buffer
        parts.append(line)
        if line.endswith(b"\n"):
            break
    return b"".join(parts)


# read_headers() looks recv_line up in websocket._http's globals; ours only on our thread.
setattr(_ws_http, "recv_line", _recv_line)  # noqa: B010


# --- the handshake -------------------------------------------------------------------------


def handshake(
    config: ClientConfig,
    url: str,
    *,
    track: Callable[[Optional[websocket.WebSocket]], None],
    closing: Callable[[], bool],
) -> websocket.WebSocket:
    """Open ``url`` and return the connected websocket-client socket.

    Args:
        track: called with the websocket before the connect (a ``close()`` on another
            thread shuts its socket down) and with None once the handshake is over.
        closing: True when ``close()`` was called meanwhile: a failure then reads
            "stream closed".

    Raises:
        AuthenticationError, RateLimitError, NotFoundError, ServerError, APIError:
            the server refused the handshake (with its status and body; the API key
            redacted).
        StreamConnectionError: DNS, refused, reset, TLS or proxy failure; or closed.
        StreamTimeoutError: no handshake within ``connect_timeout``.
        ProtocolViolationError: the 101 response names an extension the client did not
            offer.
    """
    ws = websocket.WebSocket(
        sslopt=sslopt_for(resolve_verify(config.verify)),  # the same bundle as HTTP
        skip_utf8_validation=True,  # json.loads validates UTF-8 on the consumer side
        enable_multithread=True,
    )
    headers = [f"{name}: {value}" for name, value in config.headers.items()]
    track(ws)
    debug = logger.isEnabledFor(logging.DEBUG)
    if debug:
        logger.debug("> connect %s", url)
    deadline: Optional[_alarm.AlarmHandle] = None
    try:
        deadline = _alarm.schedule(config.connect_timeout, lambda: _expire(ws))
        _local.buffered = True
        try:
            with errors.translate(url=url, during="connecting to"):
                ws.connect(  # type: ignore[no-untyped-call]
                    url,
                    header=headers,
                    timeout=config.connect_timeout,
                    suppress_origin=True,
                    redirect_limit=0,
                    **ws_proxy_options(config, url),
                )
        finally:
            _local.buffered = False
            deadline.cancel()  # waits for an _expire() running at this moment
        if deadline.fired:  # the deadline came as the handshake ended: too late
            raise StreamTimeoutError("the handshake ended at its deadline")
    except BaseException as exc:
        track(None)
        ws.shutdown()  # type: ignore[no-untyped-call]
        if debug:
            logger.debug("! connect %s failed", url, exc_info=True)
        if closing():
            raise StreamConnectionError("stream closed") from None
        if isinstance(exc, APIError):  # a refused handshake may echo the key
            redact_secret(exc, config.api_key)
        elif deadline is not None and deadline.fired:
            raise StreamTimeoutError(
                f"no WebSocket handshake with {url} within connect_timeout="
                f"{config.connect_timeout:g} s"
            ) from exc
        raise
    track(None)
    extensions = (ws.getheaders() or {}).get("sec-websocket-extensions")
    if extensions:
        # RFC 6455 §9.1: the client offered none, so the server may not use any; its
        # frames would carry reserved bits this client cannot read.
        ws.shutdown()  # type: ignore[no-untyped-call]
        raise ProtocolViolationError(
            f"{url} broke the WebSocket handshake: its 101 response names the "
            f"extension(s) {extensions!r} in Sec-WebSocket-Extensions, but the client "
            f"offered none"
        )
    return ws


def _expire(ws: websocket.WebSocket) -> None:
    """Alarm thread: the handshake's deadline passed; wake its blocked read."""
    sock = ws.sock
    if sock is not None:  # None: still in the TCP connect, bounded by its own timeout
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
