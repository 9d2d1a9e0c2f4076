"""The WebSocket transport: crawl requests and request/reply calls over one connection.

::

    transport = WebSocketTransport(config, stats)
    source = transport.open_crawl(["https://example.org/"], None)
    while True:
        event = source.receive(timeout=30.0)      # welcome first on a new connection
        if event.event_type == "summary":
            break
    reply = transport.request("ping", timeout=5.0)  # between crawls only
    transport.close()

One connection is kept open and reused: several crawls run on it one after another
(docs/protocol.md §1.3). ``open_crawl`` opens a new connection when there is none, when the
last one ended, or when the previous crawl on it did not finish (its events would
otherwise mix with the new ones).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .._config import ClientConfig
from .._deadline import Deadline
from .._transport import StreamStats
from ..exceptions import StreamConnectionError, StreamTimeoutError
from ..models import StreamingResult
from ..protocol.envelope import encode_crawl, encode_request
from ..protocol.events import is_refusal
from ..protocol.urls import websocket_url
from .connection import Connection

__all__ = ["WebSocketTransport", "CrawlSource"]

logger = logging.getLogger("riptide_sync.ws")

_REPLY_TYPES = {"ping": "pong", "status": "status"}

_READER_STOP_WAIT = 1.0
"""Seconds a failed send waits for the reader to report why the connection ended."""

class CrawlSource:
    """The events of one crawl request on a :class:`WebSocketTransport` (an EventSource).

    ``finished`` becomes True once the request's ``summary`` or the ``error`` answering
    it (docs/protocol.md §1.4) has been returned.
    """

    def __init__(self, transport: WebSocketTransport, connection: Connection,
                 first: StreamingResult | None, *, awaiting_welcome: bool = False) -> None:
        self._transport = transport
        self._connection = connection
        self._first = first
        self._awaiting_welcome = awaiting_welcome
        """The connection is new and nothing has arrived yet: the first event (normally
        the welcome) is held to the welcome deadline, ``config.timeout``."""
        self._answered = False
        """The request's metadata came: an error is no longer its refusal. On WebSocket
        the metadata comes before any result (docs/protocol.md §1.4), so it alone says."""
        self.finished = False
        """The request's last event (summary, or an error answering it) was returned."""

    @property
    def session_id(self) -> str | None:
        """The session id of the connection carrying this request."""
        return self._connection.session_id

    def receive(self, timeout: float | None) -> StreamingResult:
        """Return the next event of this request (see ``EventSource.receive``).

        Raises:
            StreamConnectionError: the connection ended (after every queued event was
                returned), or the transport was closed ("stream closed"), or a newer
                crawl replaced this one.
            StreamTimeoutError: nothing arrived within ``timeout`` seconds.
            KeepaliveTimeoutError, SlowConsumerError, ProtocolViolationError: raised on
                the reader thread, re-raised here chained to their cause.
        """
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._transport._active is not self:
            raise StreamConnectionError("stream closed")
        if self._awaiting_welcome:
            event = self._first_event(timeout)
        else:
            event = self._connection.receive(timeout)
        kind = event.event_type
        if kind == "summary":
            self.finished = True
        elif kind == "metadata":
            self._answered = True
        elif kind == "error" and is_refusal(kind, event.data, self._answered):
            self.finished = True
        return event

    def ready(self) -> bool:
        """True when :meth:`receive` returns at once: an event is already queued (or this
        source was replaced, when it raises at once)."""
        return (self._first is not None or self._transport._active is not self
                or self._connection.ready())

    def watch(self, wake: Callable[[], None]) -> bool:
        """Call ``wake()`` whenever the connection's reader queues something (or ends):
        the stream driver then reads this request among others without a pump thread."""
        self._connection.queue.listener = wake
        return True

    def _first_event(self, timeout: float | None) -> StreamingResult:
        """The new connection's first event, within the welcome deadline too."""
        deadline = self._transport.config.timeout
        limit = deadline if timeout is None else timeout if deadline is None else min(timeout, deadline)
        try:
            event = self._connection.receive(limit)
        except StreamTimeoutError as exc:
            raise StreamTimeoutError(
                f"no welcome from {self._transport.url} within {limit:g} s"
            ) from exc
        self._awaiting_welcome = False
        if event.event_type == "welcome":
            self._transport._session_id = self._connection.session_id
        return event

    def close(self) -> None:
        """Abandon this request: close its connection (a crawl cannot be cancelled on
        the server, and its late events must not mix with the next request's). The
        transport stays usable: the next ``open_crawl`` reconnects. Idempotent.

        Also after the request's summary: the driver abandons a request whose summary
        came short of results, and such a connection is not trusted with the next
        request (the missing results may still arrive late). Only a connection already
        carrying a newer request is left alone."""
        transport = self._transport
        if self.finished and transport._active is not self:
            return  # a newer crawl runs on this connection (or it was replaced)
        if transport._active is self:
            transport._active = None
        # Mid-crawl the server reads nothing until its summary: no Close echo will come.
        self._connection.close(await_echo=False)


