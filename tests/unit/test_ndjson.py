"""NDJSON decoder and line classification (docs/protocol.md §2.3, §2.4): pure, byte by byte."""

from __future__ import annotations

import json

import pytest

from riptide_sync.protocol.envelope import MALFORMED_MESSAGE
from riptide_sync.protocol.ndjson import (
    UNKNOWN_EVENT,
    NDJSONDecoder,
    classify_line,
    error_fields,
)

METADATA = {
    "total_urls": 2,
    "request_id": "0b6e2f4a-1c3d-4e5f-8a9b-7c6d5e4f3a21",
    "timestamp": "2025-11-07T12:00:00.200+00:00",
    "stream_type": "crawl",
}
RESULT = {
    "index": 1,
    "result": {
        "url": "https://example.org/b",
        "status": 200,
        "from_cache": False,
        "gate_decision": "raw",
        "quality_score": 0.64,
        "processing_time_ms": 812,
        "document": None,
        "error": None,
        "cache_key": "riptide:v1:read_through:3fa94c0d1e2b7a65",
    },
    "progress": {"completed": 1, "total": 2, "success_rate": 1.0},
}
PROGRESS = {
    "operation_id": "crawl_stream",
    "operation_type": "batch_crawl",
    "started_at": "2025-11-07T12:00:00.200+00:00",
    "current_phase": "processing",
    "progress_percentage": 45.0,
    "items_completed": 5,
    "items_total": 11,
    "estimated_completion": None,
    "current_item": "https://example.org/e",
}
SUMMARY = {
    "total_urls": 2,
    "successful": 1,
    "failed": 1,
    "from_cache": 0,
    "total_processing_time_ms": 15010,
    "cache_hit_rate": 0.0,
}


def _line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


SAMPLE = (
    _line(METADATA)
    + _line(RESULT).replace(b"example.org/b", "exämple.org/β".encode())
    + b"\n"  # a blank line, skipped
    + _line(PROGRESS)[:-1]
    + b"\r\n"  # CRLF tolerated
    + _line(SUMMARY)
)


def _decode_chunks(chunks: list[bytes]) -> tuple[list[bytes], bytes | None]:
    decoder = NDJSONDecoder()
    lines: list[bytes] = []
    for chunk in chunks:
        lines.extend(decoder.feed(chunk))
    return lines, decoder.end()


EXPECTED_LINES, _ = _decode_chunks([SAMPLE])


def test_ndjson_decoder_whole_sample_gives_four_lines():
    """The sample stream decodes to its four lines, blank line skipped, CR stripped."""
    assert len(EXPECTED_LINES) == 4
    assert [classify_line(line).event_type for line in EXPECTED_LINES] == [
        "metadata",
        "result",
        "progress",
        "summary",
    ]
    assert not any(line.endswith(b"\r") for line in EXPECTED_LINES)


def test_ndjson_decoder_split_at_every_offset():
    """Splitting the body at any byte offset yields the same lines."""
    for offset in range(1, len(SAMPLE)):
        lines, leftover = _decode_chunks([SAMPLE[:offset], SAMPLE[offset:]])
        assert (lines, leftover) == (EXPECTED_LINES, None), f"split at {offset}"


def test_ndjson_decoder_one_byte_at_a_time():
    """Feeding one byte at a time yields the same lines."""
    chunks = [SAMPLE[i : i + 1] for i in range(len(SAMPLE))]
    assert _decode_chunks(chunks) == (EXPECTED_LINES, None)


def test_ndjson_decoder_three_way_splits():
    """Every split into three pieces (sampled) yields the same lines."""
    for first in range(1, len(SAMPLE), 7):
        for second in range(first, len(SAMPLE), 13):
            chunks = [SAMPLE[:first], SAMPLE[first:second], SAMPLE[second:]]
            assert _decode_chunks(chunks) == (EXPECTED_LINES, None)


def test_ndjson_decoder_empty_feed_returns_nothing():
    """An empty chunk completes no line and keeps the partial one."""
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a"') == []
    assert decoder.feed(b"") == []
    assert decoder.pending == 4
    assert decoder.feed(b":1}\n") == [b'{"a":1}']
    assert decoder.pending == 0


def test_ndjson_decoder_end_reports_line_cut_mid_line():
    """A body cut mid-line leaves the partial line for end() (§2.4: incomplete stream)."""
    for offset in range(1, len(_line(SUMMARY)) - 1):
        body = _line(METADATA) + _line(SUMMARY)[:offset]
        lines, leftover = _decode_chunks([body[:offset], body[offset:]])
        assert lines == [_line(METADATA)[:-1]], f"cut at {offset}"
        assert leftover == _line(SUMMARY)[:offset], f"cut at {offset}"


def test_ndjson_decoder_end_ignores_trailing_whitespace():
    """Trailing whitespace or a lone CR after the last line is not a cut line."""
    for tail in (b"", b"\r", b"  ", b"\r\n\r\n"):
        assert _decode_chunks([_line(SUMMARY) + tail])[1] is None


def test_ndjson_decoder_end_resets():
    """end() clears the partial line so the decoder can be reused."""
    decoder = NDJSONDecoder()
    decoder.feed(b"abc")
    assert decoder.end() == b"abc"
    assert decoder.end() is None


