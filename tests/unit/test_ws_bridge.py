"""The WebSocket thread bridge against a scripted peer over real loopback sockets.

The peer's protocol side is websockets' sans-I/O ``ServerProtocol`` (an independent
implementation); each test scripts what it sends and when, on a thread of its own.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any, Callable

import pytest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from riptide_sync._config import ClientConfig
from riptide_sync._transport import StreamStats
from riptide_sync._ws import WebSocketTransport
from riptide_sync._ws.frames import FrameError
from riptide_sync.exceptions import (
    APIError,
    AuthenticationError,
    KeepaliveTimeoutError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitError,
    ServerError,
    SlowConsumerError,
    StreamConnectionError,
    StreamTimeoutError,
)

UNIT = float(os.environ.get("RIPTIDE_TEST_TIME_UNIT", "1.0"))
"""Seconds per time unit: scale every sleep and deadline on slow machines."""
MS = UNIT / 1000


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
        self.peer._stop.wait(duration)

    def wait_eof(self, timeout: float = 5 * UNIT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.pump(0.05)


Script = Callable[[PeerConnection], None]


class Peer:
    """A scripted WebSocket server on 127.0.0.1, one thread per accepted connection."""

    def __init__(self, script: Script | None = None, *, welcome: bool = True,
                 reject: tuple[int, str, dict[str, str]] | None = None,
                 no_handshake: bool = False) -> None:
        self.script = script
        self.welcome = welcome
        self.reject = reject
        self.no_handshake = no_handshake
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/crawl/ws"
        self.connections: list[PeerConnection] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            conn = PeerConnection(sock, self)
            self.connections.append(conn)
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: PeerConnection) -> None:
        try:
            if self.no_handshake:
                self._stop.wait(10 * UNIT)
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
            if not self._stop.is_set():
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

    def join_handlers(self) -> None:
        """Wait for every connection handled so far to be finished and closed."""
        for thread in list(self._threads):
            thread.join(5 * UNIT)

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        for conn in self.connections:
            conn.abort()
        self._accept.join(2)
        for thread in self._threads:
            thread.join(2)


@pytest.fixture
def make_peer():
    peers: list[Peer] = []

    def make(script: Script | None = None, **kw: Any) -> Peer:
        peer = Peer(script, **kw)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.stop()


def config(**kw: Any) -> ClientConfig:
    kw.setdefault("base_url", "http://127.0.0.1:9")
    kw.setdefault("timeout", 5 * UNIT)
    kw.setdefault("connect_timeout", 5 * UNIT)
    return ClientConfig(**kw)


@pytest.fixture
def open_transport():
    transports: list[WebSocketTransport] = []

    def make(peer: Peer, **kw: Any) -> WebSocketTransport:
        transport = WebSocketTransport(config(**kw), StreamStats(), url=peer.url)
        transports.append(transport)
        return transport

    yield make
    for transport in transports:
        transport.close()


def bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "riptide-ws-reader"]


def drain(source: Any, timeout: float = 5 * UNIT) -> list[Any]:
    """Receive events until a summary; return them all."""
    events = []
    while True:
        event = source.receive(timeout)
        events.append(event)
        if event.event_type == "summary":
            return events


# --- tests ------------------------------------------------------------------------------


def test_transport_welcome_then_events_in_order(make_peer, open_transport) -> None:
    """The welcome comes first, then the crawl's events in the order sent."""
    def script(conn: PeerConnection) -> None:
        request = conn.wait_text()
        assert request == {"request_type": "crawl", "data": {"urls": ["https://a.example/"]}}
        conn.send_many([wire("metadata", total_urls=50)] + [result(i) for i in range(50)]
                       + [wire("summary", total_urls=50, successful=50, failed=0)])

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    events = drain(source)
    assert [e.event_type for e in events[:2]] == ["welcome", "metadata"]
    assert [e.data["index"] for e in events[2:-1]] == list(range(50))
    assert transport.session_id == "sess-1"
    assert transport.stats.messages == 53
    assert transport.stats.bytes_received > 50 * 100


def test_handshake_sends_api_key_and_user_agent(make_peer, open_transport) -> None:
    """The X-API-Key header is sent on the WebSocket handshake."""
    peer = make_peer()
    transport = open_transport(peer, api_key="demo-key-123")
    transport.open_crawl(["https://a.example/"], None).receive(5 * UNIT)
    assert peer.conn.headers["x-api-key"] == "demo-key-123"
    assert peer.conn.headers["user-agent"].startswith("riptide-sync/")


