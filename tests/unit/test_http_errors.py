"""The HTTP error boundary: status and body -> typed exception, Retry-After, foreign errors."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl

import pytest
import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from riptide_sync._http.errors import api_error, map_exception, translate_errors
from riptide_sync._http.batch import merge_responses
from riptide_sync.exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamConnectionError,
    StreamTimeoutError,
    ValidationError,
)
from riptide_sync.models import CrawlResponse
from riptide_sync.protocol.errors import (
    MAX_RETRY_AFTER,
    Rule,
    caused_by,
    map_by_table,
    parse_retry_after,
    retry_after_from,
)

NOW = datetime.datetime(2025, 11, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("60", 60.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("1.5", 1.5),
        ("Fri, 07 Nov 2025 12:00:30 GMT", 30.0),
        ("Friday, 07-Nov-25 12:01:00 GMT", 60.0),  # RFC 850 form
        ("Fri Nov  7 12:00:05 2025", 5.0),  # asctime form
        ("Fri, 07 Nov 2025 11:59:00 GMT", 0.0),  # in the past: now
        ("-1", None),
        ("-0.5", None),
        ("abc", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        ("99999999999", MAX_RETRY_AFTER),
        ("Sat, 07 Nov 2026 12:00:00 GMT", MAX_RETRY_AFTER),
        ("Fri, 99 Nov 2025 12:00:00 GMT", None),
    ],
)
def test_parse_retry_after_table(value, expected):
    """Retry-After: delta-seconds or HTTP date (frozen now), garbage/negative -> None, capped."""
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "headers, body, expected",
    [
        ({"Retry-After": "60"}, None, 60.0),
        ({"retry-after-ms": "1500", "Retry-After": "60"}, None, 1.5),
        ({"retry-after-ms": "junk", "Retry-After": "60"}, None, 60.0),
        ({"retry-after-ms": "-3"}, None, None),
        ({}, {"retry_after_seconds": 1024}, 1024.0),
        ({"Retry-After": "7"}, {"retry_after_seconds": 1024}, 7.0),
        ({}, {"retry_after_seconds": "x"}, None),
        ({}, {"retry_after_seconds": True}, None),
        ({}, None, None),
    ],
)
def test_retry_after_from_headers_and_body(headers, body, expected):
    """retry-after-ms wins, then Retry-After, then the lockout body's retry_after_seconds."""
    assert retry_after_from(CaseInsensitiveDict(headers), body, now=NOW) == expected


def _headers(content_type: str | None = "application/json", **extra: str) -> CaseInsensitiveDict:
    headers = CaseInsensitiveDict(extra)
    if content_type:
        headers["Content-Type"] = content_type
    return headers


API_ERROR_400 = {
    "error": {
        "type": "invalid_url",
        "message": "Invalid URL: ftp://example.org/ - URL 1 validation failed: Unsupported URL scheme: ftp",
        "retryable": False,
        "status": 400,
    }
}


@pytest.mark.parametrize(
    "status, content_type, body, cls, error_type, message",
    [
        (400, "application/json", json.dumps(API_ERROR_400), APIError, "invalid_url",
         API_ERROR_400["error"]["message"]),
        (400, "application/json", '{"error":"urls list cannot be empty"}', APIError, None,
         "urls list cannot be empty"),
        (401, "application/json", '{"error":"Unauthorized","message":"Missing API key"}',
         AuthenticationError, "Unauthorized", "Missing API key"),
        (403, None, "", AuthenticationError, None, "Forbidden"),
        (404, "application/json",
         '{"error":{"type":"not_found","message":"Resource not found: endpoint","retryable":false,"status":404}}',
         NotFoundError, "not_found", "Resource not found: endpoint"),
        (408, None, "", APIError, None, "Request Timeout"),
        (415, "text/plain", "Expected request with `Content-Type: application/json`", APIError,
         None, "Expected request with `Content-Type: application/json`"),
        (422, "text/plain; charset=utf-8",
         "Failed to deserialize the JSON body into the target type: urls: missing field `urls`",
         APIError, None,
         "Failed to deserialize the JSON body into the target type: urls: missing field `urls`"),
        (413, "application/json",
         '{"error":"PayloadTooLarge","message":"Request payload too large: 60000000 bytes (max 52428800 bytes)","max_size_bytes":52428800,"received_bytes":60000000}',
         APIError, "PayloadTooLarge",
         "Request payload too large: 60000000 bytes (max 52428800 bytes)"),
        (500, "text/event-stream",
         'event: error\ndata: {"error":{"type":"validation_error","message":"Validation error: At least one URL is required","retryable":false}}\n\n',
         ServerError, "validation_error", "Validation error: At least one URL is required"),
        (500, "text/event-stream",
         'event:error\r\ndata:{"error":{"type":"streaming_error","message":"boom","retryable":true}}',
         ServerError, "streaming_error", "boom"),
        (500, "application/x-ndjson",
         '{"error":{"type":"validation_error","message":"Validation error: Too many URLs: 101 (maximum: 100)","retryable":false}}\n',
         ServerError, "validation_error", "Validation error: Too many URLs: 101 (maximum: 100)"),
        (500, "application/x-ndjson", '{"error":{"type":"a","message":"first"}}\n{"x":1}\n',
         ServerError, "a", "first"),
        (500, "application/json", '{"error":"Failed to initiate stream: no"}', ServerError,
         None, "Failed to initiate stream: no"),
        # A foreign body becomes a short one-line excerpt, tags stripped (issue 12).
        (502, "text/html", "<html>Bad gateway</html>", ServerError, None, "Bad gateway"),
        (500, "text/event-stream", "event: error\ndata: not json\n\n", ServerError, None,
         "event: error data: not json"),
        (418, "application/json", "[1, 2]", APIError, None, "[1, 2]"),
        (400, "application/json", '{"unexpected": true}', APIError, None, "Bad Request"),
    ],
)
def test_api_error_every_body_shape(status, content_type, body, cls, error_type, message):
    """Each error body shape maps to the right exception with status, type and message."""
    exc = api_error(status, _headers(content_type, **{"X-Request-ID": "req-1"}), body.encode())
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.error_type == error_type
    assert exc.message == message
    assert exc.request_id == "req-1"


