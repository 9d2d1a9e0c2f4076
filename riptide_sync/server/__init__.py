"""A RipTide-compatible local server, for development, tests, demos and benchmarks.

Usage from pytest or a script::

    from riptide_sync.server import ServerConfig, Faults, serve_in_thread

    with serve_in_thread(ServerConfig(faults=Faults(drop_after=3))) as srv:
        srv.base_url            # "http://127.0.0.1:54321"  (port 0 picks a free port)
        srv.ws_url              # "ws://127.0.0.1:54321/crawl/ws"
        srv.demo_urls()         # 36 demo-site URLs, http://demo.riptide.test/demo/...
        srv.article_urls()      # the 30 plain articles among them
        ...                     # crawl with any client
        srv.request_log         # [LoggedRequest(transport="ws", urls=[...], options=None,
                                #                accepted=True, connection=1), ...]
        srv.counters.ws_open    # also ws_accepted, streams_open, http_requests, crawls
    # here: all connections closed, loop stopped, thread joined

From the shell: ``riptide-sync serve [--port 8080] [--fault drop_after=3 ...]``.

It speaks docs/protocol.md: ``GET /healthz``; batch ``POST /crawl`` and ``/api/v1/crawl``
(enhanced pipeline, §4); NDJSON ``POST /crawl/stream`` and ``/api/v1/crawl/stream``
(variant A, §2); SSE ``POST /crawl/sse`` (§3); WebSocket ``GET /crawl/ws`` (§1). It
fetches pages with aiohttp and extracts them with trafilatura, caches per ``cache_mode``
(in memory or in SQLite), validates as §6, and optionally checks API keys (§7.2) and rate
limits (§7.3). Its defaults are the real server's behaviour: no reads and no Pings
during a WebSocket crawl, no close over missed pongs, non-2xx origins as failed results
with the real fetch wording, gzip for clients that accept it (SSE exempt), 9-digit
timestamps, the §6.1 private-address checks on loopback too. Lenient variants are named
options a test asks for: ``ping_during_crawl``, ``pong_timeout``,
``origin_errors_succeed``, ``batch_pipeline="standard"``, ``compression=False``,
``allow_private``. Differences that remain, all deliberate:

- the demo site is crawled under the reserved host ``demo.riptide.test``, resolved
  internally (see :mod:`.demo_site`); ``/demo/`` also serves it to browsers, public and
  exempt from rate limits and faults;
- streams fetch at most ``stream_concurrency`` URLs at once;
- synthetic mode (``synthetic_doc_size``) answers batch with the standard shape.

Public names:

- :class:`ServerConfig`: all settings (host, port, api_keys, ping_interval, the lenient
  options above, ssl_context, max_urls_per_request, fetch_timeout, cache_path,
  synthetic_doc_size, faults, ...).
- :class:`Faults`: fault scenarios (``drop_after``, ``drop_every``, ``drop_results_for``,
  ``drop_summary_first``, ``freeze_after``, ``malformed_after``, ``reject_first`` +
  ``retry_after``, ``cut_ndjson_after``, ``send_delay``, ``backpressure_drop`` +
  ``slow_send_threshold``); each field's docstring states when it fires ("first
  connection of each transport", "every connection", "first time each URL", ...).
- :func:`serve_in_thread` -> :class:`RunningServer`; :func:`run_server` (foreground).
- :class:`LoggedRequest`: one request-log entry; :class:`Counters`.
- :func:`demo_urls`: the demo site's crawlable URLs (any argument is ignored);
  :func:`create_app`: the aiohttp app.

The server never imports ``riptide_sync.protocol`` or any client module: client and server
are two independent readings of docs/protocol.md, so a shared misreading cannot hide.
"""

from __future__ import annotations

from .app import create_app
from .config import Faults, ServerConfig
from .demo_site import article_urls, demo_urls
from .runner import RunningServer, run_server, serve_in_thread
from .state import Counters, LoggedRequest

__all__ = [
    "Counters",
    "Faults",
    "LoggedRequest",
    "RunningServer",
    "ServerConfig",
    "article_urls",
    "create_app",
    "demo_urls",
    "run_server",
    "serve_in_thread",
]