def test_ndjson_decoder_long_line_in_many_chunks():
    """A long line arriving in many small chunks is joined once, intact."""
    line = _line({"index": 0, "result": {"text": "x" * 100_000}, "progress": {}})
    chunks = [line[i : i + 1000] for i in range(0, len(line), 1000)]
    assert _decode_chunks(chunks) == ([line[:-1]], None)


@pytest.mark.parametrize(
    "obj, event_type",
    [
        (METADATA, "metadata"),
        (RESULT, "result"),
        (PROGRESS, "progress"),
        (SUMMARY, "summary"),
        ({"stream_type": "deepsearch", "request_id": "r", "total_urls": 0}, "metadata"),
        ({"index": 3, "successful": 1, "cache_hit_rate": 0.0}, UNKNOWN_EVENT),
        ({"index": 0, "search_result": {}, "crawl_result": None}, UNKNOWN_EVENT),
        ({"query": "q", "urls_found": 3, "search_time_ms": 5}, UNKNOWN_EVENT),
        ({}, UNKNOWN_EVENT),
        ({"error": None, "x": 1}, UNKNOWN_EVENT),
    ],
)
def test_classify_line_by_keys(obj, event_type):
    """Untagged lines are classified by their keys exactly as §2.3 says."""
    event = classify_line(_line(obj)[:-1])
    assert event.event_type == event_type
    assert event.data == obj
    assert event.timestamp is None


def test_classify_line_result_exposes_index_and_typed_result():
    """A result line gives data["index"], data["result"], data["progress"] and typed access."""
    event = classify_line(_line(RESULT))
    assert event.index == 1
    assert event.data["progress"] == {"completed": 1, "total": 2, "success_rate": 1.0}
    assert event.result is not None and event.result.url == "https://example.org/b"


@pytest.mark.parametrize(
    "obj, error_type, message, extra",
    [
        (
            {
                "error": {
                    "type": "validation_error",
                    "message": "Validation error: At least one URL is required",
                    "retryable": False,
                }
            },
            "validation_error",
            "Validation error: At least one URL is required",
            {"retryable": False},
        ),
        ({"error": "urls list cannot be empty"}, "error", "urls list cannot be empty", {}),
        (
            {"error": "Unauthorized", "message": "Missing API key"},
            "Unauthorized",
            "Missing API key",
            {},
        ),
        ({"error": {"message": "no type"}}, "error", "no type", {}),
        ({"error": {"type": "x"}}, "x", "", {}),
    ],
)
def test_classify_line_error_lines_flattened(obj, error_type, message, extra):
    """Error lines (variant B, §2.1) become error events with error_type and message."""
    event = classify_line(json.dumps(obj).encode())
    assert event.event_type == "error"
    assert event.data == {"error_type": error_type, "message": message, **extra}


@pytest.mark.parametrize(
    "obj, event_type, data",
    [
        ({"type": "summary", "successful": 2}, "summary", {"type": "summary", "successful": 2}),
        ({"message_type": "pong", "data": {"x": 1}}, "pong", {"x": 1}),
        ({"event_type": "complete", "data": {"failed": 0}}, "summary", {"failed": 0}),
        ({"type": 5, "event_type": "custom"}, "custom", {"type": 5, "event_type": "custom"}),
    ],
)
def test_classify_line_explicit_tags(obj, event_type, data):
    """Lines with an explicit type/message_type/event_type take that type."""
    event = classify_line(json.dumps(obj).encode())
    assert (event.event_type, event.data) == (event_type, data)


def test_classify_line_envelope_keeps_timestamp():
    """A tagged envelope's timestamp is kept on the event."""
    line = b'{"type":"result","data":{"index":0},"timestamp":"2025-11-07T12:00:00+00:00"}'
    assert classify_line(line).timestamp == "2025-11-07T12:00:00+00:00"


@pytest.mark.parametrize(
    "line",
    [b"not json", b"{", b"[1,2]", b'"text"', b"42", b"null", b"\xff\xfe{}", b"[" * 100_000],
)
def test_classify_line_malformed_becomes_error_event(line):
    """Unreadable lines become malformed_message error events, never exceptions."""
    event = classify_line(line)
    assert event.event_type == "error"
    assert event.data["error_type"] == MALFORMED_MESSAGE
    assert len(event.data["raw"]) <= 200


def test_classify_line_accepts_str():
    """A str line is classified like its bytes."""
    assert classify_line(json.dumps(SUMMARY)).event_type == "summary"


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"error": {"type": "t", "message": "m"}}, ("t", "m")),
        ({"error": {"error_type": "t", "message": "m"}}, ("t", "m")),
        ({"error": {"type": 1, "message": 2}, "message": "outer"}, (None, "outer")),
        ({"error": "Too Many Requests", "message": "slow down"}, ("Too Many Requests", "slow down")),
        ({"error": "plain"}, (None, "plain")),
        ({"error_type": "validation_error", "message": "m"}, ("validation_error", "m")),
        ({"message": "only message"}, (None, "only message")),
        ({}, (None, None)),
        ("text", (None, None)),
        (None, (None, None)),
    ],
)
def test_error_fields_every_shape(body, expected):
    """error_fields reads every error body shape of §6."""
    assert error_fields(body) == expected