def test_api_error_rate_limit_carries_retry_after_and_body():
    """429 with Retry-After -> RateLimitError.retry_after; the decoded body is kept."""
    body = {
        "error": {
            "type": "rate_limited",
            "message": "Rate limit exceeded: Resource limit exceeded: x",
            "retryable": False,
            "status": 429,
        }
    }
    exc = api_error(429, _headers(**{"Retry-After": "60"}), json.dumps(body).encode())
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == 60.0
    assert exc.body == body
    assert exc.error_type == "rate_limited"
    assert "retry after 60 s" in str(exc)
    assert "HTTP 429 rate_limited" in str(exc)


def test_api_error_capacity_503_is_rate_limit_error():
    """503 'system at capacity' with Retry-After: 30 -> RateLimitError (§7.3)."""
    body = b'{"error":{"type":"dependency_error","message":"Dependency unavailable: service - System at capacity: x","retryable":true,"status":503}}'
    exc = api_error(503, _headers(**{"Retry-After": "30"}), body)
    assert isinstance(exc, RateLimitError)
    assert (exc.retry_after, exc.error_type) == (30.0, "dependency_error")


def test_api_error_auth_lockout_429_reads_body_retry_after():
    """The auth lockout 429 (string error) yields its message and retry_after_seconds."""
    body = b'{"error":"Too Many Requests","message":"Too many failed authentication attempts. Please try again later.","retry_after_seconds":1024}'
    exc = api_error(429, _headers(), body)
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == 1024.0
    assert exc.message.startswith("Too many failed")


def test_api_error_without_request_id_or_body():
    """An empty body gets the reason phrase; no X-Request-ID gives request_id None."""
    exc = api_error(599, _headers(None), b"")
    assert isinstance(exc, ServerError)
    assert (exc.message, exc.request_id, exc.body) == ("HTTP 599", None, None)
    assert api_error(400, _headers(None), b"", reason="Custom").message == "Custom"


def test_api_error_plain_text_body_kept_as_text():
    """A plain text body is kept as text in .body."""
    exc = api_error(400, _headers("text/plain"), b"Failed to parse the request body as JSON: x")
    assert exc.body == "Failed to parse the request body as JSON: x"


@pytest.mark.parametrize(
    "exc, expected",
    [
        (requests.exceptions.ConnectTimeout("ct"), StreamTimeoutError),
        (requests.exceptions.ReadTimeout("rt"), StreamTimeoutError),
        (urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), StreamTimeoutError),
        (socket.timeout("timed out"), StreamTimeoutError),
        (TimeoutError("t"), StreamTimeoutError),
        (requests.exceptions.ConnectionError("refused"), StreamConnectionError),
        (requests.exceptions.ChunkedEncodingError("bad chunk"), StreamConnectionError),
        (requests.exceptions.SSLError("cert"), StreamConnectionError),
        (urllib3.exceptions.ProtocolError("reset"), StreamConnectionError),
        (http.client.IncompleteRead(b""), StreamConnectionError),
        (ConnectionResetError(104, "reset"), StreamConnectionError),
        (OSError("x"), StreamConnectionError),
    ],
)
def test_map_exception_most_specific_first(exc, expected):
    """Foreign exceptions map to StreamTimeoutError / StreamConnectionError, timeouts first."""
    mapped = map_exception(exc, "POST /crawl")
    assert type(mapped) is expected
    assert "POST /crawl" in str(mapped)


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("k"), ValidationError("v")])
def test_map_exception_leaves_others_alone(exc):
    """Programming errors and our own exceptions are not translated."""
    assert map_exception(exc, "x") is None


