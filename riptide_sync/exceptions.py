"""Every exception riptide_sync raises, in one tree.

::

    RipTideError                      root: catch this to catch everything below
    ├── ValidationError               bad input, caught before any network I/O (also ValueError)
    │   └── ConfigError               bad client configuration (base_url, timeout, ...)
    ├── APIError                      the server answered with an error status
    │   ├── AuthenticationError       401 / 403: never retried
    │   ├── NotFoundError             404: wrong route or base_url
    │   ├── RateLimitError            429 / 503: .retry_after (seconds or None)
    │   └── ServerError               other 5xx
    └── StreamingError                a stream could not be opened or completed
        ├── StreamConnectionError     could not connect, or the connection was lost
        │   │                         (also builtin ConnectionError)
        │   └── TLSVerificationError  the server's certificate failed verification: never retried
        ├── StreamTimeoutError        a deadline passed (also builtin TimeoutError)
        │   └── KeepaliveTimeoutError the peer stopped sending anything at all
        ├── SlowConsumerError         overflow="error" and the queue was full
        ├── ProtocolViolationError    the server broke the protocol beyond tolerance
        └── IncompleteStreamError     retries exhausted: .missing names the URLs without results
            └── ResultsDroppedError   ... the last failure: summaries short of results

Foreign exceptions (requests, websocket-client, socket) are translated at one boundary in
each transport and chained with ``from``, so ``__cause__`` always holds the original.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

__all__ = [
    "RipTideError",
    "ConfigError",
    "ValidationError",
    "APIError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "StreamingError",
    "StreamConnectionError",
    "StreamTimeoutError",
    "KeepaliveTimeoutError",
    "SlowConsumerError",
    "ProtocolViolationError",
    "ResultsDroppedError",
    "IncompleteStreamError",
]


class RipTideError(Exception):
    """Base class of every error raised by riptide_sync."""


class ValidationError(RipTideError, ValueError):
    """Bad input to a call, detected before any network I/O.

    Attributes:
        field: the argument or option at fault, e.g. ``"urls[3]"`` or ``"options.concurrency"``.
        value: the offending value.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value


class ConfigError(ValidationError):
    """The client was configured with a bad value (base_url, timeout, queue_size...): bad
    input too, caught before any network I/O."""


class APIError(RipTideError):
    """The server answered with an error status (or a WebSocket ``error`` ending a crawl).

    Attributes:
        status_code: the HTTP status, or ``None`` for an error frame on a WebSocket.
        message: the server's message, as sent.
        error_type: the server's error type (``"validation_error"``, ``"rate_limited"``...),
            or ``None`` when the body had none.
        request_id: the ``X-Request-ID`` response header, or ``None``.
        body: the raw response body (decoded JSON when it was JSON, else text), or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error_type:
            parts.append(self.error_type)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class AuthenticationError(APIError):
    """401 or 403: the API key is missing or wrong. Never retried."""


class NotFoundError(APIError):
    """404: the route does not exist on this server (check ``base_url``)."""


class RateLimitError(APIError):
    """429 or 503: the server asks the client to slow down.

    Attributes:
        retry_after: seconds to wait as the server's ``Retry-After`` header said, or
            ``None`` when it sent none.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text


class ServerError(APIError):
    """A 5xx status other than 503."""


class StreamingError(RipTideError):
    """A stream could not be opened or completed."""


class StreamConnectionError(StreamingError, builtins.ConnectionError):
    """Could not connect, or the connection was lost mid-stream."""


class TLSVerificationError(StreamConnectionError):
    """The server's TLS certificate failed verification (unknown CA, expired, wrong host).

    Final: never retried, since another attempt meets the same certificate. Fix
    ``verify=`` (a CA bundle path, or the ``REQUESTS_CA_BUNDLE`` the client follows when
    ``verify`` is left True) or the server's certificate.
    """


class StreamTimeoutError(StreamingError, builtins.TimeoutError):
    """A deadline passed: handshake, a request/reply, or no progress for too long."""


class KeepaliveTimeoutError(StreamTimeoutError):
    """Nothing at all arrived from the peer within ``ping_interval + ping_timeout``."""


class SlowConsumerError(StreamingError):
    """``overflow="error"``: the consumer fell ``queue_size`` messages behind.

    Attributes:
        missing: the URLs without a result when the stream stopped (set by the stream).
        missing_indices: their positions in the caller's list.
        delivered: how many results were delivered before it stopped.
    """

    missing: list[str]
    missing_indices: list[int]
    delivered: int

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.missing = []
        self.missing_indices = []
        self.delivered = 0


class ProtocolViolationError(StreamingError):
    """The server broke the protocol in a way the client cannot tolerate."""


class IncompleteStreamError(StreamingError):
    """The stream ended (or retries ran out) before every URL had its result.

    Attributes:
        missing: the URLs still without a result, in the caller's order.
        missing_indices: their positions in the caller's list.
        delivered: how many results were delivered before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        missing_indices: Sequence[int] = (),
        delivered: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.missing = list(missing)
        self.missing_indices = list(missing_indices)
        self.delivered = delivered

    def __str__(self) -> str:
        shown = ", ".join(self.missing[:5])
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        return f"{self.message}: {len(self.missing)} URL(s) missing ({shown}{more})"


class ResultsDroppedError(IncompleteStreamError):
    """The stream ended incomplete because the server's summaries came short of results:
    the server drops results under backpressure (docs/protocol.md §1.9). Raised (with
    ``.missing``) when the retry policy gives up after such a summary, or at once without
    retries; the stream asks again for the missing URLs while it may. Also an
    :class:`IncompleteStreamError`."""
