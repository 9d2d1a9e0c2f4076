"""Socket operations that behave the same on plain, TLS, gevent and eventlet sockets.

After monkey-patching, ``socket.socket`` is gevent's or eventlet's own class, and neither
is a subclass of the C-level ``_socket.socket``: eventlet's ``GreenSocket`` wraps the real
socket as ``.fd`` (and binds ``shutdown`` per instance, so ``socket.socket.shutdown`` does
not exist there), gevent's wraps it as ``._sock``. These helpers find the OS socket under
any of them.
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

__all__ = ["os_socket", "shutdown_os_socket"]


def os_socket(sock: Any) -> _socket.socket | None:
    """The C-level socket under ``sock`` (itself for stdlib and ``ssl`` sockets), or None."""
    for _ in range(4):
        if isinstance(sock, _socket.socket):
            return sock
        inner = getattr(sock, "fd", None)  # eventlet's GreenSocket (and GreenSSLSocket)
        if inner is None or isinstance(inner, int):
            inner = getattr(sock, "_sock", None)  # gevent's socket and SSLSocket
        if inner is None or isinstance(inner, int):
            return None
        sock = inner
    return None


def shutdown_os_socket(sock: Any) -> bool:
    """``shutdown(SHUT_RDWR)`` the OS socket under ``sock``, which wakes a read blocked on
    it in another thread or greenlet at once.

    The C-level call, never ``SSLSocket.shutdown()``, which drops the TLS state under the
    read still running. Returns False when no OS socket was found under ``sock``.
    """
    raw = os_socket(sock)
    if raw is None:
        return False
    try:
        _socket.socket.shutdown(raw, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or not connected: nothing left to wake
    return True
