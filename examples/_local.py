"""Where the examples crawl: $RIPTIDE_BASE_URL if set, else a local server started here.

With no server configured, each example starts the bundled local server (extra
``[server]``) on a free loopback port and crawls its demo site, so it runs offline.
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
        urls = os.environ.get("RIPTIDE_EXAMPLE_URLS", "https://example.com/").split(",")
        yield base_url, urls
        return
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(**server_config)) as server:
        yield server.base_url, server.article_urls()[:8]
