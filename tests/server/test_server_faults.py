"""Every fault scenario of riptide_sync.server.Faults does what its docstring says."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
import websocket
from server_helpers import (ndjson, ndjson_lines, parse_sse, sse, urls, ws_connect, ws_crawl, ws_recv, ws_send)

from riptide_sync.server import Faults


def _ws_until_dead(ws):
    """Read messages until the connection drops; return them."""
    received = []
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            received.append(ws_recv(ws))
    return received


def test_fault_drop_after_ws_first_connection_only(make_server):
    """drop_after=2: the first socket dies after 2 results without a Close; the next is fine."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(drop_after=2))
    ws, _ = ws_connect(srv)
    ws_send(ws, "crawl", {"urls": urls(5)})
    received = _ws_until_dead(ws)
    ws.close()
    assert [m["message_type"] for m in received] == ["metadata", "result", "result"]
    ws, _ = ws_connect(srv)
    try:
        assert ws_crawl(ws, urls(5))[-1]["data"]["successful"] == 5
    finally:
        ws.close()


def test_fault_drop_every_ws(make_server):
    """drop_every=2: every connection dies after its 2nd result."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(drop_every=2))
    for _ in range(2):
        ws, _ = ws_connect(srv)
        ws_send(ws, "crawl", {"urls": urls(5)})
        assert len(_ws_until_dead(ws)) == 3
        ws.close()


def test_fault_drop_after_ndjson_and_sse_abort_the_body(make_server):
    """drop_after on HTTP aborts TCP mid-body (no final chunk); the next request completes."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(drop_after=2))
    for call in (ndjson, sse):
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            call(srv, urls(5))
        full = call(srv, urls(5))
        assert full.status_code == 200 and (b'"successful":5' in full.content)


def test_fault_drop_results_for_first_time_only(make_server):
    """Listed URLs lose their result the first time only; the summary still counts them."""
    targets = urls(3)
    srv = make_server(synthetic_doc_size=20, faults=Faults(drop_results_for=frozenset({targets[1]})))
    ws, _ = ws_connect(srv)
    try:
        first = ws_crawl(ws, targets)
        second = ws_crawl(ws, targets)
    finally:
        ws.close()
    assert [m["data"]["index"] for m in first if m["message_type"] == "result"] == [0, 2]
    assert first[-1]["data"]["successful"] == 3
    assert [m["data"]["index"] for m in second if m["message_type"] == "result"] == [0, 1, 2]


def test_fault_drop_summary_first_k(make_server):
    """drop_summary_first=1: the first crawl ends without summary, the second has one."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(drop_summary_first=1))
    first = ndjson_lines(ndjson(srv, urls(2)))
    second = ndjson_lines(ndjson(srv, urls(2)))
    assert "successful" not in first[-1] and len(first) == 3
    assert second[-1]["successful"] == 2


def test_fault_freeze_keeps_tcp_open_and_silent(make_server):
    """freeze_after=1: after one result nothing is sent or answered, but TCP stays open."""
    srv = make_server(synthetic_doc_size=20, ping_interval=0.1, faults=Faults(freeze_after=1))
    ws, _ = ws_connect(srv)
    try:
        ws_send(ws, "crawl", {"urls": urls(3)})
        assert [ws_recv(ws)["message_type"] for _ in range(2)] == ["metadata", "result"]
        ws.settimeout(0.5)
        ws_send(ws, "ping")
        with pytest.raises(websocket.WebSocketTimeoutException):
            while True:
                ws.recv()  # pings would be answered by the library and not returned
        assert ws.connected
    finally:
        ws.shutdown()  # no closing handshake: the server is frozen


def test_fault_malformed_after(make_server):
    """malformed_after=1: one invalid-JSON frame/line/event after the first result, then the rest."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(malformed_after=1))
    ws, _ = ws_connect(srv)
    try:
        ws_send(ws, "crawl", {"urls": urls(2)})
        frames = [ws.recv() for _ in range(5)]
    finally:
        ws.close()
    with pytest.raises(ValueError):
        json.loads(frames[2])
    assert json.loads(frames[-1])["message_type"] == "summary"
    lines = ndjson(srv, urls(2)).content.split(b"\n")
    with pytest.raises(ValueError):
        json.loads(lines[2])
    assert json.loads(lines[-2])["successful"] == 2
    events = parse_sse(sse(srv, urls(2)).text)
    assert [e["json"] is None for e in events].count(True) == 1 and events[-1]["event"] == "complete"


