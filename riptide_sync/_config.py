"""The client's resolved configuration, shared read-only by every transport."""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["ClientConfig", "OverflowPolicy", "OVERFLOW_POLICIES", "USER_AGENT"]

OverflowPolicy = Literal["spill", "block", "drop_oldest", "drop_newest", "error"]
OVERFLOW_POLICIES: tuple[str, ...] = ("spill", "block", "drop_oldest", "drop_newest", "error")

USER_AGENT = "riptide-sync/0.1"


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """Every setting of a :class:`~riptide_sync.RipTideClient`, validated.

    Durations are seconds (float); ``None`` means "no limit" wherever a duration is optional.
    """

    base_url: str
    """http(s) base URL without a trailing slash, e.g. ``http://localhost:8080``."""
    api_key: str | None = None
    """Sent as ``X-API-Key`` on every request and on the WebSocket handshake; None: no key."""
    timeout: float | None = 30.0
    """Read timeout of HTTP calls and deadline of each WebSocket request/reply; None: none."""
    connect_timeout: float = 10.0
    """TCP connect + TLS + WebSocket handshake deadline."""
    ping_interval: float | None = 30.0
    """Seconds between client keepalive pings on a WebSocket; None: no pings."""
    ping_timeout: float | None = 10.0
    """A WebSocket peer silent for ping_interval + ping_timeout is dead; None: never."""
    queue_size: int = 1000
    """Messages held in memory between the reader thread and the consumer."""
    overflow: OverflowPolicy = "spill"
    """What happens when the queue is full: see DESIGN.md §4."""
    max_message_size: int = 64 * 1024 * 1024
    """Largest WebSocket message accepted, in bytes (the server has no outbound limit)."""
    verify: bool | str = True
    """TLS verification: True, False, or a CA bundle path."""
    proxy: str | None = None
    """An http(s) proxy URL for both HTTP and WebSocket, or None (requests also reads the
    environment for HTTP calls)."""
    max_urls_per_request: int = 100
    """The server's per-request URL limit (PROTOCOL.md §6.1); longer lists are chunked."""
    parallel: int = 2
    """Chunks of a long list sent at once, each on its own connection (1: in sequence)."""
    user_agent: str = USER_AGENT

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent on every HTTP request and WebSocket handshake."""
        headers = {"User-Agent": self.user_agent}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers
