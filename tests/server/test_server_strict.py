"""The local server's defaults match the real server, point by point (issue 11 §2).

Each test names the docs/protocol.md section it checks, and, where a lenient behaviour survives
as a ServerConfig option, shows that the option still gives the old behaviour.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import socket
import time

import requests
import websocket
from riptide_sync.server import demo_urls, wire
from riptide_sync.server.demo_site import DEMO_HOST, page_url
from server_helpers import TIMEOUT, ndjson, ndjson_lines, parse_sse, sse, ws_connect, ws_crawl, ws_send

NINE_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00$")


def _frames_until_summary(ws: websocket.WebSocket) -> list[tuple[int, bytes]]:
    """(opcode, payload) of every frame, control frames included, up to the summary."""
    frames = []
    while True:
        opcode, frame = ws.recv_data_frame(True)
        frames.append((opcode, frame.data))
        if opcode == websocket.ABNF.OPCODE_TEXT and b'"message_type":"summary"' in frame.data:
            return frames


def test_ws_neither_pings_nor_reads_during_a_crawl_section_1_8(make_server):
    """§1.8: the crawl holds the send lock, so no Ping goes out and a client Ping is
    answered only after the summary (§1.3: nothing is read until then)."""
    srv = make_server(ping_interval=0.1, demo_slow_delay=0.8)
    ws = websocket.create_connection(srv.ws_url, timeout=TIMEOUT)
    try:
        assert b"welcome" in ws.recv_data_frame(True)[1].data
        ws_send(ws, "crawl", {"urls": [page_url("slow")], "options": {"cache_mode": "bypass"}})
        ws.ping(b"mid-crawl")
        frames = _frames_until_summary(ws)
        metadata = next(i for i, (op, data) in enumerate(frames) if b"metadata" in data)
        during = frames[metadata + 1:-1]
        assert [op for op, _ in during] == [websocket.ABNF.OPCODE_TEXT]  # the result, nothing else
        after = [ws.recv_data_frame(True) for _ in range(2)]
        assert (websocket.ABNF.OPCODE_PONG, b"mid-crawl") in [(op, f.data) for op, f in after]
    finally:
        ws.close()


def test_ws_lenient_option_answers_pings_mid_crawl_section_1_8(make_server):
    """ping_during_crawl=True (lenient) keeps reading and pinging while the crawl runs."""
    srv = make_server(ping_interval=0.1, demo_slow_delay=0.8, ping_during_crawl=True)
    ws = websocket.create_connection(srv.ws_url, timeout=TIMEOUT)
    try:
        ws.recv_data_frame(True)
        ws_send(ws, "crawl", {"urls": [page_url("slow")], "options": {"cache_mode": "bypass"}})
        ws.ping(b"mid-crawl")
        frames = _frames_until_summary(ws)
        assert (websocket.ABNF.OPCODE_PONG, b"mid-crawl") in frames
        assert sum(op == websocket.ABNF.OPCODE_PING for op, _ in frames) >= 3
    finally:
        ws.close()


def test_ws_missed_pongs_never_close_section_1_8(make_server):
    """§1.8: the server records pongs but never acts on them: no 1011, no close at all."""
    srv = make_server(ping_interval=0.1)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as sock:
        sock.sendall(b"GET /crawl/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        data, deadline = b"", time.monotonic() + 1.2
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            assert chunk, "the server closed a socket whose pongs were missing"
            data += chunk
    assert data.startswith(b"HTTP/1.1 101")
    assert data.count(b"\x89\x0d") >= 5  # Pings with 13-digit epoch-ms payloads, never answered
    assert b"\x88" not in data.split(b"\r\n\r\n", 1)[1]  # and no Close frame


def test_non_2xx_origin_is_a_failed_result_section_2_3(server):
    """§1.6/§2.3: a 404 page is a failed result with the fetch error wording; the demo
    reports 35 successful and 1 failed."""
    missing = page_url("missing")
    lines = ndjson_lines(ndjson(server, demo_urls(), {"cache_mode": "bypass"}))
    by_url = {line["result"]["url"]: line["result"] for line in lines if "index" in line}
    failed = by_url[missing]
    assert (failed["status"], failed["gate_decision"], failed["document"]) == (0, "failed", None)
    assert failed["error"]["message"] == (f"Processing failed for {missing}: Failed to fetch content from "
                                          f"{missing}: Fetch failed: HTTP error: 404 Not Found")
    assert (lines[-1]["successful"], lines[-1]["failed"]) == (35, 1)


def test_lenient_origin_errors_succeed(make_server):
    """origin_errors_succeed=True (lenient): the 404 page is a success with status 404."""
    srv = make_server(origin_errors_succeed=True)
    result = ndjson_lines(ndjson(srv, [page_url("missing")]))[1]["result"]
    assert result["status"] == 404 and result["error"] is None and result["document"]["title"]


def test_fetch_error_wording_section_5_6(make_server):
    """§5.6 display texts: an unreachable origin is 'Failed to fetch content from <url>:
    Fetch failed: Request failed: error sending request for url (<url>)'; a slow one is
    'Operation timed out: content_fetch - Timeout fetching <url>'."""
    srv = make_server(allow_private=True, fetch_timeout=0.3, demo_slow_delay=1.0)
    refused, slow = "http://127.0.0.1:1/x", page_url("slow")
    lines = ndjson_lines(ndjson(srv, [refused, slow]))
    messages = {line["result"]["url"]: line["result"]["error"]["message"] for line in lines if "index" in line}
    assert messages[refused] == (f"Processing failed for {refused}: Failed to fetch content from {refused}: "
                                 f"Fetch failed: Request failed: error sending request for url ({refused})")
    assert messages[slow] == (f"Processing failed for {slow}: Operation timed out: content_fetch - "
                              f"Timeout fetching {slow}")


def test_batch_defaults_to_enhanced_pipeline_section_4(make_server):
    """§4: status 200 whatever the origin said, riptide:v1:enhanced:<url> keys, placeholder
    documents, gates from body size; a fetch failure is a successful 'unknown' entry."""
    srv = make_server(allow_private=True)
    article, missing, refused = srv.article_urls()[0], page_url("missing"), "http://127.0.0.1:1/x"
    response = requests.post(srv.base_url + "/crawl", json={"urls": [article, missing, refused]}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert (body["total_urls"], body["successful"], body["failed"], body["from_cache"]) == (3, 3, 0, 0)
    first, second, third = body["results"]
    for entry, url in zip(body["results"], [article, missing, refused]):
        assert entry["status"] == 200 and entry["error"] is None and entry["from_cache"] is False
        assert entry["cache_key"] == f"riptide:v1:enhanced:{url}"
    doc = first["document"]
    assert doc["title"] == "Extracted Title" and doc["language"] == "en" and doc["reading_time"] == 5
    assert doc["text"] == doc["markdown"] and len(doc["text"]) == 1000 and doc["text"].startswith("<!doctype html>")
    assert first["quality_score"] == 0.5 and first["gate_decision"] == "probes_first"
    assert second["document"]["title"] == "Extracted Title"  # the 404 body, status ignored
    assert (third["gate_decision"], third["quality_score"], third["processing_time_ms"]) == ("unknown", 0.0, 0)
    assert third["document"]["text"] == "" and third["document"]["title"] is None
    gates = body["statistics"]["gate_decisions"]
    assert gates["probes_first"] + gates["headless"] + gates["raw"] == 2


def test_compression_for_clients_that_accept_it_section_2_2(server):
    """§0.2/§2.2: NDJSON, batch and /healthz are gzipped for a client that accepts gzip;
    SSE never is, and identity gets identity."""
    gz = {"Accept-Encoding": "gzip"}
    raw = requests.get(server.base_url + "/healthz", headers=gz, timeout=TIMEOUT, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read())[:1] == b"{"
    target = server.article_urls()[:1]
    stream = ndjson(server, target, headers=gz)
    assert stream.headers["Content-Encoding"] == "gzip" and ndjson_lines(stream)[-1]["successful"] == 1
    batch = requests.post(server.base_url + "/crawl", json={"urls": target}, headers=gz, timeout=TIMEOUT)
    assert batch.headers["Content-Encoding"] == "gzip" and batch.json()["successful"] == 1
    events = sse(server, target, headers=gz)
    assert "Content-Encoding" not in events.headers and parse_sse(events.text)[-1]["event"] == "complete"
    plain = ndjson(server, target, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    refused = ndjson(server, target, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_lenient_no_compression(make_server):
    """compression=False (lenient): nothing is compressed."""
    srv = make_server(compression=False)
    response = requests.get(srv.base_url + "/healthz", headers={"Accept-Encoding": "gzip"}, timeout=TIMEOUT)
    assert "Content-Encoding" not in response.headers


def test_timestamps_have_nine_fraction_digits_section_0_2(server):
    """§0.2: chrono's to_rfc3339() keeps nanoseconds: 9 digits (fewer only when exact)."""
    assert wire.rfc3339_ns(1_762_516_800_104_881_123) == "2025-11-07T12:00:00.104881123+00:00"
    assert wire.rfc3339_ns(1_762_516_800_104_881_000) == "2025-11-07T12:00:00.104881+00:00"
    assert wire.rfc3339_ns(1_762_516_800_000_000_000) == "2025-11-07T12:00:00+00:00"
    stamps = []
    for _ in range(5):
        ws, welcome = ws_connect(server)
        ws.close()
        stamps += [welcome["timestamp"], welcome["data"]["server_time"]]
    assert sum(bool(NINE_DIGITS.match(s)) for s in stamps) >= 8  # 1 in 1000 ends in 000