def test_keepalive_server_pings_answered_while_consumer_stalls(make_peer, open_transport) -> None:
    """Server pings every 0.2 s with a 0.5 s pong deadline survive a 2 s consumer stall."""
    state: dict[str, Any] = {}

    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send_many([wire("metadata", total_urls=3)] + [result(i) for i in range(3)])
        outstanding: dict[bytes, float] = {}
        pings = 0
        end = time.monotonic() + 2.5 * UNIT
        while time.monotonic() < end:
            payload = str(pings).encode()
            conn.ping(payload)
            outstanding[payload] = time.monotonic()
            pings += 1
            conn.pump(200 * MS)
            for pong in conn.pongs:
                outstanding.pop(pong, None)
            conn.pongs.clear()
            late = [p for p, t in outstanding.items() if time.monotonic() - t > 500 * MS]
            if late:
                state["closed_for"] = late
                conn.close(1011, "pong timeout")
                return
        state["pings"] = pings
        conn.send(wire("summary", total_urls=3, successful=3, failed=0))

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert source.receive(5 * UNIT).event_type == "welcome"
    time.sleep(2 * UNIT)  # the consumer is stalled; the reader keeps answering
    events = drain(source)
    assert "closed_for" not in state
    assert state["pings"] >= 10
    assert [e.event_type for e in events] == ["metadata", "result", "result", "result", "summary"]


def test_keepalive_dead_peer_detected_within_deadline(make_peer, open_transport) -> None:
    """A peer that goes silent raises KeepaliveTimeoutError within interval + timeout."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("metadata", total_urls=1))
        conn.freeze(3 * UNIT)  # reads nothing, sends nothing

    peer = make_peer(script)
    transport = open_transport(peer, ping_interval=0.2 * UNIT, ping_timeout=0.3 * UNIT)
    source = transport.open_crawl(["https://a.example/"], None)
    assert source.receive(5 * UNIT).event_type == "welcome"
    assert source.receive(5 * UNIT).event_type == "metadata"
    started = time.monotonic()
    with pytest.raises(KeepaliveTimeoutError):
        source.receive(5 * UNIT)
    elapsed = time.monotonic() - started
    assert 0.4 * UNIT <= elapsed <= 0.5 * UNIT + 0.25 * UNIT


def test_keepalive_any_frame_counts_as_life(make_peer, open_transport) -> None:
    """A server that never answers pings but keeps sending data is not declared dead."""
    def script(conn: PeerConnection) -> None:
        conn.auto_pong = False
        conn.wait_text()
        conn.send(wire("metadata", total_urls=15))
        for i in range(15):
            time.sleep(100 * MS)
            conn.send(result(i))
            conn.pump(0)
        conn.send(wire("summary", total_urls=15, successful=15, failed=0))

    peer = make_peer(script)
    transport = open_transport(peer, ping_interval=0.1 * UNIT, ping_timeout=0.15 * UNIT)
    events = drain(transport.open_crawl(["https://a.example/"], None))
    assert len(events) == 18  # welcome, metadata, 15 results, summary: 1.5 s > 0.25 s
    assert peer.conn.pings, "the client sent keepalive pings"
    assert peer.conn.pongs == []


def test_keepalive_client_ping_measures_rtt(make_peer, open_transport) -> None:
    """Client keepalive pings are sent every ping_interval; pongs set last_rtt_ms."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.pump(0.5 * UNIT)
        conn.send(wire("summary", total_urls=0, successful=0, failed=0))

    peer = make_peer(script)
    transport = open_transport(peer, ping_interval=0.1 * UNIT, ping_timeout=1 * UNIT)
    drain(transport.open_crawl(["https://a.example/"], None))
    assert len(peer.conn.pings) >= 3
    assert transport.stats.last_rtt_ms is not None and transport.stats.last_rtt_ms < 200


