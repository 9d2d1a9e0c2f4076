"""A scripted WebSocket server on loopback, for the bridge's socket-level tests.

Its protocol side is websockets' sans-I/O ``ServerProtocol`` (an independent
implementation): each test scripts what the server sends and when, on the thread that
handles the connection. Used by tests/unit/test_ws_bridge.py, test_ws_reader.py and
tests/integration/test_robust_streams.py (through the ``make_peer`` fixture of
tests/conftest.py).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Callable

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from support import MS, UNIT
from support.loopback import LoopbackServer


def wire(message_type: str, **data: Any) -> str:
    return json.dumps({"message_type": message_type, "data": data,
                       "timestamp": "2025-11-07T12:00:00+00:00"})


WELCOME = wire("welcome", session_id="sess-1", protocol_version="1.0",
               server_time="2025-11-07T12:00:00+00:00",
               supported_operations=["crawl", "ping", "status"])


def result(i: int, pad: int = 0) -> str:
    return wire("result", index=i, progress={"completed": i + 1, "total": 0, "success_rate": 1.0},
                result={"url": f"https://example.org/{i}", "status": 200, "pad": "p" * pad})


class PeerConnection:
    """The server end of one accepted connection."""

    def __init__(self, sock: socket.socket, peer: Peer) -> None:
        self.sock = sock
        self.peer = peer
        self.proto = ServerProtocol(max_size=None)
        self.texts: list[Any] = []
        self.pongs: list[bytes] = []
        self.pings: list[bytes] = []
        self.headers: dict[str, str] = {}
        self.eof = False
        self.auto_pong = True

    # handshake -------------------------------------------------------------------------
    def handshake(self) -> Request | None:
        self.sock.settimeout(5 * UNIT)
        while True:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.proto.receive_data(data)
            for event in self.proto.events_received():
                if isinstance(event, Request):
                    self.headers = {k.lower(): v for k, v in event.headers.raw_items()}
                    return event

    def accept(self, request: Request) -> None:
        self.proto.send_response(self.proto.accept(request))
        self.flush()

    def reject(self, status: int, body: str, headers: dict[str, str]) -> None:
        response = self.proto.reject(status, body)
        for key, value in headers.items():
            response.headers[key] = value
        self.proto.send_response(response)
        self.flush()

    # output ----------------------------------------------------------------------------
    def flush(self) -> None:
        self.sock.settimeout(10 * UNIT)  # pump() leaves a short timeout behind
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sock.sendall(chunk)
            else:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def send(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self.flush()

    def send_many(self, texts: list[str]) -> None:
        for text in texts:
            self.proto.send_text(text.encode())
        self.flush()

    def send_raw(self, data: bytes) -> None:
        self.sock.settimeout(10 * UNIT)
        self.sock.sendall(data)

    def ping(self, data: bytes) -> None:
        self.proto.send_ping(data)
        self.flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.proto.send_close(code, reason)
        self.flush()

    def abort(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # input -----------------------------------------------------------------------------
    def pump(self, duration: float) -> None:
        """Read and process client frames for ``duration`` seconds (or until EOF)."""
        deadline = time.monotonic() + duration
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return
            except OSError:
                data = b""
            if not data:
                self.eof = True
                self.proto.receive_eof()
            else:
                self.proto.receive_data(data)
            for event in self.proto.events_received():
                if event.opcode == Opcode.TEXT:
                    self.texts.append(json.loads(event.data))
                elif event.opcode == Opcode.PONG:
                    self.pongs.append(bytes(event.data))
                elif event.opcode == Opcode.PING:
                    self.pings.append(bytes(event.data))
            if self.auto_pong:
                self.flush()
            else:
                self.proto.data_to_send()  # discard automatic pongs

    def wait_text(self, timeout: float = 5 * UNIT) -> Any:
        """The next text message from the client (decoded JSON)."""
        deadline = time.monotonic() + timeout
        while not self.texts:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError("no text from the client")
            self.pump(min(0.05, timeout))
        return self.texts.pop(0)

    def freeze(self, duration: float) -> None:
        """Neither read nor write for ``duration`` s (ends early when the peer stops)."""
        self.peer.stopping.wait(duration)

    def wait_eof(self, timeout: float = 5 * UNIT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.pump(0.05)


Script = Callable[[PeerConnection], None]
"""What the peer does with a connection after the handshake (and the welcome)."""


class Peer(LoopbackServer):
    """A scripted WebSocket server on 127.0.0.1, one thread per accepted connection."""

    def __init__(self, script: Script | None = None, *, welcome: bool = True,
                 reject: tuple[int, str, dict[str, str]] | None = None,
                 no_handshake: bool = False) -> None:
        super().__init__()
        self.script = script
        self.welcome = welcome
        self.reject = reject
        self.no_handshake = no_handshake
        self.url = f"ws://127.0.0.1:{self.port}/crawl/ws"
        self.connections: list[PeerConnection] = []
        self.errors: list[BaseException] = []
        self.start()

    def accepted(self, sock: socket.socket) -> None:
        conn = PeerConnection(sock, self)
        self.connections.append(conn)  # on the accept thread: counted before it is handled
        self.spawn(self._handle, conn)

    def _handle(self, conn: PeerConnection) -> None:
        try:
            if self.no_handshake:
                self.stopping.wait(10 * UNIT)
                return
            request = conn.handshake()
            if request is None:
                return
            if self.reject is not None:
                conn.reject(*self.reject)
                return
            conn.accept(request)
            if self.welcome:
                conn.send(WELCOME)
            if self.script is not None:
                self.script(conn)
            conn.wait_eof(2 * UNIT)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            if not self.stopping.is_set():
                self.errors.append(exc)
        finally:
            conn.sock.close()

    @property
    def conn(self) -> PeerConnection:
        deadline = time.monotonic() + 5 * UNIT
        while not self.connections:
            assert time.monotonic() < deadline, "no connection"
            time.sleep(MS)
        return self.connections[0]

    def join_handlers(self, timeout: float = 5 * UNIT) -> None:
        """Wait for every connection handled so far to be finished and closed."""
        super().join_handlers(timeout)

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        for conn in self.connections:
            conn.abort()
        self.accept_thread.join(2)
        for thread in self.handler_threads:
            thread.join(2)
