"""Issue 12 over real sockets: what a demanding user found from outside.

The WebSocket peer is websockets' sans-I/O ServerProtocol (tests/unit/test_ws_bridge.py's
scripted Peer); the HTTP peers are raw loopback sockets scripted here; the local server is
started with explicit settings for what each test depends on.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "unit"))
from test_ws_bridge import Peer, PeerConnection  # noqa: E402

from websockets.frames import Frame, Opcode  # noqa: E402

from riptide_sync import RipTideClient, RetryPolicy  # noqa: E402
from riptide_sync.exceptions import (  # noqa: E402
    IncompleteStreamError,
    ProtocolViolationError,
)
from riptide_sync.server import Faults  # noqa: E402

UNIT = float(os.environ.get("RIPTIDE_TEST_TIME_UNIT", "1.0"))

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


@pytest.fixture
def make_peer():
    peers: list[Peer] = []

    def make(script=None, **kw):
        peer = Peer(script, **kw)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.stop()


def test_protocol_error_in_first_frame_is_protocol_violation_on_one_connection(make_peer):
    """A masked frame as the server's first frame: ProtocolViolationError (not retried),
    one connection, every time. Failed before: the crawl's send raced the reader's
    teardown and surfaced as a retryable StreamConnectionError ("closed sending to") in
    4-15 of 30 runs, making 2-4 connections."""

    def script(conn: PeerConnection) -> None:
        conn.send_raw(Frame(Opcode.TEXT, b"masked!").serialize(mask=True))
        conn.pump(1 * UNIT)

    for _ in range(12):
        peer = make_peer(script, welcome=False)
        client = RipTideClient(f"http://127.0.0.1:{peer.port}", retry=FAST_RETRY, timeout=5)
        with pytest.raises(IncompleteStreamError) as info:
            list(client.streaming.crawl_websocket(["https://a.example/"]))
        assert isinstance(info.value.__cause__, ProtocolViolationError), repr(info.value.__cause__)
        time.sleep(0.05)
        assert len(peer.connections) == 1
        client.close()
        peer.stop()


def test_summary_short_of_results_resumes_on_a_new_connection(make_server):
    """A summary that counts results never sent: the resume goes out on a new WebSocket,
    not the one that could still deliver them late. Failed before: CrawlSource.close()
    did nothing once the summary had come, and the resume reused the connection."""
    srv = make_server(ping_interval=30.0, faults=Faults(drop_results_for=frozenset(
        {"https://b.example/"})), synthetic_doc_size=100)
    client = RipTideClient(srv.base_url, retry=FAST_RETRY)
    urls = ["https://a.example/", "https://b.example/", "https://c.example/"]
    events = list(client.streaming.crawl_websocket(urls))
    assert sorted(e.data["index"] for e in events if e.event_type == "result") == [0, 1, 2]
    ws = [r for r in srv.request_log if r.transport == "ws"]
    assert [r.urls for r in ws] == [urls, ["https://b.example/"]]
    assert ws[0].connection != ws[1].connection
    client.close()
