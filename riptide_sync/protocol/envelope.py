"""The WebSocket message codec (docs/protocol.md §1.2, §1.6).

Client to server: ``{"request_type": ..., "data": {...}}`` in one text frame. Server to
client: ``{"message_type": ..., "data": {...}, "timestamp": ...}``. Some server builds and
docs use ``type`` instead of ``message_type`` (docs/protocol.md §8 row 5): both are read.
"""

from __future__ import annotations

import json
from typing import Any

from ..models import StreamingResult
from ._json import loads

__all__ = [
    "MALFORMED_MESSAGE",
    "InvalidUTF8",
    "encode_request",
    "encode_crawl",
    "decode_message",
    "decode_frame",
    "malformed_event",
]

MALFORMED_MESSAGE = "malformed_message"
"""``error_type`` of the ``error`` event that stands in for a frame or line we could not read."""

_RAW_EXCERPT = 200
"""How many characters of an unreadable frame to keep in its error event."""

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_request(request_type: str, data: dict[str, Any] | None = None) -> str:
    """Encode a client request. ``data`` is always present: without it the server treats
    the frame as malformed and stays silent (docs/protocol.md §1.5)."""
    return _dumps({"request_type": request_type, "data": {} if data is None else data})


def encode_crawl(urls: list[str], options: dict[str, Any] | None = None) -> str:
    """Encode a ``crawl`` request for these URLs; ``options`` None means server defaults."""
    body: dict[str, Any] = {"urls": urls}
    if options:
        body["options"] = options
    return encode_request("crawl", body)


class InvalidUTF8(ValueError):
    """A WebSocket text frame that is not UTF-8: the connection must be closed with 1007
    (RFC 6455 §8.1), not read on."""


def decode_frame(payload: str | bytes) -> StreamingResult:
    """Decode one WebSocket text frame into an event, like :func:`decode_message`.

    The JSON decoder validates UTF-8 as it parses, so this costs nothing on valid frames.

    Raises:
        InvalidUTF8: the payload is not UTF-8 (any other unreadable frame becomes an
            ``error`` event, as with :func:`decode_message`).
    """
    try:
        message = loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        try:
            if isinstance(payload, bytes):  # a str was decoded already
                payload.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise InvalidUTF8(
                f"the server sent a text message that is not valid UTF-8 (byte "
                f"0x{payload[bad.start]:02x} at offset {bad.start}: {bad.reason})"
            ) from None
        return malformed_event(payload, f"not valid JSON ({exc})")
    # The envelope checks, inline: a call more per event shows in the benchmark.
    if not isinstance(message, dict):
        return malformed_event(payload, f"expected a JSON object, got {type(message).__name__}")
    event_type = message.get("message_type")
    if event_type is None:
        event_type = message.get("type")
    if not isinstance(event_type, str):
        return malformed_event(payload, "no message_type")
    data = message.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        return malformed_event(payload, f"data must be an object, got {type(data).__name__}")
    timestamp = message.get("timestamp")
    return StreamingResult(event_type, data, timestamp if isinstance(timestamp, str) else None)


def decode_message(payload: str | bytes) -> StreamingResult:
    """Decode one server frame into an event; never raises.

    A frame that is not a JSON object with a string type becomes an ``error`` event with
    ``error_type`` ``"malformed_message"`` (docs/design.md §4, tolerant reading), invalid
    UTF-8 included. Unknown message types and extra fields pass through unchanged.
    """
    try:
        return decode_frame(payload)
    except InvalidUTF8 as exc:
        return malformed_event(payload, f"not valid JSON ({exc})")


def malformed_event(payload: str | bytes, reason: str) -> StreamingResult:
    """The ``error`` event that reports an unreadable frame or line (with an excerpt)."""
    if isinstance(payload, bytes):
        excerpt = payload[:_RAW_EXCERPT].decode("utf-8", "replace")
    else:
        excerpt = payload[:_RAW_EXCERPT]
    return StreamingResult(
        "error",
        {
            "error_type": MALFORMED_MESSAGE,
            "message": f"Unreadable message from the server: {reason}",
            "raw": excerpt,
        },
    )
