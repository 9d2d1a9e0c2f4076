"""The stream object every streaming call returns: :class:`CrawlStream`.

A transport (``_ws`` or ``_http``, the contract in :mod:`riptide_sync._transport`) knows
how to open one crawl request and read its events. :class:`CrawlStream` is the caller's
handle on the iteration: the driver (:mod:`riptide_sync._driver`) runs the crawl session
bookkeeping (one result per URL, indices in the caller's list, one summary), and this
handle calls ``on_message``, refuses use across a fork, and guarantees cleanup on
``close()``, ``break`` (the stream is collected) and Ctrl-C.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from . import _fork
from ._checkpoint import Checkpoint
from ._driver import StreamCore
from ._transport import StreamStats, Transport
from .exceptions import StreamConnectionError
from .models import StreamingResult
from .retry import RetryPolicy

__all__ = ["CrawlStream", "OnMessage"]

OnMessage = Callable[[StreamingResult], Any]


class CrawlStream:
    """A crawl's events as an iterator: ``for event in stream``.

    Returned by ``client.streaming.crawl_websocket`` / ``crawl_ndjson`` / ``crawl_sse``.
    Nothing is sent until the first ``next()``. Every URL yields exactly one ``result``
    event (``data["index"]`` is its position in the caller's list), then one ``summary``
    ends the iteration; or the iteration raises a :class:`StreamingError` (an
    :class:`IncompleteStreamError` names the URLs still missing).

    Usage::

        for event in client.streaming.crawl_websocket(urls):
            ...

        with client.streaming.crawl_websocket(urls) as stream:
            for event in stream:
                if enough:
                    break          # leaving the with block closes the stream

    ``close()`` is idempotent and may be called from any thread; leaving a ``for`` loop
    with ``break`` closes the stream when it is collected (at once in CPython).

    Args:
        make_transport: makes one transport per connection the stream needs (one, or
            ``parallel`` for long lists); each shares ``stats``.
        urls: the caller's URLs, already validated.
        options: the wire ``options`` object, or None.
        stats: the counters to update.
        on_message: called with each event before it is yielded, or None.
        max_urls_per_request: the most URLs one request carries.
        progress_timeout: seconds without any event before a request counts as
            stalled; None waits for ever.
        retry: the resume policy; None means no resume.
        checkpoint: a JSON Lines file of delivered results, or None.
        parallel: requests (connections) in flight at once; with more than one, the
            wire counters of ``stats`` are updated by several reader threads and may
            under-count slightly.
    """

    def __init__(
        self,
        make_transport: Callable[[], Transport],
        urls: list[str],
        options: dict[str, Any] | None,
        *,
        stats: StreamStats,
        on_message: OnMessage | None = None,
        max_urls_per_request: int = 100,
        progress_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        parallel: int = 1,
    ) -> None:
        # The iterator state lives in the driver's StreamCore, which holds no reference back
        # to this handle: when the caller drops the handle (break), __del__ runs at once and
        # closes.
        self._core = StreamCore(
            make_transport,
            urls,
            options,
            stats,
            max_urls_per_request,
            progress_timeout,
            retry if retry is not None else RetryPolicy(max_attempts=1),
            Checkpoint(checkpoint, urls) if checkpoint is not None else None,
            parallel,
        )
        self._on_message = on_message
        self._pid = _fork.pid()
        self.stats = stats
        """Counters of this stream (:class:`StreamStats`), updated live."""

    @property
    def session_id(self) -> str | None:
        """The server's session id (WebSocket welcome; NDJSON/SSE request id), or None
        before the stream has started."""
        return self._core.transport.session_id

    @property
    def closed(self) -> bool:
        """True once the stream has ended or been closed."""
        return self._core.closed

    @property
    def transport_name(self) -> str:
        """``"websocket"``, ``"ndjson"`` or ``"sse"``."""
        return self._core.transport.name

    def __iter__(self) -> CrawlStream:
        return self

    def __next__(self) -> StreamingResult:
        if self._pid != _fork.pid():
            self._core.closed = True
            raise StreamConnectionError(
                f"this stream was opened in process {self._pid}, before a fork(): its "
                f"connection belongs to that process; open a new stream in this one"
            )
        try:
            event = next(self._core.events)
            if self._on_message is not None:
                self._on_message(event)
        except BaseException:
            # StopIteration, a StreamingError, an exception from on_message, Ctrl-C:
            # in every case the stream is over and its socket and thread are released.
            self.close()
            raise
        return event

    def close(self) -> None:
        """End the stream: close the connection, join its thread, remove temp files.

        Idempotent; callable from any thread (a consumer blocked in ``next()`` then sees
        the iteration end). Returns within about a second. In a process forked while the
        stream was open, it only marks the stream closed: the parent still owns it (the
        child's copies of its socket and spill file were closed at the fork).
        """
        if self._pid != _fork.pid():
            self._core.closed = True
            return
        self._core.close()

    def __enter__(self) -> CrawlStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and getattr(self, "_pid", None) == _fork.pid():
            core.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<CrawlStream {self.transport_name} {state} results={self.stats.results}>"
