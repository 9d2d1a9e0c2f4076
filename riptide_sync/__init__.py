"""riptide_sync: a synchronous client for the RipTide crawler API.

Usage::

    from riptide_sync import RipTideClient

    with RipTideClient("http://localhost:8080") as client:
        for event in client.streaming.crawl_websocket(["https://example.com"]):
            if event.event_type == "result":
                print(event.data["index"], event.data["result"]["url"])

See the README for the architecture, configuration and transports.
"""

from ._stream import CrawlStream, StreamStats
from .client import RipTideClient
from .exceptions import (
    APIError,
    AuthenticationError,
    ConfigError,
    IncompleteStreamError,
    KeepaliveTimeoutError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitError,
    ResultsDroppedError,
    RipTideError,
    ServerError,
    SlowConsumerError,
    StreamConnectionError,
    TLSVerificationError,
    StreamingError,
    StreamTimeoutError,
    ValidationError,
)
from .models import (
    CacheMode,
    CrawlOptions,
    CrawlResponse,
    CrawlResult,
    ExtractedDoc,
    HealthResponse,
    OutputFormat,
    RenderMode,
    StreamingResult,
)
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "RipTideClient",
    "CrawlOptions",
    "CacheMode",
    "RenderMode",
    "OutputFormat",
    "RetryPolicy",
    "CrawlStream",
    "StreamStats",
    "StreamingResult",
    "CrawlResult",
    "CrawlResponse",
    "ExtractedDoc",
    "HealthResponse",
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
    "TLSVerificationError",
    "StreamTimeoutError",
    "KeepaliveTimeoutError",
    "SlowConsumerError",
    "ProtocolViolationError",
    "ResultsDroppedError",
    "IncompleteStreamError",
    "__version__",
]
