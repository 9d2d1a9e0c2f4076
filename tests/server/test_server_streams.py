"""NDJSON (docs/protocol.md §2, variant A) and SSE (§3) over raw requests."""

from __future__ import annotations

import json
import time

import requests
from riptide_sync.server.demo_site import page_url
from server_helpers import (DOC_FIELDS, RESULT_FIELDS, RFC3339, ndjson, ndjson_lines, parse_sse, sse, urls)


def test_ndjson_line_shapes(server):
    """metadata, results, summary: untagged lines with the §2.3 keys in struct order."""
    targets = server.article_urls()[:3]
    response = ndjson(server, targets, {"cache_mode": "bypass"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Cache-Control"] == "no-cache"
    lines = ndjson_lines(response)
    meta, results, summary = lines[0], lines[1:4], lines[4]
    assert list(meta) == ["total_urls", "request_id", "timestamp", "stream_type"]
    assert meta["request_id"] == response.headers["X-Request-ID"] and meta["stream_type"] == "crawl"
    assert RFC3339.match(meta["timestamp"])
    for n, line in enumerate(results, start=1):
        assert list(line) == ["index", "result", "progress"]
        assert list(line["result"]) == RESULT_FIELDS
        assert list(line["result"]["document"]) == DOC_FIELDS
        assert line["progress"] == {"completed": n, "total": 3, "success_rate": 1.0}
        assert line["result"]["url"] == targets[line["index"]]
    assert list(summary) == ["total_urls", "successful", "failed", "from_cache", "total_processing_time_ms",
                             "cache_hit_rate"]
    assert (summary["successful"], summary["failed"], summary["from_cache"]) == (3, 0, 0)
    assert len(lines) == 5


def test_ndjson_progress_lines_every_five(make_server):
    """With more than 10 URLs a progress line follows each 5th result (§2.3)."""
    srv = make_server(synthetic_doc_size=100)
    lines = ndjson_lines(ndjson(srv, urls(12)))
    kinds = ["progress" if "operation_id" in line else "result" if "index" in line else "other" for line in lines]
    assert kinds == ["other"] + ["result"] * 5 + ["progress"] + ["result"] * 5 + ["progress"] + \
        ["result"] * 2 + ["other"]
    progress = lines[6]
    assert list(progress) == ["operation_id", "operation_type", "started_at", "current_phase",
                              "progress_percentage", "items_completed", "items_total", "estimated_completion",
                              "current_item"]
    assert progress["operation_id"] == "crawl_stream" and progress["operation_type"] == "batch_crawl"
    assert progress["items_completed"] == 5 and progress["items_total"] == 12
    assert abs(progress["progress_percentage"] - 5 * 100 / 12) < 1e-9
    assert progress["current_item"] == lines[5]["result"]["url"]
    assert ndjson_lines(ndjson(srv, urls(10)))[-1]["successful"] == 10  # 10 URLs: no progress lines
    assert len(ndjson_lines(ndjson(srv, urls(10)))) == 12


def test_ndjson_failure_names_url_and_cause(server):
    """A failed URL's message is 'Processing failed for <url>: <text>' with a real time (§2.3)."""
    bad = page_url("missing")
    lines = ndjson_lines(ndjson(server, [bad]))
    result = lines[1]["result"]
    assert result["status"] == 0 and result["gate_decision"] == "failed" and result["document"] is None
    assert result["error"]["error_type"] == "processing_error" and result["error"]["retryable"] is True
    assert result["error"]["message"] == (f"Processing failed for {bad}: Failed to fetch content from {bad}: "
                                          "Fetch failed: HTTP error: 404 Not Found")
    assert result["cache_key"] == ""
    assert isinstance(result["processing_time_ms"], int)
    assert lines[-1]["failed"] == 1


def test_ndjson_count_checks_only(server):
    """Variant A: empty and >1000 URLs are 400 {"error": str}; bad URLs fail per line (§2.1)."""
    empty = ndjson(server, [])
    assert empty.status_code == 400 and empty.json() == {"error": "urls list cannot be empty"}
    many = ndjson(server, ["https://e.org/"] * 1001)
    assert many.status_code == 400 and many.json() == {"error": "urls list cannot exceed 1000 items"}
    lines = ndjson_lines(ndjson(server, ["ftp://example.org/"]))
    assert lines[1]["result"]["error"]["message"].startswith("Processing failed for ftp://example.org/: ")


def test_ndjson_api_v1_alias(server):
    """/api/v1/crawl/stream serves the same stream."""
    response = requests.post(server.base_url + "/api/v1/crawl/stream", json={"urls": server.article_urls()[:1]},
                             timeout=5)
    assert response.status_code == 200 and ndjson_lines(response)[-1]["successful"] == 1


def test_sse_event_shapes(server):
    """metadata(retry), progress+result sharing the index id, complete(retry) (§3)."""
    targets = server.article_urls()[:2]
    response = sse(server, targets, {"cache_mode": "bypass"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "event:metadata\ndata:{" in response.text  # no space after the colon
    events = parse_sse(response.text)
    assert [e["event"] for e in events] == ["metadata", "progress", "result", "progress", "result", "complete"]
    meta = events[0]
    assert meta["retry"] == "5000" and "id" not in meta
    assert list(meta["json"]) == ["total_urls", "request_id", "timestamp", "stream_type", "retry_interval_ms"]
    assert meta["json"]["retry_interval_ms"] == 5000
    for progress, result in ((events[1], events[2]), (events[3], events[4])):
        assert progress["id"] == result["id"] == str(result["json"]["index"])
        assert list(progress["json"]) == ["completed", "total", "success_rate", "cache_hit_rate"]
        assert list(result["json"]) == ["index", "result", "processing_time_ms"]
        assert list(result["json"]["result"]) == RESULT_FIELDS
    complete = events[-1]
    assert complete["retry"] == "5000"
    assert list(complete["json"]) == ["total_urls", "successful", "failed", "from_cache",
                                      "total_processing_time_ms", "cache_hit_rate", "average_processing_time_ms"]
    assert isinstance(complete["json"]["average_processing_time_ms"], float)


def test_sse_status_events_after_every_tenth(make_server):
    """More than 20 URLs: a status event after completions 10, 20, ... (§3)."""
    srv = make_server(synthetic_doc_size=50)
    events = parse_sse(sse(srv, urls(25)).text)
    statuses = [e for e in events if e.get("event") == "status"]
    assert [s["json"]["items_processed"] for s in statuses] == [10, 20]
    assert list(statuses[0]["json"]) == ["phase", "items_processed", "items_remaining", "estimated_completion",
                                         "throughput_per_minute"]
    assert statuses[0]["json"]["phase"] == "processing" and statuses[0]["json"]["items_remaining"] == 15
    assert len(parse_sse(sse(srv, urls(20)).text)) == 1 + 40 + 1  # 20 URLs: no status events


def test_sse_failed_result_matches_ws_shape(server):
    """A failure in SSE is the fixed §1.6 shape."""
    events = parse_sse(sse(server, [page_url("missing")]).text)
    result = events[2]["json"]["result"]
    assert result["error"] == {"error_type": "processing_error", "message": "Failed to process URL",
                               "retryable": True}
    assert result["processing_time_ms"] == 0 and result["status"] == 0


def test_sse_validation_error_is_http_500(server):
    """Validation failure: 500, event: error with a validation_error body (§3, §6.2)."""
    response = sse(server, ["ftp://example.org/"])
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.text.startswith("event: error\ndata: ")
    body = json.loads(response.text.split("data: ", 1)[1])
    assert body == {"error": {"type": "validation_error", "message": "Invalid URL: ftp://example.org/ - URL 1 "
                              "validation failed: Unsupported URL scheme: ftp", "retryable": False}}


def test_sse_heartbeat_when_idle(make_server):
    """After sse_keepalive idle seconds a '::heartbeat' comment is sent (§3)."""
    srv = make_server(sse_keepalive=0.1, demo_slow_delay=0.45)
    started = time.monotonic()
    response = sse(srv, [page_url("slow")])
    assert time.monotonic() - started < 3
    assert "\n\n::heartbeat\n\n" in response.text
    events = parse_sse(response.text)
    assert sum(1 for e in events if e.get("comment") == ":heartbeat") >= 2
    assert events[-1]["event"] == "complete"


def _record_flushes(monkeypatch):
    """Every chunk the NDJSON/SSE writer sends, as the list of lines/events it held."""
    from riptide_sync.server import httpstreams

    flushes = []
    real = httpstreams._LineWriter.flush

    async def flush(self):
        if self.buffer:
            flushes.append(list(self.buffer))
        await real(self)

    monkeypatch.setattr(httpstreams._LineWriter, "flush", flush)
    return flushes


def test_ndjson_synthetic_first_result_is_sent_alone(make_server, monkeypatch):
    """In synthetic mode the first result goes out at once, the rest in 64 KiB chunks: time
    to first result measures the client, not the server's buffer. Failed before: metadata,
    all 5 results and the summary went out as one chunk."""
    flushes = _record_flushes(monkeypatch)
    srv = make_server(synthetic_doc_size=100)
    assert len(ndjson_lines(ndjson(srv, urls(5)))) == 7
    with_results = [[line for line in chunk if line.startswith(b'{"index"')] for chunk in flushes]
    first = next(chunk for chunk in with_results if chunk)
    assert len(first) == 1 and b'"index":0' in first[0]
    assert sum(map(len, with_results)) == 5


def test_sse_synthetic_first_result_is_sent_alone(make_server, monkeypatch):
    """The same for SSE. Failed before: the 5 results went out in one chunk after the
    metadata's."""
    flushes = _record_flushes(monkeypatch)
    srv = make_server(synthetic_doc_size=100)
    events = parse_sse(sse(srv, urls(5)).text)
    assert [e.get("event") for e in events].count("result") == 5
    with_results = [[e for e in chunk if e.startswith(b"event:result")] for chunk in flushes]
    first = next(chunk for chunk in with_results if chunk)
    assert len(first) == 1 and b'"index":0' in first[0]
    assert sum(map(len, with_results)) == 5


def test_synthetic_messages_are_built_once_per_request_shape(monkeypatch):
    """Requests of the same shape share their compiled templates (~4 ms to build at 64 KB,
    before the first result). Failed before: no for_request, a build per request."""
    from riptide_sync.server import synthetic

    builds = []
    real = synthetic.synthetic_result
    monkeypatch.setattr(synthetic, "synthetic_result",
                        lambda *args: builds.append(args) or real(*args))
    synthetic._messages.cache_clear()
    first = synthetic.SyntheticMessages.for_request(1234, "auto", 7)
    assert synthetic.SyntheticMessages.for_request(1234, "auto", 7) is first
    other = synthetic.SyntheticMessages.for_request(1234, "auto", 8)
    assert other is not first and len(builds) == 2
    values = first.values(3, 4, "https://a.example/")
    assert first.ndjson.fill(values) == other.ndjson.fill(values).replace(b'"total":8', b'"total":7')
