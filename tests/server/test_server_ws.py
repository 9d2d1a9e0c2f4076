"""The WebSocket surface, GET /crawl/ws (docs/protocol.md §1), with raw websocket-client."""

from __future__ import annotations

import json
import time

import websocket
from riptide_sync.server.demo_site import page_url
from server_helpers import (DOC_FIELDS, RESULT_FIELDS, RFC3339, ws_connect, ws_crawl, ws_recv, ws_send)


def test_ws_welcome_shape(server):
    """The welcome arrives first, with sorted data keys and a +00:00 timestamp (§1.3, §1.6)."""
    ws, welcome = ws_connect(server)
    try:
        assert list(welcome) == ["message_type", "data", "timestamp"]
        data = welcome["data"]
        assert list(data) == sorted(data)
        assert data["protocol_version"] == "1.0"
        assert data["supported_operations"] == ["crawl", "ping", "status"]
        assert RFC3339.match(data["server_time"]) and RFC3339.match(welcome["timestamp"])
        assert len(data["session_id"]) == 36
    finally:
        ws.close()


def test_ws_crawl_message_shapes(server):
    """metadata, one result per URL with index and progress, then summary (§1.4, §1.6)."""
    urls = server.article_urls()[:3]
    ws, welcome = ws_connect(server)
    try:
        messages = ws_crawl(ws, urls, {"cache_mode": "bypass"})
    finally:
        ws.close()
    kinds = [m["message_type"] for m in messages]
    assert kinds == ["metadata", "result", "result", "result", "summary"]
    meta = messages[0]["data"]
    assert meta == {"session_id": welcome["data"]["session_id"], "stream_type": "crawl",
                    "timestamp": meta["timestamp"], "total_urls": 3}
    seen = set()
    for n, message in enumerate(messages[1:4], start=1):
        data = message["data"]
        assert list(data) == ["index", "progress", "result"]
        assert data["progress"] == {"completed": n, "success_rate": 1.0, "total": 3}
        result = data["result"]
        assert sorted(result) == sorted(RESULT_FIELDS) and list(result) == sorted(result)
        assert result["url"] == urls[data["index"]]
        assert result["status"] == 200 and result["error"] is None and result["from_cache"] is False
        assert result["gate_decision"] in ("raw", "probes_first", "headless")
        assert isinstance(result["quality_score"], float)
        assert result["cache_key"].startswith("riptide:v1:bypass:")
        assert sorted(result["document"]) == sorted(DOC_FIELDS)
        assert isinstance(result["document"]["quality_score"], int)
        seen.add(data["index"])
    assert seen == {0, 1, 2}
    summary = messages[-1]["data"]
    assert list(summary) == ["failed", "successful", "total_processing_time_ms", "total_urls"]
    assert (summary["successful"], summary["failed"], summary["total_urls"]) == (3, 0, 3)


def test_ws_failed_url_shape(server):
    """A URL that cannot be fetched gives the fixed §1.6 failure result, not an error."""
    bad = page_url("missing")  # a 404 is a failed fetch (§1.6)
    ws, _ = ws_connect(server)
    try:
        messages = ws_crawl(ws, [bad], {"cache_mode": "bypass"})
    finally:
        ws.close()
    result = messages[1]["data"]["result"]
    assert result == {"cache_key": "", "document": None,
                      "error": {"error_type": "processing_error", "message": "Failed to process URL",
                                "retryable": True},
                      "from_cache": False, "gate_decision": "failed", "processing_time_ms": 0,
                      "quality_score": 0.0, "status": 0, "url": bad}
    assert messages[1]["data"]["progress"]["success_rate"] == 0.0
    assert messages[-1]["data"]["failed"] == 1


def test_ws_results_arrive_in_completion_order(make_server):
    """A slow URL listed first completes last; index still names its request position."""
    srv = make_server(demo_slow_delay=0.4)
    urls = [page_url("slow"), srv.article_urls()[0]]
    ws, _ = ws_connect(srv)
    try:
        messages = ws_crawl(ws, urls, {"cache_mode": "bypass"})
    finally:
        ws.close()
    assert [m["data"]["index"] for m in messages[1:3]] == [1, 0]


def test_ws_ping_status_and_unknown_request(server):
    """ping -> pong, status counts messages sent before it, anything else -> unknown_request."""
    ws, welcome = ws_connect(server)
    session = welcome["data"]["session_id"]
    try:
        ws_send(ws, "ping")
        pong = ws_recv(ws)
        assert pong["message_type"] == "pong"
        assert pong["data"]["session_id"] == session and RFC3339.match(pong["data"]["timestamp"])
        ws_send(ws, "status")
        status = ws_recv(ws)
        assert status["message_type"] == "status"
        assert list(status["data"]) == ["backpressure_count", "connected_duration_ms", "is_healthy",
                                        "message_count", "session_id"]
        assert status["data"]["message_count"] == 2  # welcome + pong
        assert status["data"]["is_healthy"] is True and status["data"]["backpressure_count"] == 0
        ws_send(ws, "subscribe")
        error = ws_recv(ws)
        assert error == {"message_type": "error", "data": {"error_type": "unknown_request",
                                                           "message": "Unknown request type: subscribe"},
                         "timestamp": error["timestamp"]}
    finally:
        ws.close()


