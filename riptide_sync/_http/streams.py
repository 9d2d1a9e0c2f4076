"""NDJSON and SSE crawl streams over ``requests`` (docs/protocol.md §2, §3).

The transports open requests; :mod:`riptide_sync._http.source` reads a response's events,
and :mod:`riptide_sync._http.readahead` is a parallel lane's one reader thread.

Waiting for headers: ``open_crawl`` waits at most ``timeout`` seconds in all for the
response headers (not per ``recv()``), and ``close()`` ends that wait at once
(:mod:`riptide_sync._http.wakeable`).

Closing: ``close()`` (any thread) ends a wait for headers, closes every open source and
stops the lane's reader thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import requests

from .._config import ClientConfig
from .._transport import StreamStats
from ..exceptions import StreamConnectionError
from ..models import StreamingResult
from ..protocol.ndjson import NDJSONDecoder, classify_line
from ..protocol.sse import SSEDecoder, sse_to_event
from .errors import raise_for_response, translate_errors
from .opening import OpeningSource
from .readahead import LaneReader
from .session import request_timeout, url_for
from .source import HTTPEventSource
from .wakeable import HeaderWait

__all__ = ["NDJSONTransport", "SSETransport", "MIN_IDLE_TIMEOUT"]

logger = logging.getLogger("riptide_sync.http")

MIN_IDLE_TIMEOUT = 45.0
"""Floor, in seconds, of the idle limit used when ``receive(None)`` is called: the server
may legitimately say nothing for 30 s (the SSE heartbeat interval, and the per-URL fetch
limit of 15 s + 15 s, docs/protocol.md §2.5, §3), so a shorter default would cut healthy streams."""


class _HTTPStreamTransport:
    """Shared part of the NDJSON and SSE transports."""

    name = "http"
    path = "/"
    accept = "*/*"
    lanes_on_demand = True
    """A parallel stream opens this transport's other lanes only once the server is slow
    to answer (``riptide_sync._driver.LANE_DELAY``): reading ahead costs a thread hand-off
    per read, which only a wait for the server repays."""

    def __init__(self, config: ClientConfig, session: requests.Session, stats: StreamStats) -> None:
        self.config = config
        self.session = session
        self.stats = stats
        self.session_id: str | None = None
        """The last request's id (``X-Request-ID`` = the metadata's ``request_id``)."""
        self._sources: set[HTTPEventSource] = set()
        self._waits: set[HeaderWait] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._reader: LaneReader | None = None
        self._headers = {"Accept": self.accept, "Accept-Encoding": "identity"}
        """This transport's request headers (§2.2: a compressed body may be held back by
        the compressor, so no compression)."""
        self._template: tuple[str, requests.PreparedRequest, dict[str, Any]] | None = None
        """(URL, the request prepared once, requests' send() settings), see _post()."""

    def lane_reader(self) -> LaneReader:
        """This transport's read-ahead thread (made on first use; the transport carries one
        request at a time, so one thread serves all of its requests in turn)."""
        with self._lock:
            if self._reader is None:
                self._reader = LaneReader()
                if self._closed:
                    self._reader.stop()
            return self._reader

    def _decoder(self) -> tuple[Callable[[bytes], list[StreamingResult]], Callable[[], str | None]]:
        raise NotImplementedError

    def open_crawl(self, urls: list[str], options: dict[str, Any] | None) -> HTTPEventSource:
        """POST ``{"urls": [...], "options": {...}}`` and return the response's events.

        ``options`` None is omitted (server defaults, docs/protocol.md §5.1).

        Raises:
            StreamConnectionError: could not connect, or the transport is closed.
            StreamTimeoutError: connect or response headers timed out.
            APIError subclasses: the server answered with a status other than 200.
        """
        return self.open_with(urls, options, HeaderWait())

    def open_crawl_watched(
        self, urls: list[str], options: dict[str, Any] | None, wake: Callable[[], None]
    ) -> OpeningSource | None:
        """Send the request on this lane's reader thread and return at once: a source the
        consumer reads among others (``wake()`` is called whenever it may be ready); the
        POST's failure is its first ``receive()`` (see :mod:`riptide_sync._http.opening`).
        None when the transport is closed."""
        if self._closed:
            return None
        source = OpeningSource(self, urls, options, wake)
        return source if source.start() else None

    def open_with(
        self, urls: list[str], options: dict[str, Any] | None, wait: HeaderWait
    ) -> HTTPEventSource:
        """:meth:`open_crawl`, with ``wait`` for the response headers (its ``cancel()``
        ends the wait from any thread)."""
        if self._closed:
            raise StreamConnectionError(f"the {self.name} transport is closed")
        body: dict[str, Any] = {"urls": urls}
        if options is not None:
            body["options"] = options
        url = url_for(self.config, self.path)
        with self._lock:  # registered: close() cancels every wait for headers (wakeable.py)
            self._waits.add(wait)
        try:
            with translate_errors(f"POST {url}", url), wait.current():
                response = self._post(url, body)
        finally:
            with self._lock:
                self._waits.discard(wait)
        if wait.cancelled:
            response.close()  # close() came as the headers did
            raise StreamConnectionError(f"the {self.name} transport is closed")
        if response.status_code != 200:
            raise_for_response(response)
        request_id = response.headers.get("x-request-id")
        if request_id:
            self.session_id = request_id
        timeout = self.config.timeout
        idle = None if timeout is None else max(timeout, MIN_IDLE_TIMEOUT)
        decode, end = self._decoder()
        source = HTTPEventSource(self, response, decode, end, idle)
        with self._lock:
            closed = self._closed
            if not closed:
                self._sources.add(source)
        if closed:
            source.close()
            raise StreamConnectionError(f"the {self.name} transport is closed")
        return source

    def _post(self, url: str, body: dict[str, Any]) -> requests.Response:
        """POST ``body`` as JSON to ``url`` on the session, streamed.

        The chunks of a long list are the same request but for the body, so this
        transport prepares it once (the session's headers, auth, netrc and cookies merged,
        the proxy and TLS settings resolved) and then only encodes each body: requests'
        full ``Session.request`` costs ~0.4 ms of CPU per call, 4 us per result at 100
        URLs a request. Not while the session holds cookies (a load balancer's sticky
        cookie, set by an earlier response, must go out on the next request) or an auth
        hook (it may sign the body): then every request is prepared in full."""
        session = self.session
        timeout = request_timeout(self.config)
        if session.auth is not None or session.cookies:
            self._template = None
            return session.post(url, json=body, stream=True, timeout=timeout,
                                headers=self._headers)
        template = self._template
        if template is None or template[0] != url:
            prepared = session.prepare_request(
                requests.Request("POST", url, headers=self._headers))
            settings = session.merge_environment_settings(url, {}, True, None, None)
            self._template = template = (url, prepared, settings)
        prepared = template[1].copy()
        prepared.prepare_body(None, None, json=body)
        return session.send(prepared, timeout=timeout, **template[2])

    def _forget(self, source: HTTPEventSource) -> None:
        with self._lock:
            self._sources.discard(source)

    def close(self) -> None:
        """Close every open source; idempotent, from any thread. The session stays open
        (the client owns it)."""
        with self._lock:
            self._closed = True
            sources = list(self._sources)
            waits = list(self._waits)
        for wait in waits:
            wait.cancel()  # a request still waiting for its response headers
        for source in sources:
            source.close()
        with self._lock:
            reader = self._reader
        if reader is not None:
            reader.stop()  # no reader thread outlives close()


class NDJSONTransport(_HTTPStreamTransport):
    """``POST /crawl/stream``: NDJSON lines classified by their keys (docs/protocol.md §2).

    Usage (the client does this for ``client.streaming.crawl_ndjson``)::

        transport = NDJSONTransport(config, session, stats)
        source = transport.open_crawl(["https://example.org/"], None)
        event = source.receive(timeout=30.0)   # metadata, result..., summary
        transport.close()
    """

    name = "ndjson"
    path = "/crawl/stream"
    accept = "application/x-ndjson"

    def _decoder(self) -> tuple[Callable[[bytes], list[StreamingResult]], Callable[[], str | None]]:
        decoder = NDJSONDecoder()
        feed = decoder.feed

        def decode(chunk: bytes) -> list[StreamingResult]:
            lines = feed(chunk)
            return [classify_line(line) for line in lines] if lines else []

        def end() -> str | None:
            leftover = decoder.end()
            return None if leftover is None else leftover.decode("utf-8", "replace")

        return decode, end


class SSETransport(_HTTPStreamTransport):
    """``POST /crawl/sse``: Server-Sent Events mapped to the shared vocabulary (docs/protocol.md §3).

    ``complete`` arrives as ``summary``; ``status`` and ``progress`` as ``progress``.
    Heartbeat comments are counted in :attr:`heartbeats` (not in ``stats.messages``).
    """

    name = "sse"
    path = "/crawl/sse"
    accept = "text/event-stream"

    def __init__(self, config: ClientConfig, session: requests.Session, stats: StreamStats) -> None:
        super().__init__(config, session, stats)
        self.heartbeats = 0
        """Comment lines (the server's ``::heartbeat`` keepalive) received, all requests."""
        self.last_event_id: str | None = None
        """The last SSE ``id`` received (informational: the server ignores Last-Event-ID)."""

    def _decoder(self) -> tuple[Callable[[bytes], list[StreamingResult]], Callable[[], str | None]]:
        decoder = SSEDecoder()
        feed = decoder.feed

        def decode(chunk: bytes) -> list[StreamingResult]:
            comments = decoder.comments
            events = feed(chunk)
            if decoder.comments != comments:
                self.heartbeats += decoder.comments - comments
            if not events:
                return []
            self.last_event_id = decoder.last_event_id
            return [sse_to_event(sse) for sse in events]

        def end() -> str | None:
            return "an unterminated event" if decoder.end() else None

        return decode, end
