"""The stream object every transport returns, and the seams transports plug into.

A transport (``_ws`` or ``_http``) knows how to open one crawl request and read its events.
:class:`CrawlStream` drives it: it validates nothing (the caller did), runs the crawl
session bookkeeping of :mod:`riptide_sync.protocol.session` (one result per URL, indices in
the caller's list, one summary), calls ``on_message``, and guarantees cleanup on
``close()``, ``break`` (the stream is collected) and Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Generator, Iterator, Protocol

from ._checkpoint import Checkpoint
from .exceptions import APIError, IncompleteStreamError, ResultsDroppedError, StreamingError
from .models import StreamingResult
from .protocol.envelope import MALFORMED_MESSAGE
from .protocol.session import CrawlSession, RequestPlan, ResultRejected
from .retry import RetryPolicy, RetryTracker, is_retryable

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

    def close(self) -> None:
        """Abandon this request: release its response or connection. On WebSocket the
        socket is closed (a crawl cannot be cancelled on the server, and its late results
        must not mix with the next request's); the next ``open_crawl`` reconnects.
        Idempotent; a no-op once the request has ended with its summary."""
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
    """

    def __init__(
        self,
        transport: Transport,
        urls: list[str],
        options: dict[str, Any] | None,
        *,
        stats: StreamStats,
        on_message: OnMessage | None = None,
        max_urls_per_request: int = 100,
        progress_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        # The iterator state lives in _StreamCore, which holds no reference back to this
        # handle: when the caller drops the handle (break), __del__ runs at once and closes.
        self._core = _StreamCore(
            transport,
            urls,
            options,
            stats,
            max_urls_per_request,
            progress_timeout,
            retry if retry is not None else RetryPolicy(max_attempts=1),
            Checkpoint(checkpoint, urls) if checkpoint is not None else None,
        )
        self._on_message = on_message
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
        the iteration end). Returns within about a second.
        """
        self._core.close()

    def __enter__(self) -> CrawlStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None:
            core.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<CrawlStream {self.transport_name} {state} results={self.stats.results}>"


SERVER_PER_URL_LIMIT = 30.0
"""Seconds the server spends on one URL at most: 15 s for headers + 15 s for the body
(PROTOCOL.md §2.5)."""

PROGRESS_GRACE = 10.0
"""Seconds added to the per-URL limit before a silent stream counts as stalled."""

SUMMARY_GRACE = 5.0
"""Seconds to wait for a summary once every result of its request is in (the server sends
it straight after the last result; it may have been dropped, PROTOCOL.md §1.9)."""


def progress_deadline(timeout_secs: float | None) -> float:
    """Seconds without any event after which a stream counts as stalled: the per-URL limit
    (``timeout_secs``, else the server's 30 s) plus a grace."""
    return (timeout_secs if timeout_secs is not None else SERVER_PER_URL_LIMIT) + PROGRESS_GRACE


class _StreamCore:
    """The iteration of one logical stream; see :class:`CrawlStream`.

    The loop: plan a request for the positions still missing (at most the server's limit),
    open it, read its events until its summary; on a lost connection, a stall or a summary
    that falls short, wait as the retry policy says and ask again for what is missing.
    """

    def __init__(
        self,
        transport: Transport,
        urls: list[str],
        options: dict[str, Any] | None,
        stats: StreamStats,
        max_urls_per_request: int,
        receive_timeout: float | None,
        retry: RetryPolicy,
        checkpoint: Checkpoint | None,
    ) -> None:
        self.transport = transport
        self.options = options
        self.stats = stats
        self.progress_timeout = receive_timeout
        self.summary_timeout = (
            SUMMARY_GRACE if receive_timeout is None else min(receive_timeout, SUMMARY_GRACE)
        )
        self.retry = retry
        self.checkpoint = checkpoint
        done = checkpoint.load() if checkpoint is not None else None
        self.session = CrawlSession(urls, max_per_request=max_urls_per_request, done=done)
        self.closed = False
        self._closed_event = threading.Event()
        self._close_lock = threading.Lock()
        self.events: Iterator[StreamingResult] = self._run()

    def close(self) -> None:
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self._closed_event.set()
        try:
            self.transport.close()
        finally:
            if self.checkpoint is not None:
                self.checkpoint.close()

    def _run(self) -> Iterator[StreamingResult]:
        session = self.session
        started = time.monotonic()
        summaries: list[dict[str, Any]] = []
        self._sent_welcome = self._sent_metadata = False
        tracker = RetryTracker(self.retry)
        resuming = False
        while not self.closed:
            plan = session.next_request()
            if plan is None:
                break
            if resuming:
                self.stats.reconnects += 1
                self.stats.resumed_urls += len(plan.urls)
            try:
                source = self.transport.open_crawl(plan.urls, self.options)
            except (StreamingError, APIError) as exc:
                session.release(plan)
                if self.closed:
                    return
                self._wait_or_give_up(tracker, exc)
                resuming = True
                continue
            delivered_before = session.completed
            outcome = yield from self._read_request(plan, source, summaries)
            missing = session.release(plan)
            if self.closed or outcome == "refused":
                return
            if not missing:
                resuming = False
                if isinstance(outcome, BaseException):
                    # Every result is in, only the summary was lost with the connection:
                    # nothing to ask again, but the connection cannot be trusted.
                    source.close()
                continue
            source.close()
            if session.completed > delivered_before:
                tracker.reset()  # progress was made: a new streak of failures
            cause = (
                outcome
                if isinstance(outcome, BaseException)
                else ResultsDroppedError(
                    f"the server's summary came with {len(missing)} result(s) missing"
                )
            )
            self._wait_or_give_up(tracker, cause)
            resuming = True
        if self.closed:
            return
        elapsed_ms = int((time.monotonic() - started) * 1000)
        summary = StreamingResult("summary", session.summary(summaries, elapsed_ms))
        self.close()  # every result is in: release the connection before the caller reads
        yield summary

    def _read_request(
        self, plan: RequestPlan, source: EventSource, summaries: list[dict[str, Any]]
    ) -> Generator[StreamingResult, None, str | StreamingError]:
        """Yield one request's events; return "done", "refused", or the exception that
        ended it early (a lost connection, a stall)."""
        session = self.session
        answered = False  # the server accepted this request (metadata or a result came)
        # Positions of this plan still without a result, counted once and then kept
        # up to date: only this request can deliver them (one request in flight at a
        # time), so a per-event rescan of the plan (O(n) each, O(n^2) per request) is
        # not needed.
        pending = sum(1 for i in plan.indices if not session.is_delivered(i))
        while True:
            timeout = self.summary_timeout if not pending else self.progress_timeout
            try:
                event = source.receive(timeout)
            except StreamingError as exc:
                return exc
            if self.closed:
                return "closed"
            kind = event.event_type
            if kind == "result":
                answered = True
                try:
                    data = session.accept_result(plan, event.data)
                except ResultRejected as exc:
                    yield _error_event("invalid_result", str(exc), event.timestamp)
                    continue
                if data is None:
                    self.stats.duplicates_suppressed += 1
                    continue
                pending -= 1
                self.stats.results += 1
                if self.checkpoint is not None:
                    self.checkpoint.append(data["index"], data.get("result") or {})
                yield StreamingResult("result", data, event.timestamp)
            elif kind == "summary":
                summaries.append(event.data)
                return "done"
            elif kind == "progress":
                yield StreamingResult(
                    "progress", session.rewrite_progress(event.data), event.timestamp
                )
            elif kind == "metadata":
                answered = True
                if not self._sent_metadata:
                    self._sent_metadata = True
                    yield StreamingResult("metadata", session.metadata(event.data), event.timestamp)
            elif kind == "welcome":
                if not self._sent_welcome:
                    self._sent_welcome = True
                    yield event
            elif kind == "error":
                yield event
                if not answered and event.data.get("error_type") != MALFORMED_MESSAGE:
                    # The server refused the crawl request itself (PROTOCOL.md §1.4):
                    # no metadata, results or summary will follow.
                    return "refused"
            else:
                yield event  # a type the server added later: pass it through

    def _wait_or_give_up(self, tracker: RetryTracker, cause: BaseException) -> None:
        """Sleep before the next attempt, or raise when the policy gives up.

        Raises:
            APIError: a refusal that no retry can fix (401/403, 404, 4xx), as itself.
            IncompleteStreamError: the policy gave up; names the URLs still missing and
                chains the last cause.
        """
        delay = tracker.next_delay(cause)
        if delay is None:
            if isinstance(cause, APIError) and not is_retryable(cause):
                raise cause
            session = self.session
            raise IncompleteStreamError(
                f"the {self.transport.name} stream could not be completed after "
                f"{tracker.failures} failed attempt(s); last: {cause}",
                missing=session.missing_urls(),
                missing_indices=session.missing_indices(),
                delivered=session.completed,
            ) from cause
        if self.retry.sleep is time.sleep:
            self._closed_event.wait(delay)  # close() ends the wait at once
        else:
            self.retry.sleep(delay)


def _error_event(error_type: str, message: str, timestamp: str | None = None) -> StreamingResult:
    return StreamingResult("error", {"error_type": error_type, "message": message}, timestamp)