def test_map_by_table_first_matching_row_wins():
    """The walker: rows in order, a row's condition consulted, ours never mapped again."""
    table = (
        Rule((OSError,), lambda exc, where: StreamTimeoutError(f"first {where}"),
             when=lambda exc, where: "slow" in str(exc)),
        Rule((ConnectionError,), lambda exc, where: StreamConnectionError(f"second {where}")),
        Rule((OSError,), lambda exc, where: StreamConnectionError(f"third {where}")),
    )
    assert str(map_by_table(table, OSError("slow"), "w")) == "first w"
    assert str(map_by_table(table, ConnectionResetError("x"), "w")) == "second w"
    assert str(map_by_table(table, OSError("x"), "w")) == "third w"
    assert map_by_table(table, ValueError("x"), "w") is None
    assert map_by_table(table, StreamConnectionError("ours"), "w") is None  # also an OSError


def test_caused_by_looks_under_cause_context_reason_and_args():
    """requests' refused connection: ConnectionError(MaxRetryError(reason=NewConnectionError))."""
    refused = ConnectionRefusedError(111, "refused")
    inner = urllib3.exceptions.NewConnectionError(None, "x")
    inner.__cause__ = refused
    outer = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", inner))
    assert caused_by(outer, ConnectionRefusedError)
    assert not caused_by(outer, ssl.SSLCertVerificationError)


def test_translate_errors_chains_with_from():
    """translate_errors re-raises as ours with the original as __cause__."""
    original = requests.exceptions.ConnectionError("refused")
    with pytest.raises(StreamConnectionError) as info:
        with translate_errors("GET /healthz"):
            raise original
    assert info.value.__cause__ is original
    assert isinstance(info.value, ConnectionError)  # also the builtin


def test_translate_errors_lets_a_bug_through_even_during_a_tls_failure():
    """An AttributeError raised while a certificate failure was being handled comes out
    as AttributeError: only requests/urllib3/OS errors are mapped, and a bug is never
    taken for the TLSVerificationError its __context__ holds (it was, before issue 15)."""
    def buggy() -> None:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed")
        except ssl.SSLError:
            None.close()  # type: ignore[attr-defined]  # the bug

    with pytest.raises(AttributeError):
        with translate_errors("GET /healthz", "https://h/healthz"):
            buggy()
    with pytest.raises(TypeError):
        with translate_errors("GET /healthz"):
            raise TypeError("a bug")


def test_translate_errors_passes_through_others():
    """Non-I/O exceptions pass through translate_errors unchanged."""
    with pytest.raises(KeyError):
        with translate_errors("x"):
            raise KeyError("k")


def _response(urls: list[str], *, cached: int = 0, failed: int = 0, total_ms: int = 100,
              avg: float = 50.0, raw: int = 1) -> CrawlResponse:
    n = len(urls)
    return CrawlResponse.model_validate(
        {
            "total_urls": n,
            "successful": n - failed,
            "failed": failed,
            "from_cache": cached,
            "results": [{"url": u, "status": 200} for u in urls],
            "statistics": {
                "total_processing_time_ms": total_ms,
                "avg_processing_time_ms": avg,
                "gate_decisions": {"raw": raw, "probes_first": 0, "headless": 1, "cached": cached},
                "cache_hit_rate": cached / n,
            },
        }
    )


def test_merge_responses_recomputes_counts_and_statistics():
    """Merged batch: counts summed, results in order, stats recomputed over the whole list."""
    first = _response(["a", "b", "c", "d"], cached=2, failed=0, total_ms=300, avg=40.0, raw=2)
    second = _response(["e", "f"], cached=0, failed=1, total_ms=200, avg=100.0, raw=1)
    merged = merge_responses([first, second])
    assert [r.url for r in merged.results] == ["a", "b", "c", "d", "e", "f"]
    assert (merged.total_urls, merged.successful, merged.failed, merged.from_cache) == (6, 5, 1, 2)
    stats = merged.statistics
    assert stats.total_processing_time_ms == 500
    assert stats.avg_processing_time_ms == pytest.approx((40.0 * 4 + 100.0 * 1) / 5)
    assert stats.gate_decisions.model_dump() == {"raw": 3, "probes_first": 0, "headless": 2, "cached": 2}
    assert stats.cache_hit_rate == pytest.approx(2 / 6)


def test_merge_responses_no_success_gives_zero_average():
    """With no successful URL the merged average is 0.0, not a division error."""
    empty = CrawlResponse(total_urls=0, successful=0, failed=0)
    failed = _response(["a"], failed=1, avg=0.0)
    merged = merge_responses([empty, failed])
    assert merged.statistics.avg_processing_time_ms == 0.0
    assert merged.statistics.cache_hit_rate == 0.0
