"""Every setting of the library, checked in one place: the resolved ``ClientConfig`` (shared
read-only by every transport), the checkers each setting goes through, ``OverflowPolicy``
and ``UNSET`` (the "argument not given" default).

Client settings are checked when a :class:`ClientConfig` is built (``RipTideClient``
builds one in its constructor), before any network I/O; per-call settings
(``progress_timeout=``, ``parallel=``...) go through the same checkers at the call. An
error names the parameter and its value and says what was expected; client settings raise
:class:`~riptide_sync.exceptions.ConfigError`, per-call ones
:class:`~riptide_sync.exceptions.ValidationError` (its base class).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from typing import Any, Optional, Type, Union

from .exceptions import ConfigError, ValidationError
from .protocol.urls import validate_base_url

__all__ = [
    "ClientConfig",
    "OverflowPolicy",
    "OVERFLOW_POLICIES",
    "UNSET",
    "USER_AGENT",
    "check_duration",
    "check_number",
    "check_count",
    "check_api_key",
    "check_path",
    "REDACTED",
]

REDACTED = "***"
"""What a repr, a message or a log shows instead of the API key."""

USER_AGENT = "riptide-sync/0.1"


class _Unset(enum.Enum):
    """The type of :data:`UNSET`: an enum of one member, so that ``x is UNSET`` narrows the
    type for mypy, and a repr that reads well in ``help()`` signatures."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "<default>"


UNSET = _Unset.UNSET
"""The default of an argument whose absence means something other than None (e.g.
``retry=``: not given is the client's policy, None is no retries). Test with ``is``."""


class OverflowPolicy(str, enum.Enum):
    """What happens when a stream's queue is full (docs/design.md §4; the behaviour of each
    is in ``riptide_sync/_ws/queue.py``). A ``str`` enum: ``overflow="block"`` and
    ``overflow=OverflowPolicy.BLOCK`` are the same setting, and it compares equal to its
    value."""

    SPILL = "spill"
    """The overflow goes to a temporary file and is read back in order (the default)."""
    BLOCK = "block"
    """Stop reading, so TCP pushes back on the server."""
    DROP_OLDEST = "drop_oldest"
    """Discard the oldest queued ``result``/``progress`` (counted in ``stats.dropped``)."""
    DROP_NEWEST = "drop_newest"
    """Discard the incoming ``result``/``progress`` (counted in ``stats.dropped``)."""
    ERROR = "error"
    """Stop the stream with ``SlowConsumerError``."""

    def __str__(self) -> str:  # "spill", in messages and the CLI, on every Python
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __repr__(self) -> str:  # as in help(): overflow=OverflowPolicy.SPILL
        return f"{type(self).__name__}.{self.name}"

    @property
    def drops(self) -> bool:
        """True for the policies that discard messages: they need each message's event
        type, so the reader thread decodes messages before queueing them."""
        return self in (OverflowPolicy.DROP_OLDEST, OverflowPolicy.DROP_NEWEST)

    @classmethod
    def coerce(
        cls, value: Any, *, name: str = "overflow", error: Type[ValidationError] = ConfigError
    ) -> OverflowPolicy:
        """The member named by ``value`` (a member or its value, e.g. ``"spill"``).

        Raises:
            ConfigError (or ``error``): any other value, naming ``name`` and the choices.
        """
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise error(
            f"{name} must be one of {', '.join(OVERFLOW_POLICIES)}, got {value!r}",
            field=name,
            value=value,
        )


OVERFLOW_POLICIES: tuple[str, ...] = tuple(policy.value for policy in OverflowPolicy)
"""The policies' values, in the enum's order: for ``choices=`` and messages."""


# --- the checkers -----------------------------------------------------------------------


def check_number(
    name: str,
    value: Any,
    *,
    optional: bool = False,
    zero_ok: bool = False,
    unit: str = "",
    error: Type[ValidationError] = ValidationError,
) -> Optional[float]:
    """A finite int or float > 0 (>= 0 with ``zero_ok``), as a float; None when
    ``optional``. Refused, with ``error`` naming ``name`` and the value: bools (``True``
    is not a number of anything here), strings, NaN, infinities, negatives.

    Raises:
        ValidationError (or ``error``), its message "NAME must be a finite number [of
        UNIT] > 0 [or None], got VALUE".
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
        of_unit = f" of {unit}" if unit else ""
        expected = f"a finite number{of_unit} {bound}" + (" or None" if optional else "")
        raise error(f"{name} must be {expected}, got {value!r}", field=name, value=value)
    return float(value)


def check_duration(
    name: str,
    value: Any,
    *,
    optional: bool,
    zero_ok: bool = False,
    error: Type[ValidationError] = ValidationError,
) -> Optional[float]:
    """The one check of every duration the library takes (seconds), as a float.

    Accepted: an int or float, finite, > 0 (>= 0 with ``zero_ok``); None ("no limit")
    when ``optional``. Refused, with ``error`` naming ``name`` and the value: bools
    (``True`` is not a second), strings, NaN, infinities, negatives.

    Raises:
        ValidationError (or ``error``, e.g. ConfigError for client settings).
    """
    return check_number(name, value, optional=optional, zero_ok=zero_ok, unit="seconds",
                        error=error)


def check_count(name: str, value: Any, *, error: Type[ValidationError] = ValidationError) -> int:
    """A count of at least 1 (queue_size, parallel, max_attempts...): an int, not a bool.

    Raises:
        ValidationError (or ``error``): "NAME must be an int >= 1, got VALUE".
    """
    if type(value) is not int or value < 1:
        raise error(f"{name} must be an int >= 1, got {value!r}", field=name, value=value)
    return value


def check_path(name: str, value: Any, *, error: Type[ValidationError] = ValidationError
               ) -> Union[str, os.PathLike[str], None]:
    """A file path (str or ``os.PathLike``) or None; the file need not exist.

    Raises:
        ValidationError (or ``error``): "NAME must be a file path or None, got VALUE".
    """
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise error(f"{name} must be a file path or None, got {value!r}", field=name,
                    value=value)
    return value


def check_api_key(api_key: Any) -> Optional[str]:
    """An API key as sent in the ``X-API-Key`` header, or None (also for ""); the message
    of a bad one never shows the key itself.

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


