"""The opening handshake read a line at a time (riptide_sync._ws.handshake): the same
bytes as websocket-client's byte-wise read, nothing past the 101 response lost."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading

import websocket

from riptide_sync._transport import StreamStats
from riptide_sync._ws.connection import Connection
from riptide_sync._ws.handshake import _recv_line
from test_ws_bridge import config

from support.ws_peer import WELCOME

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _serve_once(extra_headers: int) -> tuple[int, threading.Thread]:
    """A server that answers the handshake and sends the welcome in ONE segment."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        conn, _ = listener.accept()
        listener.close()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest())
            welcome = WELCOME.encode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 40) for i in range(extra_headers))
                + b"\r\n" + bytes([0x81, 126]) + len(welcome).to_bytes(2, "big") + welcome
            )
            conn.settimeout(5)
            try:
                conn.recv(1024)  # until the client closes
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def test_welcome_in_the_same_segment_as_the_101_is_kept(monkeypatch) -> None:
    """20 header lines: read in two recv() per line, not one per byte (before: ~1,200);
    the welcome that followed the blank line reaches the reader thread."""
    calls = []
    original = socket.socket.recv

    def counting(self, *args):  # type: ignore[no-untyped-def]
        calls.append(threading.current_thread().name)
        return original(self, *args)

    monkeypatch.setattr(socket.socket, "recv", counting)
    port, server = _serve_once(extra_headers=20)
    conn = Connection(config(), StreamStats(), f"ws://127.0.0.1:{port}/ws")
    try:
        conn.connect()
        assert conn.session_id == "sess-1"
    finally:
        conn.close()
    server.join(5)
    me = threading.current_thread().name
    handshake_reads = [name for name in calls if name == me]
    assert len(handshake_reads) <= 2 * 25  # status line + 23 headers + blank line


def test_other_threads_keep_websocket_clients_own_read(monkeypatch) -> None:
    """Outside our handshake, recv_line is websocket-client's byte-wise one."""
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"line one\r\nline two\r\n")
        sizes = []
        original = socket.socket.recv

        def counting(self, size, *args):  # type: ignore[no-untyped-def]
            sizes.append(size)
            return original(self, size, *args)

        monkeypatch.setattr(socket.socket, "recv", counting)
        assert _recv_line(b) == b"line one\r\n"
        assert set(sizes) == {1}
        assert websocket._http.recv_line is _recv_line
