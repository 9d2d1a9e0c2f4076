"""Server-Sent Events crawl streams (docs/protocol.md §3): an incremental decoder and the mapping
of the server's event names to the event vocabulary shared by every transport.

Pure: fed bytes, returns values. The decoder follows the WHATWG HTML "event stream
interpretation" algorithm::

    decoder = SSEDecoder()
    for chunk in body_chunks:
        for sse in decoder.feed(chunk):
            event = sse_to_event(sse)
    decoder.end()   # True when EOF cut an event short

Event names (§3) map as follows: ``metadata``, ``result`` and ``error`` keep their name,
``progress`` and ``status`` both become ``progress`` (their ``data`` keys tell them apart:
``status`` carries ``phase``/``items_processed``, ``progress`` carries
``completed``/``total``), ``complete`` becomes ``summary``. ``data`` is the JSON object as
sent; nothing is added to it here (the stream driver gives every ``progress`` its
``completed`` and ``total`` over the caller's list). Unknown names pass through unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

from ..models import StreamingResult
from ._json import loads
from .envelope import malformed_event
from .ndjson import UNTYPED_ERROR, error_fields

__all__ = ["ServerSentEvent", "SSEDecoder", "sse_to_event", "SSE_EVENT_NAMES"]

SSE_EVENT_NAMES: dict[str, str] = {
    "metadata": "metadata",
    "progress": "progress",
    "status": "progress",
    "result": "result",
    "complete": "summary",
    "summary": "summary",
    "error": "error",
}
"""Server event name -> shared event type (docs/protocol.md §3). Other names pass through."""


class ServerSentEvent(NamedTuple):
    """One dispatched event, as the wire carried it."""

    event: str
    """The ``event:`` field, or ``"message"`` when the event had none (WHATWG default)."""
    data: str
    """The ``data:`` lines joined with ``\\n``."""
    id: str | None
    """The last event id in force when this event was dispatched (it persists across
    events, per the spec), or None if the stream never set one."""
    retry: int | None
    """The ``retry:`` value (milliseconds) given inside this event's block, else None."""


_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Incremental event-stream decoder (WHATWG HTML §9.2.6).

    - Lines end with CRLF, CR or LF; a CR ending one chunk and an LF starting the next are
      one line end.
    - ``field:value`` and ``field: value`` are the same (one leading space is dropped); a line
      without a colon is a field with an empty value.
    - ``data`` lines accumulate, joined with ``\\n``; a blank line dispatches the event; an
      event with no ``data`` line is not dispatched (only its ``id``/``retry`` take effect).
    - Lines starting with ``:`` are comments, counted in :attr:`comments` (the server's
      keepalive is the comment ``::heartbeat``, §3).
    - ``id`` containing NUL is ignored; ``retry`` is taken only when all ASCII digits.
    - A leading UTF-8 BOM is skipped; text is decoded as UTF-8 with replacement.
    """

    def __init__(self) -> None:
        self._buffer = b""
        """Bytes of the current, incomplete line."""
        self._skip_lf = False
        """The previous chunk ended with CR: an LF starting the next one is part of it."""
        self._first = True
        self._event = ""
        self._data: list[bytes] = []
        self._retry_in_block: int | None = None
        self._in_event = False
        self.last_event_id: str | None = None
        """The event id in force (persists across events; the spec's "last event ID")."""
        self.retry: int | None = None
        """The last reconnection time the server asked for, in milliseconds, or None."""
        self.comments = 0
        """Comment lines seen (heartbeats)."""

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Add body bytes; return the events they complete, in order.

        After this, map each returned event with :func:`sse_to_event`; at EOF call :meth:`end`.
        """
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if self._first:
            if len(data) < 3 and _BOM.startswith(data):
                self._buffer = data  # could still be a BOM: wait for more
                return []
            self._first = False
            if data.startswith(_BOM):
                data = data[3:]
        events: list[ServerSentEvent] = []
        if b"\r" not in data:
            lines = data.split(b"\n")
            self._buffer = lines.pop()
        else:
            lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            tail = lines.pop()
            if data.endswith(b"\r"):
                # That CR ended a line; an LF arriving next belongs to it.
                self._skip_lf = True
            self._buffer = tail
        for line in lines:
            self._process_line(line, events)
        return events

    def _process_line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[0] == 0x3A:  # ":" starts a comment
            self.comments += 1
            return
        self._in_event = True
        # Fields are split as bytes: ":" is ASCII and never inside a UTF-8 sequence, and
        # the (large) data value is then decoded once, at dispatch.
        field, sep, value = raw.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        elif field == b"id":
            if b"\x00" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif field == b"retry":
            if value.isdigit():  # bytes.isdigit() is ASCII digits only
                self.retry = self._retry_in_block = int(value)
        # Any other field is ignored (spec).

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        data, event, retry = self._data, self._event, self._retry_in_block
        self._data = []
        self._event = ""
        self._retry_in_block = None
        self._in_event = False
        if not data:
            return
        text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
        events.append(ServerSentEvent(event or "message", text, self.last_event_id, retry))

    def end(self) -> bool:
        """Signal EOF; return True when an event (or line) was cut short and is discarded.

        Per the spec an event not followed by a blank line is never dispatched; the caller
        should report the stream as incomplete if it was still expecting events.
        """
        cut = bool(self._buffer) or self._in_event
        self._buffer = b""
        self._data = []
        self._event = ""
        self._retry_in_block = None
        self._in_event = False
        return cut


def sse_to_event(sse: ServerSentEvent) -> StreamingResult:
    """Map one server-sent event to the shared vocabulary; never raises.

    ``data`` must be a JSON object (the server always sends one on a single ``data:`` line,
    §3); anything else becomes the ``error`` event of
    :func:`~riptide_sync.protocol.envelope.malformed_event`. An ``error`` event's body
    ``{"error": {"type", "message", "retryable"}}`` (§3 validation failure) is flattened to
    ``{"error_type", "message", "retryable"}`` like an NDJSON error line.
    """
    try:
        obj = loads(sse.data)
    except (ValueError, RecursionError) as exc:
        return malformed_event(sse.data, f"event {sse.event!r}: data is not valid JSON ({exc})")
    if type(obj) is not dict:
        return malformed_event(
            sse.data, f"event {sse.event!r}: expected a JSON object, got {type(obj).__name__}"
        )
    event_type = SSE_EVENT_NAMES.get(sse.event, sse.event)
    if event_type == "error":
        error_type, message = error_fields(obj)
        inner = obj.get("error")
        data = dict(inner) if isinstance(inner, dict) else dict(obj)
        data.pop("type", None)
        data.pop("error", None)
        data["error_type"] = error_type or UNTYPED_ERROR
        data["message"] = message if message is not None else ""
        return StreamingResult("error", data)
    return StreamingResult(event_type, obj)
