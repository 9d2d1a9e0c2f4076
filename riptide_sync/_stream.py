"""The stream object every transport returns, and the seams transports plug into.

A transport (``_ws`` or ``_http``) knows how to open one crawl request and read its events.
:class:`CrawlStream` drives it: it validates nothing (the caller did), runs the crawl
session bookkeeping of :mod:`riptide_sync.protocol.session` (one result per URL, indices in
the caller's list, one summary), calls ``on_message``, and guarantees cleanup on
``close()``, ``break`` (the stream is collected) and Ctrl-C.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Generator, Iterator, Protocol

from . import _fork
from ._checkpoint import Checkpoint
from .exceptions import (
    APIError,
    IncompleteStreamError,
    ResultsDroppedError,
    SlowConsumerError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
    TLSVerificationError,
)
from .models import StreamingResult
from .protocol.envelope import MALFORMED_MESSAGE
from .protocol.session import CrawlSession, RequestPlan, ResultRejected, server_finished
from .retry import RetryPolicy, RetryTracker, is_retryable

__all__ = ["StreamStats", "EventSource", "Transport", "CrawlStream"]

logger = logging.getLogger("riptide_sync.stream")


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
        # The iterator state lives in _StreamCore, which holds no reference back to this
        # handle: when the caller drops the handle (break), __del__ runs at once and closes.
        self._core = _StreamCore(
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


SERVER_PER_URL_LIMIT = 30.0
"""Seconds the server spends on one URL at most: 15 s for headers + 15 s for the body
(docs/protocol.md §2.5)."""

PROGRESS_GRACE = 10.0
"""Seconds added to the per-URL limit before a silent stream counts as stalled."""

SUMMARY_GRACE = 5.0
"""Seconds to wait for a summary once every result of its request is in (the server sends
it straight after the last result; it may have been dropped, docs/protocol.md §1.9)."""


def progress_deadline(timeout_secs: float | None) -> float:
    """Seconds without any event after which a stream counts as stalled: the per-URL limit
    (``timeout_secs``, else the server's 30 s) plus a grace."""
    return (timeout_secs if timeout_secs is not None else SERVER_PER_URL_LIMIT) + PROGRESS_GRACE


class _Lane:
    """One connection's worth of the stream: its transport and the request it carries."""

    __slots__ = ("transport", "plan", "source", "pending", "answered", "pump", "watched",
                 "tracker", "progressed", "last_item", "server_done")

    def __init__(self, transport: Transport | None, retry: RetryPolicy) -> None:
        self.transport = transport
        self.plan: RequestPlan | None = None
        self.source: EventSource | None = None
        self.pending = 0  # positions of the plan still without a result
        self.answered = False  # the server accepted the request (metadata or a result came)
        self.pump: threading.Thread | None = None
        self.watched = False  # the consumer reads this request itself among others
        # Each connection has its own streak of failures: lanes that fail together (a
        # server restart) must not use up each other's attempts.
        self.tracker = RetryTracker(retry)
        self.progressed = False  # results came on this lane since its last failure
        self.last_item = 0.0  # monotonic time the consumer last got an item of this lane
        self.server_done = False  # an event said the server finished this request


_HANDOFF_SIZE = 2
"""Batches the pump threads of a parallel stream may hold for the consumer at once; beyond
it they wait, and the transports' own bounded queues (and overflow policy) take over."""

_BATCH_MAX = 32
"""Events a pump hands over at once at most: every event its source already holds, so the
consumer and the pump meet once per batch (one lock round trip and one thread switch),
not once per event. At most ``(_HANDOFF_SIZE + 1) * _BATCH_MAX`` events wait in pumps."""


_WAIT_SLICE = 0.25
"""Longest single wait of the consumer and the pumps on the hand-off (close() latency)."""

_CHECK_EVERY = 0.05
"""Seconds between checks of the watched lanes' deadlines while events keep coming."""

_PUMP_MARGIN = 5.0
"""Seconds the consumer gives a pump beyond the pump's own deadline before it ends the
request itself (a backstop: a pump's receive() normally ends in time on its own)."""


class _StreamCore:
    """The iteration of one logical stream; see :class:`CrawlStream`.

    The loop: plan requests for the positions still missing (at most the server's limit
    each, up to ``parallel`` at once, one per connection), read their events until their
    summaries; on a lost connection, a stall or a summary that falls short, wait as the
    retry policy says and ask again for what is missing. With ``parallel`` 1 the consumer
    reads the one request directly; with more, it reads each request's source itself when
    the source can wake it (``watch``: the WebSocket reader and the HTTP read-ahead
    threads do), waiting for any of them; a source that cannot is read by a pump thread
    into a small shared hand-off.
    """

    def __init__(
        self,
        make_transport: Callable[[], Transport],
        urls: list[str],
        options: dict[str, Any] | None,
        stats: StreamStats,
        max_urls_per_request: int,
        receive_timeout: float | None,
        retry: RetryPolicy,
        checkpoint: Checkpoint | None,
        parallel: int,
    ) -> None:
        self.make_transport = make_transport
        self.transport = make_transport()
        """The first lane's transport (names the stream, holds the session id)."""
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
        self.lanes = [_Lane(self.transport, retry)] + [
            _Lane(None, retry) for _ in range(parallel - 1)
        ]
        self.closed = False
        self._closed_event = threading.Event()
        self._close_lock = threading.Lock()
        self._pumps: set[threading.Thread] = set()
        """The pumps still running (each removes itself when it ends), joined by close()."""
        self._pumps_lock = threading.Lock()
        self._handoff: queue.Queue[
            tuple[_Lane, EventSource, list[StreamingResult | BaseException]]
        ] = queue.Queue(_HANDOFF_SIZE)
        self._ready: collections.deque[
            tuple[_Lane, EventSource, StreamingResult | BaseException]
        ] = collections.deque()
        """Items of the last batch taken from the hand-off, not yet returned (consumer)."""
        self._readable = threading.Event()
        """Set by watched sources (and pumps) when something may be ready to read."""
        self._turn = 0
        """Which watched lane the consumer looks at first (round robin)."""
        self._check_at = 0.0
        """When the watched lanes' deadlines are next checked on the hot path."""
        self._started_reading = False
        """The first request has delivered a result (or its summary, or failed): the other
        lanes may open. Time to first result: it does not wait for their handshakes."""
        self.events: Iterator[StreamingResult] = self._run()

    def close(self) -> None:
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self._closed_event.set()
        self._readable.set()
        try:
            for lane in self.lanes:
                if lane.transport is not None:
                    lane.transport.close()  # wakes a pump blocked in receive()
            current = threading.current_thread()
            with self._pumps_lock:
                pumps = list(self._pumps)
            deadline = time.monotonic() + 1.0
            for pump in pumps:
                if pump is not current:
                    pump.join(max(0.0, deadline - time.monotonic()))
        finally:
            if self.checkpoint is not None:
                self.checkpoint.close()

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> Iterator[StreamingResult]:
        session = self.session
        started = time.monotonic()
        summaries: list[dict[str, Any]] = []
        self._sent_welcome = self._sent_metadata = False
        while not self.closed:
            for lane in self.lanes:  # give every idle lane a request
                if lane is not self.lanes[0] and not self._started_reading:
                    break  # the other lanes open once the first has delivered something
                while lane.plan is None and not self.closed:
                    plan = session.next_request()
                    if plan is None:
                        break
                    try:
                        self._open(lane, plan)
                    except (StreamingError, APIError) as exc:
                        session.release(plan)
                        if self.closed:
                            return
                        self._after_failure(lane, exc)
            active = [lane for lane in self.lanes if lane.plan is not None]
            if not active:
                break
            lane, item = self._next_item(active)
            if not self._started_reading and (
                isinstance(item, BaseException) or item.event_type in ("result", "summary")
            ):
                self._started_reading = True
            if self.closed:
                return
            lane.last_item = time.monotonic()
            if isinstance(item, BaseException):
                outcome: str | BaseException = item
            else:
                outcome = yield from self._handle(lane, item, summaries)
                if not outcome:
                    continue
            if outcome == "refused":
                self._refused(lane, item)
                return
            assert lane.plan is not None and lane.source is not None
            source = lane.source
            missing = session.release(lane.plan)
            lane.plan = lane.source = lane.pump = None
            lane.watched = False
            if outcome != "done" or missing:
                # A lost connection, a stall, or a summary short of results: the
                # connection cannot be trusted with another request (late results).
                source.close()
            if missing:
                cause = (
                    outcome
                    if isinstance(outcome, BaseException)
                    else ResultsDroppedError(
                        f"the server's summary came with {len(missing)} result(s) missing",
                        missing=[session.urls[i] for i in missing],
                        missing_indices=missing,
                    )
                )
                self._after_failure(lane, cause)
        if self.closed:
            return
        elapsed_ms = int((time.monotonic() - started) * 1000)
        summary = StreamingResult("summary", session.summary(summaries, elapsed_ms))
        self.close()  # every result is in: release the connections before the caller reads
        yield summary

    def _open(self, lane: _Lane, plan: RequestPlan) -> None:
        """Send ``plan`` on ``lane`` (a new transport for a lane's first request)."""
        if lane.transport is None:
            lane.transport = self.make_transport()
            if self.closed:  # close() ran while the transport was being made
                lane.transport.close()
        lane.plan = plan
        try:
            lane.source = lane.transport.open_crawl(plan.urls, self.options)
        except BaseException:
            lane.plan = None
            raise
        if plan.resumed:  # counted once the resumed request is actually out
            self.stats.reconnects += 1
            self.stats.resumed_urls += plan.resumed
            logger.info("> resumed the %s stream: re-requested %d URL(s) without a result",
                        self.transport.name, plan.resumed)
        lane.pending = sum(1 for i in plan.indices if not self.session.is_delivered(i))
        lane.answered = False
        lane.server_done = False
        lane.last_item = time.monotonic()
        others_active = any(other.plan is not None for other in self.lanes if other is not lane)
        lane.watched = False
        if len(self.lanes) > 1 and (others_active or self.session.has_unplanned):
            # More than one request will be in flight: the consumer reads this one among
            # the others when its source can wake it (WebSocket: the reader thread queues
            # and wakes), else a pump thread reads it. A request that is alone (one chunk,
            # or the last) is read directly.
            self._multiplex(lane)

    def _multiplex(self, lane: _Lane) -> None:
        """Read ``lane`` among others: watched by the consumer, or on a pump thread."""
        watch = getattr(lane.source, "watch", None)
        if watch is not None and watch(self._readable.set):
            lane.watched = True
        else:
            self._start_pump(lane)

    def _start_pump(self, lane: _Lane) -> None:
        pump = threading.Thread(
            target=self._pump, args=(lane, lane.source), name="riptide-stream-pump", daemon=True
        )
        with self._pumps_lock:
            self._pumps.add(pump)
        lane.pump = pump
        pump.start()

    def _timeout(self, lane: _Lane) -> float | None:
        """How long this lane may stay silent: the summary grace once every result of its
        request is in, or once the server said it finished the request (results it dropped
        will not come), else the progress deadline."""
        if not lane.pending or lane.server_done:
            return self.summary_timeout
        return self.progress_timeout

    # --- the hand-off between pumps and the consumer --------------------------------------
    #
    # Why the consumer's wait in _next_item always ends (no interleaving of the consumer,
    # the pumps and stale sources can leave it waiting for nothing):
    #
    # 1. Every active lane (lane.plan is not None) is read directly by the consumer, or by
    #    exactly one pump started for its current source (lane.pump, lane.source); only the
    #    consumer assigns lane.plan/source/pump, and a lane is ended (plan = None) only by
    #    the consumer, on that lane's summary or failure item.
    # 2. A pump ends only after it has handed over its source's last item (a summary or
    #    the exception ending the request), or when its item is no longer wanted: the
    #    stream is closed, or lane.source is no longer its source (the consumer ended that
    #    request). It never waits in put() for a consumer that discards its item: it
    #    re-checks both conditions every _WAIT_SLICE.
    # 3. A pump's own waits are bounded: receive() by the summary grace or the progress
    #    deadline, which ends in an exception item (unless progress_timeout is None, when
    #    only close() or the transport's keepalive ends it, as the caller asked).
    # 4. The consumer's wait is bounded too, in slices: after each empty slice it checks
    #    every active lane's pump; a pump that is no longer alive while the hand-off is
    #    empty has nothing left to deliver (its put() happened before its end), so its
    #    request is ended here as a lost connection rather than waited for. A consumer-side
    #    deadline per lane (the pump's own deadline plus a margin) is the backstop for a
    #    pump stuck inside a transport that ignores its timeout.
    # 5. Stale items (of a request already ended) are recognised by their source and
    #    dropped; they never count as the current request's.
    #
    # So each slice either returns an item of an active lane, or ends a lane, or (closed)
    # returns; with a finite number of lanes and requests the loop ends.

    def _next_item(self, active: list[_Lane]) -> tuple[_Lane, StreamingResult | BaseException]:
        """The next event (or the exception that ended a request) of any active lane."""
        if len(active) == 1 and active[0].pump is None and not active[0].watched:
            lane = active[0]
            assert lane.source is not None
            try:
                return lane, lane.source.receive(self._timeout(lane))
            except StreamingError as exc:
                return lane, exc
        watched = []
        pumped = False
        for lane in active:
            if lane.pump is None and not lane.watched:  # safety net: a direct lane never has company
                logger.error("! a directly read request has company: multiplexing it")
                self._multiplex(lane)
            if lane.watched:
                watched.append(lane)
            elif lane.pump is not None:
                pumped = True
        if watched:
            now = time.monotonic()
            if now >= self._check_at:
                # Every watched lane's deadline, at least every _CHECK_EVERY seconds even
                # while another lane always has an event ready.
                self._check_at = now + _CHECK_EVERY
                silent = self._silent_lane(watched, now)
                if silent is not None:
                    return silent
            if not self._ready:
                # The hot path: the next watched lane in turn has an event queued.
                lane = watched[self._turn % len(watched)]
                current = lane.source
                assert current is not None
                if current.ready():
                    self._turn += 1
                    try:
                        return lane, current.receive(0.0)
                    except StreamingError as exc:
                        return lane, exc
            return self._next_watched(active, watched, pumped)
        ready = self._ready
        started = time.monotonic()
        while True:
            if ready:
                lane, source, item = ready.popleft()
            else:
                try:
                    lane, source, batch = self._handoff.get(timeout=_WAIT_SLICE)
                except queue.Empty:
                    batch = None
                if batch is not None:
                    ready.extend([(lane, source, one) for one in batch])
                    continue
                if self.closed:
                    return active[0], StreamingError("stream closed")
                ended = self._ended_lane(active, started)
                if ended is not None:
                    return ended
                continue
            if lane.source is not source:
                continue  # a late item of a request that has already ended
            if isinstance(item, BaseException) and not isinstance(item, StreamingError):
                raise item  # not a stream failure (an APIError, a bug): the caller's to see
            return lane, item

    def _next_watched(
        self, active: list[_Lane], watched: list[_Lane], pumped: bool
    ) -> tuple[_Lane, StreamingResult | BaseException]:
        """:meth:`_next_item` when the consumer reads some requests itself: the next event
        of the first ready watched lane (round robin), else of the pumps' hand-off; else
        wait until a source or a pump wakes it. The watched lanes' deadlines are the
        consumer's to keep: a lane silent past its limit ends in a StreamTimeoutError,
        checked on every call, so a busy lane cannot hide a stalled one."""
        ready = self._ready
        readable = self._readable
        count = len(watched)
        started = time.monotonic()
        while True:
            while ready:
                lane, source, item = ready.popleft()
                if lane.source is not source:
                    continue  # a late item of a request that has already ended
                if isinstance(item, BaseException) and not isinstance(item, StreamingError):
                    raise item
                return lane, item
            turn = self._turn
            for step in range(count):
                lane = watched[(turn + step) % count]
                current = lane.source
                assert current is not None
                if current.ready():
                    self._turn = turn + step + 1
                    try:
                        return lane, current.receive(0.0)
                    except StreamingError as exc:
                        return lane, exc
            if pumped:
                try:
                    lane, source, batch = self._handoff.get_nowait()
                except queue.Empty:
                    pass
                else:
                    ready.extend([(lane, source, one) for one in batch])
                    continue
            if self.closed:
                return active[0], StreamingError("stream closed")
            silent = self._silent_lane(watched, time.monotonic())
            if silent is not None:
                return silent
            if pumped:
                ended = self._ended_lane(active, started)
                if ended is not None:
                    return ended
            # Nothing ready: sleep until a reader queues something (clear, then look
            # again, so a wake between the look above and the wait is not lost).
            readable.clear()
            if any(lane.source is not None and lane.source.ready() for lane in watched) or (
                pumped and not self._handoff.empty()
            ):
                continue
            readable.wait(_WAIT_SLICE)

    def _silent_lane(
        self, watched: list[_Lane], now: float
    ) -> tuple[_Lane, StreamTimeoutError] | None:
        """A watched lane silent past its deadline with nothing queued, and its failure."""
        for lane in watched:
            limit = self._timeout(lane)
            if limit is not None and now - lane.last_item > limit:
                source = lane.source
                if source is None or not source.ready():
                    return lane, StreamTimeoutError(f"no event within {limit:g} s")
        return None

    def _ended_lane(
        self, active: list[_Lane], started: float
    ) -> tuple[_Lane, StreamingError] | None:
        """An active lane whose pump can deliver nothing more (points 4 of the argument
        above), with the failure that ends its request; None when every lane may still."""
        now = time.monotonic()
        for lane in active:
            pump = lane.pump
            if pump is not None and not pump.is_alive() and self._handoff.empty():
                return lane, StreamConnectionError(
                    "the reader of a request stopped without its end (lost connection)"
                )
            limit = self._timeout(lane)
            if limit is not None and now - max(started, lane.last_item) > limit + _PUMP_MARGIN:
                return lane, StreamTimeoutError(
                    f"no event within {limit:g} s (the reader did not report in time)"
                )
        return None

    def _pump(self, lane: _Lane, source: EventSource) -> None:
        """Pump thread of a parallel stream: read one request's source into the hand-off
        until its summary or the end of the request."""
        try:
            self._pump_loop(lane, source)
        finally:
            with self._pumps_lock:
                self._pumps.discard(threading.current_thread())

    def _pump_loop(self, lane: _Lane, source: EventSource) -> None:
        # The pump counts the results it reads itself: the consumer's count lags behind,
        # and once the last result is read the wait for the summary is only the grace.
        unread = lane.pending
        done = False  # the server said it finished the request
        ready: Callable[[], bool] | None = getattr(source, "ready", None)
        while not self.closed and lane.source is source:
            # One blocking receive, then every event the source already holds (at most
            # _BATCH_MAX): handed over together, so a fast stream costs the consumer one
            # hand-off per batch, not per event.
            batch: list[StreamingResult | BaseException] = []
            last = False
            while True:
                timeout = self.summary_timeout if unread <= 0 or done else self.progress_timeout
                try:
                    event = source.receive(timeout)
                except BaseException as exc:  # delivered to the consumer, which decides
                    batch.append(exc)
                    last = True
                    break
                batch.append(event)
                kind = event.event_type
                if kind == "result":
                    unread -= 1
                elif kind == "summary":
                    last = True
                    break
                if kind in ("result", "progress") and server_finished(kind, event.data):
                    done = True
                if ready is None or len(batch) >= _BATCH_MAX or not ready():
                    break
            while not self.closed and lane.source is source:
                try:
                    self._handoff.put((lane, source, batch), timeout=_WAIT_SLICE)
                    self._readable.set()  # a consumer waiting on watched lanes too
                    break
                except queue.Full:
                    continue
            if last:
                return

    def _handle(
        self, lane: _Lane, event: StreamingResult, summaries: list[dict[str, Any]]
    ) -> Generator[StreamingResult, None, str]:
        """Yield what one event of ``lane`` means to the caller; return "" while the
        request goes on, "done" at its summary, "refused" when the server refused it."""
        session = self.session
        plan = lane.plan
        assert plan is not None
        kind = event.event_type
        if kind in ("result", "progress") and server_finished(kind, event.data):
            lane.server_done = True
        if kind == "result":
            lane.answered = True
            try:
                data = session.accept_result(plan, event.data)
            except ResultRejected as exc:
                yield _error_event("invalid_result", str(exc), event.timestamp)
                return ""
            if data is None:
                self.stats.duplicates_suppressed += 1
                return ""
            lane.pending -= 1
            lane.progressed = True
            self.stats.results += 1
            if self.checkpoint is not None:
                self.checkpoint.append(data["index"], data.get("result") or {})
            yield StreamingResult("result", data, event.timestamp)
        elif kind == "summary":
            summaries.append(event.data)
            return "done"
        elif kind == "progress":
            yield StreamingResult("progress", session.rewrite_progress(event.data), event.timestamp)
        elif kind == "metadata":
            lane.answered = True
            if not self._sent_metadata:
                self._sent_metadata = True
                yield StreamingResult("metadata", session.metadata(event.data), event.timestamp)
        elif kind == "welcome":
            if not self._sent_welcome:
                self._sent_welcome = True
                yield event
        elif kind == "error":
            yield event
            if not lane.answered and event.data.get("error_type") != MALFORMED_MESSAGE:
                # The server refused the crawl request itself (docs/protocol.md §1.4):
                # no metadata, results or summary will follow.
                return "refused"
        else:
            yield event  # a type the server added later: pass it through
        return ""

    def _after_failure(self, lane: _Lane, cause: BaseException) -> None:
        """Sleep before ``lane`` tries again, or raise when the policy gives up.

        Results delivered on the lane since its last failure start a new streak, so the
        policy bounds a connection's consecutive failures, not all of a long crawl's.

        Raises:
            APIError: a refusal that no retry can fix (401/403, 404, 4xx), as itself.
            TLSVerificationError: the server's certificate failed verification, as itself.
            SlowConsumerError: ``overflow="error"`` and the queue filled, as itself, with
                the URLs still missing.
            IncompleteStreamError: the policy gave up; names the URLs still missing and
                chains the last cause.
        """
        session = self.session
        if isinstance(cause, SlowConsumerError):
            # overflow="error" asked for exactly this exception; say what is missing.
            cause.missing = session.missing_urls()
            cause.missing_indices = session.missing_indices()
            cause.delivered = session.completed
            raise cause
        tracker = lane.tracker
        resume_now = False
        if lane.progressed:
            tracker.reset()
            lane.progressed = False
            # Results came since the last failure: the server works, the request was cut
            # (a drop, a stall, results it dropped). Resume at once; the policy's backoff
            # paces consecutive failures without progress, and any server-requested wait.
            resume_now = not isinstance(cause, APIError)
        delay = tracker.next_delay(cause)
        if delay is None:
            if isinstance(cause, (APIError, TLSVerificationError)) and not is_retryable(cause):
                raise cause  # no retry can fix it: the caller sees the cause itself
            # Summaries short of results raise the subclass that says so.
            error = ResultsDroppedError if isinstance(cause, ResultsDroppedError) else (
                IncompleteStreamError)
            last = cause.message if isinstance(cause, IncompleteStreamError) else str(cause)
            # The cause first, plainly: it is what the caller has to act on.
            raise error(
                f"{last} (the {self.transport.name} stream gave up after "
                f"{tracker.failures} attempt(s))",
                missing=session.missing_urls(),
                missing_indices=session.missing_indices(),
                delivered=session.completed,
            ) from cause
        if logger.isEnabledFor(logging.INFO):  # counting the missing URLs walks the whole list
            logger.info("! %s stream: %s; retrying %s (failure %d in a row, %d URL(s) "
                        "without a result)", self.transport.name, cause,
                        "at once" if resume_now else f"in {delay:.1f} s", tracker.failures,
                        len(session.missing_indices()))
        if resume_now:
            return
        if self.retry.sleep is time.sleep:
            self._closed_event.wait(delay)  # close() ends the wait at once
        else:
            self.retry.sleep(delay)  # an injected sleep (tests): close() cannot cut it short

    def _refused(self, lane: _Lane, event: StreamingResult | BaseException) -> None:
        """The server refused a request (an ``error`` instead of metadata, docs/protocol.md
        §1.4): the error event was yielded; end the stream. Retrying would be refused
        the same way.

        Raises:
            IncompleteStreamError: URLs are still without a result (the refused request's,
                and those of any other request cut short); chained to an APIError that
                carries the server's error type and message.
        """
        session = self.session
        for other in self.lanes:
            if other.plan is not None:
                session.release(other.plan)
        self.close()
        missing = session.missing_indices()
        if not missing:
            return
        data = event.data if isinstance(event, StreamingResult) else {}
        message = str(data.get("message") or "the server refused the crawl request")
        cause = APIError(message, error_type=data.get("error_type"), body=data)
        raise IncompleteStreamError(
            f"the server refused a crawl request: {message}",
            missing=session.missing_urls(),
            missing_indices=missing,
            delivered=session.completed,
        ) from cause


def _error_event(error_type: str, message: str, timestamp: str | None = None) -> StreamingResult:
    return StreamingResult("error", {"error_type": error_type, "message": message}, timestamp)
