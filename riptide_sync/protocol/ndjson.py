"""NDJSON crawl streams (docs/protocol.md §2): an incremental line decoder and line classification.

Pure: fed bytes, returns values; no sockets, threads or clock. The HTTP transport
(:mod:`riptide_sync._http`) feeds it the body as it arrives::

    decoder = NDJSONDecoder()
    for chunk in body_chunks:
        for line in decoder.feed(chunk):
            event = classify_line(line)
    leftover = decoder.end()   # bytes of a line cut by EOF, or None

The server's lines carry **no type field** (§2.3, §8 row 6): :func:`classify_line` tells
them apart by their keys and maps them to the event vocabulary shared by every transport
(``metadata``, ``result``, ``progress``, ``summary``, ``error``). The one helper here that is
not NDJSON-specific, :func:`error_fields`, flattens every error body shape the server sends
(§6) and is shared with the SSE decoder and the HTTP error mapping.
"""

from __future__ import annotations

from typing import Any

from ..models import StreamingResult
from ._json import loads
from .envelope import malformed_event

__all__ = [
    "NDJSONDecoder",
    "classify_line",
    "classify_object",
    "error_fields",
    "UNKNOWN_EVENT",
    "UNTYPED_ERROR",
]

UNKNOWN_EVENT = "unknown"
"""``event_type`` of a valid JSON object line that matches no known kind. It passes through
unchanged in ``data`` so that lines a newer server adds do not break the stream."""

UNTYPED_ERROR = "error"
"""``error_type`` of an error event whose body named no type (``{"error": "<text>"}``)."""

# Explicit tags some builds and docs put on lines (§8 rows 5-6); read only when the keys
# alone do not classify the line. "complete" is SSE's name for the summary (§3).
_TAG_KEYS = ("type", "message_type", "event_type")
_TAG_ALIASES = {"complete": "summary"}

_loads = loads


class NDJSONDecoder:
    """Split a byte stream into lines, carrying a partial line across chunks.

    Lines end with ``\\n``; a ``\\r`` before it is dropped (CRLF tolerated). Blank and
    whitespace-only lines are skipped. The decoder keeps no limit on line length: a result
    line carries a whole document (docs/protocol.md §1.10: no outbound size limit).
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        """The pieces of the current, incomplete line (joined only once it completes, so a
        long line arriving in many chunks costs linear time)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Add body bytes; return the lines they complete, without line ends.

        After this, classify each returned line; keep feeding until EOF, then call
        :meth:`end`.
        """
        if b"\n" not in data:
            if data:
                self._parts.append(data)
            return []
        if self._parts:
            self._parts.append(data)
            data = b"".join(self._parts)
            self._parts = []
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            self._parts.append(tail)
        out = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line and not line.isspace():
                out.append(line)
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete line."""
        return sum(len(part) for part in self._parts)

    def end(self) -> bytes | None:
        """Signal EOF; return the incomplete last line, or None when the body ended cleanly.

        A non-None value means the body was cut mid-line (the server's lines always end
        with ``\\n``); the caller should report the stream as incomplete. Resets the decoder.
        """
        leftover = b"".join(self._parts)
        self._parts = []
        if leftover.endswith(b"\r"):
            leftover = leftover[:-1]
        if not leftover or leftover.isspace():
            return None
        return leftover


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """Return ``(error_type, message)`` from any error body shape the server sends (§6).

    - ``{"error": {"type": T, "message": M, ...}}`` (ApiError, §5.6; SSE/NDJSON 500 bodies)
    - ``{"error": "<title>", "message": M}`` (401 and auth 429, §7.2; 413 payload layer)
    - ``{"error": "<text>"}`` (NDJSON variant A 400s, §2.1): the text is the message
    - ``{"error_type": T, "message": M}`` (a WebSocket-style error object)

    Either part is None when the body lacks it; a non-dict body gives ``(None, None)``.
    """
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    message = body.get("message")
    message = message if isinstance(message, str) else None
    if isinstance(error, dict):
        etype = error.get("type", error.get("error_type"))
        emsg = error.get("message")
        return (
            etype if isinstance(etype, str) else None,
            emsg if isinstance(emsg, str) else message,
        )
    if isinstance(error, str):
        if message is not None:
            return error, message
        return None, error
    etype = body.get("error_type")
    return (etype if isinstance(etype, str) else None), message


def _error_event(obj: dict[str, Any]) -> StreamingResult:
    """An ``error`` event from an error line, flattened to ``error_type``/``message``.

    Other fields of the error object (``retryable``, ``status``...) are kept beside them.
    """
    error_type, message = error_fields(obj)
    inner = obj.get("error")
    data: dict[str, Any] = dict(inner) if isinstance(inner, dict) else {}
    data.pop("type", None)
    data["error_type"] = error_type or UNTYPED_ERROR
    data["message"] = message if message is not None else ""
    return StreamingResult("error", data)


def classify_object(obj: Any, raw: bytes | str = b"") -> StreamingResult:
    """Classify one decoded NDJSON line (see :func:`classify_line`); ``raw`` is for reports."""
    if type(obj) is not dict:
        return malformed_event(raw, f"expected a JSON object, got {type(obj).__name__}")
    # §2.3, checked in order of frequency: a crawl is mostly result lines.
    if "index" in obj:
        if "result" in obj and "progress" in obj:
            return StreamingResult("result", obj)
    elif "successful" in obj and "cache_hit_rate" in obj:
        return StreamingResult("summary", obj)
    if "operation_id" in obj and "progress_percentage" in obj:
        return StreamingResult("progress", obj)
    if "stream_type" in obj and "request_id" in obj:
        return StreamingResult("metadata", obj)
    if obj.get("error") is not None:
        # Variant B's 500 body line (§2.1), or any later error line.
        return _error_event(obj)
    for key in _TAG_KEYS:
        tag = obj.get(key)
        if isinstance(tag, str):
            event_type = _TAG_ALIASES.get(tag, tag)
            data = obj.get("data")
            timestamp = obj.get("timestamp")
            timestamp = timestamp if isinstance(timestamp, str) else None
            if isinstance(data, dict):
                # An envelope {"type": ..., "data": {...}}: the payload is data.
                return StreamingResult(event_type, data, timestamp)
            return StreamingResult(event_type, obj, timestamp)
    return StreamingResult(UNKNOWN_EVENT, obj)


def classify_line(line: bytes | str) -> StreamingResult:
    """Decode one NDJSON line and classify it by its keys (docs/protocol.md §2.3); never raises.

    - ``metadata``: has ``stream_type`` and ``request_id``
    - ``result``: has ``index``, ``result`` and ``progress``
    - ``progress``: has ``operation_id`` and ``progress_percentage``
    - ``summary``: has ``successful`` and ``cache_hit_rate`` and no ``index``
    - ``error``: has a non-null ``error`` (a string or an object); ``data`` is flattened to
      ``error_type`` and ``message`` (plus the object's other fields, e.g. ``retryable``)
    - a line carrying an explicit ``type``/``message_type``/``event_type`` string takes that
      type (``complete`` read as ``summary``); an envelope's ``data`` object becomes the data
    - any other JSON object: event type ``"unknown"``, the object as data (tolerant reading)
    - not JSON, or not an object: the ``error`` event of
      :func:`~riptide_sync.protocol.envelope.malformed_event`

    ``data`` is the decoded line itself (not a copy) for every kind but ``error``.
    """
    try:
        obj = _loads(line)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return malformed_event(line, f"not valid JSON ({exc})")
    return classify_object(obj, line)
