"""How far a crawl got (:class:`Tally`), and the words for one result: its human line and,
when it failed, why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..models import CrawlResult

__all__ = ["CAUSE_HIDDEN", "Tally", "failure_reason", "result_line"]


@dataclass
class Tally:
    """How far the crawl got. Success is ``CrawlResult.ok``, the SDK's one definition."""

    total: int
    started: float = field(default_factory=time.monotonic)
    completed: int = 0
    ok: int = 0
    preloaded: int = 0
    """Results already in the checkpoint when the run began (not crawled again)."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(URL, reason) of each failed result."""
    indices: set[int] = field(default_factory=set)
    """Positions in the URL list that have their result."""

    def add(self, index: int, ok: bool, url: str, reason: str) -> None:
        self.indices.add(index)
        self.completed += 1
        if ok:
            self.ok += 1
        else:
            self.failures.append((url, reason))

    def preload(self, done: dict[int, dict[str, Any]], urls: list[str]) -> None:
        """Count the results a checkpoint already holds."""
        for index, data in sorted(done.items()):
            result = _typed(data, urls[index])
            self.add(index, result.ok, urls[index], failure_reason(result))
        self.preloaded = len(done)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    @property
    def rate(self) -> float:
        """Results per second so far (this run's)."""
        return (self.completed - self.preloaded) / self.elapsed

    @property
    def success_rate(self) -> float:
        return self.ok / self.completed if self.completed else 1.0

    def eta(self) -> str:
        if self.completed >= self.total:
            return "0 s"
        if self.completed <= self.preloaded:
            return "?"
        return f"{(self.total - self.completed) / self.rate:.0f} s"


CAUSE_HIDDEN = "Failed to process URL"
"""The fixed message of a failed result over WebSocket and SSE: the server sends no cause."""


def _typed(data: dict[str, Any], url: str) -> CrawlResult:
    try:
        return CrawlResult.model_validate(data)
    except ValueError:  # a checkpoint line from another version: count it failed, say why
        return CrawlResult.model_validate({"url": url, "error": {
            "error_type": "unreadable_result", "message": "the checkpoint holds an unreadable result"}})


def failure_reason(result: CrawlResult) -> str:
    """Why ``result`` is not ok, with its cause when the server sent one; "" when ok."""
    if result.ok:
        return ""
    if result.error is None:
        return f"HTTP {result.status}"
    message = " ".join(result.error.message.split())
    reason = f"{result.error.error_type}: {message}"
    if message == CAUSE_HIDDEN:
        reason += " (this transport carries no cause; --transport ndjson shows it)"
    return reason


def result_line(index: int, url: str, result: CrawlResult, width: int) -> str:
    """The human line of one result: index, status, title or error, URL."""
    if result.error is not None:
        message = " ".join(result.error.message.split())
        if len(message) > 100:
            message = message[:99] + "…"
        return f"{index:>{width}}  ERR  {result.error.error_type}: {message}  {url}"
    title = (result.document.title if result.document and result.document.title else "-")
    title = " ".join(title.split())
    if len(title) > 40:
        title = title[:39] + "…"
    mark = "" if result.ok else "  (failed)"
    return f"{index:>{width}}  {result.status:>3}  {title:<40}  {url}{mark}"


