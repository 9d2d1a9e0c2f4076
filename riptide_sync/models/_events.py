"""The stream event type, the same on every transport: :class:`StreamingResult`.

A plain slotted class, not a pydantic model: one is built per message on the hot path, and
typed access (``event.result``) is computed lazily. Import it from :mod:`riptide_sync.models`.
"""

from __future__ import annotations

from typing import Any

from ._responses import CrawlResult

EVENT_TYPES = frozenset({"welcome", "metadata", "result", "progress", "summary", "error"})
"""The event vocabulary shared by every transport. Unknown server types pass through."""


class StreamingResult:
    """One event of a crawl stream, the same on every transport.

    Attributes:
        event_type: ``"welcome"``, ``"metadata"``, ``"result"``, ``"progress"``,
            ``"summary"``, ``"error"`` (or a type the server added later).
        data: the event's JSON object as on the wire; for ``result`` events
            ``data["index"]`` is the position in the caller's URL list.
        timestamp: the server's RFC 3339 timestamp, or ``None`` when the transport
            carries none (NDJSON, SSE).
    """

    __slots__ = ("event_type", "data", "timestamp", "_result")

    def __init__(self, event_type: str, data: dict[str, Any], timestamp: str | None = None) -> None:
        self.event_type = event_type
        self.data = data
        self.timestamp = timestamp
        self._result: CrawlResult | None = None

    @property
    def index(self) -> int | None:
        """The URL's position in the caller's list for a ``result`` event, else None."""
        if self.event_type != "result":
            return None
        return self.data.get("index")

    @property
    def result(self) -> CrawlResult | None:
        """The typed :class:`CrawlResult` of a ``result`` event (built on first use), else None."""
        if self.event_type != "result":
            return None
        if self._result is None:
            self._result = CrawlResult.model_validate(self.data.get("result") or {})
        return self._result

    @property
    def progress(self) -> dict[str, Any] | None:
        """``data["progress"]`` of a result event, or ``data`` of a progress event, else None."""
        if self.event_type == "result":
            return self.data.get("progress")
        if self.event_type == "progress":
            return self.data
        return None

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict (``event_type``, ``data``, ``timestamp``)."""
        return {"event_type": self.event_type, "data": self.data, "timestamp": self.timestamp}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamingResult):
            return NotImplemented
        return (self.event_type, self.data, self.timestamp) == (
            other.event_type,
            other.data,
            other.timestamp,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable data: not hashable

    def __repr__(self) -> str:
        if self.event_type == "result":
            url = (self.data.get("result") or {}).get("url")
            return f"StreamingResult(result, index={self.data.get('index')}, url={url!r})"
        return f"StreamingResult({self.event_type}, data={self.data!r})"