def test_keepalive_disabled_sends_no_pings(make_peer, open_transport) -> None:
    """With ping_interval=None, no pings are sent and silence is not an error."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.pump(0.5 * UNIT)
        conn.send(wire("summary", total_urls=0, successful=0, failed=0))

    peer = make_peer(script)
    transport = open_transport(peer, ping_interval=None, ping_timeout=0.01)
    drain(transport.open_crawl(["https://a.example/"], None))
    assert peer.conn.pings == []


def _flood(n: int, pad: int = 0) -> Script:
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("metadata", total_urls=n))
        batch = []
        for i in range(n):
            batch.append(result(i, pad))
            if len(batch) == 200:
                conn.send_many(batch)
                batch = []
        conn.send_many(batch + [wire("summary", total_urls=n, successful=n, failed=0)])
    return script


def test_overflow_spill_keeps_order_and_bounds_memory(make_peer, open_transport) -> None:
    """A consumer far slower than the server gets every event in order; memory stays bounded."""
    n = 3000
    peer = make_peer(_flood(n, pad=100))
    transport = open_transport(peer, queue_size=50, overflow="spill")
    source = transport.open_crawl(["https://a.example/"], None)
    events = [source.receive(5 * UNIT), source.receive(5 * UNIT)]
    deadline = time.monotonic() + 5 * UNIT
    while transport.stats.messages < n + 3 and time.monotonic() < deadline:
        time.sleep(10 * MS)  # the consumer is stalled until everything has arrived
    queue = transport.connection.queue
    spill_fd = queue._spill_fd
    assert queue.spilling and not os.path.exists(queue.spill_path)  # unlinked when opened
    events += drain(source)
    assert [e.data["index"] for e in events if e.event_type == "result"] == list(range(n))
    assert events[-1].event_type == "summary"
    assert transport.stats.spilled > 0
    assert transport.stats.queue_high_water <= 50
    transport.close()
    assert not queue.spilling
    with pytest.raises(OSError):
        os.fstat(spill_fd)  # the descriptor (the file's last reference) is closed


# Results of ~4 KB: one 256 KiB read carries at most ~64 of them, so a flood of 500 takes
# many reads, and the queue is full when most of them arrive (a batch arriving while the
# queue is not full is taken whole: see MessageQueue.put_batch).
_PAD = 4000
_PER_READ = (256 * 1024) // _PAD + 1


def test_overflow_drop_newest_counts_and_keeps_summary(make_peer, open_transport) -> None:
    """drop_newest discards surplus results, counts them, and never drops the summary."""
    n = 500
    peer = make_peer(_flood(n, pad=_PAD))
    transport = open_transport(peer, queue_size=20, overflow="drop_newest")
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    deadline = time.monotonic() + 5 * UNIT
    while transport.stats.messages < n + 3 and time.monotonic() < deadline:
        time.sleep(10 * MS)
    events = drain(source)
    results = [e.data["index"] for e in events if e.event_type == "result"]
    assert events[0].event_type == "metadata" and events[-1].event_type == "summary"
    # The first results were kept; the summary, which is never dropped, took the place
    # of the oldest result when it found the queue full.
    assert results == list(range(1, len(results) + 1))
    assert transport.stats.dropped == n - len(results) > 0
    assert transport.stats.queue_high_water <= 20 + _PER_READ


def test_overflow_drop_oldest_counts_and_keeps_protocol_messages(make_peer, open_transport) -> None:
    """drop_oldest keeps the newest results and never drops metadata or summary."""
    n = 500
    peer = make_peer(_flood(n, pad=_PAD))
    transport = open_transport(peer, queue_size=20, overflow="drop_oldest")
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    deadline = time.monotonic() + 5 * UNIT
    while transport.stats.messages < n + 3 and time.monotonic() < deadline:
        time.sleep(10 * MS)
    events = drain(source)
    results = [e.data["index"] for e in events if e.event_type == "result"]
    assert events[0].event_type == "metadata" and events[-1].event_type == "summary"
    assert results[-1] == n - 1  # the newest survived
    assert transport.stats.dropped == n - len(results) > 0


def test_overflow_block_stops_reading(make_peer, open_transport) -> None:
    """block holds at most queue_size messages and stops reading; nothing is lost."""
    n = 3000
    peer = make_peer(_flood(n, pad=2000))
    transport = open_transport(peer, queue_size=10, overflow="block")
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    time.sleep(0.3 * UNIT)
    # Reading stopped: far fewer messages than were sent have been read off the socket.
    assert transport.stats.messages < n // 2
    events = drain(source)
    assert [e.data["index"] for e in events if e.event_type == "result"] == list(range(n))
    assert transport.stats.queue_high_water <= 10


def test_overflow_error_raises_slow_consumer_after_queued(make_peer, open_transport) -> None:
    """error delivers the queued events, then SlowConsumerError, and stops the stream."""
    peer = make_peer(_flood(500, pad=_PAD))
    transport = open_transport(peer, queue_size=20, overflow="error")
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    time.sleep(0.3 * UNIT)
    received = 0
    with pytest.raises(SlowConsumerError):
        for _ in range(1000):
            source.receive(5 * UNIT)
            received += 1
    # Everything queued before the overflow is delivered first: the queue filled (20),
    # perhaps past it by one read taken whole, and the next read found it full.
    assert 20 <= received <= 20 + _PER_READ < 500
    assert 20 <= transport.stats.queue_high_water <= 20 + _PER_READ


def test_reader_exception_reraised_chained(make_peer, open_transport) -> None:
    """A protocol violation on the reader thread is raised in the consumer, chained."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("metadata", total_urls=1))
        conn.send_raw(Frame(Opcode.TEXT, b"masked!").serialize(mask=True))
        conn.pump(1 * UNIT)

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert [source.receive(5 * UNIT).event_type for _ in range(2)] == ["welcome", "metadata"]
    with pytest.raises(ProtocolViolationError) as info:
        source.receive(5 * UNIT)
    assert isinstance(info.value.__cause__, FrameError)
    assert "masked" in str(info.value)


