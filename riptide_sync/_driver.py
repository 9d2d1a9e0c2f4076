"""The stream driver: one logical stream over requests, connections, retries and waits.

:class:`StreamCore` is the iteration behind a :class:`~riptide_sync.CrawlStream`: it
plans requests (:mod:`riptide_sync.protocol.session`), opens them on its transports,
reads their events (several at once through :mod:`riptide_sync._fanin`), lets
:mod:`riptide_sync.protocol.events` say what each event means, and decides what a failed
request costs: a resume at once, a backoff, or the end (docs/architecture.md §5). It owns
the threads' lifetime, the sleeps and the retry log; it knows nothing of sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator

from ._checkpoint import Checkpoint
from ._fanin import FanIn, Lane
from ._transport import StreamStats, Transport
from .exceptions import (
    APIError,
    IncompleteStreamError,
    ResultsDroppedError,
    SlowConsumerError,
    StreamingError,
    TLSVerificationError,
)
from .models import StreamingResult
from .protocol.events import EventOutcome, StreamEvents
from .protocol.session import CrawlSession, RequestPlan
from .retry import RetryPolicy, RetryTracker, is_retryable

__all__ = ["StreamCore", "progress_deadline", "SERVER_PER_URL_LIMIT", "PROGRESS_GRACE",
           "SUMMARY_GRACE"]

logger = logging.getLogger("riptide_sync.stream")

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


LANE_DELAY = 0.05
"""Seconds a request of an NDJSON or SSE stream streams alone (from its response to its
latest event) before the stream opens its other lanes (``parallel`` > 1). A server that
answers at once (a local one, a cache: 100 results in a few ms) streams a long list
faster on one connection read on the consumer's own thread, 1.2-1.4x in the benchmarks,
than on several read ahead by threads (a hand-off per read); one that takes its time
(fetching pages, a request lasting seconds) gains a request in flight per lane.
WebSocket lanes open at once: a WebSocket reader thread exists anyway."""


class StreamCore:
    """The iteration of one logical stream; see :class:`~riptide_sync.CrawlStream`.

    The loop: plan requests for the positions still missing (at most the server's limit
    each, up to ``parallel`` at once, one per connection), read their events until their
    summaries; on a lost connection, a stall or a summary that falls short, wait as the
    retry policy says and ask again for what is missing. With ``parallel`` 1 the consumer
    reads the one request directly; with more, :class:`~riptide_sync._fanin.FanIn` reads
    them together.
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
        self.fanin = FanIn(
            receive_timeout,
            SUMMARY_GRACE if receive_timeout is None else min(receive_timeout, SUMMARY_GRACE),
        )
        self.retry = retry
        self.checkpoint = checkpoint
        done = checkpoint.load() if checkpoint is not None else None
        self.session = CrawlSession(urls, max_per_request=max_urls_per_request, done=done)
        self.rules = StreamEvents(self.session)
        self.lanes = [Lane(self.transport, RetryTracker(retry))] + [
            Lane(None, RetryTracker(retry)) for _ in range(parallel - 1)
        ]
        self._closed_event = threading.Event()
        self._close_lock = threading.Lock()
        self._started_reading = False
        """The first request has delivered a result (or its summary, or failed): the other
        lanes may open. Time to first result: it does not wait for their handshakes."""
        self._lanes_open = not getattr(self.transport, "lanes_on_demand", False)
        """The lanes beyond the first may open (see LANE_DELAY): at once on WebSocket; on
        NDJSON/SSE once a request has streamed alone for LANE_DELAY."""
        self.events: Iterator[StreamingResult] = self._run()

    @property
    def closed(self) -> bool:
        """True once the stream has ended or been closed (the fan-in's flag: its pumps and
        waits read the same one)."""
        return self.fanin.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self.fanin.closed = value

    def close(self) -> None:
        with self._close_lock:
            if self.fanin.closed:
                return
            self.fanin.close()
        self._closed_event.set()
        try:
            for lane in self.lanes:
                if lane.transport is not None:
                    lane.transport.close()  # wakes a pump blocked in receive()
            self.fanin.join(1.0)
        finally:
            if self.checkpoint is not None:
                self.checkpoint.close()

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> Iterator[StreamingResult]:
        session = self.session
        rules = self.rules
        stats = self.stats
        fanin = self.fanin
        checkpoint = self.checkpoint
        handle = rules.handle
        DELIVERED, DUPLICATE, CONTINUE = (  # noqa: N806 (locals: read once per event)
            EventOutcome.DELIVERED, EventOutcome.DUPLICATE, EventOutcome.CONTINUE)
        started = time.monotonic()
        active: list[Lane] = []
        lanes_open = self._lanes_open
        # replan: the lanes may have changed, so give idle ones a request and list the
        # active ones anew; not per event: only a request's end, the first result and the
        # lanes' opening (LANE_DELAY) change them.
        replan = True
        while not fanin.closed:
            if replan:
                replan = False
                for lane in self.lanes:  # give every idle lane a request
                    if lane is not self.lanes[0] and not (self._started_reading
                                                          and self._lanes_open):
                        break  # the other lanes open once the first has delivered something
                    while lane.request is None and not fanin.closed:
                        plan = session.next_request()
                        if plan is None:
                            break
                        try:
                            self._open(lane, plan)
                        except (StreamingError, APIError) as exc:
                            session.release(plan)
                            if fanin.closed:
                                return
                            self._after_failure(lane, exc)
                active = [lane for lane in self.lanes if lane.request is not None]
                if not active:
                    break
            lane, item = fanin.next_item(active)
            if not self._started_reading and (
                isinstance(item, BaseException) or item.event_type in ("result", "summary")
            ):
                self._started_reading = True
                replan = True
            if fanin.closed:
                return
            now = lane.last_item = time.monotonic()
            if not lanes_open and now - lane.opened_at >= LANE_DELAY:
                # This request has streamed alone for LANE_DELAY: the server takes its
                # time, so the other lanes open (NDJSON/SSE, see LANE_DELAY).
                lanes_open = self._lanes_open = True
                replan = True
            request = lane.request
            assert request is not None
            if isinstance(item, BaseException):
                failure: BaseException | None = item
            else:
                out, outcome = handle(request, item)
                # The outcomes by frequency: a new result first (the hot path).
                if outcome is DELIVERED:
                    assert out is not None
                    lane.progressed = True
                    stats.results += 1
                    if checkpoint is not None:
                        checkpoint.append(out.data["index"], out.data.get("result") or {})
                    yield out
                    continue
                if outcome is DUPLICATE:
                    stats.duplicates_suppressed += 1
                    continue
                if out is not None:
                    yield out
                if outcome is CONTINUE:
                    continue
                if outcome is EventOutcome.REFUSED:
                    self._refused(item)
                    return
                failure = None  # DONE: the summary came
            source = lane.source
            assert source is not None
            missing = session.release(request.plan)
            lane.request = lane.source = lane.pump = None
            lane.watched = False
            replan = True
            if failure is not None or missing:
                # A lost connection, a stall, or a summary short of results: the
                # connection cannot be trusted with another request (late results).
                source.close()
            if missing:
                cause = failure if failure is not None else ResultsDroppedError(
                    f"the server's summary came with {len(missing)} result(s) missing",
                    missing=[session.urls[i] for i in missing],
                    missing_indices=missing,
                )
                self._after_failure(lane, cause)
        if fanin.closed:
            return
        elapsed_ms = int((time.monotonic() - started) * 1000)
        summary = StreamingResult("summary", session.summary(rules.summaries, elapsed_ms))
        self.close()  # every result is in: release the connections before the caller reads
        yield summary

    def _open(self, lane: Lane, plan: RequestPlan) -> None:
        """Send ``plan`` on ``lane`` (a new transport for a lane's first request)."""
        if lane.transport is None:
            lane.transport = self.make_transport()
            if self.closed:  # close() ran while the transport was being made
                lane.transport.close()
        others_active = any(other.request is not None for other in self.lanes if other is not lane)
        shared = len(self.lanes) > 1 and (
            others_active or (self._lanes_open and self.session.has_unplanned))
        if others_active:
            for other in self.lanes:  # read until now on this thread, alone: now among others
                if other.request is not None and not other.watched and other.pump is None:
                    self.fanin.multiplex(other)
        lane.request = self.rules.start(plan)
        lane.watched = False
        try:
            source = None
            if others_active:
                # Another request is streaming: the consumer must not wait for this one's
                # response (a round trip) while the other's results wait. A transport that
                # can sends it on the lane's own thread; a failure to open then comes as
                # the request's first event, and ends it like any failure.
                open_watched = getattr(lane.transport, "open_crawl_watched", None)
                if open_watched is not None:
                    source = open_watched(plan.urls, self.options, self.fanin.wake)
            if source is not None:
                lane.watched = True
            else:
                source = lane.transport.open_crawl(plan.urls, self.options)
            lane.source = source
            lane.opened_at = time.monotonic()  # the request is out (LANE_DELAY)
        except BaseException:
            lane.request = None
            raise
        if plan.resumed:  # counted once the resumed request is actually out
            self.stats.reconnects += 1
            self.stats.resumed_urls += plan.resumed
            logger.info("> resumed the %s stream: re-requested %d URL(s) without a result",
                        self.transport.name, plan.resumed)
        lane.last_item = time.monotonic()
        if shared and not lane.watched:
            # More than one request will be in flight: the consumer reads this one among
            # the others when its source can wake it (WebSocket: the reader thread queues
            # and wakes), else a pump thread reads it. A request that is alone (one chunk,
            # or the last) is read directly.
            self.fanin.multiplex(lane)

    # --- failures -------------------------------------------------------------------------

    def _after_failure(self, lane: Lane, cause: BaseException) -> None:
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
            self._log_decision(cause, 'not retrying (overflow="error")', level=logging.DEBUG)
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
                self._log_decision(cause, "not retrying (no retry can fix it)", tracker.failures,
                                   level=logging.DEBUG)
                raise cause  # no retry can fix it: the caller sees the cause itself
            # Summaries short of results raise the subclass that says so.
            error = ResultsDroppedError if isinstance(cause, ResultsDroppedError) else (
                IncompleteStreamError)
            last = cause.message if isinstance(cause, IncompleteStreamError) else str(cause)
            self._log_decision(cause, "giving up", tracker.failures, level=logging.DEBUG)
            # The cause first, plainly: it is what the caller has to act on.
            raise error(
                f"{last} (the {self.transport.name} stream gave up after "
                f"{tracker.failures} attempt(s))",
                missing=session.missing_urls(),
                missing_indices=session.missing_indices(),
                delivered=session.completed,
            ) from cause
        decision = "retrying at once" if resume_now else f"retrying in {delay:.1f} s"
        self._log_decision(cause, decision, tracker.failures)
        if resume_now:
            return
        if self.retry.sleep is time.sleep:
            self._closed_event.wait(delay)  # close() ends the wait at once
        else:
            self.retry.sleep(delay)  # an injected sleep (tests): close() cannot cut it short

    def _log_decision(
        self, cause: BaseException, decision: str, failures: int | None = None,
        level: int = logging.INFO,
    ) -> None:
        """Log one retry decision on ``riptide_sync.stream``: the cause, what is done about
        it (retrying at once, after a delay in seconds, or not), the failures in a row
        (None: not a failure the policy counts), and the URLs still without a result
        (which the resume re-requests).

        A retry is logged at INFO (the command line shows it as it happens); a decision
        not to retry at DEBUG, as the exception the caller gets next says the same."""
        if logger.isEnabledFor(level):  # counting the missing URLs walks the whole list
            streak = "" if failures is None else f"failure {failures} in a row, "
            logger.log(level, "! %s stream: %s; %s (%s%d URL(s) without a result)",
                       self.transport.name, cause, decision, streak,
                       len(self.session.missing_indices()))

    def _refused(self, event: StreamingResult) -> None:
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
            if other.request is not None:
                session.release(other.request.plan)
        self.close()
        missing = session.missing_indices()
        if not missing:
            return
        data = event.data
        message = str(data.get("message") or "the server refused the crawl request")
        cause = APIError(message, error_type=data.get("error_type"), body=data)
        self._log_decision(cause, "not retrying (the server refused the request)",
                           level=logging.DEBUG)
        raise IncompleteStreamError(
            f"the server refused a crawl request: {message}",
            missing=session.missing_urls(),
            missing_indices=missing,
            delivered=session.completed,
        ) from cause