def test_ws_malformed_input_is_silent(server):
    """Bad JSON, missing data, wrong types, bad enums and binary frames get no reply (§1.5)."""
    ws, _ = ws_connect(server)
    try:
        for frame in ["not json", '{"request_type":"ping"}', '{"request_type":5,"data":{}}', "[1,2]",
                      '{"request_type":"crawl","data":{}}', '{"request_type":"crawl","data":{"urls":"x"}}',
                      '{"request_type":"crawl","data":{"urls":[1]}}',
                      '{"request_type":"crawl","data":{"urls":["https://e.org/"],"options":{"render_mode":"static"}}}',
                      '{"request_type":"crawl","data":{"urls":["https://e.org/"],"options":{"cache_mode":null}}}',
                      '{"request_type":"crawl","data":{"urls":["https://e.org/"],"options":{"concurrency":"4"}}}']:
            ws.send(frame)
        ws.send_binary(b'{"request_type":"ping","data":{}}')
        ws_send(ws, "ping")
        reply = ws_recv(ws)  # The first reply is the pong: nothing before it was answered.
        assert reply["message_type"] == "pong"
    finally:
        ws.close()


def test_ws_validation_errors(server):
    """Each §6.1 failure is one validation_error message; the socket keeps working after it."""
    cases = [
        ([], "Validation error: At least one URL is required"),
        (["https://e.org/"] * 101, "Validation error: Too many URLs: 101 (maximum: 100)"),
        (["ftp://example.org/"], "Invalid URL: ftp://example.org/ - URL 1 validation failed: "
                                 "Unsupported URL scheme: ftp"),
    ]
    ws, _ = ws_connect(server)
    try:
        for urls, message in cases:
            reply = ws_crawl(ws, urls)
            assert len(reply) == 1
            assert reply[0]["data"] == {"error_type": "validation_error", "message": message}
        ws_send(ws, "ping")
        assert ws_recv(ws)["message_type"] == "pong"
    finally:
        ws.close()


def test_ws_several_crawls_share_one_socket(server):
    """The socket stays open after summary; later crawls keep the session id (§1.3)."""
    urls = server.article_urls()[:2]
    ws, welcome = ws_connect(server)
    try:
        first = ws_crawl(ws, urls)
        second = ws_crawl(ws, urls[:1])
        ws_send(ws, "status")
        status = ws_recv(ws)
    finally:
        ws.close()
    assert first[-1]["message_type"] == second[-1]["message_type"] == "summary"
    assert second[0]["data"]["session_id"] == welcome["data"]["session_id"]
    assert status["data"]["message_count"] == 1 + len(first) + len(second)


def test_ws_requests_answered_in_order(make_server):
    """A ping sent during a crawl is answered after that crawl's summary (§1.3 point 3)."""
    srv = make_server(demo_slow_delay=0.3)
    ws, _ = ws_connect(srv)
    try:
        ws_send(ws, "crawl", {"urls": [page_url("slow")]})
        ws_send(ws, "ping")
        kinds = [ws_recv(ws)["message_type"] for _ in range(4)]
    finally:
        ws.close()
    assert kinds == ["metadata", "result", "summary", "pong"]


def test_ws_answers_control_pings_during_a_crawl_when_lenient(make_server):
    """With ping_during_crawl (lenient), a client Ping is answered while a crawl is running."""
    srv = make_server(demo_slow_delay=1.0, ping_during_crawl=True)
    ws, _ = ws_connect(srv)
    try:
        ws_send(ws, "crawl", {"urls": [page_url("slow")]})
        assert ws_recv(ws)["message_type"] == "metadata"
        started = time.monotonic()
        ws.ping(b"during-crawl")
        while True:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"during-crawl":
                break
        assert time.monotonic() - started < 0.8
        assert ws_recv(ws)["message_type"] == "result"
    finally:
        ws.close()


def test_ws_server_pings_carry_epoch_ms(make_server):
    """The first Ping follows the welcome at once; its payload is epoch milliseconds (§1.8)."""
    srv = make_server(ping_interval=0.2)
    ws = websocket.create_connection(srv.ws_url, timeout=2, skip_utf8_validation=True)
    try:
        ws_opcode, _ = ws.recv_data(control_frame=True)
        assert ws_opcode == websocket.ABNF.OPCODE_TEXT
        pings = []
        while len(pings) < 2:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_PING:
                pings.append(int(frame.data))
                ws.pong(frame.data)
        assert abs(pings[0] / 1000 - time.time()) < 5
        assert 100 <= pings[1] - pings[0] <= 1000
    finally:
        ws.close()


def test_ws_data_keys_sorted_recursively(server):
    """Every object inside data has sorted keys, like serde_json's json! (§0.2)."""
    ws, _ = ws_connect(server)
    try:
        ws_send(ws, "crawl", {"urls": server.article_urls()[:1]})
        raw = [ws.recv() for _ in range(3)][1]
    finally:
        ws.close()

    def check(obj):
        if isinstance(obj, dict):
            assert list(obj) == sorted(obj)
            for value in obj.values():
                check(value)
        elif isinstance(obj, list):
            for value in obj:
                check(value)

    check(json.loads(raw)["data"])


def test_ws_synthetic_first_result_is_written_alone(make_server, monkeypatch):
    """In synthetic mode the first result frame is written at once, the rest in batches of
    up to 64: time to first result must not wait for 63 more frames (4 MB at 64 KB
    documents). Failed before: the 5 frames went out in one write."""
    from riptide_sync.server import ws as ws_module

    writes = []
    real = ws_module.WsConnection._write_batch

    async def write_batch(self, transport, batch):
        writes.append(len(batch) // 2)
        await real(self, transport, batch)

    monkeypatch.setattr(ws_module.WsConnection, "_write_batch", write_batch)
    srv = make_server(synthetic_doc_size=100)
    sock, _ = ws_connect(srv)
    try:
        messages = ws_crawl(sock, [f"https://example.com/page/{i}" for i in range(5)])
    finally:
        sock.close()
    assert [m["message_type"] for m in messages].count("result") == 5
    assert writes == [1, 4]