def test_fault_reject_first_http_and_ws_handshake(make_server):
    """reject_first=2: 429 + Retry-After + ApiError for the first two crawl requests, any transport."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(reject_first=2, retry_after=3))
    first = ndjson(srv, urls(1))
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert first.json()["error"]["type"] == "rate_limited"
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(srv.ws_url, timeout=5)
    assert caught.value.status_code == 429
    assert ndjson(srv, urls(1)).status_code == 200
    assert requests.get(srv.base_url + "/healthz", timeout=5).status_code == 200


def test_fault_cut_ndjson_mid_line(make_server):
    """cut_ndjson_after=2: metadata, one result, half a line, clean end; first request only."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(cut_ndjson_after=2))
    cut = ndjson(srv, urls(4))
    assert cut.status_code == 200
    assert not cut.content.endswith(b"\n")
    whole, partial = cut.content.rsplit(b"\n", 1)
    assert len(whole.split(b"\n")) == 2 and partial.startswith(b'{"index":1')
    assert ndjson_lines(ndjson(srv, urls(4)))[-1]["successful"] == 4


def test_fault_send_delay(make_server):
    """send_delay spaces every stream message."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(send_delay=0.05))
    started = time.monotonic()
    assert ndjson_lines(ndjson(srv, urls(3)))[-1]["successful"] == 3
    assert time.monotonic() - started >= 5 * 0.05


def test_fault_backpressure_drop_rules(make_server):
    """backpressure_drop with every send 'slow': after 25 sends everything is dropped (§1.9)."""
    srv = make_server(synthetic_doc_size=20, faults=Faults(backpressure_drop=True, slow_send_threshold=0))
    ws, _ = ws_connect(srv)
    try:
        ws_send(ws, "crawl", {"urls": urls(40)})
        ws_send(ws, "status")  # status is never dropped
        received = []
        while not received or received[-1]["message_type"] != "status":
            received.append(ws_recv(ws))
    finally:
        ws.close()
    kinds = [m["message_type"] for m in received]
    assert kinds == ["metadata"] + ["result"] * 24 + ["status"]


def test_request_log_and_counters(make_server):
    """Each crawl request is logged in order with transport, URLs, options; counters settle."""
    srv = make_server(synthetic_doc_size=20)
    ws, _ = ws_connect(srv)
    try:
        ws_crawl(ws, urls(2), {"cache_mode": "bypass"})
        ws_crawl(ws, [])
        assert srv.counters.ws_open == 1
    finally:
        ws.close()
    ndjson(srv, urls(1))
    log = srv.request_log
    assert [(r.transport, r.urls, r.options, r.accepted) for r in log] == [
        ("ws", urls(2), {"cache_mode": "bypass"}, True), ("ws", [], None, False), ("ndjson", urls(1), None, True)]
    assert log[0].connection == log[1].connection != log[2].connection
    deadline = time.monotonic() + 2
    while (srv.counters.ws_open or srv.counters.streams_open) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (srv.counters.ws_open, srv.counters.ws_accepted, srv.counters.streams_open) == (0, 1, 0)


def test_keepalive_closes_on_missed_pong(make_server):
    """A client that never answers pings is closed with 1011 after pong_timeout (§1.8, local rule)."""
    srv = make_server(ping_interval=0.2, pong_timeout=0.3)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
    try:
        sock.sendall(b"GET /crawl/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        started = time.monotonic()
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 101")
    assert 0.25 < elapsed < 2.5
    assert b"\x88" in data and b"\x03\xf3" in data  # a Close frame carrying code 1011


def test_keepalive_answered_pongs_keep_the_socket(make_server):
    """A client that answers pings (websocket-client does) stays connected past pong_timeout."""
    srv = make_server(ping_interval=0.1, pong_timeout=0.2)
    ws, _ = ws_connect(srv)
    try:
        deadline = time.monotonic() + 0.6
        ws.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                ws.recv()
            except websocket.WebSocketTimeoutException:
                pass
        ws.settimeout(2)
        ws_send(ws, "ping")
        assert ws_recv(ws)["message_type"] == "pong"
    finally:
        ws.close()