def test_malformed_frame_becomes_error_event(make_peer, open_transport) -> None:
    """Invalid JSON becomes an error event; the stream goes on. (Invalid UTF-8 is a
    1007 close instead: tests/unit/test_ws_reader.py.)"""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send("not json {")
        conn.send('["a list"]')
        conn.send(wire("summary", total_urls=0, successful=0, failed=0))

    peer = make_peer(script)
    transport = open_transport(peer)
    events = drain(transport.open_crawl(["https://a.example/"], None))
    assert [e.event_type for e in events] == ["welcome", "error", "error", "summary"]
    assert {e.data["error_type"] for e in events[1:3]} == {"malformed_message"}


def test_oversize_message_closes_with_1009(make_peer, open_transport) -> None:
    """A message over max_message_size ends the stream with a clear error and close 1009."""
    seen = threading.Event()

    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send("x" * 5000)
        conn.wait_eof()
        seen.set()

    peer = make_peer(script)
    transport = open_transport(peer, max_message_size=4096)
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    with pytest.raises(ProtocolViolationError, match="max_message_size=4096"):
        source.receive(5 * UNIT)
    assert seen.wait(5 * UNIT)
    assert peer.conn.proto.close_rcvd is not None and peer.conn.proto.close_rcvd.code == 1009


def test_peer_close_delivers_queued_events_then_raises(make_peer, open_transport) -> None:
    """Events queued before the server closed are delivered, then StreamConnectionError."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send_many([wire("metadata", total_urls=5)] + [result(i) for i in range(5)])
        conn.close(1001, "restart")

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    time.sleep(0.2 * UNIT)
    types = [source.receive(5 * UNIT).event_type for _ in range(7)]
    assert types == ["welcome", "metadata"] + ["result"] * 5
    with pytest.raises(StreamConnectionError, match="1001"):
        source.receive(5 * UNIT)


def test_peer_eof_without_close_raises_connection_error(make_peer, open_transport) -> None:
    """A TCP drop without a Close frame (1006) raises StreamConnectionError."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("metadata", total_urls=5))
        conn.abort()

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert [source.receive(5 * UNIT).event_type for _ in range(2)] == ["welcome", "metadata"]
    with pytest.raises(StreamConnectionError, match="1006"):
        source.receive(5 * UNIT)


