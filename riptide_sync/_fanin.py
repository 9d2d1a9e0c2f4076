"""Reading several crawl requests at once for the one consumer thread (the fan-in).

A parallel stream (:mod:`riptide_sync._driver`) has up to ``parallel`` requests in flight,
one per :class:`Lane` (connection). The consumer thread reads each request's source
itself when the source can wake it (``EventSource.watch``: the WebSocket reader and the
HTTP read-ahead threads do), waiting for any of them; a source that cannot is read by a
pump thread into a small shared hand-off. Every lane's deadline is kept here too, so a
busy lane cannot hide a stalled one (docs/architecture.md §5).

Only threads, events and timeouts live here: what the events mean is
:mod:`riptide_sync.protocol.events`, what to do when a request fails is the driver's.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Callable

from ._transport import EventSource, Transport
from .exceptions import APIError, StreamConnectionError, StreamingError, StreamTimeoutError
from .models import StreamingResult
from .protocol.events import RequestState
from .protocol.session import server_finished
from .retry import RetryTracker

__all__ = ["Lane", "FanIn"]

logger = logging.getLogger("riptide_sync.stream")

class Lane:
    """One connection's worth of the stream: its transport and the request it carries."""

    __slots__ = ("transport", "request", "source", "pump", "watched", "tracker",
                 "progressed", "last_item", "opened_at")

    def __init__(self, transport: Transport | None, tracker: RetryTracker) -> None:
        self.transport = transport
        self.request: RequestState | None = None
        """The request in flight on this lane, or None when the lane is idle."""
        self.source: EventSource | None = None
        self.pump: threading.Thread | None = None
        self.watched = False  # the consumer reads this request itself among others
        # Each connection has its own streak of failures: lanes that fail together (a
        # server restart) must not use up each other's attempts.
        self.tracker = tracker
        self.progressed = False  # results came on this lane since its last failure
        self.last_item = 0.0  # monotonic time the consumer last got an item of this lane
        self.opened_at = 0.0
        """Monotonic time this lane's request was answered (its headers) or sent."""


_HANDOFF_SIZE = 2
"""Batches the pump threads of a parallel stream may hold for the consumer at once; beyond
it they wait, and the transports' own bounded queues (and overflow policy) take over."""

_BATCH_MAX = 32
"""Events a pump hands over at once at most: every event its source already holds, so the
consumer and the pump meet once per batch (one lock round trip and one thread switch),
not once per event. At most ``(_HANDOFF_SIZE + 1) * _BATCH_MAX`` events wait in pumps."""

_STAY = 32
"""Events the consumer takes from one watched lane in a row while it has them ready, before
it looks at the next lane first. Staying on the lane that has events is the hot path: when
the other lane is empty (waiting for its crawl, or the server is the slower side), looking
there first for every event was a miss and the slow path each time (two more ``ready()``
calls and a loop per event). 32 keeps the order fair and no lane's reader waits long: a
WebSocket lane's bounded queue holds far more."""

_WAIT_SLICE = 0.25
"""Longest single wait of the consumer and the pumps on the hand-off (close() latency)."""

_CHECK_EVERY = 0.05
"""Seconds between checks of the watched lanes' deadlines while events keep coming."""

_PUMP_MARGIN = 5.0
"""Seconds the consumer gives a pump beyond the pump's own deadline before it ends the
request itself (a backstop: a pump's receive() normally ends in time on its own)."""