def _check_verify(verify: Any) -> Union[bool, str]:
    if not isinstance(verify, (bool, str)):
        raise ConfigError(f"verify must be a bool or a CA bundle path, got {verify!r}",
                          field="verify", value=verify)
    return verify


def _check_proxy(proxy: Any) -> Optional[str]:
    if proxy is not None and not isinstance(proxy, str):
        # No value= here: a proxy URL may carry a password.
        raise ConfigError(f"proxy must be a URL string or None, got {proxy!r}", field="proxy")
    return proxy


# --- the configuration ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """Every setting of a :class:`~riptide_sync.RipTideClient`, validated and normalized
    when built (ConfigError naming the first bad one; nothing is sent before).

    Building one checks the values; :meth:`check_environment` checks the file ``verify``
    names. ``RipTideClient`` does both (and asks the HTTP layer whether it can use the
    proxy); tests build configs naming files that need not exist.

    Durations are seconds (float); ``None`` means "no limit" wherever a duration is optional.
    """

    base_url: str
    """http(s) base URL, kept without a trailing slash, e.g. ``http://localhost:8080``."""
    api_key: Optional[str] = dataclasses.field(default=None, repr=False)
    """Sent as ``X-API-Key`` on every request and on the WebSocket handshake; None (or "",
    stored as None): no key. Never shown: the repr says ``api_key='***'``."""
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
    overflow: OverflowPolicy = OverflowPolicy.SPILL
    """What happens when the queue is full (a member, or its value as a string)."""
    max_message_size: int = 64 * 1024 * 1024
    """Largest WebSocket message accepted, in bytes (the server has no outbound limit)."""
    verify: bool | str = True
    """TLS verification: True, False, or the path of a CA bundle that exists."""
    proxy: str | None = None
    """An http(s) proxy URL for both HTTP and WebSocket, or None (requests also reads the
    environment for HTTP calls)."""
    max_urls_per_request: int = 100
    """The server's per-request URL limit (docs/protocol.md §6.1); longer lists are chunked."""
    parallel: int = 2
    """Chunks of a long list sent at once, each on its own connection (1: in sequence)."""
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        """Check and normalize every field (the dataclass is frozen: set through object)."""
        checked: dict[str, Any] = {
            "base_url": validate_base_url(self.base_url),
            "api_key": check_api_key(self.api_key),
            "timeout": check_duration("timeout", self.timeout, optional=True, error=ConfigError),
            "connect_timeout": check_duration("connect_timeout", self.connect_timeout,
                                              optional=False, error=ConfigError),
            "ping_interval": check_duration("ping_interval", self.ping_interval, optional=True,
                                            error=ConfigError),
            "ping_timeout": check_duration("ping_timeout", self.ping_timeout, optional=True,
                                           error=ConfigError),
            "queue_size": check_count("queue_size", self.queue_size, error=ConfigError),
            "overflow": OverflowPolicy.coerce(self.overflow),
            "max_message_size": check_count("max_message_size", self.max_message_size,
                                            error=ConfigError),
            "verify": _check_verify(self.verify),
            "proxy": _check_proxy(self.proxy),
            "max_urls_per_request": check_count("max_urls_per_request",
                                                self.max_urls_per_request, error=ConfigError),
            "parallel": check_count("parallel", self.parallel, error=ConfigError),
        }
        if not isinstance(self.user_agent, str) or not self.user_agent:
            raise ConfigError(f"user_agent must be a non-empty string, got {self.user_agent!r}",
                              field="user_agent", value=self.user_agent)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def check_environment(self) -> None:
        """Check what the settings refer to on this machine, before any network I/O.

        Raises:
            ConfigError: ``verify`` names a CA bundle that does not exist.
        """
        if isinstance(self.verify, str) and not os.path.exists(self.verify):
            raise ConfigError(f"verify names a CA bundle that does not exist: {self.verify!r}",
                              field="verify", value=self.verify)

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
