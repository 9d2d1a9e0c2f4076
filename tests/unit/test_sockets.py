"""riptide_sync._sockets: the OS socket under plain, TLS-like and green socket wrappers."""

from __future__ import annotations

import socket
import threading
import time

from riptide_sync._sockets import os_socket, shutdown_os_socket


class GreenLike:
    """The shapes of eventlet's GreenSocket (``.fd``) and gevent's socket (``._sock``)."""

    def __init__(self, inner: object, attr: str) -> None:
        setattr(self, attr, inner)


def test_os_socket_finds_the_c_level_socket_under_wrappers() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert os_socket(a) is a
        assert os_socket(GreenLike(a, "fd")) is a
        assert os_socket(GreenLike(GreenLike(a, "_sock"), "fd")) is a
        assert os_socket(object()) is None
        assert os_socket(GreenLike(3, "fd")) is None  # an int fd is not a socket


def test_shutdown_wakes_a_read_blocked_in_another_thread() -> None:
    a, b = socket.socketpair()
    with a, b:
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(a.recv(10)))
        reader.start()
        time.sleep(0.1)
        started = time.monotonic()
        assert shutdown_os_socket(GreenLike(a, "fd"))
        reader.join(1)
        assert not reader.is_alive() and got == [b""]
        assert time.monotonic() - started < 0.5


def test_shutdown_of_a_closed_or_unknown_socket_does_not_raise() -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()
    assert shutdown_os_socket(a)  # found, already closed: nothing to wake
    assert not shutdown_os_socket(object())