class FanIn:
    """The next event of any active lane, for the consumer thread.

    Args:
        progress_timeout: seconds a request may stay silent while results are due; None
            waits for ever.
        summary_timeout: seconds a request may stay silent once only its summary is due.
    """

    def __init__(self, progress_timeout: float | None, summary_timeout: float) -> None:
        self.progress_timeout = progress_timeout
        self.summary_timeout = summary_timeout
        self.closed = False
        """Set by the driver's close(): pumps stop, the consumer's wait returns."""
        self._pumps: set[threading.Thread] = set()
        """The pumps still running (each removes itself when it ends), joined by close()."""
        self._pumps_lock = threading.Lock()
        self._handoff: queue.Queue[
            tuple[Lane, EventSource, list[StreamingResult | BaseException]]
        ] = queue.Queue(_HANDOFF_SIZE)
        self._ready: collections.deque[
            tuple[Lane, EventSource, StreamingResult | BaseException]
        ] = collections.deque()
        """Items of the last batch taken from the hand-off, not yet returned (consumer)."""
        self._readable = threading.Event()
        """Set by watched sources (and pumps) when something may be ready to read."""
        self._turn = 0
        """Which watched lane the consumer looks at first (round robin, see _STAY)."""
        self._stayed = 0
        """Events taken in a row from the lane in turn (up to _STAY)."""
        self._sorted: list[Lane] | None = None
        self._watched: list[Lane] = []
        self._pumped = False
        """The last ``active`` list next_item() saw, its watched lanes and whether any is
        pumped (a lane's mode is set when its request starts, which makes a new list)."""
        self._check_at = 0.0
        """When the watched lanes' deadlines are next checked on the hot path."""

    def close(self) -> None:
        """Stop: pumps end at their next check, a consumer waiting here returns. The
        driver closes the transports next (which wakes a pump blocked in receive()), then
        calls :meth:`join`."""
        self.closed = True
        self._readable.set()

    def wake(self) -> None:
        """Wake the consumer if it waits here (a watched source may be ready); any thread."""
        self._readable.set()

    def join(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds in all for the pumps to end (not the caller's
        own thread, when close() runs on a pump)."""
        current = threading.current_thread()
        with self._pumps_lock:
            pumps = list(self._pumps)
        deadline = time.monotonic() + timeout
        for pump in pumps:
            if pump is not current:
                pump.join(max(0.0, deadline - time.monotonic()))

    def timeout(self, lane: Lane) -> float | None:
        """How long this lane may stay silent: the summary grace once only the summary of
        its request is due (``RequestState.summary_due``), else the progress deadline."""
        request = lane.request
        if request is None or request.summary_due:
            return self.summary_timeout
        return self.progress_timeout

    def multiplex(self, lane: Lane) -> None:
        """Read ``lane`` among others: watched by the consumer, or on a pump thread."""
        watch = getattr(lane.source, "watch", None)
        if watch is not None and watch(self._readable.set):
            lane.watched = True
        else:
            self._start_pump(lane)

    def _start_pump(self, lane: Lane) -> None:
        pump = threading.Thread(
            target=self._pump, args=(lane, lane.source), name="riptide-stream-pump", daemon=True
        )
        with self._pumps_lock:
            self._pumps.add(pump)
        lane.pump = pump
        pump.start()

    # --- the hand-off between pumps and the consumer --------------------------------------
    #
    # Why the consumer's wait in next_item always ends (no interleaving of the consumer,
    # the pumps and stale sources can leave it waiting for nothing):
    #
    # 1. Every active lane (lane.request is not None) is read directly by the consumer, or
    #    by exactly one pump started for its current source (lane.pump, lane.source); only
    #    the consumer assigns lane.request/source/pump, and a lane is ended (request = None)
    #    only by the consumer, on that lane's summary or failure item.
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

    def next_item(self, active: list[Lane]) -> tuple[Lane, StreamingResult | BaseException]:
        """The next event (or the exception that ended a request) of any active lane."""
        if len(active) == 1 and active[0].pump is None and not active[0].watched:
            lane = active[0]
            assert lane.source is not None
            try:
                return lane, lane.source.receive(self.timeout(lane))
            except StreamingError as exc:
                return lane, exc
        if active is self._sorted:
            watched, pumped = self._watched, self._pumped
        else:
            # A new set of requests (the driver makes a new list whenever one ends or
            # starts): which are watched and which pumped, once for all its events.
            watched = []
            pumped = False
            for lane in active:
                if lane.pump is None and not lane.watched:  # safety net: never has company
                    logger.error("! a directly read request has company: multiplexing it")
                    self.multiplex(lane)
                if lane.watched:
                    watched.append(lane)
                elif lane.pump is not None:
                    pumped = True
            self._sorted, self._watched, self._pumped = active, watched, pumped
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
                    stayed = self._stayed + 1
                    if stayed >= _STAY:
                        self._turn += 1  # fairness: the next lane is looked at first
                        stayed = 0
                    self._stayed = stayed
                    try:
                        return lane, current.receive(0.0)
                    except (StreamingError, APIError) as exc:  # ends the request
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
        self, active: list[Lane], watched: list[Lane], pumped: bool
    ) -> tuple[Lane, StreamingResult | BaseException]:
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
                    # Stay on this lane while it has events (the hot path), a fresh streak.
                    self._turn = turn + step
                    self._stayed = 1
                    try:
                        return lane, current.receive(0.0)
                    except (StreamingError, APIError) as exc:  # ends the request
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
        self, watched: list[Lane], now: float
    ) -> tuple[Lane, StreamTimeoutError] | None:
        """A watched lane silent past its deadline with nothing queued, and its failure."""
        for lane in watched:
            limit = self.timeout(lane)
            if limit is not None and now - lane.last_item > limit:
                source = lane.source
                if source is None or not source.ready():
                    return lane, StreamTimeoutError(f"no event within {limit:g} s")
        return None

    def _ended_lane(
        self, active: list[Lane], started: float
    ) -> tuple[Lane, StreamingError] | None:
        """An active lane whose pump can deliver nothing more (points 4 of the argument
        above), with the failure that ends its request; None when every lane may still."""
        now = time.monotonic()
        for lane in active:
            pump = lane.pump
            if pump is not None and not pump.is_alive() and self._handoff.empty():
                return lane, StreamConnectionError(
                    "the reader of a request stopped without its end (lost connection)"
                )
            limit = self.timeout(lane)
            if limit is not None and now - max(started, lane.last_item) > limit + _PUMP_MARGIN:
                return lane, StreamTimeoutError(
                    f"no event within {limit:g} s (the reader did not report in time)"
                )
        return None

    def _pump(self, lane: Lane, source: EventSource) -> None:
        """Pump thread of a parallel stream: read one request's source into the hand-off
        until its summary or the end of the request."""
        try:
            self._pump_loop(lane, source)
        finally:
            with self._pumps_lock:
                self._pumps.discard(threading.current_thread())

    def _pump_loop(self, lane: Lane, source: EventSource) -> None:
        # The pump keeps its own account of the request (results read, the server done):
        # the consumer's lags behind, and once the last result is read the wait for the
        # summary is only the grace.
        current = lane.request
        assert current is not None
        ahead = RequestState(current.plan, current.pending)
        ready: Callable[[], bool] | None = getattr(source, "ready", None)
        while not self.closed and lane.source is source:
            # One blocking receive, then every event the source already holds (at most
            # _BATCH_MAX): handed over together, so a fast stream costs the consumer one
            # hand-off per batch, not per event.
            batch: list[StreamingResult | BaseException] = []
            last = False
            while True:
                timeout = self.summary_timeout if ahead.summary_due else self.progress_timeout
                try:
                    event = source.receive(timeout)
                except BaseException as exc:  # delivered to the consumer, which decides
                    batch.append(exc)
                    last = True
                    break
                batch.append(event)
                kind = event.event_type
                if kind == "result":
                    ahead.pending -= 1  # duplicates too: it may count down early, never late
                elif kind == "summary":
                    last = True
                    break
                if kind in ("result", "progress") and server_finished(kind, event.data):
                    ahead.server_done = True
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
