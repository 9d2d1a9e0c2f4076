"""The WebSocket thread bridge against a scripted peer over real loopback sockets.

The peer (tests/support/ws_peer.py) is websockets' sans-I/O ``ServerProtocol`` (an
independent implementation); each test scripts what it sends and when, on a thread of its own.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

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

from support import MS, UNIT, made_and_closed, receive_until_summary
from support.leaks import open_fd_count, threads_named
from support.ws_peer import Peer, PeerConnection, Script, result, wire


def config(**kw: Any) -> ClientConfig:
    kw.setdefault("base_url", "http://127.0.0.1:9")
    kw.setdefault("timeout", 5 * UNIT)
    kw.setdefault("connect_timeout", 5 * UNIT)
    return ClientConfig(**kw)


def _transport(peer: Peer, **kw: Any) -> WebSocketTransport:
    return WebSocketTransport(config(**kw), StreamStats(), url=peer.url)


@pytest.fixture
def open_transport():
    """``open_transport(peer, **config)``: a transport to the peer, closed at the end."""
    yield from made_and_closed(_transport, WebSocketTransport.close)


def bridge_threads() -> list[threading.Thread]:
    return threads_named("riptide-ws-reader")


def drain(source: Any, timeout: float = 5 * UNIT) -> list[Any]:
    """Receive events until a summary; return them all."""
    return receive_until_summary(source, timeout)


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


def _flood_then_drain(make_peer, open_transport, n: int, overflow: str) -> tuple[WebSocketTransport, list[Any]]:
    """``n`` padded results into a queue of 20 under ``overflow``: wait (up to 5 units)
    until the reader has read them all, then drain what the queue kept."""
    peer = make_peer(_flood(n, pad=_PAD))
    transport = open_transport(peer, queue_size=20, overflow=overflow)
    source = transport.open_crawl(["https://a.example/"], None)
    source.receive(5 * UNIT)
    deadline = time.monotonic() + 5 * UNIT
    while transport.stats.messages < n + 3 and time.monotonic() < deadline:
        time.sleep(10 * MS)
    return transport, drain(source)


def test_overflow_drop_newest_counts_and_keeps_summary(make_peer, open_transport) -> None:
    """drop_newest discards surplus results, counts them, and never drops the summary."""
    n = 500
    transport, events = _flood_then_drain(make_peer, open_transport, n, "drop_newest")
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
    transport, events = _flood_then_drain(make_peer, open_transport, n, "drop_oldest")
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


def test_open_close_cycles_leak_nothing(make_peer) -> None:
    """100 open/close cycles leave no reader thread and no file descriptor behind."""
    peer = make_peer()
    cfg = config()
    for _ in range(3):  # warm up lazily created fds (logging, selectors...)
        t = WebSocketTransport(cfg, StreamStats(), url=peer.url)
        t.open_crawl(["https://a.example/"], None).receive(5 * UNIT)
        t.close()
    peer.join_handlers()  # the peer lives in this process: its sockets count too
    fds = open_fd_count()
    for _ in range(100):
        transport = WebSocketTransport(cfg, StreamStats(), url=peer.url)
        assert transport.open_crawl(["https://a.example/"], None).receive(5 * UNIT).event_type == "welcome"
        transport.close()
    assert bridge_threads() == []
    peer.join_handlers()
    assert open_fd_count() <= fds


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
