"""The WebSocket message codec (docs/protocol.md §1.2, §1.6), byte by byte."""

import json

import pytest

from riptide_sync.protocol.envelope import (
    MALFORMED_MESSAGE,
    decode_message,
    encode_crawl,
    encode_request,
)


def test_encode_request_always_carries_data():
    """Ping and status carry an empty data object: without it the server stays silent."""
    assert encode_request("ping") == '{"request_type":"ping","data":{}}'
    assert encode_request("status", None) == '{"request_type":"status","data":{}}'


def test_encode_crawl_omits_empty_options():
    """No options -> no options key; options are sent as given."""
    assert encode_crawl(["https://a/"]) == '{"request_type":"crawl","data":{"urls":["https://a/"]}}'
    frame = encode_crawl(["https://a/"], {"cache_mode": "bypass"})
    assert json.loads(frame) == {
        "request_type": "crawl",
        "data": {"urls": ["https://a/"], "options": {"cache_mode": "bypass"}},
    }


def test_encode_crawl_keeps_non_ascii_urls_verbatim():
    """URLs are echoed back exactly as sent (§5.1), so they are not escaped."""
    assert "é" in encode_crawl(["https://a/é"])


def test_decode_message_result_frame():
    """A result frame decodes to its type, data and timestamp."""
    frame = (
        b'{"message_type":"result","data":{"index":1,"progress":{"completed":1,'
        b'"success_rate":1.0,"total":2},"result":{"url":"https://a/"}},'
        b'"timestamp":"2025-11-07T12:00:00.104902+00:00"}'
    )
    event = decode_message(frame)
    assert event.event_type == "result"
    assert event.data["index"] == 1
    assert event.index == 1
    assert event.timestamp == "2025-11-07T12:00:00.104902+00:00"
    assert event.result.url == "https://a/"


def test_decode_message_reads_type_envelope():
    """The {"type", "data"} envelope of some builds is read too (§8 row 5)."""
    event = decode_message('{"type":"summary","data":{"successful":1}}')
    assert event.event_type == "summary"
    assert event.timestamp is None


def test_decode_message_unknown_type_passes_through():
    """Unknown types and fields pass through unchanged."""
    event = decode_message('{"message_type":"shiny","data":{"x":1},"extra":true}')
    assert (event.event_type, event.data) == ("shiny", {"x": 1})


def test_decode_message_missing_data_is_empty_object():
    """A message without data gets an empty dict, not None."""
    assert decode_message('{"message_type":"pong"}').data == {}


@pytest.mark.parametrize(
    "payload, reason",
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1,2]", "expected a JSON object"),
        ('{"data":{}}', "no message_type"),
        ('{"message_type":5}', "no message_type"),
        ('{"message_type":"result","data":[1]}', "data must be an object"),
    ],
)
def test_decode_message_malformed_becomes_error_event(payload, reason):
    """An unreadable frame is an error event with an excerpt, never an exception."""
    event = decode_message(payload)
    assert event.event_type == "error"
    assert event.data["error_type"] == MALFORMED_MESSAGE
    assert reason in event.data["message"]
    assert event.data["raw"]


def test_decode_message_excerpt_is_bounded():
    """Only the first 200 characters of a huge bad frame are kept."""
    event = decode_message("x" * 100_000)
    assert len(event.data["raw"]) == 200
