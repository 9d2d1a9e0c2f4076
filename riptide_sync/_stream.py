"""The stream object every transport returns, and the seams transports plug into.

A transport (``_ws`` or ``_http``) knows how to open one crawl request and read its events.
:class:`CrawlStream` drives it: it validates nothing (the caller did), runs the crawl
session bookkeeping of :mod:`riptide_sync.protocol.session` (one result per URL, indices in
the caller's list, one summary), calls ``on_message``, and guarantees cleanup on
``close()``, ``break`` (the stream is collected) and Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Iterator, Protocol

from .exceptions import StreamConnectionError, StreamingError
from .models import StreamingResult

__all__ = ["StreamStats", "EventSource", "Transport", "CrawlStream"]


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