class WebSocketTransport:
    """Crawl requests over a reused WebSocket connection (the ``Transport`` protocol).

    Args:
        config: client settings. Used here: ``base_url`` (when ``url`` is None),
            ``headers`` (``X-API-Key`` on the handshake), ``verify``, ``proxy``,
            ``connect_timeout`` (handshake), ``timeout`` (welcome and request/reply
            deadlines), ``ping_interval``/``ping_timeout``, ``queue_size``/``overflow``,
            ``max_message_size``.
        stats: counters shared by every connection this transport opens.
        url: the WebSocket URL; None derives it from ``config.base_url``.

    Thread safety: one consumer thread calls ``open_crawl``/``receive``/``request``;
    ``close()`` may be called from any thread at any time.
    """

    name = "websocket"

    def __init__(self, config: ClientConfig, stats: StreamStats, url: str | None = None,
                 *, _decode_on_reader: bool | None = None) -> None:
        self.config = config
        self.stats = stats
        self.url = url or websocket_url(config.base_url)
        self._decode_on_reader = _decode_on_reader
        self._connection: Connection | None = None
        self._active: CrawlSource | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._session_id: str | None = None

    @property
    def session_id(self) -> str | None:
        """The server's session id of the current (or last) connection, or None."""
        return self._session_id

    @property
    def connection(self) -> Connection | None:
        """The current connection, or None (for diagnostics and tests)."""
        return self._connection

    def _connect(self, *, read_welcome: bool = True) -> tuple[Connection, bool]:
        """Return a usable connection and whether it is new (its welcome not yet given).

        ``read_welcome`` False returns a new connection right after its handshake (see
        :meth:`Connection.connect`): the welcome is then the connection's first event."""
        if self._closed:
            raise StreamConnectionError("the transport is closed")
        old = self._connection
        if old is not None and old.healthy and (self._active is None or self._active.finished):
            return old, False
        self._active = None
        if old is not None:
            old.close()
        connection = Connection(self.config, self.stats, self.url,
                                decode_on_reader=self._decode_on_reader)
        with self._lock:
            if self._closed:
                raise StreamConnectionError("the transport is closed")
            self._connection = connection
        connection.connect(read_welcome=read_welcome)
        if self._closed:  # close() raced with the handshake
            connection.close()
            raise StreamConnectionError("stream closed")
        self._session_id = connection.session_id
        return connection, True

    def open_crawl(self, urls: list[str], options: dict[str, Any] | None) -> CrawlSource:
        """Send one ``crawl`` request; return its events (the welcome first on a new
        connection).

        Raises:
            StreamConnectionError, StreamTimeoutError: could not connect or send.
            AuthenticationError, RateLimitError, NotFoundError, ServerError, APIError:
                the server refused the handshake.
        """
        # A new connection is not made to wait for its welcome: the crawl goes out right
        # after the handshake (the server sends the welcome first and reads requests in
        # order, docs/protocol.md §1.3), which saves a turn before the first result.
        connection, new = self._connect(read_welcome=False)
        welcome = None
        if not connection.welcome_delivered:
            # A connection opened by request(): its welcome was read there, and is news.
            welcome = connection.welcome
            connection.welcome_delivered = True
        source = CrawlSource(self, connection, welcome, awaiting_welcome=new)
        self._active = source
        try:
            connection.send_text(encode_crawl(urls, options))
        except StreamConnectionError:
            # The send found the connection gone. When the reader ended it (a protocol
            # violation in the first frame, the server's Close...), its account is the
            # true cause, and it is queued for the consumer: return the source, whose
            # receive() gives the queued events and then the reader's error. Only a
            # reader still running (the send itself failed) makes this the failure.
            if not connection.reader_stopped(_READER_STOP_WAIT):
                raise
        return source

    def request(self, request_type: str, timeout: float | None = None) -> StreamingResult:
        """Send a ``ping`` or ``status`` request and return its reply, timing the round trip.

        The reply's round trip goes to ``stats.last_rtt_ms``. Do not call this while a
        crawl is streaming on the connection: the server answers only after the crawl's
        summary (docs/protocol.md §1.3), and its events would be consumed here.

        Args:
            request_type: ``"ping"`` (reply ``pong``) or ``"status"`` (reply ``status``).
            timeout: seconds to wait for the reply; None uses ``config.timeout``. The
                server ignores malformed requests silently (§1.5), so there is always a
                deadline.

        Returns:
            The ``pong`` or ``status`` event (or the server's ``error`` event).

        Raises:
            StreamTimeoutError: no reply in time.
            StreamConnectionError: could not connect, or the connection ended.
            ValueError: an unknown request type.
            RuntimeError: a crawl is still streaming on the connection.
        """
        if request_type not in _REPLY_TYPES:
            raise ValueError(f"request_type must be 'ping' or 'status', got {request_type!r}")
        if self._active is not None and not self._active.finished and self._connection is not None \
                and self._connection.healthy:
            raise RuntimeError("request() while a crawl is streaming on this connection")
        if timeout is None:
            timeout = self.config.timeout if self.config.timeout is not None else 30.0
        connection, _ = self._connect()
        reply_type = _REPLY_TYPES[request_type]
        started = time.monotonic()
        deadline = Deadline(timeout)
        connection.send_text(encode_request(request_type))
        while True:
            remaining = deadline.remaining()
            assert remaining is not None
            if remaining <= 0:
                raise StreamTimeoutError(
                    f"no {reply_type!r} reply to {request_type!r} from {self.url} within "
                    f"{timeout:g} s"
                )
            try:
                event = connection.receive(remaining)
            except StreamTimeoutError as exc:
                raise StreamTimeoutError(
                    f"no {reply_type!r} reply to {request_type!r} from {self.url} within "
                    f"{timeout:g} s"
                ) from exc
            # The reply, or an error refusing the request (nothing answered it yet).
            if event.event_type == reply_type or is_refusal(event.event_type, event.data, False):
                self.stats.last_rtt_ms = (time.monotonic() - started) * 1000.0
                return event
            logger.debug("! ignoring %s while waiting for %s", event.event_type, reply_type)

    def close(self) -> None:
        """Close the connection: see ``Transport.close``. Idempotent, any thread; after
        it, ``open_crawl`` and ``request`` raise StreamConnectionError."""
        with self._lock:
            self._closed = True
            connection = self._connection
            active = self._active
        if connection is not None:
            # A crawl still running is not read by the server (no Close echo until its end).
            connection.close(await_echo=active is None or active.finished)

    def __enter__(self) -> WebSocketTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WebSocketTransport {self.url} session={self._session_id}>"
