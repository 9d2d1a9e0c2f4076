"""The transport contract: what a streaming transport implements and the driver reads.

A transport (``_ws`` or ``_http``) opens crawl requests (:class:`Transport`) and gives
their events (:class:`EventSource`); both update one :class:`StreamStats`. The driver
(:mod:`riptide_sync._driver`) and the transports import this module; it imports neither,
so the transports never import the driver that drives them (docs/architecture.md §6).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

from .models import StreamingResult

__all__ = ["StreamStats", "EventSource", "Transport"]


@dataclasses.dataclass
class StreamStats:
    """Counters of one stream. Transports update the wire-level ones from their threads.

    Sizes are bytes, times are milliseconds; ``None`` means "not measured yet".
    """

    messages: int = 0
    """Messages (frames, lines, events) received from the server, every type counted."""
    bytes_received: int = 0
    """Payload bytes received (frame payloads, body bytes)."""
    results: int = 0
    """``result`` events delivered to the caller (each URL at most once)."""
    reconnects: int = 0
    """Connections opened after the first one (resume)."""
    resumed_urls: int = 0
    """URLs re-requested after a loss (resume), summed over all attempts."""
    dropped: int = 0
    """Messages discarded by the ``drop_oldest`` / ``drop_newest`` overflow policies."""
    spilled: int = 0
    """Messages that went through the spill file because the queue was full."""
    queue_high_water: int = 0
    """The largest number of messages held in memory at once."""
    last_rtt_ms: float | None = None
    """Round trip of the last keepalive ping or JSON ping, or None before the first."""
    duplicates_suppressed: int = 0
    """Results for an index already delivered (late duplicates), not yielded again."""

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict."""
        return dataclasses.asdict(self)


class EventSource(Protocol):
    """The events of one crawl request, read by the consumer thread."""

    def receive(self, timeout: float | None) -> StreamingResult:
        """Return the next event of this request, blocking at most ``timeout`` seconds.

        Args:
            timeout: seconds to wait; None waits for ever (keepalive still detects a dead
                peer on WebSocket).

        Raises:
            StreamTimeoutError: nothing arrived within ``timeout``.
            StreamConnectionError: the connection ended before the request's summary
                (an HTTP body at EOF, a WebSocket closed or reset), or the transport was
                closed from another thread.
            KeepaliveTimeoutError, SlowConsumerError, APIError: as their names say.
        """
        ...

    def ready(self) -> bool:
        """True when ``receive()`` would return at once: an event is already buffered.
        Optional (a source without it is read one event at a time by the pumps); never
        blocks, never raises."""
        ...

    def watch(self, wake: Callable[[], None]) -> bool:
        """Optional: call ``wake()`` (from any thread) whenever :meth:`ready` may have
        become True, and return True; or return False when the source cannot (it is then
        read by a pump thread). A watched source of a parallel stream is read by the
        consumer itself, which waits for any of them: no thread hop per event."""
        ...

    def close(self) -> None:
        """Abandon this request: release its response or connection. On WebSocket the
        socket is closed (a crawl cannot be cancelled on the server, and its late results
        must not mix with the next request's); the next ``open_crawl`` reconnects. The
        driver calls it after a failure and after a summary that came short of results
        (such a connection is not trusted with the next request), never after a clean
        summary. Idempotent."""
        ...


class Transport(Protocol):
    """Opens crawl requests against one server; owns sockets and threads."""

    name: str
    """``"websocket"``, ``"ndjson"`` or ``"sse"``."""
    session_id: str | None
    """The server's session id once known (WebSocket welcome), else None."""

    def open_crawl(self, urls: list[str], options: dict[str, Any] | None) -> EventSource:
        """Send one crawl request for ``urls`` (at most the server's per-request limit).

        The returned source yields the request's events. On a new WebSocket connection
        its first event is the ``welcome``.

        Raises:
            StreamConnectionError: could not connect.
            APIError subclasses: the server refused the request with an error status.
        """
        ...

    def close(self) -> None:
        """Release sockets, threads and temp files; idempotent, callable from any thread,
        and wakes a consumer blocked in ``receive()``. Returns within about a second."""
        ...
