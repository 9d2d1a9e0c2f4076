"""The client's resolved configuration, shared read-only by every transport."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Optional, Type

from .exceptions import ConfigError, ValidationError

__all__ = [
    "ClientConfig",
    "OverflowPolicy",
    "OVERFLOW_POLICIES",
    "USER_AGENT",
    "check_duration",
    "check_api_key",
    "REDACTED",
]

REDACTED = "***"
"""What a repr, a message or a log shows instead of the API key."""


def check_duration(
    name: str,
    value: Any,
    *,
    optional: bool,
    zero_ok: bool = False,
    error: Type[ValidationError] = ValidationError,
) -> Optional[float]:
    """The one check of every duration the library takes (seconds), as a float.

    Accepted: an int or float, finite, > 0 (>= 0 with ``zero_ok``); None when
    ``optional``. Refused, with ``error`` naming ``name`` and the value: bools (``True`` is
    not a second), strings, NaN, infinities, negatives.

    Raises:
        ValidationError (or ``error``, e.g. ConfigError for client settings).
    """
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        bound = ">= 0" if zero_ok else "> 0"
        expected = f"a finite number of seconds {bound}" + (" or None" if optional else "")
        raise error(f"{name} must be {expected}, got {value!r}", field=name, value=value)
    return float(value)


def check_api_key(api_key: Any) -> Optional[str]:
    """An API key as sent in the ``X-API-Key`` header, or None; the message of a bad one
    never shows the key itself.

    Raises:
        ConfigError: not a string, or it holds whitespace or control characters (which
            no header can carry).
    """
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise ConfigError(
            f"api_key must be a string or None, got {type(api_key).__name__}", field="api_key"
        )
    if any(not ("!" <= ch <= "~") for ch in api_key):
        raise ConfigError(
            f"api_key must be printable ASCII without spaces (a header value), got a key "
            f"of {len(api_key)} characters that is not",
            field="api_key",
        )
    return api_key or None

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
    api_key: Optional[str] = dataclasses.field(default=None, repr=False)
    """Sent as ``X-API-Key`` on every request and on the WebSocket handshake; None: no key.
    Never shown: the repr says ``api_key='***'``."""
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
    """What happens when the queue is full: see docs/design.md §4."""
    max_message_size: int = 64 * 1024 * 1024
    """Largest WebSocket message accepted, in bytes (the server has no outbound limit)."""
    verify: bool | str = True
    """TLS verification: True, False, or a CA bundle path."""
    proxy: str | None = None
    """An http(s) proxy URL for both HTTP and WebSocket, or None (requests also reads the
    environment for HTTP calls)."""
    max_urls_per_request: int = 100
    """The server's per-request URL limit (docs/protocol.md §6.1); longer lists are chunked."""
    parallel: int = 2
    """Chunks of a long list sent at once, each on its own connection (1: in sequence)."""
    user_agent: str = USER_AGENT

    def __repr__(self) -> str:
        fields = [
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr
        ]
        fields.insert(1, f"api_key={REDACTED if self.api_key else None!r}")
        return f"ClientConfig({', '.join(fields)})"

    __str__ = __repr__

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent on every HTTP request and WebSocket handshake."""
        headers = {"User-Agent": self.user_agent}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers
