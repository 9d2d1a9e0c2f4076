"""SSE decoder and event mapping (docs/protocol.md §3, WHATWG event stream): pure, byte by byte."""

from __future__ import annotations

import json

import pytest

from riptide_sync.protocol.envelope import MALFORMED_MESSAGE
from riptide_sync.protocol.sse import ServerSentEvent, SSEDecoder, sse_to_event

METADATA = (
    '{"total_urls":1,"request_id":"7e0d","timestamp":"2025-11-07T12:00:00.300+00:00",'
    '"stream_type":"crawl","retry_interval_ms":5000}'
)
PROGRESS = '{"completed":1,"total":1,"success_rate":1.0,"cache_hit_rate":0.0}'
RESULT = '{"index":0,"result":{"url":"https://exämple.org/β","status":200},"processing_time_ms":930}'
COMPLETE = (
    '{"total_urls":1,"successful":1,"failed":0,"from_cache":0,"total_processing_time_ms":931,'
    '"cache_hit_rate":0.0,"average_processing_time_ms":931.0}'
)

# The server's exact framing (§3: no space after the colon), with a heartbeat comment.
SERVER_STREAM = (
    f"event:metadata\ndata:{METADATA}\nretry:5000\n\n"
    f"::heartbeat\n\n"
    f"event:progress\ndata:{PROGRESS}\nid:0\n\n"
    f"event:result\ndata:{RESULT}\nid:0\n\n"
    f"event:complete\ndata:{COMPLETE}\nretry:5000\n\n"
).encode()

EXPECTED = [
    ServerSentEvent("metadata", METADATA, None, 5000),
    ServerSentEvent("progress", PROGRESS, "0", None),
    ServerSentEvent("result", RESULT, "0", None),
    ServerSentEvent("complete", COMPLETE, "0", 5000),
]


def _decode(chunks: list[bytes]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events, decoder


def _variants() -> dict[str, bytes]:
    """The server stream with every line-end style and the optional space after colons."""
    text = SERVER_STREAM.decode()
    spaced = "\n".join(
        line if line.startswith(":") or not line else line.replace(":", ": ", 1)
        for line in text.split("\n")
    )
    return {
        "lf": text.encode(),
        "crlf": text.replace("\n", "\r\n").encode(),
        "cr": text.replace("\n", "\r").encode(),
        "spaced-crlf": spaced.replace("\n", "\r\n").encode(),
        "bom": b"\xef\xbb\xbf" + text.encode(),
    }


VARIANTS = _variants()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sse_decoder_whole_stream(name):
    """Each line-end style and colon spacing decodes to the same four events."""
    events, decoder = _decode([VARIANTS[name]])
    assert events == EXPECTED
    assert decoder.comments == 1
    assert decoder.last_event_id == "0"
    assert decoder.retry == 5000
    assert decoder.end() is False


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sse_decoder_split_at_every_offset(name):
    """Splitting the stream at any byte offset (even between CR and LF) changes nothing."""
    body = VARIANTS[name]
    for offset in range(1, len(body)):
        events, decoder = _decode([body[:offset], body[offset:]])
        assert events == EXPECTED, f"split at {offset}"
        assert decoder.comments == 1, f"split at {offset}"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sse_decoder_one_byte_at_a_time(name):
    """Feeding one byte at a time changes nothing."""
    body = VARIANTS[name]
    events, decoder = _decode([body[i : i + 1] for i in range(len(body))])
    assert events == EXPECTED
    assert decoder.comments == 1


def test_sse_decoder_cr_then_lf_in_next_chunk_is_one_line_end():
    """A CR ending a chunk and an LF starting the next are one line end, not two."""
    events, _ = _decode([b"data:a\r", b"\ndata:b\r", b"\n\r", b"\n"])
    assert events == [ServerSentEvent("message", "a\nb", None, None)]


def test_sse_decoder_multi_line_data_joined_with_newline():
    """Several data lines join with \\n; an empty data line adds an empty line."""
    events, _ = _decode([b"data: one\ndata:two\ndata\ndata:  three\n\n"])
    assert events == [ServerSentEvent("message", "one\ntwo\n\n three", None, None)]


def test_sse_decoder_default_event_name_is_message():
    """An event without an event field is named "message"; the name resets per event."""
    events, _ = _decode([b"event:x\ndata:1\n\ndata:2\n\n"])
    assert [e.event for e in events] == ["x", "message"]


def test_sse_decoder_last_event_id_persists_and_resets():
    """The id persists across events until changed; an empty id resets it."""
    events, decoder = _decode([b"id:7\ndata:a\n\ndata:b\n\nid\ndata:c\n\nid:bad\x00\ndata:d\n\n"])
    assert [e.id for e in events] == ["7", "7", "", ""]
    assert decoder.last_event_id == ""


def test_sse_decoder_id_without_data_updates_last_id_only():
    """A block with no data dispatches nothing but still sets the id (spec)."""
    events, decoder = _decode([b"id:42\nevent:x\n\ndata:y\n\n"])
    assert events == [ServerSentEvent("message", "y", "42", None)]
    assert decoder.last_event_id == "42"


@pytest.mark.parametrize(
    "value, retry",
    [(b"5000", 5000), (b" 5000", None), (b"50.5", None), (b"-1", None), (b"x", None), (b"", None)],
)
def test_sse_decoder_retry_integer_only(value, retry):
    """retry is taken only when all ASCII digits (after the one optional space)."""
    events, decoder = _decode([b"retry: " + value + b"\ndata:x\n\n"])
    assert events[0].retry == retry
    assert decoder.retry == retry


def test_sse_decoder_comments_counted_and_ignored():
    """Comment lines (heartbeats) are counted and never dispatched."""
    events, decoder = _decode([b":\n::heartbeat\n\n: hi\ndata:x\n: mid\n\n::heartbeat\n\n"])
    assert events == [ServerSentEvent("message", "x", None, None)]
    assert decoder.comments == 5


def test_sse_decoder_unknown_fields_and_colonless_lines_ignored():
    """Unknown fields are ignored; a line without colon is a field with empty value."""
    events, _ = _decode([b"foo:bar\nevent\ndata:x\n\n"])
    assert events == [ServerSentEvent("message", "x", None, None)]


def test_sse_decoder_end_reports_cut_event():
    """EOF inside an event discards it and end() says so; a clean end says False."""
    _, decoder = _decode([b"event:complete\ndata:{}\n"])
    assert decoder.end() is True
    _, decoder = _decode([b"event:complete\ndata:{}"])
    assert decoder.end() is True
    _, decoder = _decode([b"event:complete\ndata:{}\n\n::heartbeat\n\n"])
    assert decoder.end() is False


def test_sse_decoder_invalid_utf8_replaced():
    """Invalid UTF-8 is decoded with replacement characters, not an exception."""
    events, _ = _decode([b"data:\xff\xfe\n\n"])
    assert events[0].data == "\ufffd\ufffd"


@pytest.mark.parametrize(
    "name, event_type",
    [
        ("metadata", "metadata"),
        ("progress", "progress"),
        ("status", "progress"),
        ("result", "result"),
        ("complete", "summary"),
        ("summary", "summary"),
        ("brand_new", "brand_new"),
        ("message", "message"),
    ],
)
def test_sse_to_event_maps_names(name, event_type):
    """SSE names map to the shared vocabulary; unknown names pass through."""
    data = {"completed": 1, "phase": "processing"}
    event = sse_to_event(ServerSentEvent(name, json.dumps(data), None, None))
    assert (event.event_type, event.data, event.timestamp) == (event_type, data, None)


def test_sse_to_event_full_stream_vocabulary():
    """The sample stream maps to metadata, progress, result, summary with the wire data."""
    events = [sse_to_event(sse) for sse in EXPECTED]
    assert [e.event_type for e in events] == ["metadata", "progress", "result", "summary"]
    assert events[2].index == 0
    assert events[2].result is not None and events[2].result.url == "https://exämple.org/β"
    assert events[3].data["successful"] == 1


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            '{"error":{"type":"validation_error","message":"Validation error: x","retryable":false}}',
            {"error_type": "validation_error", "message": "Validation error: x", "retryable": False},
        ),
        (
            '{"error":{"type":"streaming_error","message":"boom","retryable":true}}',
            {"error_type": "streaming_error", "message": "boom", "retryable": True},
        ),
        ('{"error_type":"t","message":"m"}', {"error_type": "t", "message": "m"}),
        ('{"error":"plain"}', {"error_type": "error", "message": "plain"}),
        ("{}", {"error_type": "error", "message": ""}),
    ],
)
def test_sse_to_event_error_body_flattened(data, expected):
    """An SSE error event's {"error": {...}} body is flattened to error_type/message."""
    event = sse_to_event(ServerSentEvent("error", data, None, None))
    assert (event.event_type, event.data) == ("error", expected)


@pytest.mark.parametrize("data", ["Stream not implemented", "[1]", "", "{"])
def test_sse_to_event_malformed_data(data):
    """Data that is not a JSON object becomes a malformed_message error event."""
    event = sse_to_event(ServerSentEvent("result", data, None, None))
    assert event.event_type == "error"
    assert event.data["error_type"] == MALFORMED_MESSAGE