def test_close_from_other_thread_wakes_blocked_consumer(make_peer, open_transport) -> None:
    """close() from another thread makes a blocked receive() raise within 1 s."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.freeze(3 * UNIT)  # no reading, no echo

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    timer = threading.Timer(0.2 * UNIT, transport.close)
    timer.start()
    started = time.monotonic()
    with pytest.raises(StreamConnectionError, match="stream closed"):
        source.receive(None)
    timer.join()
    assert time.monotonic() - started < 0.2 * UNIT + 1.0
    assert bridge_threads() == []


def test_close_with_frozen_peer_returns_within_one_second(make_peer, open_transport) -> None:
    """close() returns within 1 s when the peer neither reads nor answers."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.freeze(3 * UNIT)

    peer = make_peer(script)
    transport = open_transport(peer)
    transport.open_crawl(["https://a.example/"], None)
    started = time.monotonic()
    transport.close()
    transport.close()  # idempotent
    assert time.monotonic() - started < 1.0
    assert bridge_threads() == []
    with pytest.raises(StreamConnectionError):
        transport.open_crawl(["https://a.example/"], None)


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_open_close_cycles_leak_nothing(make_peer) -> None:
    """100 open/close cycles leave no reader thread and no file descriptor behind."""
    peer = make_peer()
    cfg = config()
    for _ in range(3):  # warm up lazily created fds (logging, selectors...)
        t = WebSocketTransport(cfg, StreamStats(), url=peer.url)
        t.open_crawl(["https://a.example/"], None).receive(5 * UNIT)
        t.close()
    peer.join_handlers()  # the peer lives in this process: its sockets count too
    fds = _fd_count()
    for _ in range(100):
        transport = WebSocketTransport(cfg, StreamStats(), url=peer.url)
        assert transport.open_crawl(["https://a.example/"], None).receive(5 * UNIT).event_type == "welcome"
        transport.close()
    assert bridge_threads() == []
    peer.join_handlers()
    assert _fd_count() <= fds


@pytest.mark.parametrize(
    "status, headers, body, expected, retry_after",
    [
        (401, {}, '{"error":"Missing API key"}', AuthenticationError, None),
        (403, {}, "forbidden", AuthenticationError, None),
        (429, {"Retry-After": "7"}, '{"error":"rate limited"}', RateLimitError, 7.0),
        (503, {"Retry-After": "2"}, "busy", RateLimitError, 2.0),
        (404, {}, '{"error":{"type":"not_found","message":"no route"}}', NotFoundError, None),
        (500, {"X-Request-ID": "req-9"}, "boom", ServerError, None),
        (405, {}, "method", APIError, None),
    ],
)
def test_handshake_rejection_maps_status(make_peer, status, headers, body, expected,
                                         retry_after) -> None:
    """A refused handshake raises the APIError subclass for its status, with details."""
    peer = make_peer(reject=(status, body, headers))
    transport = WebSocketTransport(config(), StreamStats(), url=peer.url)
    with pytest.raises(expected) as info:
        transport.open_crawl(["https://a.example/"], None)
    error = info.value
    assert type(error) is expected
    assert error.status_code == status
    assert error.__cause__ is not None
    if expected is RateLimitError:
        assert error.retry_after == retry_after
    if status == 500:
        assert error.request_id == "req-9" and "boom" in str(error)
    if status == 404:
        assert error.error_type == "not_found" and error.message == "no route"
    if status == 401:
        assert error.message == "Missing API key"
    assert bridge_threads() == []


def test_connect_refused_raises_connection_error() -> None:
    """A refused TCP connect raises StreamConnectionError chained to the OSError."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    transport = WebSocketTransport(config(), StreamStats(), url=f"ws://127.0.0.1:{port}/crawl/ws")
    with pytest.raises(StreamConnectionError, match="refused") as info:
        transport.open_crawl(["https://a.example/"], None)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_handshake_timeout_raises_timeout_error(make_peer) -> None:
    """A server that accepts TCP but never answers the upgrade times out."""
    peer = make_peer(no_handshake=True)
    transport = WebSocketTransport(config(connect_timeout=0.3 * UNIT), StreamStats(), url=peer.url)
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError):
        transport.open_crawl(["https://a.example/"], None)
    assert time.monotonic() - started < 0.3 * UNIT + 0.5


def test_welcome_timeout_raises_timeout_error(make_peer) -> None:
    """No welcome within config.timeout raises StreamTimeoutError and leaves no thread.

    The crawl goes out right after the handshake (no wait for the welcome), so the
    deadline applies to the request's first event."""
    peer = make_peer(lambda conn: conn.freeze(1 * UNIT), welcome=False)
    transport = WebSocketTransport(config(timeout=0.2 * UNIT), StreamStats(), url=peer.url)
    source = transport.open_crawl(["https://a.example/"], None)
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError, match="no welcome"):
        source.receive(None)
    assert time.monotonic() - started < 0.2 * UNIT + 0.5
    transport.close()
    assert bridge_threads() == []


