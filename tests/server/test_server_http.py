"""Batch crawl (§4), health (§7.1), validation (§6), auth (§7.2) and rate limits (§7.3)."""

from __future__ import annotations

import json

import socket

import pytest
import requests
import websocket
from riptide_sync.server.demo_site import page_url
from server_helpers import (DOC_FIELDS, RESULT_FIELDS, RFC3339, post_bytes, raw_http, ws_connect, ws_crawl,
                            ws_recv, ws_send)


def test_healthz_shape(server):
    """GET /healthz answers 200 with the §7.1 report; HEAD works too."""
    response = requests.get(server.base_url + "/healthz", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["status", "version", "timestamp", "uptime", "dependencies", "metrics"]
    assert body["status"] == "healthy" and RFC3339.match(body["timestamp"]) and isinstance(body["uptime"], int)
    deps = body["dependencies"]
    assert deps["headless_service"] is None and deps["spider_engine"] is None
    assert list(deps["redis"]) == ["status", "message", "response_time_ms", "last_check"]
    assert deps["worker_service"]["message"] == "Worker service operational"
    assert len(body["metrics"]["load_average"]) == 3
    assert requests.head(server.base_url + "/healthz", timeout=5).status_code == 200


def test_batch_response_shape(make_server):
    """Standard pipeline (lenient option): request order, origin status, cache keys, statistics (§4)."""
    server = make_server(batch_pipeline="standard", allow_private=True, origin_errors_succeed=True)
    targets = [server.article_urls()[0], page_url("missing"), "http://127.0.0.1:1/x"]
    response = requests.post(server.base_url + "/crawl", json={"urls": targets, "options": {"cache_mode": "bypass"}},
                             timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["total_urls", "successful", "failed", "from_cache", "results", "statistics"]
    assert (body["total_urls"], body["successful"], body["failed"], body["from_cache"]) == (3, 2, 1, 0)
    assert [r["url"] for r in body["results"]] == targets
    ok, missing, failed = body["results"]
    assert list(ok) == RESULT_FIELDS and list(ok["document"]) == DOC_FIELDS
    assert ok["status"] == 200 and ok["cache_key"].startswith("riptide:v1:bypass:") and len(ok["cache_key"]) == 34
    assert missing["status"] == 404 and missing["error"] is None  # origin_errors_succeed: a fetched page
    assert failed == {"url": targets[2], "status": 0, "from_cache": False, "gate_decision": "failed",
                      "quality_score": 0.0, "processing_time_ms": 0, "document": None,
                      "error": {"error_type": "pipeline_error", "message": "Failed to process URL",
                                "retryable": True}, "cache_key": ""}
    stats = body["statistics"]
    assert list(stats) == ["total_processing_time_ms", "avg_processing_time_ms", "gate_decisions", "cache_hit_rate"]
    assert list(stats["gate_decisions"]) == ["raw", "probes_first", "headless", "cached"]
    assert isinstance(stats["avg_processing_time_ms"], float) and stats["cache_hit_rate"] == 0.0
    alias = requests.post(server.base_url + "/api/v1/crawl", json={"urls": targets[:1]}, timeout=10)
    assert alias.status_code == 200 and alias.json()["successful"] == 1


VALIDATION_CASES = [
    ([], "validation_error", "Validation error: At least one URL is required"),
    (["https://e.org/"] * 101, "validation_error", "Validation error: Too many URLs: 101 (maximum: 100)"),
    (["https://e.org/" + "a" * 2040], "invalid_url",
     "Invalid URL: https://e.org/{a} - URL 1 validation failed: URL length 2054 exceeds maximum 2048"),
    (["not a url"], "invalid_url",
     "Invalid URL: not a url - URL 1 validation failed: Invalid URL format: relative URL without a base"),
    (["https://e.org/", "ftp://example.org/"], "invalid_url",
     "Invalid URL: ftp://example.org/ - URL 2 validation failed: Unsupported URL scheme: ftp"),
    (["https://example.org/v10.2/"], "invalid_url",
     "Invalid URL: https://example.org/v10.2/ - URL 1 validation failed: URL contains blocked pattern: 10."),
    (["http://localhost:8080/"], "invalid_url",
     "Invalid URL: http://localhost:8080/ - URL 1 validation failed: URL contains blocked pattern: localhost"),
    (["http://127.0.0.2/"], "invalid_url",
     "Invalid URL: http://127.0.0.2/ - URL 1 validation failed: Private or local IP addresses are not allowed: "
     "127.0.0.2"),
    (["http://[fe80::2]/"], "invalid_url",
     "Invalid URL: http://[fe80::2]/ - URL 1 validation failed: Private or local IP addresses are not allowed: "
     "[fe80::2]"),
    (["https://e.org/" + "%20" * 21], "invalid_url",
     "Invalid URL: https://e.org/{p} - URL 1 has excessive URL encoding"),
    (["https://e.org/app.json"], "invalid_url",
     "Invalid URL: https://e.org/app.json - URL 1 contains suspicious file extension"),
]


@pytest.fixture(scope="module")
def public_server():
    """A server that applies the private/loopback rules (allow_private off)."""
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(allow_private=False)) as running:
        yield running


@pytest.mark.parametrize(("urls", "kind", "message"), VALIDATION_CASES)
def test_validation_rules_on_every_surface(public_server, urls, kind, message):
    """Each §6.1 rule gives its exact message: batch 400, WS error frame, SSE 500 (§6.2)."""
    message = message.replace("{a}", "a" * 2040).replace("{p}", "%20" * 21)
    base = public_server.base_url
    batch = requests.post(base + "/crawl", json={"urls": urls}, timeout=5)
    assert batch.status_code == 400
    assert batch.json() == {"error": {"type": kind, "message": message, "retryable": False, "status": 400}}
    events = requests.post(base + "/crawl/sse", json={"urls": urls}, timeout=5)
    assert events.status_code == 500
    assert json.loads(events.text.split("data: ", 1)[1])["error"]["message"] == message
    ws, _ = ws_connect(public_server)
    try:
        assert ws_crawl(ws, urls)[0]["data"] == {"error_type": "validation_error", "message": message}
        ws_send(ws, "ping")
        assert ws_recv(ws)["message_type"] == "pong"  # still serving
    finally:
        ws.close()
    assert requests.get(base + "/healthz", timeout=5).status_code == 200


def test_max_urls_is_configurable(make_server):
    """max_urls_per_request raises rule 2's limit."""
    srv = make_server(synthetic_doc_size=10, max_urls_per_request=150)
    response = requests.post(srv.base_url + "/crawl", json={"urls": [f"https://e.org/{i}" for i in range(150)]},
                             timeout=10)
    assert response.status_code == 200 and response.json()["successful"] == 150
    too_many = requests.post(srv.base_url + "/crawl", json={"urls": ["https://e.org/"] * 151}, timeout=5)
    assert too_many.json()["error"]["message"] == "Validation error: Too many URLs: 151 (maximum: 150)"


def test_loopback_server_allows_private_targets(server):
    """Bound to loopback, rules 6-7 are off by default, so the demo site can be crawled."""
    response = requests.post(server.base_url + "/crawl", json={"urls": server.article_urls()[:1]}, timeout=10)
    assert response.status_code == 200 and response.json()["successful"] == 1


@pytest.mark.parametrize("path", ["/crawl", "/crawl/stream", "/crawl/sse"])
def test_framework_rejections(server, path):
    """415 (wrong or missing Content-Type), 400 (bad JSON), 422 (wrong shape) as axum (§6.4)."""
    url = server.base_url + path
    wrong_type = requests.post(url, data=b'{"urls":[]}', headers={"Content-Type": "text/plain"}, timeout=5)
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["type"] == "unsupported_media_type"
    assert wrong_type.json()["error"]["received_content_type"] == "text/plain"
    missing = raw_http(server, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close"
                               f"\r\n\r\n{{}}".encode())
    assert missing.startswith(b"HTTP/1.1 415") and missing.endswith(b"Expected request with `Content-Type: "
                                                                     b"application/json`")
    bad_json = requests.post(url, data=b'{"urls": [', headers={"Content-Type": "application/json"}, timeout=5)
    assert bad_json.status_code == 400
    assert bad_json.text.startswith("Failed to parse the request body as JSON: ")
    for body in ({}, {"urls": "x"}, {"urls": [1]}, {"urls": ["https://e.org/"], "options": {"render_mode": "pdf"}},
                 {"urls": ["https://e.org/"], "options": {"cache_mode": None}},
                 {"urls": ["https://e.org/"], "options": {"chunking_config": {"enabled": True}}}, [1]):
        shape = requests.post(url, json=body, timeout=5)
        assert shape.status_code == 422, body
        assert shape.text.startswith("Failed to deserialize the JSON body into the target type: ")
    ignored = requests.post(url, json={"urls": server.article_urls()[:1], "extra": 1,
                                       "options": {"timeout_secs": 30, "render_mode": "Static"}}, timeout=10)
    assert ignored.status_code == 200  # unknown fields are ignored (§0.2)


def test_payload_limits_answer_413_before_reading(server):
    """Content-Length over 50 MiB and over 10 MiB get their two 413 bodies (§6.4), unread."""
    for length, expected in ((60 * 1024 * 1024, b'"error":"PayloadTooLarge"'),
                             (11 * 1024 * 1024, b'"type":"payload_too_large"')):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            # Headers only: the answer must come without the body being sent.
            sock.sendall(f"POST /crawl HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {length}\r\n\r\n".encode())
            reply = b""
            while not reply.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
        assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
        assert expected in reply and f'"received_bytes":{length}'.encode() in reply
    big = requests.post(server.base_url + "/crawl", data=b"[" + b" " * (3 * 1024 * 1024) + b"]",
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert big.status_code == 413  # over axum's 2 MiB Json limit: plain text
    assert requests.get(server.base_url + "/healthz", timeout=5).status_code == 200


def test_method_and_path_rejections(server):
    """405 with Allow and body; unknown paths 404 JSON; wrong routes from §0.3 are 404."""
    get = requests.get(server.base_url + "/crawl", timeout=5)
    assert get.status_code == 405 and get.headers["Allow"] == "POST"
    assert get.json() == {"error": {"type": "method_not_allowed", "message": "Validation error: HTTP method not "
                                    "allowed. Allowed methods: POST", "retryable": False, "status": 405,
                                    "allowed_methods": ["POST"]}}
    post_ws = requests.post(server.base_url + "/crawl/ws", json={}, timeout=5)
    assert post_ws.status_code == 405 and post_ws.headers["Allow"] == "GET"
    for path in ("/health", "/ws/crawl", "/api/v1/stream/crawl", "/nope"):
        response = requests.get(server.base_url + path, timeout=5)
        assert response.status_code == 404, path
        assert response.json() == {"error": {"type": "not_found", "message": "Resource not found: endpoint",
                                             "retryable": False, "status": 404}}


def test_auth_lockout_after_repeated_failures(make_server):
    """With the lockout on, 3 failures block the IP (429 + Retry-After, even for a valid key);
    other IPs and a success before the limit are unaffected (§7.2)."""
    srv = make_server(api_keys=("secret-1",), auth_lockout_attempts=3)
    url, body = srv.base_url + "/crawl", {"urls": ["https://e.org/"]}
    attacker = {"X-Forwarded-For": "10.1.1.1", "X-API-Key": "wrong"}
    for _ in range(3):
        assert requests.post(url, json=body, headers=attacker, timeout=5).status_code == 401
    blocked = requests.post(url, json={"urls": []}, headers={"X-Forwarded-For": "10.1.1.1",
                                                              "X-API-Key": "secret-1"}, timeout=5)
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "Too Many Requests"
    assert int(blocked.headers["Retry-After"]) == blocked.json()["retry_after_seconds"] >= 1
    other = requests.post(url, json={"urls": []}, headers={"X-Forwarded-For": "10.2.2.2",
                                                            "X-API-Key": "secret-1"}, timeout=5)
    assert other.status_code == 400  # past auth: the empty list fails validation
    assert requests.get(srv.base_url + "/healthz", headers=attacker, timeout=5).status_code == 200


def test_auth_rejects_missing_and_invalid_keys(make_server):
    """401 with WWW-Authenticate and a string error; X-API-Key and Bearer both work (§7.2)."""
    srv = make_server(api_keys=("secret-1",))
    body = {"urls": srv.article_urls()[:1]}
    missing = requests.post(srv.base_url + "/crawl", json=body, timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json() == {"error": "Unauthorized", "message": "Missing API key"}
    wrong = requests.post(srv.base_url + "/crawl", json=body, headers={"X-API-Key": "nope"}, timeout=5)
    assert wrong.json() == {"error": "Unauthorized", "message": "Invalid API key"}
    assert requests.post(srv.base_url + "/crawl", json=body, headers={"X-API-Key": "secret-1"},
                         timeout=10).status_code == 200
    assert requests.post(srv.base_url + "/crawl/stream", json=body, headers={"Authorization": "Bearer secret-1"},
                         timeout=10).status_code == 200
    assert requests.get(srv.base_url + "/healthz", timeout=5).status_code == 200  # public
    assert requests.get(srv.base_url + "/nope", timeout=5).status_code == 401  # auth before 404


def test_auth_on_websocket_handshake(make_server):
    """The WS handshake needs the key; without it the upgrade is refused with 401."""
    srv = make_server(api_keys=("secret-1",))
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(srv.ws_url, timeout=5)
    assert caught.value.status_code == 401
    for header in ("X-API-Key: secret-1", "Authorization: Bearer secret-1"):
        ws, _ = ws_connect(srv, header=[header])
        ws.close()


def test_rate_limit_answers_429(make_server):
    """Above the per-client limit: 429, Retry-After and the ApiError body (§7.3)."""
    srv = make_server(rate_limit=2)
    headers = {"X-Client-ID": "tester"}
    codes = [requests.get(srv.base_url + "/healthz", headers=headers, timeout=5).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = requests.get(srv.base_url + "/healthz", headers=headers, timeout=5)
    assert int(limited.headers["Retry-After"]) > 0
    error = limited.json()["error"]
    assert (error["type"], error["status"], error["retryable"]) == ("rate_limited", 429, False)
    assert error["message"].startswith("Rate limit exceeded: ")
    assert requests.get(srv.base_url + "/healthz", headers={"X-Client-ID": "other"}, timeout=5).status_code == 200


def test_server_keeps_serving_after_garbage(server):
    """Raw garbage on the socket does not break the server."""
    raw_http(server, b"\x00\x01garbage\r\n\r\n", timeout=2)
    raw_http(server, post_bytes("/crawl", b"{"), timeout=2)
    assert requests.get(server.base_url + "/healthz", timeout=5).status_code == 200
