"""Per-server state shared by the handlers: request log, counters, faults, backpressure."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

from .cache import MemoryCache
from .config import ServerConfig
from .crawler import Crawler


class StreamStopped(Exception):
    """A stream must end now (connection aborted, frozen, cut or gone)."""


@dataclass(frozen=True)
class LoggedRequest:
    """One crawl request as the server received it (see ``RunningServer.request_log``)."""

    transport: str
    """``"ws"``, ``"ndjson"``, ``"sse"`` or ``"batch"``."""
    urls: list[str]
    """The request's ``urls``, as sent."""
    options: dict[str, Any] | None
    """The request's ``options`` object as sent (``None`` when missing or null)."""
    accepted: bool
    """False when validation (§6.1, or NDJSON's count checks) rejected the request."""
    connection: int
    """Connection number: WS requests on one socket share it; each HTTP request has its own."""


@dataclass
class Counters:
    """Live counters, read from any thread (plain ints; reads are atomic in CPython)."""

    http_requests: int = 0
    """HTTP requests received (WS handshakes and demo pages included)."""
    ws_accepted: int = 0
    """WebSocket connections accepted (upgrades completed)."""
    ws_open: int = 0
    """WebSocket connections currently open."""
    streams_open: int = 0
    """NDJSON and SSE responses currently streaming."""
    crawls: int = 0
    """Crawl requests accepted on any transport."""


class Backpressure:
    """Send statistics of one connection and the rules of docs/protocol.md §1.9."""

    SLOW_SEND = 6.0
    """Rule 2: a stream send slower than this (client_response_timeout / 10) counts."""

    def __init__(self, drop: bool, slow_threshold: float) -> None:
        self.drop_enabled = drop
        self.slow_threshold = slow_threshold
        self.send_times: collections.deque[float] = collections.deque(maxlen=50)
        self.sends = 0
        self.dropped = 0
        self.count = 0
        """``backpressure_count`` of the WS status reply."""
        self.slow = False

    def should_drop(self) -> bool:
        """Rules (a) and (b) of §1.9; always False unless the drop scenario is on."""
        if not self.drop_enabled:
            return False
        times = self.send_times
        if len(times) >= 25:
            threshold = self.slow_threshold
            slow = sum(1 for t in times if t > threshold or threshold <= 0)
            if slow > len(times) / 2:
                return True
        return self.sends > 0 and self.dropped / self.sends > 0.15

    def record(self, seconds: float) -> None:
        """Record one completed stream send (rule 2 marks the connection slow)."""
        self.send_times.append(seconds)
        self.sends += 1
        if seconds > self.SLOW_SEND:
            self.count += 1
            if self.count > 10:
                self.slow = True

    @property
    def stop_stream(self) -> bool:
        """Rule 3: end the crawl loop before the next result."""
        return self.slow or self.count >= 100


class FaultRunner:
    """The fault scenarios as they apply to one connection (WS) or request (NDJSON/SSE)."""

    def __init__(self, state: ServerState, transport: str) -> None:
        faults = state.config.faults
        first = state.claim_first(transport)
        self.state = state
        self.drop_at = faults.drop_after if first else None
        self.drop_every = faults.drop_every
        self.freeze_at = faults.freeze_after if first else None
        self.malformed_at = faults.malformed_after
        self.cut_at = faults.cut_ndjson_after if first and transport == "ndjson" else None
        self.delay = faults.send_delay
        self.results = 0
        self.active = any(x is not None for x in (self.drop_at, self.drop_every, self.freeze_at,
                                                  self.malformed_at, self.cut_at)) or self.delay > 0

    def after_result(self) -> str | None:
        """Count one sent result; return ``"drop"``, ``"freeze"``, ``"malformed"`` or None."""
        self.results += 1
        n = self.results
        if n == self.drop_at or n == self.drop_every:
            return "drop"
        if n == self.freeze_at:
            return "freeze"
        if n == self.malformed_at:
            return "malformed"
        return None

    async def pause(self) -> None:
        """The ``send_delay`` scenario: wait before a stream message."""
        if self.delay > 0:
            await asyncio.sleep(self.delay)


class ServerState:
    """Everything one server instance shares between its handlers."""

    def __init__(self, config: ServerConfig, cache: MemoryCache) -> None:
        self.config = config
        self.cache = cache
        self.crawler = Crawler(config, cache)
        self.counters = Counters()
        self.started = time.time()
        self.request_log: list[LoggedRequest] = []
        self.closing = False
        self._lock = threading.Lock()
        self._firsts: set[str] = set()
        self._dropped_urls: set[str] = set()
        self._summaries_dropped = 0
        self._rejected = 0
        self._connection_ids = 0
        self.rate_buckets: dict[str, tuple[float, int]] = {}
        self.auth_failures: dict[str, list[float]] = {}
        """Per client IP: the times of recent failed authentications (§7.2 lockout)."""
        self.auth_blocked_until: dict[str, float] = {}
        """Per client IP: until when (monotonic seconds) it is locked out."""

    def next_connection_id(self) -> int:
        """Return a fresh connection number for the request log."""
        self._connection_ids += 1
        return self._connection_ids

    def log_request(self, transport: str, urls: list[str], options: dict[str, Any] | None,
                    accepted: bool, connection: int) -> None:
        """Append one entry to the request log."""
        with self._lock:
            self.request_log.append(LoggedRequest(transport, list(urls), options, accepted, connection))
        if accepted:
            self.counters.crawls += 1

    def claim_first(self, transport: str) -> bool:
        """True exactly once per transport: for its first connection/request."""
        if transport in self._firsts:
            return False
        self._firsts.add(transport)
        return True

    def drop_result(self, url: str) -> bool:
        """``drop_results_for``: True the first time a listed URL's result is sent."""
        if url in self.config.faults.drop_results_for and url not in self._dropped_urls:
            self._dropped_urls.add(url)
            return True
        return False

    def drop_summary(self) -> bool:
        """``drop_summary_first``: True for the first K summaries."""
        if self._summaries_dropped < self.config.faults.drop_summary_first:
            self._summaries_dropped += 1
            return True
        return False

    def reject_crawl(self) -> bool:
        """``reject_first``: True for the first K crawl requests."""
        if self._rejected < self.config.faults.reject_first:
            self._rejected += 1
            return True
        return False


async def wait_until_gone(transport: Any, state: ServerState) -> None:
    """Hold a frozen connection open until the peer goes away or the server stops, then drop it."""
    while not state.closing and transport is not None and not transport.is_closing():
        await asyncio.sleep(0.05)
    if transport is not None:
        transport.abort()


async def drain_then_abort(transport: Any) -> None:
    """Let the bytes already written reach the peer, then drop TCP without a close frame."""
    if transport is None:
        return
    deadline = time.monotonic() + 2.0
    while transport.get_write_buffer_size() and time.monotonic() < deadline and not transport.is_closing():
        await asyncio.sleep(0.002)
    transport.abort()