def _parse(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp[:26] + "+00:00").timestamp()


def test_estimated_completion_is_now_at_100_percent_section_2_3(server):
    """§2.3/§3: at 100% estimated_completion is the current time, not null."""
    targets = server.article_urls()[:15]
    progress = [line for line in ndjson_lines(ndjson(server, targets)) if "operation_id" in line]
    assert progress[-1]["items_completed"] == 15
    assert abs(_parse(progress[-1]["estimated_completion"]) - time.time()) < 30
    status = [e for e in parse_sse(sse(server, server.article_urls()).text) if e.get("event") == "status"]
    assert status[-1]["json"]["items_remaining"] == 0 and status[-1]["json"]["estimated_completion"]


def test_private_and_blocked_checks_apply_on_loopback_section_6_1(make_server, server):
    """§6.1 rules 6 and 7 apply on a loopback-bound server too; allow_private turns them off."""
    own = server.base_url + "/demo/"
    ws, _ = ws_connect(server)
    try:
        reply = ws_crawl(ws, [own])
    finally:
        ws.close()
    assert reply[-1]["data"] == {"error_type": "validation_error", "message":
                                 f"Invalid URL: {own} - URL 1 validation failed: URL contains blocked pattern: "
                                 "127.0.0.1"}
    lenient = make_server(allow_private=True)
    lines = ndjson_lines(ndjson(lenient, [lenient.base_url + "/demo/"]))
    assert lines[-1]["successful"] == 1


def test_demo_site_lives_under_a_reserved_host(make_server):
    """The demo URLs name demo.riptide.test, not the server's address, so one list works
    against every local server, whatever its port, with the strict checks on."""
    urls = demo_urls()
    assert len(urls) == 36 and {u.split("/")[2] for u in urls} == {DEMO_HOST}
    assert demo_urls("http://127.0.0.1:9999") == urls  # the old argument is accepted and ignored
    for srv in (make_server(), make_server()):
        lines = ndjson_lines(ndjson(srv, urls[:3]))
        assert lines[-1]["successful"] == 3
