"""The WebSocket thread bridge (private): the only place with threads.

- ``frames``: sans-I/O parsing of server frames (RFC 6455), with the message size limit.
- ``queue``: the bounded reader-to-consumer hand-off and its overflow policies.
- ``handshake``: the opening handshake (websocket-client), its deadline, TLS and proxy options.
- ``connection``: one connection: the reader thread, keepalive, sends, close.
- ``transport``: :class:`WebSocketTransport`, the ``Transport`` of ``riptide_sync._stream``:
  crawl requests and ``ping``/``status`` request/reply calls on a reused connection.
- ``errors``: the one place where foreign exceptions become riptide_sync's.
"""

from __future__ import annotations

from .connection import Connection
from .transport import CrawlSource, WebSocketTransport

__all__ = ["WebSocketTransport", "CrawlSource", "Connection"]
