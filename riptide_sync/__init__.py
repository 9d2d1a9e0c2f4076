"""riptide_sync: a synchronous client for the RipTide crawler API.

Stream crawl results over WebSocket, NDJSON or SSE with a plain ``for`` loop; every URL
comes back once, through dropped connections, or an exception names the URLs missing.

First steps, offline (the bundled local server needs the ``[server]`` extra)::

    from riptide_sync import RipTideClient
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig()) as server:      # 127.0.0.1, its demo site
        with RipTideClient(server.base_url) as client:
            for event in client.streaming.crawl_websocket(server.article_urls()[:5]):
                if event.event_type == "result":
                    print(event.data["index"], event.result.url, event.result.ok)

Against a server: ``RipTideClient("http://localhost:8080", api_key=None)`` (defaults:
``$RIPTIDE_BASE_URL``, ``$RIPTIDE_API_KEY``). From the shell: ``riptide-sync demo``,
``riptide-sync serve``, ``riptide-sync crawl -i urls.txt -o results.jsonl [--resume]``.

Where to look next (``help()`` on each):

- :class:`RipTideClient`: settings (timeouts, ``retry``, queue and overflow, proxy...);
  ``client.streaming.crawl_websocket`` / ``crawl_ndjson`` / ``crawl_sse`` (per call:
  ``options``, ``on_message``, ``retry``, ``progress_timeout``, ``checkpoint``,
  ``parallel``), ``ping_websocket``, ``get_websocket_status``; ``client.crawl`` (batch),
  ``client.health()``.
- :class:`CrawlOptions` (``cache_mode``, ``concurrency``, ``timeout_secs``...),
  :class:`RetryPolicy`, :class:`CrawlStream` and its :class:`StreamStats`.
- Events are :class:`StreamingResult` (``event_type``, ``data``, typed ``result``, a
  :class:`CrawlResult`); :mod:`riptide_sync.exceptions` holds the error tree, rooted at
  :class:`RipTideError`.
- Logging: ``riptide_sync.stream`` (retries, resumes, INFO), ``riptide_sync.ws`` and
  ``riptide_sync.http`` (DEBUG).

The README has the guide, the transports, the configuration reference and the command line.
"""

from ._stream import CrawlStream
from ._transport import StreamStats
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
