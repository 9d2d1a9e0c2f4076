"""Assemble the aiohttp application: routes, middleware, demo site, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from . import demo_site
from .cache import open_cache
from .config import ServerConfig
from .httpapi import batch_crawl, healthz, metrics
from .httpstreams import ndjson_crawl, sse_crawl
from .middleware import (STATE, auth_middleware, compression_middleware, payload_limit_middleware,
                         rate_limit_middleware, validation_middleware)
from .state import ServerState
from .ws import ws_handler


async def _demo_page(request: web.Request) -> web.StreamResponse:
    """Serve one page of the bundled demo site (see :mod:`riptide_sync.server.demo_site`)."""
    path = request.match_info.get("path", "")
    status, content_type, body, target = demo_site.lookup(path)
    if target is not None:
        raise web.HTTPFound(f"/demo/{target}")
    if path == demo_site.SLOW_PATH:
        await asyncio.sleep(request.app[STATE].config.demo_slow_delay)
    return web.Response(body=body, status=status, content_type=content_type,
                        charset="utf-8" if content_type.startswith("text/") else None)


def create_app(config: ServerConfig) -> web.Application:
    """Build the application for ``config``; the caller runs it (e.g. with AppRunner).

    The crawler's HTTP session, worker threads and cache are opened on startup and
    closed on cleanup.
    """
    # axum's Json limit is 2 MiB; allow more when benchmarks raise the URL limit.
    max_body = 2 * 1024 * 1024 if config.max_urls_per_request <= 1000 else 64 * 1024 * 1024
    app = web.Application(client_max_size=max_body,
                          middlewares=[compression_middleware, payload_limit_middleware, rate_limit_middleware,
                                       auth_middleware,
                                       validation_middleware])
    state = ServerState(config, open_cache(config.cache_path))
    app[STATE] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/metrics", metrics)
    for prefix in ("", "/api/v1"):
        app.router.add_post(f"{prefix}/crawl", batch_crawl)
        app.router.add_post(f"{prefix}/crawl/stream", ndjson_crawl)
    app.router.add_post("/crawl/sse", sse_crawl)
    app.router.add_get("/crawl/ws", ws_handler)
    app.router.add_get("/demo/", _demo_page)
    app.router.add_get("/demo/{path:.*}", _demo_page)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await state.crawler.start()
        yield
        state.closing = True
        await state.crawler.close()
        state.cache.close()

    async def on_shutdown(app: web.Application) -> None:
        state.closing = True  # Lets frozen connections (fault scenario) finish.

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return app