def test_request_ping_returns_pong_and_rtt(make_peer, open_transport) -> None:
    """request("ping") returns the pong and records the round trip."""
    def script(conn: PeerConnection) -> None:
        assert conn.wait_text() == {"request_type": "ping", "data": {}}
        conn.send(wire("pong", session_id="sess-1", timestamp="t"))
        assert conn.wait_text() == {"request_type": "status", "data": {}}
        conn.send(wire("status", session_id="sess-1", is_healthy=True, message_count=2,
                       connected_duration_ms=5, backpressure_count=0))

    peer = make_peer(script)
    transport = open_transport(peer)
    pong = transport.request("ping", timeout=2 * UNIT)
    assert pong.event_type == "pong" and pong.data["session_id"] == "sess-1"
    assert transport.stats.last_rtt_ms is not None
    status = transport.request("status", timeout=2 * UNIT)
    assert status.data["is_healthy"] is True


def test_request_without_reply_times_out(make_peer, open_transport) -> None:
    """A request the server ignores (docs/protocol.md §1.5) raises StreamTimeoutError."""
    peer = make_peer(lambda conn: conn.pump(2 * UNIT))
    transport = open_transport(peer)
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError, match="pong"):
        transport.request("ping", timeout=0.3 * UNIT)
    assert time.monotonic() - started < 0.3 * UNIT + 0.3


def test_open_crawl_reuses_connection_then_reconnects(make_peer, open_transport) -> None:
    """Sequential crawls share one socket; after it drops, a new one starts with a welcome."""
    def script(conn: PeerConnection) -> None:
        for _ in range(2):
            conn.wait_text()
            conn.send(wire("summary", total_urls=1, successful=1, failed=0))
        conn.abort()

    peer = make_peer(script)
    transport = open_transport(peer)
    first = drain(transport.open_crawl(["https://a.example/"], None))
    second = drain(transport.open_crawl(["https://a.example/"], None))
    assert [e.event_type for e in first] == ["welcome", "summary"]
    assert [e.event_type for e in second] == ["summary"]
    assert len(peer.connections) == 1
    deadline = time.monotonic() + 2 * UNIT
    while transport.connection.healthy and time.monotonic() < deadline:
        time.sleep(10 * MS)
    third = transport.open_crawl(["https://a.example/"], None)
    assert third.receive(5 * UNIT).event_type == "welcome"
    assert len(peer.connections) == 2


def test_receive_timeout_raises_timeout_error(make_peer, open_transport) -> None:
    """receive(timeout) raises StreamTimeoutError when nothing arrives in time."""
    peer = make_peer(lambda conn: conn.pump(2 * UNIT))
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    with pytest.raises(StreamTimeoutError):
        source.receive(0.1 * UNIT)


def test_request_during_crawl_is_refused(make_peer, open_transport) -> None:
    """request() while a crawl streams on the connection raises RuntimeError."""
    peer = make_peer(lambda conn: conn.pump(2 * UNIT))
    transport = open_transport(peer)
    transport.open_crawl(["https://a.example/"], None)
    with pytest.raises(RuntimeError, match="crawl is streaming"):
        transport.request("ping", timeout=0.1 * UNIT)


def test_source_close_abandons_request_and_reconnects(make_peer, open_transport) -> None:
    """Closing an unfinished crawl closes its socket; the next crawl gets a new one."""
    closed = threading.Event()

    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("metadata", total_urls=3))
        conn.wait_eof()
        if conn.eof:
            closed.set()

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert [source.receive(5 * UNIT).event_type for _ in range(2)] == ["welcome", "metadata"]
    source.close()
    with pytest.raises(StreamConnectionError, match="stream closed"):
        source.receive(0.1 * UNIT)
    assert closed.wait(5 * UNIT)  # the abandoned socket was closed
    again = transport.open_crawl(["https://a.example/"], None)
    assert again.receive(5 * UNIT).event_type == "welcome"
    assert len(peer.connections) == 2


def test_close_during_handshake_unblocks_connect(make_peer) -> None:
    """close() from another thread while the server never answers the upgrade ends the
    handshake at once (not after connect_timeout) and leaves no thread."""
    import socket as socket_module

    listener = socket_module.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts TCP, never answers the HTTP upgrade
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}/crawl/ws"
    transport = WebSocketTransport(config(connect_timeout=30.0), StreamStats(), url=url)
    timer = threading.Timer(0.2, transport.close)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(StreamConnectionError):
            transport.open_crawl(["https://a.example/"], None)
        assert time.monotonic() - started < 1.5
    finally:
        timer.join()
        listener.close()
    assert bridge_threads() == []
