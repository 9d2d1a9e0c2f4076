"""HTTP transports on ``requests``: NDJSON and SSE streams, batch crawl, health, error mapping.

The only place in the SDK that does HTTP. It uses :mod:`riptide_sync.protocol` for the
bytes and never imports ``_ws``. Entry points (the client wires them up):

- ``make_session(config) -> requests.Session``: the client's one session (headers
  ``User-Agent`` and ``X-API-Key``, TLS verification, proxy). The client owns and closes it.
- ``NDJSONTransport(config, session, stats)``: ``POST /crawl/stream`` (docs/protocol.md §2).
- ``SSETransport(config, session, stats)``: ``POST /crawl/sse`` (§3).
  Both implement :class:`riptide_sync._transport.Transport`: ``name`` (``"ndjson"``/``"sse"``),
  ``session_id`` (the request id), ``open_crawl(urls, options) -> EventSource``,
  ``close()``. A source's ``receive(timeout)`` reads the body as it arrives and raises
  ``StreamConnectionError`` at EOF before the summary.
- ``crawl_batch(session, config, urls, options) -> CrawlResponse``: ``POST /crawl`` (§4),
  lists longer than ``config.max_urls_per_request`` split and merged.
- ``get_health(session, config) -> HealthResponse``: ``GET /healthz`` (§7.1); a 503
  ``unhealthy`` report is returned, not raised.
- ``raise_for_response(response)``, ``translate_errors(action, url=None)``,
  ``map_exception(exc, action, url=None)``: the error boundary, and
  ``api_error(status, headers, body, reason=None, now=None)``, the pure
  :func:`riptide_sync.protocol.errors.api_error` at the current time (also used for a
  refused WebSocket handshake); see :mod:`riptide_sync._http.errors`. ``Retry-After`` is
  parsed by the pure :mod:`riptide_sync.protocol.errors`.

Every call has a finite ``(connect_timeout, timeout)``; streams ask for
``Accept-Encoding: identity`` (§2.2).
"""

from .batch import crawl_batch, get_health, merge_responses
from .errors import api_error, map_exception, raise_for_response, translate_errors
from .session import make_session, request_timeout, url_for
from .source import HTTPEventSource
from .streams import NDJSONTransport, SSETransport

__all__ = [
    "make_session",
    "request_timeout",
    "url_for",
    "NDJSONTransport",
    "SSETransport",
    "HTTPEventSource",
    "crawl_batch",
    "merge_responses",
    "get_health",
    "api_error",
    "raise_for_response",
    "map_exception",
    "translate_errors",
]
