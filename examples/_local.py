"""Where the examples crawl: $RIPTIDE_BASE_URL if set, else a local server started here.

Every example runs offline. With no server configured, each one starts the bundled local
server (extra ``[server]``) on a free loopback port and crawls its demo site. With
``RIPTIDE_BASE_URL`` set (say, to a ``riptide-sync serve`` on http://127.0.0.1:8080), it
crawls that server's demo pages; set ``RIPTIDE_EXAMPLE_URLS`` (comma-separated) to crawl
URLs of your own instead.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def riptide_server(**server_config) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(base_url, urls)``: the server to use and some URLs to crawl on it.

    Args:
        server_config: settings for the local server (ignored with $RIPTIDE_BASE_URL),
            e.g. ``faults=Faults(drop_after=3)``.
    """
    base_url = os.environ.get("RIPTIDE_BASE_URL")
    if base_url:
        listed = [url.strip() for url in os.environ.get("RIPTIDE_EXAMPLE_URLS", "").split(",")]
        if any(listed):
            yield base_url, [url for url in listed if url]
            return
        from riptide_sync.server import article_urls  # the demo pages that server serves

        yield base_url, article_urls(base_url)[:8]
        return
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(**server_config)) as server:
        yield server.base_url, server.article_urls()[:8]
