"""The per-event rules of one logical stream: what each server event means to the caller.

The driver (:mod:`riptide_sync._driver`) reads events from its transports and hands each
one, with the state of the request it came in, to :meth:`StreamEvents.handle`, which says
what to yield (at most one event per event in) and what the event means for its request:
an :class:`EventOutcome`. The rules:

- a ``result`` is mapped to the caller's list by the :class:`CrawlSession`; a second result
  for a position already delivered is suppressed (``DUPLICATE``), one outside its request
  becomes an ``invalid_result`` error event;
- ``welcome`` and ``metadata`` are yielded once per logical stream, however many requests
  and connections carry it; ``progress`` is recounted over the whole list;
- a ``summary`` ends its request (``DONE``) and is kept for the one final summary;
- an ``error`` before the request was answered is the server refusing it
  (:func:`is_refusal`, docs/protocol.md §1.4): it is yielded and ends the stream (``REFUSED``);
- any other type (one the server added later) passes through.

Pure: no clock, no threads, no I/O (the driver counts, checkpoints and sleeps).

Typical use by a driver::

    rules = StreamEvents(session)
    request = rules.start(plan)
    for event in events_of_that_request:
        out, outcome = rules.handle(request, event)
        if out is not None:
            deliver(out)
        if outcome.ends_request:
            break
"""

from __future__ import annotations

import enum
from typing import Any, Mapping

from ..models import StreamingResult
from .envelope import MALFORMED_MESSAGE
from .session import CrawlSession, RequestPlan, ResultRejected, server_finished

__all__ = ["EventOutcome", "RequestState", "StreamEvents", "is_refusal"]


def is_refusal(kind: str, data: Mapping[str, Any], answered: bool) -> bool:
    """True when an event is the server refusing the request it answers (docs/protocol.md
    §1.4): an ``error`` before anything answered the request (``answered`` False: no
    metadata or result yet, or, for a ping/status request, no reply yet). No metadata,
    results or summary follow it. A ``malformed_message`` error is the client's decoder
    reporting a bad frame (§1.5: the server never answers one), not a refusal."""
    return kind == "error" and not answered and data.get("error_type") != MALFORMED_MESSAGE


class EventOutcome(enum.Enum):
    """What one event means for the request it came in."""

    CONTINUE = "continue"
    """The request goes on (yield the event returned with it, if any)."""
    DELIVERED = "delivered"
    """A result for a position not delivered before: yield it; the request goes on."""
    DUPLICATE = "duplicate"
    """A late result for a position already delivered: nothing to yield."""
    DONE = "done"
    """The request's summary: nothing to yield; the request is over."""
    REFUSED = "refused"
    """The server refused the request: yield the error event; the stream is over (a retry
    would be refused the same way)."""

    @property
    def ends_request(self) -> bool:
        """True for ``DONE`` and ``REFUSED``: no more events of this request count."""
        return self is EventOutcome.DONE or self is EventOutcome.REFUSED


class RequestState:
    """What the events so far say about one request in flight.

    Attributes:
        plan: the request (which of the caller's positions it carries).
        pending: positions of the plan still without a result.
        answered: the server accepted the request (a metadata or a result came), so an
            ``error`` is no longer a refusal.
        server_done: an event said the server finished the request
            (:func:`~riptide_sync.protocol.session.server_finished`): results not in by
            now were dropped, and only the summary is still due.
    """

    __slots__ = ("plan", "pending", "answered", "server_done")

    def __init__(self, plan: RequestPlan, pending: int) -> None:
        self.plan = plan
        self.pending = pending
        self.answered = False
        self.server_done = False

    @property
    def summary_due(self) -> bool:
        """True once only the summary is still to come: every result is in, or the server
        said it finished (a driver then waits the summary grace, not the progress
        deadline)."""
        return self.pending <= 0 or self.server_done


class StreamEvents:
    """The rules of one logical stream over all its requests (see the module docstring).

    Args:
        session: the stream's bookkeeping; results are mapped and recorded through it.
    """

    def __init__(self, session: CrawlSession) -> None:
        self.session = session
        self.summaries: list[dict[str, Any]] = []
        """The server's summaries, one per request that got one (for ``session.summary``)."""
        self._sent_welcome = False
        self._sent_metadata = False

    def start(self, plan: RequestPlan) -> RequestState:
        """The state of ``plan`` as it goes out: its positions still without a result are
        pending (a resumed plan may carry some delivered meanwhile by another request)."""
        session = self.session
        return RequestState(plan, sum(1 for i in plan.indices if not session.is_delivered(i)))

    def handle(
        self, request: RequestState, event: StreamingResult
    ) -> tuple[StreamingResult | None, EventOutcome]:
        """The event to yield for ``event`` of ``request`` (None: nothing), and what it
        means for the request. Updates ``request`` and the session."""
        kind = event.event_type
        data = event.data
        if kind == "result":
            request.answered = True
            if server_finished(kind, data):
                request.server_done = True
            try:
                mapped = self.session.accept_result(request.plan, data)
            except ResultRejected as exc:
                invalid = {"error_type": "invalid_result", "message": str(exc)}
                return StreamingResult("error", invalid, event.timestamp), EventOutcome.CONTINUE
            if mapped is None:
                return None, EventOutcome.DUPLICATE
            request.pending -= 1
            return StreamingResult("result", mapped, event.timestamp), EventOutcome.DELIVERED
        if kind == "summary":
            self.summaries.append(data)
            return None, EventOutcome.DONE
        if kind == "progress":
            if server_finished(kind, data):
                request.server_done = True
            recounted = self.session.rewrite_progress(data)
            return StreamingResult("progress", recounted, event.timestamp), EventOutcome.CONTINUE
        if kind == "metadata":
            request.answered = True
            if self._sent_metadata:
                return None, EventOutcome.CONTINUE
            self._sent_metadata = True
            mapped = self.session.metadata(data)
            return StreamingResult("metadata", mapped, event.timestamp), EventOutcome.CONTINUE
        if kind == "welcome":
            if self._sent_welcome:
                return None, EventOutcome.CONTINUE
            self._sent_welcome = True
            return event, EventOutcome.CONTINUE
        if is_refusal(kind, data, request.answered):
            return event, EventOutcome.REFUSED
        return event, EventOutcome.CONTINUE  # an error after the answer, or a newer type
