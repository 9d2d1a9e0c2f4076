"""Crawl bookkeeping: one logical stream over one or more server requests.

The caller asks for a list of URLs. The client may send them in several requests
(chunking past the server's 100-URL limit, resuming after a loss), and each request numbers
its URLs from 0. :class:`CrawlSession` remembers which caller positions each request
carries, maps every result back to the caller's index, refuses a second result for a
position already delivered, and builds the progress and the one final summary over the
whole list. It is pure: no I/O, no clock (the driver passes elapsed times in).

Typical use by a driver::

    session = CrawlSession(urls, max_per_request=100)
    while (plan := session.next_request()) is not None:
        send(plan.urls)
        for data in results_of_that_request:
            delivered = session.accept_result(plan, data)   # None: a duplicate
        missing = session.release(plan)                     # positions still without a result
    summary = session.summary(server_summaries, elapsed_ms)
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any, Mapping, Sequence

__all__ = ["RequestPlan", "CrawlSession", "ResultRejected", "server_finished"]


def server_finished(kind: str, data: Mapping[str, Any]) -> bool:
    """True when an event says the server has finished every URL of its request: a
    ``result`` whose ``progress`` has ``completed >= total`` (the server's own counts for
    the request, this result included, §1.6), or a progress event saying the same
    (``completed``/``total``, ``items_completed``/``items_total``, 100 percent).

    The summary is then due at once, even when some results never came (the server
    dropped them): a driver need only wait the summary grace, not the progress deadline.
    """
    if kind == "result":
        progress = data.get("progress")
        # type() first: isinstance() against typing.Mapping costs ~20x a dict check, on
        # every event of the hot path.
        if type(progress) is not dict and not isinstance(progress, Mapping):
            return False
        data = progress
    elif kind != "progress":
        return False
    for done_key, total_key in (("completed", "total"), ("items_completed", "items_total")):
        done, total = data.get(done_key), data.get(total_key)
        if type(done) is int and type(total) is int and total > 0:
            return done >= total
    percent = data.get("progress_percentage")
    return isinstance(percent, (int, float)) and not isinstance(percent, bool) and percent >= 100


class ResultRejected(ValueError):
    """A ``result`` whose index does not belong to the request it came in (a server bug)."""


@dataclasses.dataclass(frozen=True)
class RequestPlan:
    """One request to the server: which of the caller's positions it carries.

    Attributes:
        number: 0 for the first request of the session, then 1, 2, ...
        indices: the caller's positions, in the order sent; the server's ``index`` i
            stands for ``indices[i]``.
        urls: the URLs sent, ``urls[i] == session.urls[indices[i]]``.
        resumed: how many of these positions an earlier request already asked for
            (0 for a first attempt; > 0 when this request resumes after a loss).
    """

    number: int
    indices: tuple[int, ...]
    urls: list[str]
    resumed: int = 0


class CrawlSession:
    """Which of the caller's URLs are done, and which request carries which.

    Args:
        urls: the caller's list; duplicates are separate positions (the server crawls each
            copy, docs/protocol.md §6.1).
        max_per_request: the most URLs one request may carry (the server's limit, 100).
        done: positions already delivered before this session (a checkpoint), or None.
    """

    def __init__(
        self,
        urls: Sequence[str],
        max_per_request: int = 100,
        done: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        if max_per_request < 1:
            raise ValueError(f"max_per_request must be at least 1, got {max_per_request}")
        self.urls = list(urls)
        self.total = len(self.urls)
        self.max_per_request = max_per_request
        self._delivered = bytearray(self.total)
        self._in_flight: dict[int, RequestPlan] = {}
        self._busy = bytearray(self.total)  # positions carried by a request in flight
        self._asked = bytearray(self.total)  # positions some request has carried
        self._cursor = 0  # the first position no request has carried yet
        self._returned: list[int] = []  # heap of positions released without a result
        self._requests_made = 0
        self.completed = 0
        self.successful = 0
        self.failed = 0
        self.from_cache = 0
        for index, result in (done or {}).items():
            self._record(index, result)

    # --- queries ----------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """True once every position has its result."""
        return self.completed == self.total

    @property
    def has_unplanned(self) -> bool:
        """True when :meth:`next_request` may find positions to ask for (it may still
        find none: those left may have been delivered meanwhile)."""
        return bool(self._returned) or self._cursor < self.total

    def is_delivered(self, index: int) -> bool:
        """True when the caller's position ``index`` already has its result."""
        return bool(self._delivered[index])

    def missing_indices(self) -> list[int]:
        """The caller's positions without a result yet, in order."""
        return [i for i, done in enumerate(self._delivered) if not done]

    def missing_urls(self) -> list[str]:
        """The URLs of :meth:`missing_indices`, in order."""
        return [self.urls[i] for i in self.missing_indices()]

    # --- planning ---------------------------------------------------------------------

    def next_request(self) -> RequestPlan | None:
        """Plan the next request: up to ``max_per_request`` positions that have no result
        and are not carried by a request in flight; positions given back by
        :meth:`release` first, then the never-asked ones, each in the caller's order.

        Amortised O(size of the plan): it is called after every event of a stream.

        Returns:
            The plan, now in flight until :meth:`release`; None when nothing is left to ask.
        """
        chosen: list[int] = []
        limit = self.max_per_request
        returned = self._returned
        while returned and len(chosen) < limit:
            index = heapq.heappop(returned)
            if not self._delivered[index] and not self._busy[index]:
                self._busy[index] = 1
                chosen.append(index)
        while self._cursor < self.total and len(chosen) < limit:
            index = self._cursor
            self._cursor += 1
            if not self._delivered[index] and not self._busy[index]:
                self._busy[index] = 1
                chosen.append(index)
        if not chosen:
            return None
        plan = RequestPlan(
            number=self._requests_made,
            indices=tuple(chosen),
            urls=[self.urls[i] for i in chosen],
            resumed=sum(self._asked[i] for i in chosen),
        )
        self._requests_made += 1
        self._in_flight[plan.number] = plan
        for index in chosen:
            self._asked[index] = 1
        return plan

    def release(self, plan: RequestPlan) -> list[int]:
        """End a request (its summary came, or its connection was lost).

        Returns:
            The plan's positions still without a result, which a resume must ask again.
        """
        missing = [i for i in plan.indices if not self._delivered[i]]
        if self._in_flight.pop(plan.number, None) is not None:
            for index in plan.indices:
                self._busy[index] = 0
            for index in missing:
                heapq.heappush(self._returned, index)
        return missing

    # --- results ----------------------------------------------------------------------

    def accept_result(self, plan: RequestPlan, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """Map one ``result`` event of ``plan`` to the caller's list.

        Args:
            plan: the request the result came in.
            data: the event's data as on the wire (``index``, ``result``, ``progress``).

        Returns:
            A new data dict with ``index`` the caller's position and ``progress`` counted
            over the whole list; or None when that position already had its result (a late
            duplicate), which must not be delivered again.

        Raises:
            ResultRejected: ``index`` is missing, not an int, or outside the request.
        """
        server_index = data.get("index")
        if type(server_index) is not int or not 0 <= server_index < len(plan.indices):
            raise ResultRejected(
                f"result index {server_index!r} is outside the request of "
                f"{len(plan.indices)} URL(s)"
            )
        index = plan.indices[server_index]
        if self._delivered[index]:
            return None
        result = data.get("result")
        if type(result) is not dict and not isinstance(result, Mapping):
            result = {}
        self._record(index, result)
        mapped = dict(data)
        mapped["index"] = index
        mapped["progress"] = self.progress()
        return mapped

    def _record(self, index: int, result: Mapping[str, Any]) -> None:
        if self._delivered[index]:
            return
        self._delivered[index] = 1
        self.completed += 1
        if result.get("error") is None:
            self.successful += 1
        else:
            self.failed += 1
        if result.get("from_cache") is True:
            self.from_cache += 1

    def progress(self) -> dict[str, Any]:
        """``{"completed", "total", "success_rate"}`` over the caller's whole list (§1.6)."""
        rate = self.successful / self.completed if self.completed else 0.0
        return {"completed": self.completed, "total": self.total, "success_rate": rate}

    # --- the other events -------------------------------------------------------------

    def metadata(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The first request's metadata, with ``total_urls`` covering the whole list."""
        mapped = dict(data)
        mapped["total_urls"] = self.total
        return mapped

    def rewrite_progress(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A ``progress`` event (NDJSON progress line, SSE progress/status) recounted over
        the whole list. Every progress event carries ``completed`` and ``total`` (an SSE
        ``status`` or an NDJSON progress line names them differently); the server's other
        fields are kept, recounted when they are counts."""
        mapped = dict(data)
        mapped["completed"] = self.completed
        mapped["total"] = self.total
        if "success_rate" in mapped:
            mapped["success_rate"] = self.successful / self.completed if self.completed else 0.0
        if "items_completed" in mapped:
            mapped["items_completed"] = self.completed
        if "items_total" in mapped:
            mapped["items_total"] = self.total
        if "progress_percentage" in mapped:
            mapped["progress_percentage"] = 100.0 * self.completed / self.total
        if "items_processed" in mapped:
            mapped["items_processed"] = self.completed
        if "items_remaining" in mapped:
            mapped["items_remaining"] = self.total - self.completed
        return mapped

    def summary(
        self, server_summaries: Sequence[Mapping[str, Any]], elapsed_ms: int
    ) -> dict[str, Any]:
        """The one final summary, its counts covering the caller's whole list.

        Args:
            server_summaries: the summaries the server sent, one per request that got one.
            elapsed_ms: wall-clock milliseconds since the first request was sent.

        Returns:
            The server's own summary unchanged when one request carried the whole list and
            its counts agree with the results delivered; otherwise a summary built from the
            last server summary's fields with every count recomputed here.
        """
        if len(server_summaries) == 1 and self._requests_made == 1:
            only = server_summaries[0]
            if (
                only.get("total_urls") == self.total
                and only.get("successful") == self.successful
                and only.get("failed") == self.failed
            ):
                return dict(only)
        merged: dict[str, Any] = dict(server_summaries[-1]) if server_summaries else {}
        merged["total_urls"] = self.total
        merged["successful"] = self.successful
        merged["failed"] = self.failed
        merged["total_processing_time_ms"] = elapsed_ms
        if "from_cache" in merged:
            merged["from_cache"] = self.from_cache
        if "cache_hit_rate" in merged:
            merged["cache_hit_rate"] = self.from_cache / self.total if self.total else 0.0
        if "average_processing_time_ms" in merged:
            merged["average_processing_time_ms"] = (
                elapsed_ms / self.successful if self.successful else 0.0
            )
        return merged
