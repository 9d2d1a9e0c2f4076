"""A request of a parallel NDJSON or SSE stream sent without the consumer waiting for it.

In a parallel stream the consumer reads several requests at once (:mod:`riptide_sync._fanin`).
Sending the next chunk's POST on the consumer's thread made it wait for that request's
response headers, a round trip through a server busy streaming the other lane (1-2 ms
over loopback), while the other lane's results were already there to read.
:class:`OpeningSource` sends the request on the lane's reader thread
(:class:`~riptide_sync._http.readahead.LaneReader`) instead, which then reads the body
ahead as for any watched source; the consumer goes on with the other lanes.

What the consumer sees is the same as with ``open_crawl``: the request's events, or, as the
first ``receive()``, the exception the POST ended in (``StreamConnectionError``, a
``StreamTimeoutError`` of the wait for headers, an ``APIError`` of a refusal), which the
stream driver treats as the failure of that request.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from .._deadline import Deadline
from ..exceptions import StreamConnectionError, StreamTimeoutError
from ..models import StreamingResult
from .wakeable import HeaderWait

if TYPE_CHECKING:
    from .source import HTTPEventSource
    from .streams import _HTTPStreamTransport

__all__ = ["OpeningSource"]


class OpeningSource:
    """An :class:`~riptide_sync._transport.EventSource` whose request the lane's reader
    thread sends; see the module docstring. Made by ``open_crawl_watched``."""

    def __init__(
        self,
        transport: _HTTPStreamTransport,
        urls: list[str],
        options: dict[str, Any] | None,
        wake: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._urls = urls
        self._options = options
        self._wake = wake
        self._wait = HeaderWait()  # close() ends the wait for headers at once
        self._lock = threading.Lock()
        self._opened = threading.Event()
        """Set once the POST has ended: ``_source`` or ``_failure`` is then final."""
        self._source: HTTPEventSource | None = None
        self._failure: BaseException | None = None
        self._closed = False

    def start(self) -> bool:
        """Queue the POST on the lane's reader thread; False when the reader was stopped
        (the transport is closed)."""
        return self._transport.lane_reader().run(self._open)

    def _open(self) -> None:
        """Lane reader thread: send the request; then read its body ahead (the read-ahead
        job is queued on this same thread and runs right after this one returns)."""
        try:
            source = self._transport.open_with(self._urls, self._options, self._wait)
        except BaseException as exc:  # noqa: B902 - the consumer's to see, as its receive()
            self._failure = exc
        else:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._source = source
            if closed:
                source.close()
                self._failure = StreamConnectionError("the stream was closed")
            elif not source.watch(self._wake):
                with self._lock:
                    self._source = None
                source.close()
                self._failure = StreamConnectionError(
                    f"the {self._transport.name} transport is closed")
        finally:
            self._opened.set()
            self._wake()

    def watch(self, wake: Callable[[], None]) -> bool:
        """Already watched (by the ``wake`` it was made with)."""
        return True

    def ready(self) -> bool:
        if not self._opened.is_set():
            return False
        source = self._source
        return source is None or source.ready()  # a failure is raised at once

    def receive(self, timeout: float | None) -> StreamingResult:
        """The next event, once the request is out (see ``HTTPEventSource.receive``); the
        POST's failure, if it failed (every call raises it)."""
        source = self._source
        if source is None:
            deadline = Deadline(timeout)
            if not self._opened.wait(deadline.remaining()):
                raise StreamTimeoutError(f"no event within {timeout:g} s")
            if self._failure is not None:
                raise self._failure
            source = self._source
            if source is None:  # pragma: no cover - _failure is set whenever it is None
                raise StreamConnectionError("the stream was closed")
            timeout = deadline.remaining()
        return source.receive(timeout)

    def close(self) -> None:
        """Abandon the request: end its wait for headers, close its response. Idempotent,
        any thread; the transport's close() then stops the reader thread."""
        with self._lock:
            self._closed = True
            source = self._source
        self._wait.cancel()
        if source is not None:
            source.close()
